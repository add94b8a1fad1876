//! The HTTP edge: routes, the card-number guard on URLs and headers, request logging, and
//! problem+json for everything that goes wrong. The only actix-facing module besides `startup`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};

use crate::domain::card_guard;
use crate::service::AppServices;

pub mod auth;
pub mod body;
pub mod finance;
pub mod notifications;
pub mod payments;
pub mod problem;
pub mod webhooks;

use problem::ApiError;

/// Mounts the public API on `cfg`.
pub fn configure(cfg: &mut web::ServiceConfig, services: AppServices) {
    cfg.app_data(web::Data::new(services))
        .app_data(web::QueryConfig::default().error_handler(|_, _| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "The query string could not be read",
            )
            .into()
        }))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::not_found().into()))
        .route("/healthz", web::get().to(healthz))
        .service(
            web::scope("/v1")
                .wrap(actix_web::middleware::from_fn(guard_request_line))
                .route("/payments", web::post().to(payments::create))
                .route("/payments", web::get().to(payments::list))
                .route("/payments/{id}", web::get().to(payments::get))
                .route("/payments/{id}/cancel", web::post().to(payments::cancel))
                .route("/payments/{id}/events", web::get().to(payments::events))
                .route(
                    "/webhooks/govuk-pay/{account}",
                    web::post().to(webhooks::govuk_pay),
                )
                .route(
                    "/payments/{id}/refunds",
                    web::post().to(finance::create_refund),
                )
                .route(
                    "/payments/{id}/refunds",
                    web::get().to(finance::list_refunds),
                )
                .route("/audit", web::get().to(finance::audit))
                .route("/reconciliations", web::post().to(finance::reconcile))
                .route(
                    "/reconciliations/{id}",
                    web::get().to(finance::reconciliation),
                )
                .route("/ledger", web::get().to(finance::ledger))
                .route("/ledger/summary", web::get().to(finance::ledger_summary))
                .route("/notifications", web::get().to(notifications::list))
                .route(
                    "/notifications/{id}/retry",
                    web::post().to(notifications::retry),
                ),
        );
}

/// Answers anything unrouted with a problem+json 404 (or 405 for a known path, wrong method).
pub async fn not_found() -> HttpResponse {
    ApiError::not_found().error_response()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

fn percent_decoded(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect::<Vec<_>>()
        .join("\n")
}

/// Refuses a card number in the path, the query string or the Idempotency-Key before any handler
/// (or log line) sees it.
async fn guard_request_line(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let path = percent_decoded(req.path());
    let query = percent_decoded(req.query_string());
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if [path.as_str(), query.as_str(), key]
        .iter()
        .any(|part| card_guard::contains_card_number(part))
    {
        let response = ApiError::card_data().error_response();
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// One log line per request: method, route pattern (never the concrete path or query, which may
/// carry references), status and latency. Bodies and headers are never logged.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = next.call(req).await?;
    tracing::info!(
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}
