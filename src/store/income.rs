//! Income batches: what is not yet in one, building one (frozen), posting it, and month-end locks.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::domain::income::document::Layout;
use crate::domain::income::{PostingRow, PostingSource};

crate::domain::named::named_enum! {
    /// Where a batch stands with the income system.
    pub enum BatchStatus { Ready = "ready", Posted = "posted", Failed = "failed" }
}

/// A built batch: its figures are frozen; only its posting state moves.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomeBatch {
    pub id: String,
    pub account: String,
    pub number: i64,
    pub reference: String,
    /// The London day it closes.
    pub day: NaiveDate,
    /// The month it posts into, `YYYY-MM`.
    pub period: String,
    pub layout: Layout,
    pub row_count: i64,
    /// Pence, refunds negative.
    pub control_total: i64,
    pub checksum: String,
    pub built_at: DateTime<Utc>,
    pub status: BatchStatus,
    /// Counterfoil posts it; otherwise a person imports its file and says so.
    pub pushed: bool,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last post's answer never came: before anything is sent again, the income system is
    /// asked which rows it already holds.
    pub outcome_unknown: bool,
    pub last_error: Option<String>,
    pub posted_at: Option<DateTime<Utc>>,
    pub posted_by: Option<String>,
    pub posted_by_label: Option<String>,
}

/// How a post attempt ended, as recorded on the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRecord {
    pub status: BatchStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub outcome_unknown: bool,
    pub last_error: Option<String>,
    /// When posted: when, and who (Counterfoil's own worker, or the person who imported it).
    pub posted: Option<(DateTime<Utc>, String, String)>,
}

/// A month closed by finance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPeriod {
    pub period: String,
    pub locked_at: DateTime<Utc>,
    pub locked_by_label: String,
}

/// What the batches posted into one month for one fund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodFundTotal {
    pub period: String,
    pub fund_code: String,
    pub rows: i64,
    /// Pence, refunds taken off.
    pub total: i64,
}

/// A payment or refund of a ledger day that is not in the batch built for that day: posted in a
/// later batch (learnt late) or in none yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineElsewhere {
    pub line_id: String,
    pub kind: String,
    pub payment_id: String,
    pub at: DateTime<Utc>,
    /// Pence, refunds negative.
    pub amount: i64,
    pub batch_id: Option<String>,
    pub batch_reference: Option<String>,
}

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

    /// Up to `limit` batches, newest built first, after `(built_at, id)`.
    async fn batches_page(
        &self,
        before: Option<(DateTime<Utc>, String)>,
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
