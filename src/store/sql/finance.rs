//! The SQL of [`FinanceStore`](crate::store::FinanceStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::payments::{payment_from_row, PAYMENT_COLUMNS};
use super::*;
use crate::domain::provider_view::{ProviderPayment, ProviderRefund, ProviderRefundRecord};
use crate::domain::Payment;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

impl<B: Backend> SqlStore<B> {
    /// Removes what every run that is no longer `running` staged: the run just finished, and any
    /// that died and was marked failed.
    async fn remove_finished_staging_tx(
        tx: &mut Transaction<'static, B>,
    ) -> Result<(), StoreError> {
        for table in [
            "reconciliation_provider_payments",
            "reconciliation_provider_refunds",
        ] {
            statement::<B>(&format!(
                "DELETE FROM {table} WHERE run_id IN \
                 (SELECT id FROM reconciliation_runs WHERE status <> 'running')"
            ))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

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
                    kind: parse_column(&row.col::<String>("kind")?, "ledger.kind")?,
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store ledger_totals", otel.kind = "client", db.system = B::SYSTEM))]
    async fn ledger_totals(
        &self,
        bounds: &[DateTime<Utc>],
        service: Option<&str>,
    ) -> Result<Vec<LedgerTotal>, StoreError> {
        if bounds.len() < 2 {
            return Ok(Vec::new());
        }
        // One branch per day and kind, each reading only the columns its ledger index holds
        // (on PostgreSQL the indexes include the service and amount, so no row is visited) over
        // one day's range, grouped by service: cheaper than working out each line's day.
        let mut sql = Builder::<B>::new("");
        let mut first_branch = true;
        for (kind, table) in [("payment", "payments"), ("refund", "refunds")] {
            for (n, day) in bounds.windows(2).enumerate() {
                if !first_branch {
                    sql.push(" UNION ALL ");
                }
                first_branch = false;
                sql.push(format!(
                    "SELECT * FROM (SELECT '{kind}' AS kind, CAST({n} AS BIGINT) AS day_index, \
                     p.service AS service, COUNT(*) AS lines, CAST(SUM(p.amount) AS BIGINT) AS pence \
                     FROM {table} p WHERE p.status = 'succeeded' AND p.finished_at >= "
                ))
                .push_bind(day[0])
                .push(" AND p.finished_at < ")
                .push_bind(day[1]);
                if let Some(wanted) = service {
                    sql.push(" AND p.service = ").push_bind(wanted.to_owned());
                }
                sql.push(format!(" GROUP BY p.service) AS {kind}_{n}"));
            }
        }
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(LedgerTotal {
                    day_index: usize::try_from(row.col::<i64>("day_index")?)
                        .map_err(|_| StoreError::Corrupt("ledger.day_index".into()))?,
                    kind: parse_column(&row.col::<String>("kind")?, "ledger.kind")?,
                    service: row.col("service")?,
                    lines: row.col("lines")?,
                    pence: row.col("pence")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store count_payments_created", otel.kind = "client", db.system = B::SYSTEM))]
    async fn count_payments_created(
        &self,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let row = statement::<B>(
            "SELECT COUNT(*) AS n FROM payments WHERE account = $1 \
             AND created_at >= $2 AND created_at < $3",
        )
        .bind(account)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.col("n")?)
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
             requested_by_label, started_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running')",
        )
        .bind(&run.id)
        .bind(&run.account)
        .bind(run.period_from)
        .bind(run.period_to)
        .bind(&run.requested_by)
        .bind(&run.requested_by_label)
        .bind(run.started_at)
        .execute(&mut tx)
        .await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        // A run still `running` a day after it began died with its process: say so, and remove
        // what it staged (no run takes hours; a million payments take minutes).
        statement::<B>(
            "UPDATE reconciliation_runs SET status = 'failed', finished_at = $1, \
             error = 'did not finish: the process running it stopped' \
             WHERE status = 'running' AND started_at < $2",
        )
        .bind(run.started_at)
        .bind(run.started_at - chrono::Duration::days(1))
        .execute(&mut tx)
        .await?;
        Self::remove_finished_staging_tx(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store record_discrepancies", otel.kind = "client", db.system = B::SYSTEM))]
    async fn record_discrepancies(
        &self,
        run_id: &str,
        discrepancies: &[Discrepancy],
    ) -> Result<(), StoreError> {
        if discrepancies.is_empty() {
            return Ok(());
        }
        let mut sql = Builder::<B>::new(
            "INSERT INTO reconciliation_discrepancies (run_id, kind, payment_id, \
             provider_payment_id, ours, theirs, healed, note) VALUES ",
        );
        sql.push_rows(discrepancies.iter().map(|d| {
            [
                run_id.into(),
                d.kind.as_str().into(),
                d.payment_id.as_deref().into(),
                d.provider_payment_id.as_deref().into(),
                d.ours.as_deref().into(),
                d.theirs.as_deref().into(),
                d.healed.into(),
                d.note.as_str().into(),
            ]
        }));
        sql.build().execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store finish_reconciliation_run", otel.kind = "client", db.system = B::SYSTEM))]
    async fn finish_reconciliation_run(&self, run: &ReconciliationRun) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        statement::<B>(
            "UPDATE reconciliation_runs SET finished_at = $2, status = $3, provider_payments = $4, \
             provider_refunds = $5, local_payments = $6, error = $7 WHERE id = $1",
        )
        .bind(&run.id)
        .bind(run.finished_at)
        .bind(run.status.as_str())
        .bind(run.provider_payments)
        .bind(run.provider_refunds)
        .bind(run.local_payments)
        .bind(&run.error)
        .execute(&mut tx)
        .await?;
        Self::remove_finished_staging_tx(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store stage_provider_payments", otel.kind = "client", db.system = B::SYSTEM))]
    async fn stage_provider_payments(
        &self,
        run_id: &str,
        page: &[ProviderPayment],
    ) -> Result<(), StoreError> {
        if page.is_empty() {
            return Ok(());
        }
        let mut sql = Builder::<B>::new(
            "INSERT INTO reconciliation_provider_payments (run_id, provider_payment_id, status, \
             failure_code, next_url, amount, reference, counterfoil_id, created_at, finished_at, \
             refund_available) VALUES ",
        );
        sql.push_rows(page.iter().map(|p| {
            [
                run_id.into(),
                p.provider_payment_id.as_str().into(),
                p.status.as_str().into(),
                p.failure_code.as_deref().into(),
                p.next_url.as_deref().into(),
                p.amount.into(),
                p.reference.as_str().into(),
                p.counterfoil_id.as_deref().into(),
                p.created_at.into(),
                p.finished_at.into(),
                p.refund_available.into(),
            ]
        }));
        // A search whose pages shift while they are read (offset paging, new payments arriving)
        // may list a payment twice: it is compared once.
        sql.push(" ON CONFLICT DO NOTHING");
        sql.build().execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store stage_provider_refunds", otel.kind = "client", db.system = B::SYSTEM))]
    async fn stage_provider_refunds(
        &self,
        run_id: &str,
        page: &[ProviderRefundRecord],
    ) -> Result<(), StoreError> {
        if page.is_empty() {
            return Ok(());
        }
        let mut sql = Builder::<B>::new(
            "INSERT INTO reconciliation_provider_refunds (run_id, provider_payment_id, \
             provider_refund_id, status, provider_status, amount) VALUES ",
        );
        sql.push_rows(page.iter().map(|r| {
            [
                run_id.into(),
                r.provider_payment_id.as_str().into(),
                r.refund.provider_refund_id.as_str().into(),
                r.refund.status.as_str().into(),
                r.refund.provider_status.as_str().into(),
                r.refund.amount.into(),
            ]
        }));
        sql.push(" ON CONFLICT DO NOTHING");
        sql.build().execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store staged_provider_payments", otel.kind = "client", db.system = B::SYSTEM))]
    async fn staged_provider_payments(
        &self,
        run_id: &str,
        account: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(ProviderPayment, Option<Payment>)>, StoreError> {
        let theirs = statement::<B>(
            "SELECT * FROM reconciliation_provider_payments WHERE run_id = $1 \
             AND provider_payment_id > $2 ORDER BY provider_payment_id LIMIT $3",
        )
        .bind(run_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ProviderPayment {
                provider_payment_id: row.col("provider_payment_id")?,
                status: parse_column(
                    &row.col::<String>("status")?,
                    "reconciliation_provider_payments.status",
                )?,
                failure_code: row.col("failure_code")?,
                next_url: row.col("next_url")?,
                amount: row.col("amount")?,
                reference: row.col("reference")?,
                counterfoil_id: row.col("counterfoil_id")?,
                created_at: row.col("created_at")?,
                finished_at: row.col("finished_at")?,
                refund_available: row.col("refund_available")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        if theirs.is_empty() {
            return Ok(Vec::new());
        }
        // Ours for exactly this chunk: one statement on the (account, provider id) index.
        let mut sql = Builder::<B>::new(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE account = "
        ));
        sql.push_bind(account).push(" AND provider_payment_id IN (");
        for (i, their) in theirs.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_bind(their.provider_payment_id.as_str());
        }
        sql.push(")");
        let mut ours: std::collections::HashMap<String, Payment> = sql
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let payment = payment_from_row(row)?;
                Ok((
                    payment.provider_payment_id.clone().unwrap_or_default(),
                    payment,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(theirs
            .into_iter()
            .map(|their| {
                let mine = ours.remove(&their.provider_payment_id);
                (their, mine)
            })
            .collect())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payments_unlisted_by_provider", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_unlisted_by_provider(
        &self,
        run_id: &str,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut sql = Builder::<B>::new(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE account = "
        ));
        sql.push_bind(account)
            .push(" AND created_at >= ")
            .push_bind(from)
            .push(" AND created_at < ")
            .push_bind(to);
        if let Some((at, id)) = after {
            sql.push(" AND (created_at, id) > (")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(
            " AND create_outcome = 'confirmed' AND provider_payment_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM reconciliation_provider_payments s WHERE s.run_id = ",
        )
        .push_bind(run_id)
        .push(" AND s.provider_payment_id = p.provider_payment_id) ORDER BY created_at, id LIMIT ")
        .push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(payment_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store staged_provider_refunds", otel.kind = "client", db.system = B::SYSTEM))]
    async fn staged_provider_refunds(
        &self,
        run_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ProviderRefundRecord>, StoreError> {
        statement::<B>(
            "SELECT * FROM reconciliation_provider_refunds WHERE run_id = $1 \
             AND provider_payment_id IN (SELECT DISTINCT provider_payment_id \
               FROM reconciliation_provider_refunds WHERE run_id = $2 AND provider_payment_id > $3 \
               ORDER BY provider_payment_id LIMIT $4) \
             ORDER BY provider_payment_id, provider_refund_id",
        )
        .bind(run_id)
        .bind(run_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ProviderRefundRecord {
                provider_payment_id: row.col("provider_payment_id")?,
                refund: ProviderRefund {
                    provider_refund_id: row.col("provider_refund_id")?,
                    status: parse_column(
                        &row.col::<String>("status")?,
                        "reconciliation_provider_refunds.status",
                    )?,
                    provider_status: row.col("provider_status")?,
                    amount: row.col("amount")?,
                },
            })
        })
        .collect()
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
        let run = run_from_row(&row)?;
        let found = statement::<B>(&format!(
            "{DISCREPANCY_SELECT} WHERE d.run_id = $1 ORDER BY d.id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(discrepancy_from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((run, found)))
    }
}
