//! Retention and erasure: personal fields pseudonymised, old rows archived as totals and removed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

/// What an erasure changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureCounts {
    pub payments: u64,
    pub refunds: u64,
}

/// A payment due for pseudonymisation, and where it stands in the sweep's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueForErasure {
    pub id: String,
    pub finished_at: DateTime<Utc>,
}

#[async_trait]
pub trait PrivacyStore: Send + Sync + 'static {
    /// Pseudonymises the personal fields of these payments (description, email, metadata values,
    /// return URL; their refunds' reasons) and rewrites their stored idempotent answers to be read
    /// afresh, in one transaction with `audit`. Payments already pseudonymised are left alone.
    async fn erase_payments(
        &self,
        payment_ids: &[String],
        at: DateTime<Utc>,
        audit: Option<&AuditEntry>,
    ) -> Result<ErasureCounts, StoreError>;

    /// Final payments that finished before `before` and still hold personal data, in the order
    /// they finished, from just past `after` (the last of the previous batch): each batch starts
    /// where the last ended instead of re-reading the index past entries it has just erased.
    async fn payments_due_for_erasure(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueForErasure>,
        limit: u32,
    ) -> Result<Vec<DueForErasure>, StoreError>;

    /// How many payments [`Self::payments_due_for_erasure`] and
    /// [`Self::payments_due_for_removal`] would list without a limit: counted by the database,
    /// not read (the sweep's dry run).
    async fn count_due(
        &self,
        erasure_before: DateTime<Utc>,
        removal_cutoff: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError>;

    /// Pseudonymises the reasons of refunds that finished before `before` (those asked for after
    /// their payment was pseudonymised). How many.
    async fn erase_refund_reasons(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Payments whose creation, completion and refunds all fall before `cutoff`.
    async fn payments_due_for_removal(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// The succeeded payments and refunds among these payments, as money movements.
    async fn money_movements(
        &self,
        payment_ids: &[String],
    ) -> Result<Vec<crate::domain::retention::Movement>, StoreError>;

    /// Adds `totals` to the kept daily totals and deletes the payments with their events,
    /// refunds, receipts, notifications and idempotency keys, in one transaction with `audit`.
    async fn archive_and_remove(
        &self,
        payment_ids: &[String],
        totals: &[DailyTotal],
        audit: &AuditEntry,
    ) -> Result<u64, StoreError>;

    /// Kept daily totals for days in [from, to] (`YYYY-MM-DD`).
    async fn archived_totals(
        &self,
        from: &str,
        to: &str,
        service: Option<&str>,
    ) -> Result<Vec<DailyTotal>, StoreError>;
}
