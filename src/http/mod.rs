//! The HTTP edge: routes, the card-number guard on URLs and headers, request logging, and
//! problem+json for everything that goes wrong. The only actix-facing module besides `startup`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use tracing::Instrument;

use crate::domain::card_guard;
use crate::domain::refs::new_id;
use crate::service::AppServices;
use crate::telemetry;

pub mod audit;
pub mod auth;
pub mod body;
pub mod data_protection;
pub mod ledger;
pub mod limits;
pub mod notifications;
pub mod payments;
pub mod probes;
pub mod problem;
pub mod reconciliations;
pub mod refunds;
pub mod requests;
pub mod webhooks;

use limits::RateLimits;
use problem::ApiError;

/// Mounts the public API on `cfg`. `/metrics` is mounted here unless it has a port of its own.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    services: AppServices,
    limits: web::Data<RateLimits>,
    with_metrics: bool,
) {
    cfg.app_data(web::Data::new(services))
        .app_data(limits)
        .app_data(web::QueryConfig::default().error_handler(|_, _| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "The query string could not be read",
            )
            .into()
        }))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::not_found().into()))
        .configure(|cfg| configure_probes(cfg, with_metrics))
        .service(
            api_scope()
                .wrap(actix_web::middleware::from_fn(audit_access))
                .wrap(actix_web::middleware::from_fn(limit_by_client))
                .wrap(actix_web::middleware::from_fn(guard_request_line)),
        );
}

/// Declares the API's routes once: they are registered from this list, and the OpenAPI drift
/// test compares the same list with `openapi/openapi.json`.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route under `/v1` as (method, path relative to `/v1`).
        pub const API_ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn api_scope() -> actix_web::Scope {
            web::scope("/v1")$(.route($path, web::$method().to(CatchPanics($handler))))*
        }
    };
}

api_routes! {
    post "/payments" => payments::create,
    get "/payments" => payments::list,
    get "/payments/{id}" => payments::get,
    post "/payments/{id}/cancel" => payments::cancel,
    get "/payments/{id}/events" => payments::events,
    post "/payments/{id}/refunds" => refunds::create_refund,
    get "/payments/{id}/refunds" => refunds::list_refunds,
    get "/ledger" => ledger::ledger,
    get "/ledger/summary" => ledger::ledger_summary,
    post "/reconciliations" => reconciliations::reconcile,
    get "/reconciliations/{id}" => reconciliations::reconciliation,
    get "/audit" => audit::audit,
    get "/notifications" => notifications::list,
    post "/notifications/{id}/retry" => notifications::retry,
    post "/webhooks/{provider}/{account}" => webhooks::receive,
    post "/data-protection/erasures" => data_protection::erase,
    get "/data-protection/exports" => data_protection::export,
}

/// The operator's routes outside `/v1`, as (method, path).
pub const PROBE_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// The operator's endpoints: liveness, readiness, the API document and (optionally) metrics.
pub fn configure_probes(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.route("/healthz", web::get().to(probes::healthz))
        .route("/readyz", web::get().to(probes::readyz))
        .route("/openapi.json", web::get().to(probes::openapi));
    if with_metrics {
        cfg.route("/metrics", web::get().to(probes::metrics));
    }
}

/// Answers anything unrouted with a problem+json 404 (or 405 for a known path, wrong method).
pub async fn not_found() -> HttpResponse {
    ApiError::not_found().error_response()
}

