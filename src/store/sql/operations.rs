//! The SQL of [`OperationsStore`](crate::store::OperationsStore).

use async_trait::async_trait;

use super::*;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;
use futures_util::TryStreamExt;

#[async_trait]
impl<B: Backend> OperationsStore for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::SYSTEM
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store ping", otel.kind = "client", db.system = B::SYSTEM))]
    async fn ping(&self) -> Result<(), StoreError> {
        statement::<B>("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store migrate", otel.kind = "client", db.system = B::SYSTEM))]
    async fn migrate(&self) -> Result<(), StoreError> {
        B::run_migrations(&self.pool).await
    }

    async fn grant_application_role(&self, role: &str) -> Result<(), StoreError> {
        B::grant_application_role(&self.pool, role).await
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store pending_migrations", otel.kind = "client", db.system = B::SYSTEM))]
    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied: Vec<i64> =
            match statement::<B>("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => first_column(rows)?,
                // No migrations table: nothing is applied.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        Ok(B::embedded_migrations()
            .into_iter()
            .filter(|v| !applied.contains(v))
            .collect())
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store outbox_counts", otel.kind = "client", db.system = B::SYSTEM))]
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let row = statement::<B>(
            "SELECT \
               COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
               COALESCE(SUM(CASE WHEN status = 'pending' AND attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying, \
               COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) AS dead \
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxCounts {
            pending: row.col("pending")?,
            retrying: row.col("retrying")?,
            dead: row.col("dead")?,
        })
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store scan_text_column", otel.kind = "client", db.system = B::SYSTEM))]
    async fn scan_text_column(
        &self,
        column: &ColumnInfo,
        visit: &mut (dyn for<'v> FnMut(&'v str, &'v str) + Send),
    ) -> Result<u64, StoreError> {
        let columns = B::schema_columns(&self.pool).await?;
        let has_id = columns
            .iter()
            .any(|c| c.table == column.table && c.column == "id");
        let locator = if has_id {
            "CAST(id AS TEXT)"
        } else {
            B::ROW_LOCATOR
        };
        let sql = format!(
            "SELECT {locator} AS row_key, CAST(\"{col}\" AS TEXT) AS value FROM \"{table}\" \
             WHERE \"{col}\" IS NOT NULL",
            col = column.column.replace('"', ""),
            table = column.table.replace('"', ""),
        );
        let mut rows = statement::<B>(&sql).fetch(&self.pool);
        let mut scanned = 0;
        while let Some(row) = rows.try_next().await? {
            let key: String = row.col("row_key")?;
            let value: String = row.col("value")?;
            visit(&key, &value);
            scanned += 1;
        }
        Ok(scanned)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store describe_schema", otel.kind = "client", db.system = B::SYSTEM))]
    async fn describe_schema(&self) -> Result<Vec<ColumnInfo>, StoreError> {
        let mut columns = B::schema_columns(&self.pool).await?;
        columns.sort();
        Ok(columns)
    }
}
