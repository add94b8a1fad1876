//! Reconciliation routes (role finance): run one for an account and a period, read a run (JSON
//! or CSV).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Authenticated;
use super::body::read_json;
use super::problem::ApiError;
use super::requests;
use crate::domain::api_key::Role;
use crate::domain::FieldError;
use crate::service::{AppServices, FieldIssue};

const FINANCE: &[Role] = &[Role::Finance];

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
    let actor = principal.actor();
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
