//! The PostgreSQL store: the production backend, safe for several server processes at once.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{PgPool, Postgres, Transaction};

use super::backend::Backend;
use super::guard::statement;
use super::pool::pool_options;
use super::sql::SqlStore;
use super::{migrations, ColumnInfo, StoreError};

/// The store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad PostgreSQL URL: {e}")))?
            .application_name("counterfoil");
        let pool = pool_options::<Postgres>(max_connections, Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self::new(pool))
    }
}

/// PostgreSQL stores times as `timestamptz`.
fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at
}

read_rows_with_sqlx!(PgRow);

impl Backend for Postgres {
    const SYSTEM: &'static str = "postgres";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const ROW_LOCATOR: &'static str = "ctid::text";
    const ERASED_METADATA: &'static str =
        "COALESCE((SELECT CAST(jsonb_object_agg(key, '[erased]') \
        AS TEXT) FROM jsonb_each_text(CAST(metadata AS jsonb))), '{}')";
    const WRITES_IN_WITH: bool = true;

    run_statements_with_sqlx!(stored_time = stored_time);

    fn begin_write(
        pool: &PgPool,
    ) -> BoxFuture<'_, Result<Transaction<'static, Self>, sqlx::Error>> {
        Box::pin(pool.begin())
    }

    fn embedded_migrations() -> Vec<i64> {
        migrations::postgres_versions()
    }

    fn run_migrations(pool: &PgPool) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            migrations::postgres().await?.run(pool).await?;
            Ok(())
        })
    }

    fn grant_application_role<'a>(
        pool: &'a PgPool,
        role: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(migrations::grant_postgres(pool, role))
    }

    fn schema_columns(pool: &PgPool) -> BoxFuture<'_, Result<Vec<ColumnInfo>, StoreError>> {
        Box::pin(async move {
            let rows = statement::<Postgres>(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                 data_type IN ('text', 'character varying', 'character') AS is_text \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(ColumnInfo::from_row).collect()
        })
    }
}
