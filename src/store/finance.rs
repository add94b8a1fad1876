//! What finance reads and records: the ledger and reconciliation runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::Payment;

/// One line of the ledger: a succeeded payment, or a succeeded refund (negative).
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerLine {
    /// When the money moved (the payment or refund succeeded), UTC.
    pub at: DateTime<Utc>,
    /// `payment` or `refund`.
    pub kind: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    /// The line's own id (the refund's, or the payment's), for ordering and paging.
    pub line_id: String,
    pub request_ref: String,
    pub service: String,
    /// Pence; refunds are negative.
    pub amount: i64,
    pub description: String,
    pub provider: String,
    pub provider_reference: Option<String>,
}

/// A reconciliation run against one provider account's records for a period.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationRun {
    pub id: String,
    pub account: String,
    pub period_from: DateTime<Utc>,
    pub period_to: DateTime<Utc>,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub provider_payments: i32,
    pub provider_refunds: i32,
    pub local_payments: i32,
    pub error: Option<String>,
}

/// One difference a run found between our records and the provider's.
#[derive(Debug, Clone, PartialEq)]
pub struct Discrepancy {
    /// `missing_locally`, `missing_at_provider`, `amount_mismatch`, `status_mismatch`, `refund_mismatch`.
    pub kind: String,
    pub payment_id: Option<String>,
    pub provider_payment_id: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    /// The provider was authoritative and the run brought our record in line.
    pub healed: bool,
    pub note: String,
}

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

#[async_trait]
pub trait FinanceStore: Send + Sync + 'static {
    /// Up to `limit` ledger lines with `start <= at < end`, ordered by (at, line id), after `after`.
    async fn ledger_page(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        service: Option<&str>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<LedgerLine>, StoreError>;

    /// Payments of `account` created in [from, to), oldest first.
    async fn payments_created_between(
        &self,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Payment>, StoreError>;

    /// Records a run as started, with its audit entry.
    async fn insert_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// Records how a run ended and what it found.
    async fn finish_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        discrepancies: &[Discrepancy],
    ) -> Result<(), StoreError>;

    async fn get_reconciliation_run(
        &self,
        id: &str,
    ) -> Result<Option<(ReconciliationRun, Vec<Discrepancy>)>, StoreError>;
}
