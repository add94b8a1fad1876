//! What HTTP status a service's refusal or failure is, for both edges: the API's problem+json and
//! the console's pages answer every `ServiceError` with the same status.

use actix_web::http::StatusCode;

use crate::service::{ServiceError, StorageFailure};

/// The status for `error`. Exhaustive: a new kind of error must be given its status here.
pub fn status_of(error: &ServiceError) -> StatusCode {
    use ServiceError as E;
    match error {
        E::Validation(_)
        | E::IdempotencyKeyReused
        | E::RefundExceedsCaptured { .. }
        | E::CardData => StatusCode::UNPROCESSABLE_ENTITY,
        E::PaymentNotFound | E::RefundNotFound | E::ApprovalNotFound => StatusCode::NOT_FOUND,
        E::Forbidden | E::SecondPersonRequired | E::NeedsSecondPerson { .. } | E::ApiRefundsOff => {
            StatusCode::FORBIDDEN
        }
        E::IdempotencyConflict
        | E::NotRefundable
        | E::AlreadyDecided
        | E::AccountNotConfigured(_)
        | E::NotCancellable { .. }
        | E::NotWaiting => StatusCode::CONFLICT,
        E::ProviderUnavailable {
            certain_nothing_happened: true,
            ..
        } => StatusCode::SERVICE_UNAVAILABLE,
        E::ProviderUnavailable { .. } | E::ProviderRejected { .. } => StatusCode::BAD_GATEWAY,
        E::Store(store) => match StorageFailure::of(store) {
            StorageFailure::CardData => StatusCode::UNPROCESSABLE_ENTITY,
            StorageFailure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            StorageFailure::Other => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}
