//! Refunds waiting for a second person: asked for in the console, approved or declined by another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::PaymentId;

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
    type Err = crate::domain::payment::UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Waiting, Self::Approved, Self::Declined]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(crate::domain::payment::UnknownStatus)
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
}

/// A decision on a waiting refund.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalDecision<'a> {
    pub id: &'a str,
    pub status: ApprovalStatus,
    pub decided_by: &'a str,
    pub decided_by_label: &'a str,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ApprovalStore: Send + Sync + 'static {
    /// Records a waiting refund with its audit entry; false (and nothing written) when one with
    /// this id exists already: the same form sent twice.
    async fn insert_refund_approval(
        &self,
        approval: &RefundApproval,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    async fn get_refund_approval(&self, id: &str) -> Result<Option<RefundApproval>, StoreError>;

    /// Refunds waiting for a second person, oldest first.
    async fn waiting_refund_approvals(&self, limit: u32)
        -> Result<Vec<RefundApproval>, StoreError>;

    /// A payment's approvals, oldest first.
    async fn refund_approvals_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<RefundApproval>, StoreError>;

    /// Moves a waiting refund to approved or declined, with its audit entry (compare-and-set):
    /// false when it was no longer waiting, and nothing is written.
    async fn decide_refund_approval(
        &self,
        decision: &ApprovalDecision<'_>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Notes the refund an approval made.
    async fn link_refund_approval(&self, id: &str, refund_id: &str) -> Result<(), StoreError>;
}
