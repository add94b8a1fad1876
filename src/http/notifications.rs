//! Admin endpoints for CRM notifications: list them by status, and retry a dead one.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::auth::Authenticated;
use super::problem::ApiError;
use crate::domain::api_key::Role;
use crate::domain::FieldError;
use crate::service::{AppServices, FieldIssue};

const ADMIN: &[Role] = &[Role::Admin];

pub async fn list(
    auth: Authenticated,
    services: web::Data<AppServices>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    auth.require(ADMIN)?;
    let mut issues = Vec::new();
    for name in query.keys().filter(|k| k.as_str() != "status") {
        issues.push(FieldIssue::new(
            name.clone(),
            FieldError::new("unknown_parameter", "is not a parameter of this listing"),
        ));
    }
    let status = query.get("status").map(String::as_str);
    if status.is_some_and(|s| !["pending", "delivered", "dead"].contains(&s)) {
        issues.push(FieldIssue::new(
            "status",
            FieldError::new("invalid_value", "must be pending, delivered or dead"),
        ));
    }
    if !issues.is_empty() {
        return Err(ApiError::validation(issues));
    }
    let items = services.notifications.list(status).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

pub async fn retry(
    auth: Authenticated,
    services: web::Data<AppServices>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(ADMIN)?;
    if services.notifications.retry(&auth.0.actor(), &id).await? {
        Ok(HttpResponse::Accepted()
            .json(serde_json::json!({ "id": id.as_str(), "status": "pending" })))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "notification_not_retryable",
            "No such notification, or it was already delivered",
        ))
    }
}
