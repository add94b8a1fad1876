//! The PostgreSQL store: the production backend, safe for several server processes at once.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row};

use super::{migrations, ColumnInfo, StoreError};

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Locks the payment row a webhook changes (SQLite's write transaction already excludes others).
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// Lets several servers lease different rows at once.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// Names a row of a table without an `id` column.
    const ROW_LOCATOR: &'static str = "ctid::text";

    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad PostgreSQL URL: {e}")))?
            .application_name("counterfoil");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    fn ts(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    fn embedded_versions() -> Vec<i64> {
        migrations::postgres_versions()
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        migrations::postgres().await?.run(&self.pool).await?;
        Ok(())
    }

    async fn schema_columns(&self) -> Result<Vec<ColumnInfo>, StoreError> {
        let rows = super::guard::statement::<Postgres>(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             data_type IN ('text', 'character varying', 'character') AS is_text \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
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

impl_sql_store!(PgStore, sqlx::Postgres, "postgres");
