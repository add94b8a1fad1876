//! The SQL of [`LeaseStore`](crate::store::LeaseStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::payments::{payment_from_row, PAYMENT_COLUMNS};
use super::*;
use crate::domain::Payment;
use crate::store::backend::Backend;
use crate::store::guard::statement;
use crate::store::*;

#[async_trait]
impl<B: Backend> LeaseStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store lease_payments_to_poll", otel.kind = "client", db.system = B::SYSTEM))]
    async fn lease_payments_to_poll(
        &self,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // The lease is committed before any provider call: no transaction is held
        // across HTTP, and other servers skip the rows this one took.
        let rows = statement::<B>(&format!(
            "UPDATE payments SET poll_leased_until = $3 WHERE id IN ( \
               SELECT id FROM payments \
               WHERE status IN ('created', 'in_progress') AND created_at < $1 \
                 AND (poll_leased_until IS NULL OR poll_leased_until < $2) \
               ORDER BY created_at LIMIT $4{}) \
             RETURNING {PAYMENT_COLUMNS}",
            B::SKIP_LOCKED
        ))
        .bind(created_before)
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(payment_from_row).collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store job_lease", otel.kind = "client", db.system = B::SYSTEM))]
    async fn job_lease(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        statement::<B>("SELECT holder, leased_until FROM job_leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Ok((row.col("holder")?, row.col("leased_until")?)))
            .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store try_lease_job", otel.kind = "client", db.system = B::SYSTEM))]
    async fn try_lease_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = statement::<B>(
            "INSERT INTO job_leases (name, holder, leased_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, leased_until = excluded.leased_until \
             WHERE job_leases.leased_until < $4 OR job_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
