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
    /// Why the second person declined it.
    pub decline_reason: Option<String>,
    /// The provider refused the refund an earlier approval sent (its failure code): the
    /// approval is waiting again.
    pub last_failure: Option<String>,
}

/// What recording a refund that waits for a second person came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalInsert {
    Inserted,
    /// The same form was sent before.
    Existing,
    /// More than is left to refund (refunds not failed and other waiting ones count).
    Exceeds {
        available: i64,
    },
    NotRefundable,
}

/// A decision on a waiting refund.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalDecision<'a> {
    pub id: &'a str,
    pub status: ApprovalStatus,
    pub decided_by: &'a str,
    pub decided_by_label: &'a str,
    pub at: DateTime<Utc>,
    /// Why it was declined (required to decline).
    pub decline_reason: Option<&'a str>,
}

/// Which refunds the register lists: every filter optional, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisterQuery {
    pub payment_id: Option<PaymentId>,
    pub state: Option<crate::domain::refund::RefundState>,
    pub service: Option<String>,
    /// Part of the requester's or approver's name (any case).
    pub requested_by: Option<String>,
    pub decided_by: Option<String>,
    /// When asked for: [from, to).
    pub requested_from: Option<DateTime<Utc>>,
    pub requested_to: Option<DateTime<Utc>>,
    /// Keyset paging: rows before this (requested_at, id).
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: u32,
}

#[async_trait]
pub trait ApprovalStore: Send + Sync + 'static {
    /// Records a waiting refund with its audit entry, in one transaction that holds the payment's
    /// row and checks the amount still fits; nothing is written unless `Inserted`.
    async fn insert_refund_approval(
        &self,
        approval: &RefundApproval,
        audit: &AuditEntry,
    ) -> Result<ApprovalInsert, StoreError>;

    async fn get_refund_approval(&self, id: &str) -> Result<Option<RefundApproval>, StoreError>;

    /// Refunds waiting for a second person, oldest first.
    async fn waiting_refund_approvals(&self, limit: u32)
        -> Result<Vec<RefundApproval>, StoreError>;

    /// A payment's approvals, oldest first.
    async fn refund_approvals_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<RefundApproval>, StoreError>;

    /// Declines a waiting refund, with its audit entry (compare-and-set): false when it was no
    /// longer waiting, and nothing is written. (Approving is
    /// [`RefundStore::approve_and_insert_refund`]: the approval and its refund are one outcome.)
    async fn decline_refund_approval(
        &self,
        decision: &ApprovalDecision<'_>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Refunds sent and refunds waiting for or declined by a second person, as one list.
    async fn refund_register(
        &self,
        query: &RegisterQuery,
    ) -> Result<Vec<crate::domain::refund::RefundRecord>, StoreError>;

    /// A person's own requests that needed a second person, newest first.
    async fn refund_approvals_requested_by(
        &self,
        requested_by: &str,
        limit: u32,
    ) -> Result<Vec<RefundApproval>, StoreError>;
}
