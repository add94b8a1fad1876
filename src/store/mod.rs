//! Storage: the `Store` trait (whole units of work, no sqlx types), its PostgreSQL and SQLite
//! implementations, and the embedded migrations.

use std::sync::Arc;

use crate::domain::CreateOutcome;

#[macro_use]
pub mod backend;
mod api_keys;
mod approvals;
mod attention;
mod audit;
mod finance;
pub mod guard;
mod idempotency;
mod income;
mod leases;
mod migrations;
mod notifications;
mod operations;
mod payments;
mod payouts;
pub mod pool;
pub mod postgres;
mod privacy;
mod provider_events;
mod reconciliation_runs;
mod refunds;
mod sessions;
mod sql;
pub mod sqlite;

pub use api_keys::*;
pub use approvals::*;
pub use attention::*;
pub use audit::*;
pub use finance::*;
pub use idempotency::*;
pub use income::*;
pub use leases::*;
pub use notifications::*;
pub use operations::*;
pub use payments::*;
pub use payouts::*;
pub use postgres::PgStore;
pub use privacy::*;
pub use provider_events::*;
pub use reconciliation_runs::*;
pub use refunds::*;
pub use sessions::*;
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered too slowly; worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness rule was broken by a concurrent writer.
    #[error("conflicting write")]
    Conflict,
    /// A row held a value this version of Counterfoil cannot read.
    #[error("unreadable row: {0}")]
    Corrupt(String),
    /// The database driver could not decode a column.
    #[error("unreadable row: {0}")]
    Undecodable(#[source] sqlx::Error),
    /// A value to be written holds a card number: the statement was not sent, nothing was written.
    #[error("a value to be stored holds a card number; nothing was written")]
    CardData,
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("database error: migration failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
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
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            // The server ending the connection (a restart, a failover, an administrator's
            // terminate: SQLSTATE class 57P) or losing it (class 08) is worth retrying too.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")) =>
            {
                StoreError::Unavailable(error)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Encode(inner) if inner.is::<guard::CardDataRefused>() => {
                StoreError::CardData
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Undecodable(error)
            }
            _ => StoreError::Database(error),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(error)
    }
}

/// Everything Counterfoil persists, one whole unit of work per method, in one trait per
/// aggregate.
pub trait Store:
    OperationsStore
    + ApiKeyStore
    + IdempotencyStore
    + PaymentStore
    + ProviderEventStore
    + NotificationStore
    + RefundStore
    + FinanceStore
    + IncomeStore
    + PayoutStore
    + AuditStore
    + PrivacyStore
    + LeaseStore
    + ApprovalStore
    + StaffSessionStore
    + AttentionStore
    + RunStore
{
}

impl<T> Store for T where
    T: OperationsStore
        + ApiKeyStore
        + IdempotencyStore
        + PaymentStore
        + ProviderEventStore
        + NotificationStore
        + RefundStore
        + FinanceStore
        + IncomeStore
        + PayoutStore
        + PayoutStore
        + IncomeStore
        + PayoutStore
        + PayoutStore
        + AuditStore
        + PrivacyStore
        + LeaseStore
        + ApprovalStore
        + StaffSessionStore
        + AttentionStore
        + RunStore
{
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

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::StoreError;

    #[test]
    fn a_database_error_keeps_its_cause() {
        let unavailable = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(unavailable, StoreError::Unavailable(_)));
        assert!(unavailable
            .source()
            .is_some_and(|cause| cause.to_string() == sqlx::Error::PoolTimedOut.to_string()));
        let refused = StoreError::from(sqlx::Error::Protocol("bad frame".into()));
        assert!(refused.source().is_some());
        assert_eq!(
            refused.to_string(),
            "database error: encountered unexpected or invalid data: bad frame"
        );
    }
}
