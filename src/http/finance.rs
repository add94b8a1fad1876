//! Finance routes: refunds (role finance) and the audit trail (role admin).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::auth::Authenticated;
use super::body::read_json;
use super::payments::{idempotency_key, payment_id};
use super::problem::ApiError;
use super::requests;
use crate::domain::api_key::Role;
use crate::domain::idempotency::Idempotent;
use crate::domain::FieldError;
use crate::service::reconciliation::Actor;
use crate::service::refunds::{RefundChannel, RefundResponse};
use crate::service::{AppServices, FieldIssue};
use crate::views::RefundView;

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
    let new = requests::new_refund(&body)?;
    let route = format!("POST /v1/payments/{payment}/refunds");
    let request = Idempotent::new(key, route, &principal.key_id, &body);
    match services
        .refunds
        .request(principal, &payment, request, new, RefundChannel::Api)
        .await?
    {
        RefundResponse::Created(refund) => {
            Ok(HttpResponse::Created().json(RefundView::from(&*refund)))
        }
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
    let refunds = services.refunds.list(&payment_id(&id)?).await?;
    let items: Vec<RefundView> = refunds.iter().map(RefundView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// `GET /v1/ledger`: streamed as it is read, as JSON or CSV.
pub async fn ledger(
    auth: Authenticated,
    services: web::Data<AppServices>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(FINANCE)?;
    let query = services.ledger.parse_query(&query, true)?;
    services
        .ledger
        .record_export(principal, &query, chrono::Utc::now())
        .await?;
    Ok(crate::edge::downloads::ledger_download(&services, &query))
}

/// `GET /v1/ledger/summary`: per London day, service and fund.
pub async fn ledger_summary(
    auth: Authenticated,
    services: web::Data<AppServices>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    auth.require(FINANCE)?;
    let query = services.ledger.parse_query(&query, false)?;
    let items = services.ledger.summary(&query).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "from": query.from, "to": query.to, "items": items })))
}

/// `POST /v1/reconciliations {account, from, to}`: runs one now and answers with what it found.
pub async fn reconcile(
    auth: Authenticated,
    services: web::Data<AppServices>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(FINANCE)?;
    let body = read_json(&req, payload).await?;
    let reconciliation = &services.reconciliation;
    let (account, from, to) =
        requests::reconciliation_run(&body, |account| reconciliation.knows_account(account))?;
    let actor = Actor {
        key_id: principal.key_id.clone(),
        label: principal.label.clone(),
    };
    let run = services
        .reconciliation
        .run(&actor, &account, from, to)
        .await?;
    Ok(HttpResponse::Created().json(run))
}

/// `GET /v1/reconciliations/{id}[?format=csv]`.
pub async fn reconciliation(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    auth.require(FINANCE)?;
    let Some(run) = services.reconciliation.get(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "reconciliation_not_found",
            "No such reconciliation run",
        ));
    };
    match query.get("format").map(String::as_str) {
        Some("csv") => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{}.csv\"", run.id),
            ))
            .body(run.csv())),
        None | Some("json") => Ok(HttpResponse::Ok().json(run)),
        Some(_) => Err(ApiError::validation(vec![FieldIssue::new(
            "format",
            FieldError::new("invalid_value", "must be json or csv"),
        )])),
    }
}

/// An optional start and end of a period.
type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from`/`to` as RFC 3339 date-times, each named when wrong.
fn period(query: &HashMap<String, String>) -> Result<Period, ApiError> {
    let mut issues = Vec::new();
    let mut parse = |name: &str| {
        query
            .get(name)
            .and_then(|v| match crate::domain::dates::parse_instant(v) {
                Ok(t) => Some(t),
                Err(error) => {
                    issues.push(FieldIssue::new(name, error));
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
    let mut query = query.into_inner();
    let cursor = query.remove("cursor");
    let limit = match query.remove("limit").map(|v| v.parse::<u32>()) {
        None => crate::service::audit::LIST_PAGE,
        Some(Ok(n)) if (1..=crate::service::audit::LIST_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::validation(vec![FieldIssue::new(
                "limit",
                FieldError::new("out_of_range", "must be a whole number from 1 to 1000"),
            )]))
        }
    };
    let (from, to) = period(&query)?;
    let Some(page) = services
        .audit
        .list(from, to, cursor.as_deref(), limit)
        .await?
    else {
        return Err(ApiError::validation(vec![FieldIssue::new(
            "cursor",
            FieldError::new("invalid_format", "is not a cursor this service gave"),
        )]));
    };
    let items: Vec<_> = page
        .items
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
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "items": items, "next_cursor": page.next_cursor })))
}
