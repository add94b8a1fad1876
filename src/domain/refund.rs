//! Refunds: their statuses and the one rule that matters: never give back more than was taken.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::payment::{CreateOutcome, UnknownStatus};
use super::refs::{FieldError, PaymentId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RefundStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// What may still be refunded: the amount taken less every refund not known to have failed
/// (a pending refund may yet succeed, so it counts).
pub fn refundable_remaining(captured: i64, not_failed_refunds: i64) -> i64 {
    (captured - not_failed_refunds).max(0)
}

/// Why a refund reason was refused. Reasons are for finance staff; 1..255 characters.
pub fn parse_reason(reason: &str) -> Result<String, FieldError> {
    super::refs::Description::parse(reason).map(|d| d.into_inner())
}

/// A refund as Counterfoil keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refund {
    pub id: String,
    pub payment_id: PaymentId,
    pub amount: i64,
    pub status: RefundStatus,
    pub create_outcome: CreateOutcome,
    pub provider_refund_id: Option<String>,
    pub provider_status: Option<String>,
    pub reason: String,
    /// Who asked for it (an API key id, or `staff:<subject>`): never the approver.
    pub requested_by: String,
    pub requested_by_label: String,
    /// The second person who approved it, when the two-person rule needed one.
    pub approved: Option<SecondPerson>,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The second person who approved a refund, and the approval that waited for them.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondPerson {
    pub approval_id: String,
    pub by: String,
    pub by_label: String,
    pub at: DateTime<Utc>,
}

/// Where a refund stands for the people who asked for, approved or watch it: waiting for or
/// declined by a second person, or sent and then pending, succeeded or failed at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundState {
    Waiting,
    Declined,
    Pending,
    Succeeded,
    Failed,
}

impl RefundState {
    pub const ALL: [Self; 5] = [
        Self::Waiting,
        Self::Pending,
        Self::Succeeded,
        Self::Failed,
        Self::Declined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Declined => "declined",
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// How a person reads it.
    pub fn text(self) -> &'static str {
        match self {
            Self::Waiting => "Waiting for approval",
            Self::Declined => "Declined",
            Self::Pending => "Sent, not yet confirmed",
            Self::Succeeded => "Refunded",
            Self::Failed => "Failed",
        }
    }
}

impl FromStr for RefundState {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// One refund as the register and the payment page show it: a refund sent to the provider
/// (asked for by one person, perhaps approved by another), or one still waiting for or declined
/// by a second person.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRecord {
    /// The refund's id once sent, else the approval's.
    pub id: String,
    pub payment_id: PaymentId,
    pub service: String,
    pub request_ref: String,
    pub amount: i64,
    pub state: RefundState,
    pub reason: String,
    pub requested_by: String,
    pub requested_by_label: String,
    pub requested_at: DateTime<Utc>,
    /// Who approved or declined it, and when.
    pub decided_by_label: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<String>,
    /// The provider's failure code (for a waiting approval: why its last attempt failed).
    pub failure: Option<String>,
    /// When it was sent to the provider, and when the provider finished with it.
    pub sent_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a payment's refunds read beside its status: none, part or all of it given back.
pub fn refunded_part(amount: i64, refunded: i64) -> Option<&'static str> {
    match refunded {
        r if r <= 0 => None,
        r if r >= amount => Some("Refunded"),
        _ => Some("Partly refunded"),
    }
}

/// The CRM notification a refund's final status causes.
pub fn refund_notification_type(status: RefundStatus) -> Option<&'static str> {
    match status {
        RefundStatus::Succeeded => Some("refund.succeeded"),
        RefundStatus::Failed => Some("refund.failed"),
        RefundStatus::Pending => None,
    }
}

/// How a refund moving `from` → `to` changes its payment's refunded amount: it counts once it
/// has succeeded, and stops counting if it ever leaves success.
pub fn refunded_amount_change(amount: i64, from: RefundStatus, to: RefundStatus) -> i64 {
    match (from, to) {
        (RefundStatus::Succeeded, RefundStatus::Succeeded) => 0,
        (_, RefundStatus::Succeeded) => amount,
        (RefundStatus::Succeeded, _) => -amount,
        _ => 0,
    }
}

/// The CRM notification a refund's move `from` → `to` causes: one per final status reached.
pub fn refund_notification_on(from: RefundStatus, to: RefundStatus) -> Option<&'static str> {
    refund_notification_type(to).filter(|_| from != to)
}

/// A refund as asked for, parsed: how much and why.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub amount: super::AmountPence,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn remaining_never_goes_negative() {
        assert_eq!(refundable_remaining(2500, 0), 2500);
        assert_eq!(refundable_remaining(2500, 1000), 1500);
        assert_eq!(refundable_remaining(2500, 2600), 0);
    }

    proptest! {
        /// Granting refunds only while they fit never lets their sum exceed the amount taken.
        #[test]
        fn refunds_granted_by_the_rule_never_exceed_the_capture(
            captured in 1i64..=10_000_000,
            requests in prop::collection::vec(1i64..=10_000_000, 0..30),
        ) {
            let mut granted = 0;
            for amount in requests {
                if amount <= refundable_remaining(captured, granted) {
                    granted += amount;
                }
            }
            prop_assert!(granted <= captured);
        }
    }

    #[test]
    fn a_refund_counts_towards_the_refunded_amount_only_while_succeeded() {
        use RefundStatus::*;
        assert_eq!(refunded_amount_change(500, Pending, Succeeded), 500);
        assert_eq!(refunded_amount_change(500, Succeeded, Succeeded), 0);
        assert_eq!(refunded_amount_change(500, Succeeded, Failed), -500);
        assert_eq!(refunded_amount_change(500, Pending, Failed), 0);
    }

    #[test]
    fn a_refund_notifies_once_per_final_status_reached() {
        use RefundStatus::*;
        assert!(refund_notification_on(Pending, Succeeded).is_some());
        assert_eq!(refund_notification_on(Succeeded, Succeeded), None);
        assert_eq!(refund_notification_on(Failed, Failed), None);
    }
}
