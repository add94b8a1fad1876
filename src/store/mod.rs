//! Storage: the `Store` trait (whole units of work, no sqlx types), its PostgreSQL and SQLite
//! implementations, and the embedded migrations.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::api_key::Role;
use crate::domain::refund::{Refund, RefundStatus};
use crate::domain::{
    CreateOutcome, EventOutcome, IdempotencyKey, Payment, PaymentEvent, PaymentId, PaymentStatus,
    ProviderEvent, TransitionSource,
};

#[macro_use]
pub mod backend;
pub mod guard;
mod migrations;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered too slowly; worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken by a concurrent writer.
    #[error("conflicting write")]
    Conflict,
    /// A row held a value this version of Counterfoil cannot read.
    #[error("unreadable row: {0}")]
    Corrupt(String),
    /// A value to be written holds a card number: the statement was not sent, nothing was written.
    #[error("a value to be stored holds a card number; nothing was written")]
    CardData,
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Encode(inner) if inner.is::<guard::CardDataRefused>() => {
                StoreError::CardData
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(error.to_string())
            }
            _ => StoreError::Other(error.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {error}"))
    }
}

/// An API key as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub role: Role,
    pub label: String,
    pub token_sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// After this the key is refused, as if revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The caller's claim on an `Idempotency-Key` for one request.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub principal: String,
    pub key: IdempotencyKey,
    pub route: String,
    pub fingerprint: String,
    pub now: DateTime<Utc>,
    /// How long an in-flight claim blocks others before it is presumed crashed.
    pub lease_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// The key is ours and the new payment row is written: go ahead and call the provider.
    Claimed,
    /// The same request was completed before: send back exactly this.
    Replay { status: u16, body: String },
    /// The same key is being worked on right now.
    InFlight,
    /// The key was used before with a different request.
    KeyReused,
    /// The key belongs to a resource (payment or refund) whose create did not complete cleanly:
    /// answer from its row.
    Linked { resource_id: String },
}

/// How to leave the idempotency key once the provider has answered a create.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencySettle {
    /// Replay this response to every repeat of the request.
    Completed { status: u16, body: String },
    /// Answer repeats from the payment row (its create is unresolved or was refused).
    Linked,
    /// Forget the key: nothing reached the provider, so a repeat may try again.
    Release,
}

/// A status change to apply if the payment is still in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub payment_id: PaymentId,
    pub from: PaymentStatus,
    pub to: PaymentStatus,
    pub at: DateTime<Utc>,
    pub source: TransitionSource,
    pub failure_code: Option<String>,
}

/// Filters and position for listing payments, newest first.
#[derive(Debug, Clone, Default)]
pub struct PaymentQuery {
    pub request_ref: Option<String>,
    pub status: Option<PaymentStatus>,
    pub service: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Only payments strictly older than this (created_at, id) position.
    pub before: Option<(DateTime<Utc>, PaymentId)>,
    pub limit: u32,
}

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

/// One entry of the append-only audit trail: who did what to what, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor_key_id: String,
    pub actor_label: String,
    pub action: String,
    pub subject: String,
    /// Amounts, references and counts only; never personal data.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// The entry as the audit trail keeps it: any card number in any of its text is replaced, so
    /// the entry is still written (the trail must not lose an action) but never holds one.
    pub fn without_card_numbers(&self) -> AuditEntry {
        use crate::domain::card_guard::{redact, redact_json};
        AuditEntry {
            at: self.at,
            actor_key_id: redact(&self.actor_key_id).into_owned(),
            actor_label: redact(&self.actor_label).into_owned(),
            action: redact(&self.action).into_owned(),
            subject: redact(&self.subject).into_owned(),
            detail: redact_json(self.detail.clone()),
        }
    }
}

/// A CRM notification in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Stable across attempts: the `webhook-id` the CRM deduplicates on.
    pub id: String,
    pub event_type: String,
    pub payment_id: PaymentId,
    /// For `refund.*` notifications, the refund.
    pub refund_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryResult {
    Delivered {
        at: DateTime<Utc>,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        next_attempt_at: DateTime<Utc>,
        error: String,
    },
    /// Failed for the last time.
    Dead {
        error: String,
    },
}

/// One column of one table, for schema checks and the card-data scan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    pub is_text: bool,
}

/// The audit chain's end, and how many entries predate the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub last_seq: i64,
    pub last_hash: String,
    /// Entries outside the chain.
    pub unchained: i64,
    /// Of those, the ones written after the chain began: none can be, unless its triggers were
    /// removed.
    pub unchained_since_start: i64,
}

/// What an erasure changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureCounts {
    pub payments: u64,
    pub refunds: u64,
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

/// A connection pool's state, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    pub size: u32,
    pub idle: usize,
    pub max: u32,
}

/// The CRM outbox at a glance, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxCounts {
    /// Not yet delivered (first attempts and retries alike).
    pub pending: i64,
    /// Pending after at least one failed attempt.
    pub retrying: i64,
    pub dead: i64,
}

