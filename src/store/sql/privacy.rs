//! The SQL of [`PrivacyStore`](crate::store::PrivacyStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

/// What pseudonymised personal fields read.
use crate::domain::retention::ERASED;

/// Final payments that finished before the value that follows and still hold personal data.
const DUE_FOR_ERASURE_BEFORE: &str =
    "personal_erased_at IS NULL AND finished_at IS NOT NULL AND finished_at < ";

/// Payments (`p`) whose creation, completion and refunds all fall before `$1`.
const DUE_FOR_REMOVAL: &str = "p.created_at < $1 \
    AND (p.finished_at IS NULL OR p.finished_at < $1) \
    AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id \
      AND (r.created_at >= $1 OR r.finished_at >= $1))";

#[async_trait]
impl<B: Backend> PrivacyStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store erase_payments", otel.kind = "client", db.system = B::SYSTEM))]
    async fn erase_payments(
        &self,
        payment_ids: &[String],
        at: DateTime<Utc>,
        audit: Option<&AuditEntry>,
    ) -> Result<ErasureCounts, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let mut counts = ErasureCounts::default();
        if !payment_ids.is_empty() {
            // One statement for the batch: the metadata's values are replaced in the database.
            let mut update = Builder::<B>::new(format!(
                "UPDATE payments SET description = '{ERASED}', email = NULL, metadata = {}, \
                 return_url = '{ERASED}', next_url = NULL, personal_erased_at = ",
                B::ERASED_METADATA
            ));
            update
                .push_bind(at)
                .push(" WHERE personal_erased_at IS NULL AND id IN ");
            push_ids(&mut update, payment_ids);
            counts.payments = update.build().execute(&mut tx).await?.rows_affected();

            // Every payment of the request, erased now or before: a refund reason or
            // a stored answer that arrived after an earlier erasure is caught too.
            let mut refunds = Builder::<B>::new("UPDATE refunds SET reason = ");
            refunds
                .push_bind(ERASED)
                .push(" WHERE reason <> ")
                .push_bind(ERASED);
            refunds.push(" AND payment_id IN ");
            push_ids(&mut refunds, payment_ids);
            counts.refunds = refunds.build().execute(&mut tx).await?.rows_affected();
            // A refund asked for in the console keeps its reason in its approval too.
            // A decline's reason may name the citizen too.
            let mut approvals = Builder::<B>::new("UPDATE refund_approvals SET reason = ");
            approvals
                .push_bind(ERASED)
                .push(", decline_reason = CASE WHEN decline_reason IS NULL THEN NULL ELSE ")
                .push_bind(ERASED)
                .push(" END WHERE payment_id IN ");
            push_ids(&mut approvals, payment_ids);
            approvals.build().execute(&mut tx).await?;
            // Stored answers held the personal fields: replays now read the row.
            let mut keys = Builder::<B>::new(
                "UPDATE idempotency_keys SET state = 'linked', response_status = NULL, \
                 response_body = NULL WHERE state = 'completed' AND (payment_id IN ",
            );
            push_ids(&mut keys, payment_ids);
            keys.push(" OR refund_id IN (SELECT id FROM refunds WHERE payment_id IN ");
            push_ids(&mut keys, payment_ids);
            keys.push("))");
            keys.build().execute(&mut tx).await?;
        }
        if let Some(audit) = audit {
            Self::insert_audit_tx(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payments_due_for_erasure", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_due_for_erasure(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueForErasure>,
        limit: u32,
    ) -> Result<Vec<DueForErasure>, StoreError> {
        let mut query = Builder::<B>::new(format!(
            "SELECT id, finished_at FROM payments WHERE {DUE_FOR_ERASURE_BEFORE}"
        ));
        query.push_bind(before);
        if let Some(after) = after {
            query
                .push(" AND (finished_at > ")
                .push_bind(after.finished_at)
                .push(" OR (finished_at = ")
                .push_bind(after.finished_at)
                .push(" AND id > ")
                .push_bind(after.id.clone())
                .push("))");
        }
        query
            .push(" ORDER BY finished_at, id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(DueForErasure {
                    id: row.col("id")?,
                    finished_at: row.col("finished_at")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store count_due", otel.kind = "client", db.system = B::SYSTEM))]
    async fn count_due(
        &self,
        erasure_before: DateTime<Utc>,
        removal_cutoff: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let row = statement::<B>(&format!(
            "SELECT (SELECT COUNT(*) FROM payments WHERE {DUE_FOR_ERASURE_BEFORE}$1) AS erasure, \
             (SELECT COUNT(*) FROM payments p WHERE {}) AS removal",
            DUE_FOR_REMOVAL.replace("$1", "$2")
        ))
        .bind(erasure_before)
        .bind(removal_cutoff)
        .fetch_one(&self.pool)
        .await?;
        let count = |name: &str| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.col::<i64>(name)?).unwrap_or(0))
        };
        Ok((count("erasure")?, count("removal")?))
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store erase_refund_reasons", otel.kind = "client", db.system = B::SYSTEM))]
    async fn erase_refund_reasons(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = statement::<B>(
            "UPDATE refunds SET reason = $1 WHERE reason <> $1 \
             AND finished_at IS NOT NULL AND finished_at < $2",
        )
        .bind(ERASED)
        .bind(before)
        .execute(&self.pool)
        .await?;
        // The reasons of refunds decided in the console by two people.
        statement::<B>(
            "UPDATE refund_approvals SET reason = $1, decline_reason = \
             CASE WHEN decline_reason IS NULL THEN NULL ELSE $1 END WHERE reason <> $1 \
             AND decided_at IS NOT NULL AND decided_at < $2",
        )
        .bind(ERASED)
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payments_due_for_removal", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_due_for_removal(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        first_column(
            statement::<B>(&format!(
                "SELECT p.id FROM payments p WHERE {DUE_FOR_REMOVAL} \
                 ORDER BY p.created_at, p.id LIMIT $2"
            ))
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
        )
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store money_movements", otel.kind = "client", db.system = B::SYSTEM))]
    async fn money_movements(
        &self,
        payment_ids: &[String],
    ) -> Result<Vec<crate::domain::retention::Movement>, StoreError> {
        if payment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Builder::<B>::new(
            "SELECT finished_at AS at, service, amount FROM payments \
             WHERE status = 'succeeded' AND finished_at IS NOT NULL AND id IN ",
        );
        push_ids(&mut sql, payment_ids);
        sql.push(
            " UNION ALL SELECT r.finished_at AS at, p.service, -r.amount AS amount \
             FROM refunds r JOIN payments p ON p.id = r.payment_id \
             WHERE r.status = 'succeeded' AND r.finished_at IS NOT NULL AND r.payment_id IN ",
        );
        push_ids(&mut sql, payment_ids);
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(crate::domain::retention::Movement {
                    at: row.col("at")?,
                    service: row.col("service")?,
                    amount: row.col("amount")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store archive_and_remove", otel.kind = "client", db.system = B::SYSTEM))]
    async fn archive_and_remove(
        &self,
        payment_ids: &[String],
        totals: &[DailyTotal],
        audit: &AuditEntry,
    ) -> Result<u64, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        for total in totals {
            statement::<B>(
                "INSERT INTO ledger_daily_totals (day, service, payments, gross_pence, refunds, refunds_pence) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (day, service) DO UPDATE SET \
                 payments = ledger_daily_totals.payments + excluded.payments, \
                 gross_pence = ledger_daily_totals.gross_pence + excluded.gross_pence, \
                 refunds = ledger_daily_totals.refunds + excluded.refunds, \
                 refunds_pence = ledger_daily_totals.refunds_pence + excluded.refunds_pence",
            )
            .bind(&total.day)
            .bind(&total.service)
            .bind(total.payments)
            .bind(total.gross_pence)
            .bind(total.refunds)
            .bind(total.refunds_pence)
            .execute(&mut tx)
            .await?;
        }
        let mut removed = 0;
        if !payment_ids.is_empty() {
            for (table, condition) in [
                ("outbox", "payment_id IN "),
                ("webhook_receipts", "payment_id IN "),
                (
                    "idempotency_keys",
                    "refund_id IN (SELECT id FROM refunds WHERE payment_id IN ",
                ),
                ("idempotency_keys", "payment_id IN "),
                ("payment_events", "payment_id IN "),
                ("refund_approvals", "payment_id IN "),
                ("refunds", "payment_id IN "),
                ("payments", "id IN "),
            ] {
                let mut sql = Builder::<B>::new(format!("DELETE FROM {table} WHERE {condition}"));
                push_ids(&mut sql, payment_ids);
                if condition.ends_with("payment_id IN ") && condition.contains("SELECT") {
                    sql.push(")");
                }
                let done = sql.build().execute(&mut tx).await?;
                if table == "payments" {
                    removed = done.rows_affected();
                }
            }
        }
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(removed)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store archived_totals", otel.kind = "client", db.system = B::SYSTEM))]
    async fn archived_totals(
        &self,
        from: &str,
        to: &str,
        service: Option<&str>,
    ) -> Result<Vec<DailyTotal>, StoreError> {
        statement::<B>(
            "SELECT day, service, payments, gross_pence, refunds, refunds_pence \
             FROM ledger_daily_totals WHERE day >= $1 AND day <= $2 \
             AND ($3 IS NULL OR service = $3) ORDER BY day, service",
        )
        .bind(from)
        .bind(to)
        .bind(service)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(DailyTotal {
                day: row.col("day")?,
                service: row.col("service")?,
                payments: row.col("payments")?,
                gross_pence: row.col("gross_pence")?,
                refunds: row.col("refunds")?,
                refunds_pence: row.col("refunds_pence")?,
            })
        })
        .collect()
    }
}
