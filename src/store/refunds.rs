//! Refunds: requested under an idempotency key, settled by the provider's answer, refreshed until final.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::refund::{Refund, RefundStatus};
use crate::domain::PaymentId;

/// What claiming a refund found.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundClaim {
    /// The refund row (and its audit entry) is written: go ahead and ask the provider.
    /// `available` is what was refundable before this refund.
    Claimed { available: i64 },
    /// The payment has not succeeded (nothing was taken to give back).
    NotRefundable,
    /// More than is left to refund; `available` is what is.
    Exceeds { available: i64 },
    /// The Idempotency-Key was seen before.
    Existing(ClaimOutcome),
    /// What the requester would then have refunded alone is over their allowance: nothing is
    /// written, and the refund must wait for a second person.
    NeedsSecondPerson,
    /// The approval being acted on was no longer waiting (someone else decided it first).
    AlreadyDecided,
}

/// The two-person rule as the store applies it, inside the transaction that holds the payment.
#[derive(Debug, Clone, Copy)]
pub struct SoloCheck<'a> {
    /// Whose refunds count (the requester's actor id).
    pub requester: &'a str,
    pub allowance: crate::domain::staff::SoloAllowance,
    /// Where "today" starts (London midnight), for the daily limit.
    pub day_start: DateTime<Utc>,
}

#[async_trait]
pub trait RefundStore: Send + Sync + 'static {
    /// Claims the Idempotency-Key and, when the payment has succeeded, the refund fits in what
    /// is left (every refund not failed and every refund waiting for a second person counts) and
    /// the requester's `solo` allowance is not exceeded, writes the refund and its audit entry,
    /// all in one transaction that holds the payment's row: concurrent refunds are decided one
    /// at a time.
    async fn claim_and_insert_refund(
        &self,
        claim: &IdempotencyClaim,
        refund: &Refund,
        solo: Option<&SoloCheck<'_>>,
        audit: &AuditEntry,
    ) -> Result<RefundClaim, StoreError>;

    /// A second person's approval and the refund it sends, as one outcome: moves the waiting
    /// approval to approved (compare-and-set) and writes the refund (which must still fit) with
    /// the audit entry, in one transaction that holds the payment's row.
    async fn approve_and_insert_refund(
        &self,
        decision: &ApprovalDecision<'_>,
        refund: &Refund,
        audit: &AuditEntry,
    ) -> Result<RefundClaim, StoreError>;

    /// Records the provider's answer to a refund request (and its effects: the payment's
    /// refunded amount, the CRM notification) and settles the Idempotency-Key, in one transaction.
    /// A refund the provider certainly did not make, sent on an approval, puts the approval back
    /// to waiting (with `reopened`, its audit entry) so that it can be approved again.
    async fn settle_refund(
        &self,
        refund: &Refund,
        previous: RefundStatus,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
        reopened: Option<&AuditEntry>,
    ) -> Result<bool, StoreError>;

    /// Moves a refund from `from` to `to` (compare-and-set), with its effects.
    async fn record_refund_status(
        &self,
        refund_id: &str,
        from: RefundStatus,
        to: RefundStatus,
        provider_status: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn get_refund(&self, id: &str) -> Result<Option<Refund>, StoreError>;

    /// A payment's refunds, oldest first.
    async fn list_refunds(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError>;

    /// Refunds the provider has not finished with (pending, or failed recently enough to re-check).
    async fn open_refunds(
        &self,
        failed_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError>;
}
