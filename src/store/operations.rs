//! The store looking after itself: reachability, migrations, pool and outbox gauges, schema and column scans for `pci-scan`.

use async_trait::async_trait;

use super::*;

/// One column of one table, for schema checks and the card-data scan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    pub is_text: bool,
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

#[async_trait]
pub trait OperationsStore: Send + Sync + 'static {
    /// Which backend this is, for logs and readiness output.
    fn backend(&self) -> &'static str;

    async fn ping(&self) -> Result<(), StoreError>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// As the schema's owner: gives the application role `role` only what the service needs
    /// (it may append to the audit trail, never change or remove an entry). PostgreSQL only.
    async fn grant_application_role(&self, role: &str) -> Result<(), StoreError>;

    /// Versions of the migrations built into this binary that the database has not applied
    /// (all of them when it has none): empty means the schema is current.
    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError>;

    /// This process's connection pool, right now.
    fn pool_status(&self) -> PoolStatus;

    /// How many CRM notifications wait, retry, or have died.
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Streams every non-null value of one column, as text, with a key naming its row.
    async fn scan_text_column(
        &self,
        column: &ColumnInfo,
        visit: &mut (dyn for<'v> FnMut(&'v str, &'v str) + Send),
    ) -> Result<u64, StoreError>;

    /// Every column of every Counterfoil table.
    async fn describe_schema(&self) -> Result<Vec<ColumnInfo>, StoreError>;
}
