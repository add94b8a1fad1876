//! Refunds waiting for a second person: asked for in the console, approved or declined by another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::PaymentId;

pub use crate::domain::approval::{ApprovalStatus, RefundApproval};
pub use crate::domain::queries::RegisterQuery;

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
