//! Income batches: what is not yet in one, building one (frozen), posting it, and month-end locks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::income::{PostingRow, PostingSource};

pub use crate::domain::income::batch::{
    BatchStatus, IncomeBatch, LineElsewhere, LockedPeriod, PeriodFundTotal, PostRecord,
};

#[async_trait]
pub trait IncomeStore: Send + Sync + 'static {
    /// The account's most recent batch (highest number), if it has one.
    async fn latest_batch(&self, account: &str) -> Result<Option<IncomeBatch>, StoreError>;

    /// The account's succeeded payments and refunds with `start <= at < end` that are in no
    /// batch yet, ordered by (at, line id).
    async fn unbatched_sources(
        &self,
        account: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<PostingSource>, StoreError>;

    /// Stores a built batch and its rows in one transaction. `Ok(false)`: another server built
    /// this account's batch for that day (or number) first, or took one of its rows into its own;
    /// nothing was written.
    async fn insert_batch(
        &self,
        batch: &IncomeBatch,
        rows: &[PostingRow],
    ) -> Result<bool, StoreError>;

    /// Up to `limit` batches, latest day first (accounts in reverse order within a day), after
    /// `(day, account)`.
    async fn batches_page(
        &self,
        before: Option<(chrono::NaiveDate, String)>,
        limit: u32,
    ) -> Result<Vec<IncomeBatch>, StoreError>;

    async fn get_batch(&self, id: &str) -> Result<Option<IncomeBatch>, StoreError>;

    /// The batch's rows in line order.
    async fn batch_rows(&self, id: &str) -> Result<Vec<PostingRow>, StoreError>;

    /// Takes one batch that is due to be pushed (ready, its next attempt due) until `until`,
    /// skipping any another server holds; committed before this returns.
    async fn lease_batch_to_post(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<IncomeBatch>, StoreError>;

    /// Records how a post went; with `audit`, in the same transaction (a person's act). A posted
    /// batch is never recorded as anything else (`Ok(false)`).
    async fn record_post(
        &self,
        id: &str,
        record: &PostRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError>;

    async fn locked_periods(&self) -> Result<Vec<LockedPeriod>, StoreError>;

    /// Locks a month, with its audit entry. `Ok(false)`: it was locked already.
    async fn lock_period(
        &self,
        period: &LockedPeriod,
        locked_by: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// What the batches posted, per month and fund, for the `months` latest months that have
    /// batches, latest first.
    async fn period_totals(&self, months: u32) -> Result<Vec<PeriodFundTotal>, StoreError>;

    /// The account's succeeded payments and refunds with `start <= at < end` that are not in
    /// batch `batch_id`, in time order.
    async fn day_lines_elsewhere(
        &self,
        account: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        batch_id: &str,
    ) -> Result<Vec<LineElsewhere>, StoreError>;
}
