//! A provider's news about a payment (from a signed webhook), reduced to what Counterfoil keeps.

use chrono::{DateTime, Utc};

use super::PaymentStatus;

/// One provider notification, provider-neutral. Built only from allow-listed fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// The provider's id for this message: the same across its retries, so it is the dedupe key.
    pub message_id: String,
    /// The provider's event name, kept as-is (the list is open-ended).
    pub event_type: String,
    pub provider_payment_id: String,
    /// The status the event reports, when it reports one we understand.
    pub reported: Option<PaymentStatus>,
    pub failure_code: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// Our payment id, when the event names it instead of the provider's payment id (Stripe's
    /// charge and refund events carry our id in their metadata, not the Checkout Session's id).
    pub counterfoil_id: Option<String>,
    /// The event says a refund of this payment moved: its open refunds are asked about.
    pub refund_activity: bool,
}

/// What applying a provider event did.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    /// The payment moved `from` → `to`.
    Applied {
        payment_id: super::PaymentId,
        from: PaymentStatus,
        to: PaymentStatus,
    },
    /// Recorded; nothing to change (old news, a final payment, or an event we do not act on).
    Ignored,
    /// The same message was received before: no second effect.
    Duplicate,
    /// No payment of ours has this provider id (yet): kept to be matched later.
    Orphan,
}

impl EventOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Ignored => "ignored",
            Self::Duplicate => "duplicate",
            Self::Orphan => "orphan",
        }
    }
}
