//! The payment and its state machine: statuses only move forward and a final status never changes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::money::AmountPence;
use super::refs::{Description, Email, Metadata, PaymentId, RequestRef, ReturnUrl, ServiceCode};

/// Where a payment is in its life. The last five are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Created,
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
    Error,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        Self::Created,
        Self::InProgress,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Error => "error",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Created | Self::InProgress)
    }

    /// Position in the forward-only order: created < in_progress < any final status.
    fn rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::InProgress => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status")]
pub struct UnknownStatus;

impl FromStr for PaymentStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// Who told us about a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionSource {
    Api,
    Webhook,
    Poll,
    Reconciliation,
}

impl TransitionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Webhook => "webhook",
            Self::Poll => "poll",
            Self::Reconciliation => "reconciliation",
        }
    }
}

impl FromStr for TransitionSource {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Api, Self::Webhook, Self::Poll, Self::Reconciliation]
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// What the state machine says about a reported status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionDecision {
    /// Move from the current status to the reported one.
    Apply {
        from: PaymentStatus,
        to: PaymentStatus,
    },
    /// Nothing to do: the same status again, an older status arriving late, or any change to a
    /// payment that is already final.
    Ignore,
}

/// The one rule for every source (API refresh, webhook, poll, reconciliation): forward only,
/// and a final status is for ever.
pub fn decide_transition(current: PaymentStatus, reported: PaymentStatus) -> TransitionDecision {
    if current.is_final() || reported.rank() <= current.rank() {
        TransitionDecision::Ignore
    } else {
        TransitionDecision::Apply {
            from: current,
            to: reported,
        }
    }
}

/// The CRM notification a move into `to` causes, if any: every final status, nothing else.
pub fn notification_type(to: PaymentStatus) -> Option<&'static str> {
    match to {
        PaymentStatus::Succeeded => Some("payment.succeeded"),
        PaymentStatus::Failed => Some("payment.failed"),
        PaymentStatus::Cancelled => Some("payment.cancelled"),
        PaymentStatus::Expired => Some("payment.expired"),
        PaymentStatus::Error => Some("payment.error"),
        PaymentStatus::Created | PaymentStatus::InProgress => None,
    }
}

/// Whether the provider has confirmed that it created the payment.
///
/// GOV.UK Pay has no idempotency for card payments, so a create whose answer was lost is never
/// retried blindly: it stays `Unknown` until it is resolved against the provider's own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The call to the provider is being made now.
    Pending,
    /// The provider answered with its payment id.
    Confirmed,
    /// The call may or may not have created a payment (timeout, 5xx, crash mid-call).
    Unknown,
    /// The provider certainly did not create it (refused, or could not be reached at all).
    NotCreated,
}

impl CreateOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Unknown => "unknown",
            Self::NotCreated => "not_created",
        }
    }
}

impl FromStr for CreateOutcome {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Pending,
            Self::Confirmed,
            Self::Unknown,
            Self::NotCreated,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or(UnknownStatus)
    }
}

/// Which provider handles a payment, and which one an account in the configuration is with
/// (`govuk_pay` or `stripe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    GovukPay,
    Stripe,
}

impl ProviderKind {
    /// Where this provider sends citizens to pay, when an account names no hosts.
    pub fn default_redirect_hosts(self) -> &'static [&'static str] {
        match self {
            Self::GovukPay => &["card.payments.service.gov.uk"],
            Self::Stripe => &["checkout.stripe.com"],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GovukPay => "govuk_pay",
            Self::Stripe => "stripe",
        }
    }

    /// This provider's segment of its webhook URL (`/v1/webhooks/{segment}/{account}`).
    pub fn webhook_segment(self) -> &'static str {
        match self {
            Self::GovukPay => "govuk-pay",
            Self::Stripe => "stripe",
        }
    }

    /// The provider named by a webhook URL's segment.
    pub fn from_webhook_segment(segment: &str) -> Option<Self> {
        [Self::GovukPay, Self::Stripe]
            .into_iter()
            .find(|kind| kind.webhook_segment() == segment)
    }
}

impl FromStr for ProviderKind {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "govuk_pay" => Ok(Self::GovukPay),
            "stripe" => Ok(Self::Stripe),
            _ => Err(UnknownStatus),
        }
    }
}

/// A validated request for a new hosted payment.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub request_ref: RequestRef,
    pub service: ServiceCode,
    pub amount: AmountPence,
    pub description: Description,
    pub return_url: ReturnUrl,
    pub email: Option<Email>,
    pub metadata: Metadata,
}

