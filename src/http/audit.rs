//! The audit trail's route (role admin): a page of entries for a period.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};

use super::auth::Authenticated;
use super::problem::ApiError;
use crate::domain::api_key::Role;
use crate::domain::FieldError;
use crate::service::{AppServices, FieldIssue};

const ADMIN: &[Role] = &[Role::Admin];

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
