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
}

#[async_trait]
pub trait RefundStore: Send + Sync + 'static {
    /// Claims the Idempotency-Key and, when the payment has succeeded and the refund fits in what
    /// is left (every refund not failed counts), writes the refund and its audit entry, all in one
    /// transaction that holds the payment's row: concurrent refunds are decided one at a time.
    async fn claim_and_insert_refund(
        &self,
        claim: &IdempotencyClaim,
        refund: &Refund,
        audit: &AuditEntry,
    ) -> Result<RefundClaim, StoreError>;

    /// Records the provider's answer to a refund request (and its effects: the payment's
    /// refunded amount, the CRM notification) and settles the Idempotency-Key, in one transaction.
    async fn settle_refund(
        &self,
        refund: &Refund,
        previous: RefundStatus,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
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
