//! A provider's news about a payment (from a signed webhook), reduced to what Counterfoil keeps.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::card_guard::contains_card_number;

use super::{decide_transition, PaymentStatus, TransitionDecision};

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

/// What a provider event held that reads as a card number and was withheld from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Withheld {
    /// The names of the fields withheld (never their values).
    pub fields: Vec<&'static str>,
    /// The provider's payment id was one of them: the event cannot be matched to a payment.
    pub payment_id: bool,
}

impl ProviderEvent {
    /// Makes the event safe to keep when a field of it reads as a card number, so that the guard
    /// never costs a payment: the message id (needed only to spot the provider's retries) becomes
    /// a hash of itself, the same on every retry; an event name, failure code or our id that
    /// reads as one is dropped. A provider payment id that reads as one is reported (the payment
    /// is then settled by polling and reconciliation, which know it by our id). Providers mint
    /// their ids themselves, so this is a safeguard for ids that hold long runs of digits by
    /// chance, never a place card data is expected.
    pub fn withhold_card_numbers(&mut self) -> Withheld {
        let mut withheld = Withheld::default();
        if contains_card_number(&self.message_id) {
            self.message_id = hashed_id(&self.message_id);
            withheld.fields.push("message id (kept as a hash)");
        }
        if contains_card_number(&self.event_type) {
            self.event_type = "withheld".into();
            withheld.fields.push("event type");
        }
        if self
            .failure_code
            .as_deref()
            .is_some_and(contains_card_number)
        {
            self.failure_code = None;
            withheld.fields.push("failure code");
        }
        if self
            .counterfoil_id
            .as_deref()
            .is_some_and(contains_card_number)
        {
            self.counterfoil_id = None;
            withheld.fields.push("payment reference");
        }
        if contains_card_number(&self.provider_payment_id) {
            withheld.fields.push("provider payment id");
            withheld.payment_id = true;
        }
        withheld
    }
}

/// A provider id kept only as its SHA-256 (for spotting retries, where the raw id is not needed).
pub fn hashed_id(raw: &str) -> String {
    format!("sha256-{}", hex::encode(Sha256::digest(raw.as_bytes())))
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

/// When an event happened, for the payment's timeline and the finance day: the provider's own
/// time (a retried webhook can arrive hours later), kept within sense: not before the payment
/// existed, not after we heard of it; when we heard of it if the provider gave no time.
pub fn happened_at(
    occurred_at: Option<DateTime<Utc>>,
    payment_created_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    occurred_at
        .map(|t| t.max(payment_created_at).min(received_at))
        .unwrap_or(received_at)
}

/// Events that arrived before the payment was known, replayed in the order they happened from
/// the payment's `start` status: for each, the move it makes (`None` for old news), each move
/// starting where the one before it ended.
pub fn replay_in_order(
    start: PaymentStatus,
    reported: &[Option<PaymentStatus>],
) -> Vec<Option<(PaymentStatus, PaymentStatus)>> {
    let mut status = start;
    reported
        .iter()
        .map(
            |reported| match reported.map(|r| decide_transition(status, r)) {
                Some(TransitionDecision::Apply { from, to }) => {
                    status = to;
                    Some((from, to))
                }
                _ => None,
            },
        )
        .collect()
}

/// Why a webhook was not accepted. None of these carries any part of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("no signature header")]
    MissingSignature,
    #[error("the signature does not match any configured secret")]
    BadSignature,
    #[error("the signed timestamp is outside the tolerance")]
    StaleTimestamp,
    /// Names what was wrong (a field, never its value).
    #[error("the signed body is not a webhook message: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
    }

    #[test]
    fn an_event_is_dated_by_the_provider_within_the_payments_life() {
        assert_eq!(happened_at(Some(at(10)), at(9), at(12)), at(10));
        assert_eq!(
            happened_at(Some(at(8)), at(9), at(12)),
            at(9),
            "not before it existed"
        );
        assert_eq!(
            happened_at(Some(at(13)), at(9), at(12)),
            at(12),
            "not after we heard"
        );
        assert_eq!(happened_at(None, at(9), at(12)), at(12));
    }

    #[test]
    fn orphans_replay_forward_only_each_from_where_the_last_ended() {
        use PaymentStatus::*;
        let moves = replay_in_order(
            Created,
            &[
                Some(InProgress),
                None,
                Some(Created),
                Some(Succeeded),
                Some(Failed),
            ],
        );
        assert_eq!(
            moves,
            vec![
                Some((Created, InProgress)),
                None,
                None,
                Some((InProgress, Succeeded)),
                None
            ]
        );
    }
}
