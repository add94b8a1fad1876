//! A built income batch and where it stands, as the store keeps it and the pages show it.

use chrono::{DateTime, NaiveDate, Utc};

use super::document::Layout;

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
