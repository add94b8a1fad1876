//! The SQLite store: the embedded default, for a first run and single-instance deployments.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::backend::Backend;
use super::guard::statement;
use super::pool::pool_options;
use super::sql::SqlStore;
use super::{migrations, ColumnInfo, StoreError};

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A webhook is acknowledged only after its effect is durable: FULL syncs every commit.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Other(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        let pool = pool_options::<Sqlite>(max_connections, Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self::new(pool))
    }
}

/// Fixed-width UTC text, so stored times sort as they compare.
fn stored_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

read_rows_with_sqlx!(SqliteRow);

impl Backend for Sqlite {
    const SYSTEM: &'static str = "sqlite";
    // SQLite's write transaction already excludes other writers.
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const ROW_LOCATOR: &'static str = "CAST(rowid AS TEXT)";
    const ERASED_METADATA: &'static str =
        "COALESCE((SELECT json_group_object(key, '[erased]') FROM json_each(metadata)), '{}')";
    const WRITES_IN_WITH: bool = false;

    run_statements_with_sqlx!(stored_time = stored_time);

    /// SQLite allows one writer: take the write lock up front so concurrent writers queue
    /// (busy_timeout) instead of failing when a read lock cannot be upgraded.
    fn begin_write(
        pool: &SqlitePool,
    ) -> BoxFuture<'_, Result<Transaction<'static, Self>, sqlx::Error>> {
        Box::pin(pool.begin_with("BEGIN IMMEDIATE"))
    }

    fn embedded_migrations() -> Vec<i64> {
        migrations::sqlite_versions()
    }

    fn run_migrations(pool: &SqlitePool) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            migrations::sqlite().await?.run(pool).await?;
            Ok(())
        })
    }

    fn grant_application_role<'a>(
        _: &'a SqlitePool,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async {
            Err(StoreError::Other(
                "SQLite has no roles: --grant-to is for PostgreSQL".into(),
            ))
        })
    }

    fn schema_columns(pool: &SqlitePool) -> BoxFuture<'_, Result<Vec<ColumnInfo>, StoreError>> {
        Box::pin(async move {
            let rows = statement::<Sqlite>(
                "SELECT m.name AS table_name, p.name AS column_name, upper(p.type) = 'TEXT' AS is_text \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(ColumnInfo::from_row).collect()
        })
    }
}
