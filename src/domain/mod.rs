//! The domain: money, references, the payment state machine, API keys and the card-number guard.
//! Plain Rust with no I/O; everything else may depend on it, it depends on nothing of ours.

pub mod actor;
pub mod api_key;
pub mod approval;
pub mod attention;
pub mod audit;
pub mod card_guard;
pub mod dates;
pub mod event;
pub mod idempotency;
pub mod income;
pub mod ledger;
pub mod money;
pub mod named;
pub mod notification;
pub mod payment;
pub mod payout;
pub mod provider_view;
pub mod queries;
pub mod reconciliation;
pub mod refs;
pub mod refund;
pub mod resolution;
pub mod retention;
pub mod staff;
pub mod standard_webhooks;

pub use actor::Actor;
pub use event::{happened_at, replay_in_order, EventOutcome, ProviderEvent};
pub use money::AmountPence;
pub use payment::{
    decide_transition, notification_type, CreateOutcome, NewPayment, Payment, PaymentEvent,
    PaymentStatus, ProviderKind, TransitionDecision, TransitionSource,
};
pub use refs::{
    Description, Email, FieldError, IdempotencyKey, Metadata, PaymentId, RequestRef, ReturnUrl,
    ServiceCode,
};
