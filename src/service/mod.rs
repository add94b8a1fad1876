//! Services: the use cases (create, read, cancel and list payments; manage API keys), each one
//! validated input → provider and store calls → result. No HTTP types here.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::api_key::Role;
use crate::domain::FieldError;
use crate::providers::ProviderError;
use crate::store::StoreError;

pub mod attention;
pub mod audit;
pub mod compliance;
pub mod data_protection;
pub mod group_commit;
pub mod income;
pub mod keys;
pub mod ledger;
pub mod notifications;
pub mod payments;
pub mod payouts;
pub mod read_ahead;
pub mod reconciliation;
pub mod refunds;
pub mod staff_refunds;
pub mod staff_sessions;
pub mod webhooks;

pub use keys::KeyService;
pub use payments::PaymentService;
pub use webhooks::WebhookService;

/// Where "now" comes from, so tests can move time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time, truncated to microseconds so it round-trips through both databases unchanged.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// Who is calling: an authenticated API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    pub label: String,
}

impl Principal {
    /// Whether this caller may act in one of `roles` (`admin` may act in every role).
    pub fn allowed(&self, roles: &[Role]) -> bool {
        self.role == Role::Admin || roles.contains(&self.role)
    }

    /// The key as the one who acts.
    pub fn actor(&self) -> crate::domain::Actor {
        crate::domain::Actor::Key {
            id: self.key_id.clone(),
            role: self.role,
            label: self.label.clone(),
        }
    }
}

/// One refused input field (or header, or query parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub field: String,
    pub error: FieldError,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, error: FieldError) -> Self {
        Self {
            field: field.into(),
            error,
        }
    }
}

/// What a failed provider call means for something we asked it to create (a payment, a refund).
pub(crate) struct CreateFailure {
    pub outcome: crate::domain::CreateOutcome,
    pub failure_code: Option<String>,
    pub settle: crate::store::IdempotencySettle,
}

/// A refusal or an unreachable provider certainly made nothing; a timeout or a 5xx may have. Only
/// when nothing was sent at all is the Idempotency-Key freed, so the caller can simply retry.
pub(crate) fn create_failure(error: &ProviderError) -> CreateFailure {
    use crate::domain::CreateOutcome::{NotCreated, Unknown};
    use crate::store::IdempotencySettle::{Linked, Release};
    let (outcome, code, settle) = match error {
        ProviderError::Unreachable(_) => {
            (NotCreated, Some("provider_unreachable".to_owned()), Release)
        }
        ProviderError::Rejected { code, .. } | ProviderError::Conflict { code } => (
            NotCreated,
            Some(code.clone().unwrap_or_else(|| "provider_rejected".into())),
            Linked,
        ),
        ProviderError::NotFound => (NotCreated, Some("not_found_at_provider".to_owned()), Linked),
        // Our own guard kept the request in: certainly nothing was sent.
        ProviderError::CardData => (NotCreated, Some("card_data_rejected".to_owned()), Release),
        ProviderError::Unavailable(_) | ProviderError::InvalidResponse(_) => {
            (Unknown, None, Linked)
        }
    };
    CreateFailure {
        outcome,
        failure_code: code,
        settle,
    }
}

/// How a storage failure reads to whoever asked: the edges answer by this, never by the store's
/// own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// A value held a card number: nothing was written, and retrying will not help.
    CardData,
    /// The database could not be reached in time: nothing was changed; worth retrying.
    Unavailable,
    /// Anything else: our fault.
    Other,
}

impl StorageFailure {
    pub fn of(error: &crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::CardData => Self::CardData,
            StoreError::Unavailable(_) => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the request is not valid")]
    Validation(Vec<FieldIssue>),
    #[error("no such payment")]
    PaymentNotFound,
    #[error("this key may not do that")]
    Forbidden,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyConflict,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("the payment has not succeeded, so there is nothing to refund")]
    NotRefundable,
    #[error("the refund is more than is left to refund")]
    RefundExceedsCaptured { available: i64 },
    #[error("no such refund")]
    RefundNotFound,
    #[error("no such refund waiting for approval")]
    ApprovalNotFound,
    /// The two-person rule: the requester of a refund cannot approve it.
    #[error("a second person must approve this refund")]
    SecondPersonRequired,
    #[error("this refund has already been approved or declined")]
    AlreadyDecided,
    /// The two-person rule: what the requester would have refunded alone is over the threshold.
    #[error("this refund needs a second person's approval")]
    NeedsSecondPerson { threshold: i64 },
    /// The payment's provider account is no longer configured: nothing can be asked of it.
    #[error("{0}")]
    AccountNotConfigured(#[from] crate::providers::AccountNotConfigured),
    /// Refunds by API key are switched off (the console's two-person rule applies instead).
    #[error("refunds by API key are switched off")]
    ApiRefundsOff,
    #[error("the payment can no longer be cancelled")]
    NotCancellable { reason: &'static str },
    /// The provider could not be reached or did not answer in time. `certain_nothing_happened`
    /// tells a retry apart from a wait-and-see.
    #[error("the payment provider is unavailable")]
    ProviderUnavailable {
        payment_id: Option<String>,
        certain_nothing_happened: bool,
    },
    #[error("the payment provider refused the request")]
    ProviderRejected {
        payment_id: Option<String>,
        code: Option<String>,
    },
    /// Something to be sent held a card number: it was not sent.
    #[error("the request held a card number")]
    CardData,
    /// What a person acted on no longer needs them (someone else dealt with it, or it healed).
    #[error("this no longer needs anyone")]
    NotWaiting,
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl ServiceError {
    pub(crate) fn from_provider(error: &ProviderError, payment_id: Option<String>) -> Self {
        match error {
            ProviderError::CardData => ServiceError::CardData,
            ProviderError::Rejected { code, .. } | ProviderError::Conflict { code } => {
                ServiceError::ProviderRejected {
                    payment_id,
                    code: code.clone(),
                }
            }
            ProviderError::Unreachable(_) => ServiceError::ProviderUnavailable {
                payment_id,
                certain_nothing_happened: true,
            },
            ProviderError::NotFound
            | ProviderError::Unavailable(_)
            | ProviderError::InvalidResponse(_) => ServiceError::ProviderUnavailable {
                payment_id,
                certain_nothing_happened: false,
            },
        }
    }
}

/// Everything the HTTP layer (and the CLI) needs, built once by `startup`.
#[derive(Clone)]
pub struct AppServices {
    pub payments: Arc<PaymentService>,
    pub reconciliation: Arc<reconciliation::ReconciliationService>,
    pub ledger: Arc<ledger::LedgerService>,
    pub income: Arc<income::IncomeService>,
    pub payouts: Arc<payouts::PayoutService>,
    pub refunds: Arc<refunds::RefundService>,
    pub staff_refunds: Arc<staff_refunds::StaffRefundService>,
    pub staff_sessions: Arc<staff_sessions::StaffSessionService>,
    pub notifications: Arc<notifications::NotificationService>,
    pub attention: Arc<attention::AttentionService>,
    pub webhooks: Arc<WebhookService>,
    pub keys: Arc<KeyService>,
    pub audit: Arc<audit::AuditService>,
    pub data_protection: Arc<data_protection::DataProtectionService>,
    pub store: Arc<dyn crate::store::Store>,
    pub metrics: Arc<crate::metrics::Metrics>,
}
