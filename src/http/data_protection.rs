//! The data-protection officer's endpoints (role admin): erasure on request and subject export.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Authenticated;
use super::body::read_json;
use super::problem::ApiError;
use super::requests;
use crate::domain::api_key::Role;
use crate::domain::{FieldError, RequestRef};
use crate::service::{AppServices, FieldIssue, ServiceError};

const ADMIN: &[Role] = &[Role::Admin];

/// `POST /v1/data-protection/erasures {request_ref}`: pseudonymise, keep the money facts.
pub async fn erase(
    auth: Authenticated,
    services: web::Data<AppServices>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(ADMIN)?;
    let body = read_json(&req, payload).await?;
    let request_ref = requests::erasure(&body)?;
    let report = services
        .data_protection
        .erase(&principal.actor(), &request_ref)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// `GET /v1/data-protection/exports?request_ref=&format=json|csv`.
pub async fn export(
    auth: Authenticated,
    services: web::Data<AppServices>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(ADMIN)?;
    let mut issues = Vec::new();
    for name in query
        .keys()
        .filter(|k| !["request_ref", "format"].contains(&k.as_str()))
    {
        issues.push(FieldIssue::new(
            name.clone(),
            FieldError::new("unknown_parameter", "is not a parameter of this export"),
        ));
    }
    let request_ref = match query.get("request_ref") {
        Some(value) => RequestRef::parse(value)
            .map_err(|e| issues.push(FieldIssue::new("request_ref", e)))
            .ok(),
        None => {
            issues.push(FieldIssue::new(
                "request_ref",
                FieldError::new("required", "is required"),
            ));
            None
        }
    };
    let csv = match query.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            issues.push(FieldIssue::new(
                "format",
                FieldError::new("invalid_value", "must be json or csv"),
            ));
            false
        }
    };
    let Some(request_ref) = request_ref.filter(|_| issues.is_empty()) else {
        return Err(ServiceError::Validation(issues).into());
    };
    let export = services
        .data_protection
        .export(&principal.actor(), &request_ref)
        .await?;
    if csv {
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"subject-export.csv\"",
            ))
            .body(export.csv()))
    } else {
        Ok(HttpResponse::Ok().json(export))
    }
}
