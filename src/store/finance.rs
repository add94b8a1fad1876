//! What finance reads and records: the ledger and reconciliation runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::provider_view::{ProviderPayment, ProviderRefundRecord};
use crate::domain::Payment;

pub use crate::domain::ledger::{LedgerLine, LineKind};
pub use crate::domain::reconciliation::{
    Discrepancy, DiscrepancyKind, ReconciliationRun, RunStatus,
};

/// The totals kept for one Europe/London day and service once its payment records are removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyTotal {
    /// `YYYY-MM-DD`, Europe/London.
    pub day: String,
    pub service: String,
    pub payments: i64,
    pub gross_pence: i64,
    pub refunds: i64,
    /// Positive: the pence refunded.
    pub refunds_pence: i64,
}

/// The ledger's lines of one kind, service and day, counted and summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTotal {
    /// Which day: the `n`th of the bounds given to [`FinanceStore::ledger_totals`].
    pub day_index: usize,
    pub kind: LineKind,
    pub service: String,
    pub lines: i64,
    /// Positive for refunds too: the pence refunded.
    pub pence: i64,
}

#[async_trait]
pub trait FinanceStore: Send + Sync + 'static {
    /// The ledger's lines counted and summed per day, kind and service, where day `n` is
    /// `bounds[n] <= at < bounds[n + 1]` (so `bounds` holds one more instant than there are
    /// days), without reading the lines themselves.
    async fn ledger_totals(
        &self,
        bounds: &[DateTime<Utc>],
        service: Option<&str>,
    ) -> Result<Vec<LedgerTotal>, StoreError>;

    /// Up to `limit` ledger lines with `start <= at < end`, ordered by (at, line id), after `after`.
    async fn ledger_page(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        service: Option<&str>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<LedgerLine>, StoreError>;

    /// How many payments of `account` were created in [from, to).
    async fn count_payments_created(
        &self,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Records a run as started, with its audit entry; a run left `running` for a day (its process
    /// died) is recorded as failed and its staging removed.
    async fn insert_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// Records what a run found so far (a run records its findings as it goes, chunk by chunk).
    async fn record_discrepancies(
        &self,
        run_id: &str,
        discrepancies: &[Discrepancy],
    ) -> Result<(), StoreError>;

    /// Records how a run ended, and removes what it staged.
    async fn finish_reconciliation_run(&self, run: &ReconciliationRun) -> Result<(), StoreError>;

    /// Holds one page of the provider's search for a running reconciliation: only the fields a
    /// comparison reads, kept until the run finishes, so a run's memory does not grow with its
    /// period.
    async fn stage_provider_payments(
        &self,
        run_id: &str,
        page: &[ProviderPayment],
    ) -> Result<(), StoreError>;

    /// As [`stage_provider_payments`](Self::stage_provider_payments), for refunds.
    async fn stage_provider_refunds(
        &self,
        run_id: &str,
        page: &[ProviderRefundRecord],
    ) -> Result<(), StoreError>;

    /// Up to `limit` of the run's staged provider payments after provider id `after`, in provider
    /// id order, each with the payment of `account` that carries that provider id, if any.
    async fn staged_provider_payments(
        &self,
        run_id: &str,
        account: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(ProviderPayment, Option<Payment>)>, StoreError>;

    /// Up to `limit` payments of `account` created in [from, to) and confirmed at the provider
    /// that the run's staged provider payments do not list, ordered by (created_at, id), after
    /// `after`.
    async fn payments_unlisted_by_provider(
        &self,
        run_id: &str,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;

    /// The run's staged provider refunds of up to `limit` provider payments after provider id
    /// `after`, ordered by (provider payment id, provider refund id): a payment's refunds are
    /// never split between two calls.
    async fn staged_provider_refunds(
        &self,
        run_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ProviderRefundRecord>, StoreError>;

    async fn get_reconciliation_run(
        &self,
        id: &str,
    ) -> Result<Option<(ReconciliationRun, Vec<Discrepancy>)>, StoreError>;
}