/// A payment as Counterfoil keeps it: references and status only, never card data.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub id: PaymentId,
    pub request_ref: String,
    pub service: String,
    pub account: String,
    pub provider: ProviderKind,
    pub amount: i64,
    pub description: String,
    pub email: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub return_url: String,
    pub status: PaymentStatus,
    pub create_outcome: CreateOutcome,
    pub provider_payment_id: Option<String>,
    pub next_url: Option<String>,
    /// The provider's failure code (e.g. GOV.UK Pay `P0010`) or our own reason, when not succeeded.
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The sum of this payment's succeeded refunds, in pence.
    pub refunded_amount: i64,
}

impl Payment {
    /// The URL to send the citizen to, while it still makes sense to go there.
    pub fn live_next_url(&self) -> Option<&str> {
        if self.status.is_final() {
            None
        } else {
            self.next_url.as_deref()
        }
    }
}

/// One recorded status change, for the payment's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentEvent {
    pub payment_id: PaymentId,
    pub at: DateTime<Utc>,
    pub from: Option<PaymentStatus>,
    pub to: PaymentStatus,
    pub source: TransitionSource,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use PaymentStatus::*;

    /// Folds reported statuses through the state machine, counting applied moves into each status.
    fn replay(
        start: PaymentStatus,
        reports: &[PaymentStatus],
    ) -> (PaymentStatus, Vec<PaymentStatus>) {
        let mut status = start;
        let mut reached = Vec::new();
        for &reported in reports {
            if let TransitionDecision::Apply { to, .. } = decide_transition(status, reported) {
                status = to;
                reached.push(to);
            }
        }
        (status, reached)
    }

    /// A valid life of a payment: created, maybe in progress, then one final status.
    fn valid_sequence() -> impl Strategy<Value = Vec<PaymentStatus>> {
        (
            any::<bool>(),
            prop::sample::select(vec![Succeeded, Failed, Cancelled, Expired, Error]),
        )
            .prop_map(|(started, last)| {
                let mut events = vec![Created];
                if started {
                    events.push(InProgress);
                }
                events.push(last);
                events
            })
    }

    /// A valid sequence, and the same events in any order with any number of duplicates.
    fn shuffled_with_duplicates() -> impl Strategy<Value = (Vec<PaymentStatus>, Vec<PaymentStatus>)>
    {
        valid_sequence().prop_flat_map(|events| {
            let extra = prop::collection::vec(prop::sample::select(events.clone()), 0..8);
            (Just(events), extra).prop_flat_map(|(events, extra)| {
                let mut delivered = events.clone();
                delivered.extend(extra);
                (Just(events), Just(delivered).prop_shuffle())
            })
        })
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_ends_in_the_same_final_status_once(
            (events, delivered) in shuffled_with_duplicates()
        ) {
            let (in_order, _) = replay(Created, &events);
            let (status, reached) = replay(Created, &delivered);
            prop_assert_eq!(status, in_order);
            prop_assert_eq!(Some(&status), events.last());
            for target in &reached {
                prop_assert_eq!(reached.iter().filter(|s| *s == target).count(), 1);
                prop_assert!(events.contains(target));
            }
            prop_assert_eq!(reached.last(), Some(&status));
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse::<PaymentStatus>().unwrap(), status);
        }
        assert!("success".parse::<PaymentStatus>().is_err());
    }

    #[test]
    fn moves_forward() {
        assert_eq!(
            decide_transition(Created, InProgress),
            TransitionDecision::Apply {
                from: Created,
                to: InProgress
            }
        );
        assert_eq!(
            decide_transition(Created, Succeeded),
            TransitionDecision::Apply {
                from: Created,
                to: Succeeded
            }
        );
        assert_eq!(
            decide_transition(InProgress, Expired),
            TransitionDecision::Apply {
                from: InProgress,
                to: Expired
            }
        );
    }

    #[test]
    fn never_moves_back_or_sideways() {
        assert_eq!(
            decide_transition(InProgress, Created),
            TransitionDecision::Ignore
        );
        assert_eq!(
            decide_transition(InProgress, InProgress),
            TransitionDecision::Ignore
        );
        for final_status in PaymentStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for reported in PaymentStatus::ALL {
                assert_eq!(
                    decide_transition(final_status, reported),
                    TransitionDecision::Ignore,
                    "{final_status} must not become {reported}"
                );
            }
        }
    }
}
