//! Reconciliation runs as people follow them: newest first with what each found, a run's
//! progress while it reads the provider, and its discrepancies a page at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::reconciliation::{Discrepancy, ReconciliationRun, RunTally};

#[async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Up to `limit` runs started before `before` (started_at, id), newest first, each with what
    /// it found.
    async fn reconciliation_runs_page(
        &self,
        before: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<(ReconciliationRun, RunTally)>, StoreError>;

    /// One run and what it found.
    async fn reconciliation_run(
        &self,
        id: &str,
    ) -> Result<Option<(ReconciliationRun, RunTally)>, StoreError>;

    /// Up to `limit` of a run's discrepancies after number `after`, in the order found, each with
    /// a person's resolution if there is one.
    async fn discrepancies_page(
        &self,
        run_id: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Discrepancy>, StoreError>;

    /// How much of the provider's records a running run has read so far.
    async fn note_reconciliation_progress(
        &self,
        run_id: &str,
        provider_payments: i32,
        provider_refunds: i32,
    ) -> Result<(), StoreError>;
}
