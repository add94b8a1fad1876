//! Provider webhook endpoints: raw bytes (size-limited) → signature check → apply → 2xx only once
//! the effect is committed. Bodies are never logged or stored.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::read_limited;
use super::limits::RateLimits;
use super::problem::ApiError;
use crate::domain::event::WebhookRejection;
use crate::domain::{EventOutcome, ProviderKind};
use crate::service::webhooks::WebhookError;
use crate::service::{AppServices, StorageFailure};

fn unknown_account() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "webhook_account_unknown",
        "No provider account of that name",
    )
}

/// `POST /v1/webhooks/{provider}/{account}`, for every provider: each verifies and reads its own
/// messages behind the `PaymentProvider` trait.
pub async fn receive(
    services: web::Data<AppServices>,
    limits: web::Data<RateLimits>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (provider, account) = path.into_inner();
    let Some(kind) = ProviderKind::from_webhook_segment(&provider) else {
        return Err(unknown_account());
    };
    if !services.webhooks.knows(kind, &account) {
        return Err(unknown_account());
    }
    // In order, each as cheap as it can be for what it protects: a sender whose failures are
    // over its allowance is refused before its body is read; at most so many bodies are read at
    // once, each within a deadline; the signature is checked before the account's allowance is
    // charged, so unsigned junk cannot use up the real provider's. Every failure is charged to
    // its sender's address.
    let sender = limits.client_ip(&req);
    if let Some(ip) = sender {
        limits.check_webhook_sender(ip, &services.metrics)?;
    }
    let charge_failure = || {
        if let Some(ip) = sender {
            limits.charge_webhook_failure(ip);
        }
    };
    let body = {
        let _slot = limits.webhook_body_slot(&services.metrics)?;
        read_in_time(&limits, &req, payload, &account).await
    };
    let body = match body {
        Ok(body) => body,
        Err(refused) => {
            charge_failure();
            return Err(refused);
        }
    };
    let headers = req.headers().clone();
    let lookup = move |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let result = match services.webhooks.verify(kind, &account, &lookup, &body) {
        Ok(verified) => {
            limits.check_webhook_account(&account, &services.metrics)?;
            services.webhooks.apply(verified).await
        }
        Err(refused) => Err(refused),
    };
    if matches!(result, Err(WebhookError::Rejected(_))) {
        charge_failure();
    }
    answer(result)
}

/// The provider's answer: 200 only once the effect is committed.
fn answer(result: Result<EventOutcome, WebhookError>) -> Result<HttpResponse, ApiError> {
    match result {
        Ok(outcome) => {
            Ok(HttpResponse::Ok().json(serde_json::json!({ "outcome": outcome.as_str() })))
        }
        Err(WebhookError::UnknownAccount) => Err(unknown_account()),
        Err(WebhookError::Rejected(WebhookRejection::Malformed(detail))) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The signed body is not a webhook message",
        )
        .detail(detail)),
        Err(WebhookError::Rejected(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "webhook_signature_invalid",
            "The webhook signature is missing or does not match",
        )),
        // An allow-listed field held a card number: nothing was written, and never will be.
        Err(WebhookError::Store(e)) if StorageFailure::of(&e) == StorageFailure::CardData => {
            tracing::warn!("webhook refused by the store: a field holds a card number");
            Err(ApiError::card_data())
        }
        // Not committed, so not acknowledged: the provider will send it again.
        Err(WebhookError::Store(e)) => {
            tracing::error!(error = %e, "webhook not applied: storage failure");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "The webhook could not be recorded; please retry",
            ))
        }
    }
}

/// Reads the body within the deadline.
async fn read_in_time(
    limits: &RateLimits,
    req: &HttpRequest,
    payload: web::Payload,
    account: &str,
) -> Result<web::Bytes, ApiError> {
    match tokio::time::timeout(limits.webhook_body_deadline, read_limited(req, payload)).await {
        Ok(read) => read,
        Err(_) => {
            tracing::warn!(account = %account, "webhook refused: its body did not arrive in time");
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "The request body did not arrive in time",
            )
            .detail(format!(
                "Webhook bodies must arrive within {} s.",
                limits.webhook_body_deadline.as_secs()
            )))
        }
    }
}