fn percent_decoded(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a word looks like one of our API keys, whole or cut short (`cf_` and a key id).
fn looks_like_api_key(word: &str) -> bool {
    crate::domain::api_key::parse_token(word).is_some()
        || word.strip_prefix("cf_").is_some_and(|rest| {
            rest.len() >= 8 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Whether the URL (its path, or a query parameter's name or value) carries one of our keys, or
/// the query names a credential parameter.
fn credentials_in_url(path: &str, query: &str) -> bool {
    const NAMES: [&str; 8] = [
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "bearer",
    ];
    let has_key = |text: &str| {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(looks_like_api_key)
    };
    has_key(&percent_decoded(path))
        || url::form_urlencoded::parse(query.as_bytes()).any(|(name, value)| {
            NAMES.contains(&name.to_ascii_lowercase().as_str()) || has_key(&name) || has_key(&value)
        })
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
    if credentials_in_url(req.path(), req.query_string()) {
        tracing::warn!("request refused: an API key in the URL");
        let response = ApiError::new(
            StatusCode::BAD_REQUEST,
            "api_key_in_url",
            "API keys are never accepted in a URL",
        )
        .detail(
            "Send the key in the Authorization header. URLs end up in proxy logs and browser \
             history: treat a key that was in one as exposed, and revoke it.",
        )
        .error_response();
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Per-client limit on the API (webhooks have their own, per provider account).
async fn limit_by_client(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if !req.path().starts_with("/v1/webhooks/") {
        let limits = req.app_data::<web::Data<RateLimits>>().cloned();
        let services = req.app_data::<web::Data<AppServices>>().cloned();
        if let (Some(limits), Some(services)) = (limits, services) {
            if let Some(ip) = limits.client_ip(req.request()) {
                if let Err(refused) = limits.check_ip(ip, &services.metrics) {
                    return Ok(req.into_response(refused.error_response()));
                }
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Every query parameter any route reads (the OpenAPI document's list; a test keeps them equal).
pub const QUERY_PARAMETERS: &[&str] = &[
    "created_from",
    "created_to",
    "cursor",
    "format",
    "from",
    "limit",
    "request_ref",
    "service",
    "status",
    "to",
];

/// The query's parameter names as the audit trail records them: a name no route reads is
/// recorded as `other`, never as it was written (a name is free text a caller chose).
fn audited_query_names(query: &str) -> Vec<&'static str> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| {
            QUERY_PARAMETERS
                .iter()
                .find(|known| **known == name)
                .copied()
                .unwrap_or("other")
        })
        .collect()
}

/// The path's first parameter as the audit trail records it when it has the shape of what we
/// name things (our ids are a prefix and letters; providers and accounts are lowercase words with
/// few digits), else `-`: it was typed into a URL by a caller.
fn audited_subject(value: Option<&str>) -> String {
    match value {
        Some(word)
            if (1..=64).contains(&word.len())
                && word.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b)
                })
                && word.bytes().filter(u8::is_ascii_digit).count() <= 6 =>
        {
            word.to_owned()
        }
        _ => "-".to_owned(),
    }
}

/// The access audit: every request made with a finance or admin key, and every refusal (403) of
/// any key, is recorded (who, method, route pattern, status, the path's id, the query's parameter
/// names; never values or bodies). Business events (a refund, an export, an erasure) are recorded
/// by their services as well, with their own details. If the record cannot be written, data is
/// not shown: the answer becomes 503.
async fn audit_access(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use crate::domain::api_key::Role;
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let query = audited_query_names(req.query_string());
    let services = req.app_data::<web::Data<AppServices>>().cloned();
    let response = next.call(req).await?.map_into_boxed_body();
    let principal = response
        .request()
        .extensions()
        .get::<crate::service::Principal>()
        .cloned();
    let (Some(principal), Some(services)) = (principal, services) else {
        return Ok(response);
    };
    let status = response.status();
    let action = if status == StatusCode::FORBIDDEN {
        "access.denied"
    } else if status.is_server_error() {
        // Whoever asked: something failed on our side (a panic included) with their request.
        "api.failed"
    } else if matches!(principal.role, Role::Finance | Role::Admin) {
        "api.access"
    } else {
        return Ok(response);
    };
    let subject = audited_subject(
        response
            .request()
            .match_info()
            .iter()
            .next()
            .map(|(_, v)| v),
    );
    let detail = serde_json::json!({
        "method": method,
        "route": route,
        "status": status.as_u16(),
        "query": query,
    });
    match services
        .audit
        .record(&principal.actor(), action, &subject, detail)
        .await
    {
        Ok(()) => Ok(response),
        Err(e) => {
            tracing::error!(error = %e, "access could not be audited; answer withheld");
            let refusal = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "The access could not be recorded in the audit trail",
            )
            .detail("Nothing is shown that is not audited. Retry later.");
            let (request, _) = response.into_parts();
            Ok(ServiceResponse::new(request, refusal.error_response()))
        }
    }
}

/// Wraps a handler so that, if it panics, it answers problem+json 500 (`internal_error`)
/// instead of dropping the connection; the access audit around it then records the failure with
/// the caller's identity. The panic's message goes to the log through its card-number guard.
#[derive(Clone)]
pub struct CatchPanics<F>(pub F);

impl<F, Args> actix_web::Handler<Args> for CatchPanics<F>
where
    F: actix_web::Handler<Args>,
{
    type Output = Result<F::Output, actix_web::Error>;
    type Future = futures_util::future::Map<
        futures_util::future::CatchUnwind<std::panic::AssertUnwindSafe<F::Future>>,
        fn(std::thread::Result<F::Output>) -> Self::Output,
    >;

    fn call(&self, args: Args) -> Self::Future {
        use futures_util::FutureExt;
        std::panic::AssertUnwindSafe(self.0.call(args))
            .catch_unwind()
            .map(answer_panic::<F::Output>)
    }
}

fn answer_panic<O>(result: std::thread::Result<O>) -> Result<O, actix_web::Error> {
    result.map_err(|_| {
        tracing::error!("a handler panicked; answered 500");
        ApiError::internal().into()
    })
}

/// A caller's `X-Request-Id`, if it is a sane one: at most 64 plain characters (letters, digits,
/// `-_.:`) of which at most 12 are digits, so that no card number can hide in it, however it is
/// split. Anything else is replaced by an id of ours.
fn caller_request_id(req: &ServiceRequest) -> Option<String> {
    let id = req.headers().get("x-request-id")?.to_str().ok()?.trim();
    let plain = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    // A UUID (the common form, about twenty digits) is kept; one holding a card number is
    // replaced.
    (plain && (1..=64).contains(&id.len()) && !card_guard::contains_card_number(id))
        .then(|| id.to_owned())
}

/// The methods the route table answers; any other method a caller sends is `other` in metrics,
/// logs, spans and the audit trail, so a label can neither carry what a caller wrote nor grow
/// without bound.
const ROUTED_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The request's method as it is labelled: one of [`ROUTED_METHODS`] or `other`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    ROUTED_METHODS
        .iter()
        .find(|known| **known == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// Every request: a request id (the caller's `X-Request-Id`, or a new one) returned in
/// `X-Request-Id`; a span that continues the caller's W3C trace; one log line with method, route
/// pattern (never the concrete path or query, which may carry references), status and latency;
/// and the request metrics. Bodies and headers are never logged.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let request_id = caller_request_id(&req).unwrap_or_else(|| new_id("req_"));
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    telemetry::adopt_incoming_trace(&span, req.headers());
    let services = req.app_data::<web::Data<AppServices>>().cloned();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.record("http.response.status_code", status);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = %route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        )
    });
    if let Some(services) = services {
        services
            .metrics
            .http_request(method, &route, status, elapsed);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

/// Headers every response carries: no sniffing, no framing, no caching of payment data, no
/// referrer, HTTPS only. The simulator's pages set their own, looser, policy.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, App};

    #[actix_web::test]
    async fn a_handler_that_panics_answers_problem_json_500() {
        let app = test::init_service(
            App::new()
                .route(
                    "/boom",
                    web::get().to(CatchPanics(|| async {
                        if true {
                            panic!("a bug");
                        }
                        HttpResponse::Ok().finish()
                    })),
                )
                .route("/fine", web::get().to(CatchPanics(HttpResponse::Ok))),
        )
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["code"], "internal_error");
        let fine =
            test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
        assert_eq!(fine.status(), StatusCode::OK);
    }
}
