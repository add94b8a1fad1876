//! The operator's probes: `/healthz` (the process answers), `/readyz` (the database answers and
//! its schema is current), `/metrics` (Prometheus text) and `/openapi.json` (the API contract).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::service::AppServices;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when this process can serve: the database answers and every migration built into the
/// binary is applied. 503 otherwise, saying which (never a connection string or an error's text).
pub async fn readyz(services: web::Data<AppServices>) -> HttpResponse {
    let store = &services.store;
    let backend = store.backend();
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %e, "not ready: the database does not answer");
        return HttpResponse::ServiceUnavailable().json(json!({
            "status": "unavailable", "database": backend, "reason": "database_unreachable"
        }));
    }
    match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => HttpResponse::Ok().json(json!({
            "status": "ready", "database": backend, "migrations": "current"
        })),
        Ok(pending) => {
            tracing::warn!(?pending, "not ready: migrations are not applied");
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "unavailable", "database": backend, "reason": "migrations_pending",
                "pending": pending
            }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready: cannot read the migration history");
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "unavailable", "database": backend, "reason": "database_unreachable"
            }))
        }
    }
}

pub async fn metrics(services: web::Data<AppServices>) -> HttpResponse {
    let text = services.metrics.render(services.store.as_ref()).await;
    // Labels are bounded and come from configuration and route patterns; the exit is guarded all
    // the same, like every other.
    let text = crate::domain::card_guard::redact(&text).into_owned();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

/// The API contract, `openapi/openapi.json`, built into the binary (a test keeps it and the
/// routes in step).
pub const OPENAPI_DOCUMENT: &str = include_str!("../../openapi/openapi.json");

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI_DOCUMENT)
}
