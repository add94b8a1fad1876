//! The SQL of [`FinanceStore`](crate::store::FinanceStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::payments::{payment_from_row, PAYMENT_COLUMNS};
use super::*;
use crate::domain::Payment;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

#[async_trait]
impl<B: Backend> FinanceStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store ledger_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn ledger_page(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        service: Option<&str>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<LedgerLine>, StoreError> {
        // Each branch is filtered and ordered on its own index (finished_at, id), so a
        // page costs the same wherever it falls in the period.
        // Each branch reads at most one page from its own index (finished_at, id); the
        // union of two pages is sorted, so a page costs the same wherever it falls.
        let mut sql = Builder::<B>::new(
            "SELECT * FROM (SELECT * FROM ( \
             SELECT 'payment' AS kind, p.id AS payment_id, CAST(NULL AS TEXT) AS refund_id, \
               p.id AS line_id, p.finished_at AS at, p.request_ref, p.service, p.amount, \
               p.description, p.provider, p.provider_payment_id AS provider_reference \
             FROM payments p WHERE p.status = 'succeeded'",
        );
        let service_filter = service.map(str::to_owned);
        let bounds = |sql: &mut Builder<B>, at: &str, id: &str| {
            sql.push(format!(" AND {at} >= ")).push_bind(start);
            sql.push(format!(" AND {at} < ")).push_bind(end);
            if let Some(wanted) = service_filter.clone() {
                sql.push(" AND p.service = ").push_bind(wanted);
            }
            if let Some((after_at, after_id)) = after.clone() {
                sql.push(format!(" AND ({at}, {id}) > ("))
                    .push_bind(after_at)
                    .push(", ")
                    .push_bind(after_id)
                    .push(")");
            }
            sql.push(format!(" ORDER BY {at}, {id} LIMIT "))
                .push_bind(i64::from(limit));
        };
        bounds(&mut sql, "p.finished_at", "p.id");
        sql.push(
            ") AS payment_lines UNION ALL SELECT * FROM ( \
             SELECT 'refund' AS kind, r.payment_id, r.id AS refund_id, r.id AS line_id, \
               r.finished_at AS at, p.request_ref, p.service, -r.amount AS amount, p.description, \
               p.provider, r.provider_refund_id AS provider_reference \
             FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.status = 'succeeded'",
        );
        bounds(&mut sql, "r.finished_at", "r.id");
        sql.push(") AS refund_lines) AS lines");
        sql.push(" ORDER BY at, line_id LIMIT ")
            .push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(LedgerLine {
                    at: row.col("at")?,
                    kind: row.col("kind")?,
                    payment_id: row.col("payment_id")?,
                    refund_id: row.col("refund_id")?,
                    line_id: row.col("line_id")?,
                    request_ref: row.col("request_ref")?,
                    service: row.col("service")?,
                    amount: row.col("amount")?,
                    description: row.col("description")?,
                    provider: row.col("provider")?,
                    provider_reference: row.col("provider_reference")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payments_created_between", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_created_between(
        &self,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Payment>, StoreError> {
        statement::<B>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE account = $1 \
             AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id"
        ))
        .bind(account)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(payment_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store insert_reconciliation_run", otel.kind = "client", db.system = B::SYSTEM))]
    async fn insert_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        statement::<B>(
            "INSERT INTO reconciliation_runs (id, account, period_from, period_to, requested_by, \
             started_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'running')",
        )
        .bind(&run.id)
        .bind(&run.account)
        .bind(run.period_from)
        .bind(run.period_to)
        .bind(&run.requested_by)
        .bind(run.started_at)
        .execute(&mut tx)
        .await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store finish_reconciliation_run", otel.kind = "client", db.system = B::SYSTEM))]
    async fn finish_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        discrepancies: &[Discrepancy],
    ) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        statement::<B>(
            "UPDATE reconciliation_runs SET finished_at = $2, status = $3, provider_payments = $4, \
             provider_refunds = $5, local_payments = $6, error = $7 WHERE id = $1",
        )
        .bind(&run.id)
        .bind(run.finished_at)
        .bind(&run.status)
        .bind(run.provider_payments)
        .bind(run.provider_refunds)
        .bind(run.local_payments)
        .bind(&run.error)
        .execute(&mut tx)
        .await?;
        for d in discrepancies {
            statement::<B>(
                "INSERT INTO reconciliation_discrepancies (run_id, kind, payment_id, \
                 provider_payment_id, ours, theirs, healed, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&run.id)
            .bind(&d.kind)
            .bind(&d.payment_id)
            .bind(&d.provider_payment_id)
            .bind(&d.ours)
            .bind(&d.theirs)
            .bind(d.healed)
            .bind(&d.note)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store get_reconciliation_run", otel.kind = "client", db.system = B::SYSTEM))]
    async fn get_reconciliation_run(
        &self,
        id: &str,
    ) -> Result<Option<(ReconciliationRun, Vec<Discrepancy>)>, StoreError> {
        let Some(row) = statement::<B>("SELECT * FROM reconciliation_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let run = ReconciliationRun {
            id: row.col("id")?,
            account: row.col("account")?,
            period_from: row.col("period_from")?,
            period_to: row.col("period_to")?,
            requested_by: row.col("requested_by")?,
            started_at: row.col("started_at")?,
            finished_at: row.col("finished_at")?,
            status: row.col("status")?,
            provider_payments: row.col("provider_payments")?,
            provider_refunds: row.col("provider_refunds")?,
            local_payments: row.col("local_payments")?,
            error: row.col("error")?,
        };
        let found = statement::<B>(
            "SELECT kind, payment_id, provider_payment_id, ours, theirs, healed, note \
             FROM reconciliation_discrepancies WHERE run_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Discrepancy {
                kind: r.col("kind")?,
                payment_id: r.col("payment_id")?,
                provider_payment_id: r.col("provider_payment_id")?,
                ours: r.col("ours")?,
                theirs: r.col("theirs")?,
                healed: r.col("healed")?,
                note: r.col("note")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((run, found)))
    }
}
