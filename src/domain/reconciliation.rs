//! A reconciliation run and the differences it found between our records and the provider's.

use chrono::{DateTime, Utc};

use super::resolution::Resolution;

super::named::named_enum! {
    /// Where a run stands.
    pub enum RunStatus { Running = "running", Completed = "completed", Failed = "failed" }
}

super::named::named_enum! {
    /// What kind of difference a run found.
    pub enum DiscrepancyKind {
        /// The provider has a payment we do not know by its id.
        MissingLocally = "missing_locally",
        /// We have a payment confirmed at the provider that its records do not list.
        MissingAtProvider = "missing_at_provider",
        AmountMismatch = "amount_mismatch",
        StatusMismatch = "status_mismatch",
        /// A payment's refunds total differently on the two sides.
        RefundMismatch = "refund_mismatch",
    }
}

impl DiscrepancyKind {
    /// What a person reads for it.
    pub fn title(self) -> &'static str {
        match self {
            Self::MissingLocally => "Only the provider has it",
            Self::MissingAtProvider => "Only we have it",
            Self::AmountMismatch => "Amounts differ",
            Self::StatusMismatch => "Statuses differ",
            Self::RefundMismatch => "Refunds differ",
        }
    }
}

/// A reconciliation run against one provider account's records for a period.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationRun {
    pub id: String,
    pub account: String,
    pub period_from: DateTime<Utc>,
    pub period_to: DateTime<Utc>,
    /// The actor's id: a person's subject, an API key's id, `nightly` or `cli`.
    pub requested_by: String,
    /// How the audit trail names them (empty for runs from before it was kept).
    pub requested_by_label: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub provider_payments: i32,
    pub provider_refunds: i32,
    pub local_payments: i32,
    pub error: Option<String>,
}

/// One difference a run found between our records and the provider's.
#[derive(Debug, Clone, PartialEq)]
pub struct Discrepancy {
    /// Its number once recorded (0 before).
    pub id: i64,
    pub kind: DiscrepancyKind,
    pub payment_id: Option<String>,
    pub provider_payment_id: Option<String>,
    /// What we hold (a status or an amount).
    pub ours: Option<String>,
    /// What the provider holds.
    pub theirs: Option<String>,
    /// The provider was authoritative and the run brought our record in line.
    pub healed: bool,
    pub note: String,
    /// A person looked at it and said why it needs nothing more.
    pub resolution: Option<Resolution>,
}

impl Discrepancy {
    /// A new difference of `kind`, nothing yet said about it.
    pub fn new(kind: DiscrepancyKind) -> Self {
        Self {
            id: 0,
            kind,
            payment_id: None,
            provider_payment_id: None,
            ours: None,
            theirs: None,
            healed: false,
            note: String::new(),
            resolution: None,
        }
    }

    /// Whether it still needs a person: neither healed nor resolved.
    pub fn is_open(&self) -> bool {
        !self.healed && self.resolution.is_none()
    }
}

/// What a run found, and what became of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTally {
    pub found: i64,
    /// Brought in line with the provider by the run itself.
    pub healed: i64,
    /// Not healed; a person said why it needs nothing more.
    pub resolved: i64,
}

impl RunTally {
    /// Still waiting for a person.
    pub fn open(&self) -> i64 {
        self.found - self.healed - self.resolved
    }
}