/// Everything Counterfoil persists, one whole unit of work per method.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and readiness output.
    fn backend(&self) -> &'static str;

    async fn ping(&self) -> Result<(), StoreError>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Versions of the migrations built into this binary that the database has not applied
    /// (all of them when it has none): empty means the schema is current.
    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError>;

    /// Pseudonymises the personal fields of these payments (description, email, metadata values,
    /// return URL; their refunds' reasons) and rewrites their stored idempotent answers to be read
    /// afresh, in one transaction with `audit`. Payments already pseudonymised are left alone.
    async fn erase_payments(
        &self,
        payment_ids: &[String],
        at: DateTime<Utc>,
        audit: Option<&AuditEntry>,
    ) -> Result<ErasureCounts, StoreError>;

    /// Final payments that finished before `before` and still hold personal data.
    async fn payments_due_for_erasure(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

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

    /// Deletes idempotency keys whose replay window ended before `now`. How many.
    async fn purge_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Takes (or renews) the lease on a background job until `until`, unless another holder's
    /// lease is still running.
    async fn try_lease_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Every payment made for a service request, oldest first.
    async fn payment_ids_for_request(&self, request_ref: &str) -> Result<Vec<String>, StoreError>;

    /// The CRM notifications about a payment (delivery metadata), oldest first.
    async fn notifications_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<Notification>, StoreError>;

    /// This process's connection pool, right now.
    fn pool_status(&self) -> PoolStatus;

    /// How many CRM notifications wait, retry, or have died.
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes a key; false when there is no such key or it was already revoked.
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Records that a key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Claims the idempotency key and, only if the claim is new, writes the new payment row and
    /// its first timeline event, all in one transaction.
    async fn claim_and_insert_payment(
        &self,
        claim: &IdempotencyClaim,
        payment: &Payment,
        audit: &AuditEntry,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Records the provider's answer to a create (the payment's new fields and, when its status
    /// changed, a timeline event and, if `notify`, a CRM notification), applies any webhooks that
    /// arrived for it before its provider id was known, and settles the idempotency key, in one
    /// transaction. Returns false when the create had already been settled by someone else.
    async fn settle_payment_create(
        &self,
        payment: &Payment,
        previous_status: PaymentStatus,
        source: TransitionSource,
        notify: bool,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
    ) -> Result<bool, StoreError>;

    async fn get_payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError>;

    async fn list_payments(&self, query: &PaymentQuery) -> Result<Vec<Payment>, StoreError>;

    /// Applies a status change, its timeline event and (into a final status) its CRM notification
    /// if the payment is still in `from` (compare-and-set); false when another writer moved it first.
    async fn record_status_change(&self, change: &StatusChange) -> Result<bool, StoreError>;

    /// Applies a verified provider event in one transaction: the receipt (unique per account and
    /// message id, so duplicates have no second effect), the state machine's decision, the timeline
    /// event and the CRM notification. An event for an unknown payment is kept as an orphan.
    async fn apply_provider_event(
        &self,
        account: &str,
        event: &ProviderEvent,
        received_at: DateTime<Utc>,
    ) -> Result<EventOutcome, StoreError>;

    /// Leases up to `limit` payments that are not final and were created before `created_before`,
    /// skipping rows another server holds; the lease is committed before this returns.
    async fn lease_payments_to_poll(
        &self,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;

    /// Leases up to `limit` pending notifications that are due, skipping those another server holds;
    /// the lease is committed before this returns, so no transaction spans the HTTP calls.
    async fn lease_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Records a delivery attempt and lets go of the lease.
    async fn record_delivery(&self, id: &str, result: &DeliveryResult) -> Result<(), StoreError>;

    /// Lets go of leases without an attempt (a server shutting down), so others may deliver now.
    async fn release_notification_leases(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Notifications, newest first, optionally only those with `status`.
    async fn list_notifications(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Makes a notification pending and due now, with a fresh set of attempts; false if unknown
    /// or already delivered.
    async fn retry_notification(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;

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

    /// Our payment with this provider id at this account, if any.
    async fn find_payment_by_provider_id(
        &self,
        account: &str,
        provider_payment_id: &str,
    ) -> Result<Option<Payment>, StoreError>;

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

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` chained audit entries after `after_seq`, in chain order.
    async fn audit_chain_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::domain::audit::StoredEntry>, StoreError>;

    /// Where the chain ends (as recorded by its writers).
    async fn audit_head(&self) -> Result<AuditHead, StoreError>;

    /// Audit entries in [from, to), oldest first, each with its row id; only those after the
    /// row id `after` when given (the next page).
    async fn audit_page(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError>;

    /// The first `limit` audit entries in [from, to), oldest first.
    async fn list_audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let page = self.audit_page(from, to, None, limit).await?;
        Ok(page.into_iter().map(|(_, entry)| entry).collect())
    }

    /// Streams every non-null value of one column, as text, with a key naming its row.
    async fn scan_text_column(
        &self,
        column: &ColumnInfo,
        visit: &mut (dyn for<'v> FnMut(&'v str, &'v str) + Send),
    ) -> Result<u64, StoreError>;

    /// Notes that the provider was just asked about this payment.
    async fn mark_refreshed(&self, id: &PaymentId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The payment's status timeline, oldest first.
    async fn payment_events(&self, id: &PaymentId) -> Result<Vec<PaymentEvent>, StoreError>;

    /// Every column of every Counterfoil table.
    async fn describe_schema(&self) -> Result<Vec<ColumnInfo>, StoreError>;
}

/// Connects to the database named by `url` (`postgres://…` or `sqlite:…`).
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else {
        Err(StoreError::Other(
            "database URL must start with postgres:// or sqlite:".into(),
        ))
    }
}

pub(crate) fn parse_column<T: std::str::FromStr>(
    value: &str,
    column: &str,
) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected value in {column}")))
}

pub(crate) fn create_outcome_text(outcome: CreateOutcome) -> &'static str {
    outcome.as_str()
}
