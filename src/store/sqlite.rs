//! The SQLite store: the embedded default, for a first run and single-instance deployments.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};

use super::{migrations, ColumnInfo, StoreError};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Locks the payment row a webhook changes (SQLite's write transaction already excludes others).
    const FOR_UPDATE: &'static str = "";
    /// Lets several servers lease different rows at once.
    const SKIP_LOCKED: &'static str = "";
    /// Names a row of a table without an `id` column.
    const ROW_LOCATOR: &'static str = "CAST(rowid AS TEXT)";

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
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Fixed-width UTC text, so stored times sort as they compare.
    fn ts(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// SQLite allows one writer: take the write lock up front so concurrent writers queue
    /// (busy_timeout) instead of failing when a read lock cannot be upgraded.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    fn embedded_versions() -> Vec<i64> {
        migrations::sqlite_versions()
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        migrations::sqlite().await?.run(&self.pool).await?;
        Ok(())
    }

    async fn schema_columns(&self) -> Result<Vec<ColumnInfo>, StoreError> {
        let rows = super::guard::statement::<Sqlite>(
            "SELECT m.name AS table_name, p.name AS column_name, upper(p.type) = 'TEXT' AS is_text \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ColumnInfo {
                    table: row.try_get("table_name")?,
                    column: row.try_get("column_name")?,
                    is_text: row.try_get("is_text")?,
                })
            })
            .collect()
    }
}

impl_sql_store!(SqliteStore, sqlx::Sqlite, "sqlite");
