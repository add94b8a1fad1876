//! A refund that needs (or needed) a second person: who asked, where it stands, who decided and why.

use chrono::{DateTime, Utc};

use super::PaymentId;

/// Where a refund waiting for a second person stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Waiting,
    Approved,
    Declined,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Approved => "approved",
            Self::Declined => "declined",
        }
    }
}

impl std::str::FromStr for ApprovalStatus {
    type Err = super::payment::UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Waiting, Self::Approved, Self::Declined]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(super::payment::UnknownStatus)
    }
}

/// A refund asked for in the console that needs (or needed) a second person.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundApproval {
    pub id: String,
    pub payment_id: PaymentId,
    pub amount: i64,
    pub reason: String,
    pub requested_by: String,
    pub requested_by_label: String,
    pub requested_at: DateTime<Utc>,
    pub status: ApprovalStatus,
    pub decided_by: Option<String>,
    pub decided_by_label: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The refund made once approved.
    pub refund_id: Option<String>,
    /// Why the second person declined it.
    pub decline_reason: Option<String>,
    /// The provider refused the refund an earlier approval sent (its failure code): the
    /// approval is waiting again.
    pub last_failure: Option<String>,
}
