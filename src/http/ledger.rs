//! Ledger routes (role finance): the ledger for a period, streamed as CSV or JSON, and its
//! summary per London day, service and fund.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};

use super::auth::Authenticated;
use super::problem::ApiError;
use crate::domain::api_key::Role;
use crate::service::AppServices;

const FINANCE: &[Role] = &[Role::Finance];

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
        .record_export(&principal.actor(), &query, chrono::Utc::now())
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
