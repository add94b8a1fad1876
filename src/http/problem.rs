//! RFC 9457 problem+json errors with a stable `code`, and the mapping from service errors.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::service::{FieldIssue, ServiceError, StorageFailure};

/// One problem field entry: which input, a stable code, and a message that never echoes the value.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemField {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// The payment concerned, when an answer about one is not the payment itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    /// For `refund_exceeds_captured`: what can still be refunded, in pence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refundable_amount: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub problem: Box<Problem>,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Self {
            status,
            problem: Box::new(Problem {
                type_uri: format!("urn:counterfoil:problem:{code}"),
                title,
                status: status.as_u16(),
                code,
                detail: None,
                errors: Vec::new(),
                payment_id: None,
                provider_code: None,
                refundable_amount: None,
            }),
            retry_after: None,
        }
    }

    /// 429: a rate limit was reached; `seconds` until a request would be let through.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        )
        .detail(format!(
            "A rate limit was reached. Retry after {seconds} s; nothing was done."
        ));
        error.retry_after = Some(seconds);
        error
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.problem.detail = Some(detail.into());
        self
    }

    pub fn validation(issues: Vec<FieldIssue>) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "The request has invalid fields",
        )
        .detail("See errors[] for each field that was refused.");
        error.problem.errors = issues
            .into_iter()
            .map(|issue| ProblemField {
                field: issue.field,
                code: issue.error.code,
                message: issue.error.message,
            })
            .collect();
        error
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid API key is required",
        )
        .detail("Send `Authorization: Bearer cf_…` with a key that has not been revoked.")
    }

    pub fn card_data() -> Self {
        // Operators should know it happens (a CRM bug, or a citizen typing their card number into
        // a free-text field); what was sent is never part of the line.
        tracing::warn!("request refused: it appears to contain a card number");
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_data_rejected",
            "The request appears to contain a card number",
        )
        .detail(
            "Counterfoil never accepts card numbers: the citizen enters card details only on the \
             provider's page. The request was discarded and not logged.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such resource")
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side",
        )
        .detail(
            "Nothing was half-written; the request can be retried with the same Idempotency-Key.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.problem.code)
    }
}

/// A failure in the middle of a streamed body ends the stream (the client sees the response
/// cut short), as no status can be sent any more.
impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        // Only where a bearer key is what is missing: a webhook's bad signature is not a
        // bearer challenge.
        if self.problem.code == "unauthorized" {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.body(serde_json::to_string(&self.problem).expect("problems serialise"))
    }
}

impl From<ServiceError> for ApiError {
    /// The problem for `error`, with the status both edges give it.
    fn from(error: ServiceError) -> Self {
        let status = crate::edge::status_of(&error);
        let mut problem = problem_of(error);
        debug_assert_eq!(problem.status, status, "{:?}", problem.problem.code);
        problem.status = status;
        problem
    }
}

/// The problem+json body for a service's error: its stable code, title and detail.
fn problem_of(error: ServiceError) -> ApiError {
    use StatusCode as S;
    match error {
        ServiceError::Validation(issues) => ApiError::validation(issues),
        ServiceError::PaymentNotFound => {
            ApiError::new(S::NOT_FOUND, "payment_not_found", "No such payment")
        }
        ServiceError::Forbidden => ApiError::new(
            S::FORBIDDEN,
            "forbidden",
            "This API key's role may not do that",
        ),
        ServiceError::IdempotencyConflict => ApiError::new(
            S::CONFLICT,
            "idempotency_conflict",
            "A request with this Idempotency-Key is still being processed",
        )
        .detail("Retry after a short wait; the first request's answer will then be replayed."),
        ServiceError::IdempotencyKeyReused => ApiError::new(
            S::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request",
        )
        .detail("Use a new Idempotency-Key for a new request."),
        ServiceError::NotRefundable => ApiError::new(
            S::CONFLICT,
            "payment_not_refundable",
            "Only a succeeded payment can be refunded",
        ),
        ServiceError::RefundExceedsCaptured { available } => {
            let mut e = ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "refund_exceeds_captured",
                "The refund is more than is left to refund on this payment",
            )
            .detail(format!("At most {available} pence can still be refunded."));
            e.problem.refundable_amount = Some(available);
            e
        }
        ServiceError::RefundNotFound => {
            ApiError::new(S::NOT_FOUND, "refund_not_found", "No such refund")
        }
        ServiceError::ApprovalNotFound => approval_not_found(),
        ServiceError::SecondPersonRequired => ApiError::new(
            S::FORBIDDEN,
            "second_person_required",
            "A second person must approve this refund",
        ),
        ServiceError::NeedsSecondPerson { threshold } => two_person_rule(threshold),
        ServiceError::ApiRefundsOff => api_refunds_off(),
        ServiceError::AccountNotConfigured(_) => account_not_configured(),
        ServiceError::AlreadyDecided => ApiError::new(
            S::CONFLICT,
            "already_decided",
            "This refund has already been approved or declined",
        ),
        ServiceError::NotCancellable { reason } => not_cancellable(reason),
        ServiceError::ProviderUnavailable {
            payment_id,
            certain_nothing_happened,
        } => provider_unavailable(payment_id, certain_nothing_happened),
        ServiceError::ProviderRejected { payment_id, code } => {
            let mut e = ApiError::new(S::BAD_GATEWAY, "provider_rejected", "The payment provider refused the request")
                    .detail("The provider made no payment. See provider_code; this usually needs a configuration fix.");
            e.problem.payment_id = payment_id;
            e.problem.provider_code = code;
            e
        }
        ServiceError::CardData => ApiError::card_data(),
        ServiceError::NotWaiting => ApiError::new(
            S::CONFLICT,
            "no_longer_waiting",
            "This no longer needs anyone",
        ),
        ServiceError::Store(store) => storage_failure(&store, StorageFailure::of(&store)),
    }
}

