//! Finance routes: refunds (role finance) and the audit trail (role admin).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::auth::Authenticated;
use super::body::read_json;
use super::payments::{idempotency_key, payment_id};
use super::problem::ApiError;
use crate::domain::api_key::Role;
use crate::domain::FieldError;
use crate::service::refunds::RefundResponse;
use crate::service::{AppServices, FieldIssue};

const FINANCE: &[Role] = &[Role::Finance];
const ADMIN: &[Role] = &[Role::Admin];

pub async fn create_refund(
    auth: Authenticated,
    services: web::Data<AppServices>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(FINANCE)?;
    let payment = payment_id(&id)?;
    let key = idempotency_key(&req)?;
    let body = read_json(&req, payload).await?;
    match services
        .refunds
        .request(principal, &payment, key, &body)
        .await?
    {
        RefundResponse::Created(view) => Ok(HttpResponse::Created().json(&*view)),
        RefundResponse::Replayed { status, body } => Ok(HttpResponse::build(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        )
        .content_type("application/json")
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body)),
    }
}

pub async fn list_refunds(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(FINANCE)?;
    let items = services.refunds.list(&payment_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// An optional start and end of a period.
type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from`/`to` as RFC 3339 date-times, each named when wrong.
fn period(query: &HashMap<String, String>) -> Result<Period, ApiError> {
    let mut issues = Vec::new();
    let mut parse = |name: &str| {
        query
            .get(name)
            .and_then(|v| match DateTime::parse_from_rfc3339(v) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    issues.push(FieldIssue::new(
                        name,
                        FieldError::new("invalid_format", "must be an RFC 3339 date-time"),
                    ));
                    None
                }
            })
    };
    let (from, to) = (parse("from"), parse("to"));
    for name in query
        .keys()
        .filter(|k| !["from", "to"].contains(&k.as_str()))
    {
        issues.push(FieldIssue::new(
            name.clone(),
            FieldError::new("unknown_parameter", "is not a parameter of this listing"),
        ));
    }
    if issues.is_empty() {
        Ok((from, to))
    } else {
        Err(ApiError::validation(issues))
    }
}

pub async fn audit(
    auth: Authenticated,
    services: web::Data<AppServices>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    auth.require(ADMIN)?;
    let (from, to) = period(&query)?;
    let entries = services
        .store
        .list_audit(from, to, 1000)
        .await
        .map_err(crate::service::ServiceError::from)?;
    let items: Vec<_> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "actor": {"key_id": e.actor_key_id, "label": e.actor_label},
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