fn not_cancellable(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "payment_not_cancellable",
        "The payment can no longer be cancelled",
    )
    .detail(reason)
}

fn account_not_configured() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "provider_account_not_configured",
        "This payment's provider account is no longer configured",
    )
    .detail("Nothing was sent to any provider. Configure the account again to act on it.")
}

fn approval_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "approval_not_found",
        "No such refund waiting for approval",
    )
}

fn api_refunds_off() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "api_refunds_disabled",
        "Refunds by API key are switched off",
    )
    .detail("Refunds are asked for in the staff console, under the two-person rule.")
}

/// What one key would have refunded alone is over the two-person rule's threshold.
fn two_person_rule(threshold: i64) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "two_person_rule",
        "This refund needs a second person's approval",
    )
    .detail(format!(
        "One person or key may refund at most {threshold} pence of a payment alone (or more \
         than the daily limit). Ask for it in the staff console, where a refund approver can \
         approve it."
    ))
}

fn provider_unavailable(payment_id: Option<String>, certain_nothing_happened: bool) -> ApiError {
    let (status, detail) = if certain_nothing_happened {
        (StatusCode::SERVICE_UNAVAILABLE, "The payment provider could not be reached; nothing was created. Retry with the same Idempotency-Key.")
    } else {
        (StatusCode::BAD_GATEWAY, "The payment provider did not answer in time. The payment may exist at the provider: Counterfoil will resolve it, never create it twice. Read the payment by payment_id, or retry with the same Idempotency-Key later.")
    };
    let mut e = ApiError::new(
        status,
        "provider_unavailable",
        "The payment provider is unavailable",
    )
    .detail(detail);
    e.problem.payment_id = payment_id;
    e
}

fn storage_failure(store: &dyn std::fmt::Display, failure: StorageFailure) -> ApiError {
    match failure {
        StorageFailure::CardData => {
            tracing::warn!("refused by the store: a value to be written holds a card number");
            ApiError::card_data()
        }
        StorageFailure::Unavailable => {
            tracing::error!(error = %store, "storage failure");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "The database is unavailable",
            )
            .detail("Nothing was changed. Retry later with the same Idempotency-Key.")
        }
        StorageFailure::Other => {
            tracing::error!(error = %store, "storage failure");
            ApiError::internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    /// Every kind of service error answers the API with the status the console gives it.
    #[test]
    fn the_api_and_the_console_give_every_service_error_one_status() {
        let every = vec![
            ServiceError::Validation(Vec::new()),
            ServiceError::PaymentNotFound,
            ServiceError::Forbidden,
            ServiceError::IdempotencyConflict,
            ServiceError::IdempotencyKeyReused,
            ServiceError::NotRefundable,
            ServiceError::RefundExceedsCaptured { available: 1 },
            ServiceError::RefundNotFound,
            ServiceError::ApprovalNotFound,
            ServiceError::SecondPersonRequired,
            ServiceError::AlreadyDecided,
            ServiceError::NeedsSecondPerson { threshold: 1 },
            ServiceError::AccountNotConfigured(crate::providers::AccountNotConfigured("x".into())),
            ServiceError::ApiRefundsOff,
            ServiceError::NotCancellable { reason: "x" },
            ServiceError::ProviderUnavailable {
                payment_id: None,
                certain_nothing_happened: true,
            },
            ServiceError::ProviderUnavailable {
                payment_id: None,
                certain_nothing_happened: false,
            },
            ServiceError::ProviderRejected {
                payment_id: None,
                code: None,
            },
            ServiceError::CardData,
            ServiceError::NotWaiting,
            ServiceError::Store(StoreError::CardData),
            ServiceError::Store(StoreError::Conflict),
            ServiceError::Store(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            ServiceError::Store(StoreError::Other("x".into())),
        ];
        for error in every {
            let shared = crate::edge::status_of(&error);
            let said = format!("{error:?}");
            assert_eq!(problem_of(error).status, shared, "{said}");
        }
    }
}
