//! The SQL of [`IncomeStore`](crate::store::IncomeStore).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::domain::income::{PostingRow, PostingSource};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

const BATCH_COLUMNS: &str = "id, account, number, reference, day, period, layout, row_count, \
    control_total, checksum, built_at, status, pushed, attempts, next_attempt_at, \
    outcome_unknown, last_error, posted_at, posted_by, posted_by_label";

const ROW_COLUMNS: &str = "line_number, kind, line_id, payment_id, refund_id, service, at, \
    gross, vat_amount, fund_code, mop_code, vat_code, vat_rate_basis_points, \
    amounts_include_vat, office_code, account_reference, unallocated, narrative, psp_reference";

/// Rows per insert statement: 19 values each keeps well within both databases' bind limits.
const ROWS_PER_INSERT: usize = 500;

fn batch_from_row(row: &impl ReadRow) -> Result<IncomeBatch, StoreError> {
    let day: String = row.col("day")?;
    let layout: String = row.col("layout")?;
    Ok(IncomeBatch {
        id: row.col("id")?,
        account: row.col("account")?,
        number: row.col("number")?,
        reference: row.col("reference")?,
        day: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt("income_batches.day".into()))?,
        period: row.col("period")?,
        layout: serde_json::from_str(&layout)
            .map_err(|_| StoreError::Corrupt("income_batches.layout".into()))?,
        row_count: row.col("row_count")?,
        control_total: row.col("control_total")?,
        checksum: row.col("checksum")?,
        built_at: row.col("built_at")?,
        status: parse_column(&row.col::<String>("status")?, "income_batches.status")?,
        pushed: row.col("pushed")?,
        attempts: row.col("attempts")?,
        next_attempt_at: row.col("next_attempt_at")?,
        outcome_unknown: row.col("outcome_unknown")?,
        last_error: row.col("last_error")?,
        posted_at: row.col("posted_at")?,
        posted_by: row.col("posted_by")?,
        posted_by_label: row.col("posted_by_label")?,
    })
}

fn posting_row_from(row: &impl ReadRow) -> Result<PostingRow, StoreError> {
    Ok(PostingRow {
        line_number: row.col("line_number")?,
        kind: row.col("kind")?,
        line_id: row.col("line_id")?,
        payment_id: row.col("payment_id")?,
        refund_id: row.col("refund_id")?,
        service: row.col("service")?,
        at: row.col("at")?,
        gross: row.col("gross")?,
        vat_amount: row.col("vat_amount")?,
        fund_code: row.col("fund_code")?,
        mop_code: row.col("mop_code")?,
        vat_code: row.col("vat_code")?,
        vat_rate_basis_points: row.col("vat_rate_basis_points")?,
        amounts_include_vat: row.col("amounts_include_vat")?,
        office_code: row.col("office_code")?,
        account_reference: row.col("account_reference")?,
        unallocated: row.col("unallocated")?,
        narrative: row.col("narrative")?,
        psp_reference: row.col("psp_reference")?,
    })
}

fn source_from_row(row: &impl ReadRow) -> Result<PostingSource, StoreError> {
    let metadata: String = row.col("metadata")?;
    Ok(PostingSource {
        kind: parse_column(&row.col::<String>("kind")?, "income source kind")?,
        line_id: row.col("line_id")?,
        payment_id: row.col("payment_id")?,
        refund_id: row.col("refund_id")?,
        at: row.col("at")?,
        service: row.col("service")?,
        provider: row.col("provider")?,
        request_ref: row.col("request_ref")?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|_| StoreError::Corrupt("payments.metadata is not a JSON object".into()))?,
        provider_reference: row.col("provider_reference")?,
        amount: row.col("amount")?,
    })
}

#[async_trait]
impl<B: Backend> IncomeStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store latest_batch", otel.kind = "client", db.system = B::SYSTEM))]
    async fn latest_batch(&self, account: &str) -> Result<Option<IncomeBatch>, StoreError> {
        statement::<B>(&format!(
            "SELECT {BATCH_COLUMNS} FROM income_batches WHERE account = $1 \
             ORDER BY number DESC LIMIT 1"
        ))
        .bind(account)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| batch_from_row(&row))
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store unbatched_sources", otel.kind = "client", db.system = B::SYSTEM))]
    async fn unbatched_sources(
        &self,
        account: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<PostingSource>, StoreError> {
        statement::<B>(
            "SELECT * FROM ( \
               SELECT 'payment' AS kind, p.id AS line_id, p.id AS payment_id, \
                 CAST(NULL AS TEXT) AS refund_id, p.finished_at AS at, p.service, p.provider, \
                 p.request_ref, p.metadata, p.provider_payment_id AS provider_reference, p.amount \
               FROM payments p \
               WHERE p.status = 'succeeded' AND p.account = $1 \
                 AND p.finished_at >= $2 AND p.finished_at < $3 \
                 AND NOT EXISTS (SELECT 1 FROM income_batch_lines l WHERE l.line_id = p.id) \
               UNION ALL \
               SELECT 'refund' AS kind, r.id AS line_id, r.payment_id, r.id AS refund_id, \
                 r.finished_at AS at, p.service, p.provider, p.request_ref, p.metadata, \
                 r.provider_refund_id AS provider_reference, -r.amount AS amount \
               FROM refunds r JOIN payments p ON p.id = r.payment_id \
               WHERE r.status = 'succeeded' AND p.account = $1 \
                 AND r.finished_at >= $2 AND r.finished_at < $3 \
                 AND NOT EXISTS (SELECT 1 FROM income_batch_lines l WHERE l.line_id = r.id) \
             ) AS sources ORDER BY at, line_id",
        )
        .bind(account)
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(source_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store insert_batch", otel.kind = "client", db.system = B::SYSTEM))]
    async fn insert_batch(
        &self,
        batch: &IncomeBatch,
        rows: &[PostingRow],
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let layout = serde_json::to_string(&batch.layout).expect("a layout serialises");
        let inserted = statement::<B>(&format!(
            "INSERT INTO income_batches ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT DO NOTHING"
        ))
        .bind(&batch.id)
        .bind(&batch.account)
        .bind(batch.number)
        .bind(&batch.reference)
        .bind(batch.day.format("%Y-%m-%d").to_string())
        .bind(&batch.period)
        .bind(layout)
        .bind(batch.row_count)
        .bind(batch.control_total)
        .bind(&batch.checksum)
        .bind(batch.built_at)
        .bind(batch.status.as_str())
        .bind(batch.pushed)
        .bind(batch.attempts)
        .bind(batch.next_attempt_at)
        .bind(batch.outcome_unknown)
        .bind(&batch.last_error)
        .bind(batch.posted_at)
        .bind(&batch.posted_by)
        .bind(&batch.posted_by_label)
        .execute(&mut tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = Builder::<B>::new(format!(
                "INSERT INTO income_batch_lines (batch_id, {ROW_COLUMNS}) VALUES "
            ));
            sql.push_rows(chunk.iter().map(|r| {
                [
                    batch.id.as_str().into(),
                    r.line_number.into(),
                    r.kind.as_str().into(),
                    r.line_id.as_str().into(),
                    r.payment_id.as_str().into(),
                    r.refund_id.as_deref().into(),
                    r.service.as_str().into(),
                    r.at.into(),
                    r.gross.into(),
                    r.vat_amount.into(),
                    r.fund_code.as_str().into(),
                    r.mop_code.as_str().into(),
                    r.vat_code.as_str().into(),
                    r.vat_rate_basis_points.into(),
                    r.amounts_include_vat.into(),
                    r.office_code.as_str().into(),
                    r.account_reference.as_str().into(),
                    r.unallocated.into(),
                    r.narrative.as_str().into(),
                    r.psp_reference.as_deref().into(),
                ]
            }));
            if let Err(e) = sql.build().execute(&mut tx).await {
                return match StoreError::from(e) {
                    // A row another server's batch took first: this batch is not built.
                    StoreError::Conflict => Ok(false),
                    other => Err(other),
                };
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store batches_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn batches_page(
        &self,
        before: Option<(NaiveDate, String)>,
        limit: u32,
    ) -> Result<Vec<IncomeBatch>, StoreError> {
        let mut sql = Builder::<B>::new(format!("SELECT {BATCH_COLUMNS} FROM income_batches"));
        if let Some((day, account)) = before {
            sql.push(" WHERE (day, account) < (")
                .push_bind(day.format("%Y-%m-%d").to_string())
                .push(", ")
                .push_bind(account)
                .push(")");
        }
        sql.push(" ORDER BY day DESC, account DESC LIMIT ")
            .push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(batch_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store get_batch", otel.kind = "client", db.system = B::SYSTEM))]
    async fn get_batch(&self, id: &str) -> Result<Option<IncomeBatch>, StoreError> {
        statement::<B>(&format!(
            "SELECT {BATCH_COLUMNS} FROM income_batches WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| batch_from_row(&row))
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store batch_rows", otel.kind = "client", db.system = B::SYSTEM))]
    async fn batch_rows(&self, id: &str) -> Result<Vec<PostingRow>, StoreError> {
        statement::<B>(&format!(
            "SELECT {ROW_COLUMNS} FROM income_batch_lines WHERE batch_id = $1 \
             ORDER BY line_number"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(posting_row_from)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store lease_batch_to_post", otel.kind = "client", db.system = B::SYSTEM))]
    async fn lease_batch_to_post(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<IncomeBatch>, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // Oldest first: an income system takes batches in their order.
        let row = statement::<B>(&format!(
            "UPDATE income_batches SET next_attempt_at = $2, attempts = attempts + 1 \
             WHERE id IN ( \
               SELECT id FROM income_batches WHERE status = 'ready' AND pushed = TRUE \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $1) \
               ORDER BY account, number LIMIT 1{}) \
             RETURNING {BATCH_COLUMNS}",
            B::SKIP_LOCKED
        ))
        .bind(now)
        .bind(until)
        .fetch_optional(&mut tx)
        .await?;
        tx.commit().await?;
        row.map(|row| batch_from_row(&row)).transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store record_post", otel.kind = "client", db.system = B::SYSTEM))]
    async fn record_post(
        &self,
        id: &str,
        record: &PostRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let (posted_at, posted_by, posted_label) = match &record.posted {
            Some((at, by, label)) => (Some(*at), Some(by.clone()), Some(label.clone())),
            None => (None, None, None),
        };
        let done = statement::<B>(
            "UPDATE income_batches SET status = $2, next_attempt_at = $3, outcome_unknown = $4, \
             last_error = $5, posted_at = $6, posted_by = $7, posted_by_label = $8 \
             WHERE id = $1 AND status <> 'posted'",
        )
        .bind(id)
        .bind(record.status.as_str())
        .bind(record.next_attempt_at)
        .bind(record.outcome_unknown)
        .bind(&record.last_error)
        .bind(posted_at)
        .bind(posted_by)
        .bind(posted_label)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(audit) = audit {
            Self::insert_audit_tx(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store locked_periods", otel.kind = "client", db.system = B::SYSTEM))]
    async fn locked_periods(&self) -> Result<Vec<LockedPeriod>, StoreError> {
        statement::<B>(
            "SELECT period, locked_at, locked_by_label FROM income_periods ORDER BY period",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(LockedPeriod {
                period: row.col("period")?,
                locked_at: row.col("locked_at")?,
                locked_by_label: row.col("locked_by_label")?,
            })
        })
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store lock_period", otel.kind = "client", db.system = B::SYSTEM))]
    async fn lock_period(
        &self,
        period: &LockedPeriod,
        locked_by: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let done = statement::<B>(
            "INSERT INTO income_periods (period, locked_at, locked_by, locked_by_label) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&period.period)
        .bind(period.locked_at)
        .bind(locked_by)
        .bind(&period.locked_by_label)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store period_totals", otel.kind = "client", db.system = B::SYSTEM))]
    async fn period_totals(&self, months: u32) -> Result<Vec<PeriodFundTotal>, StoreError> {
        statement::<B>(
            "SELECT b.period, l.fund_code, COUNT(*) AS rows_posted, CAST(SUM(l.gross) AS BIGINT) AS total \
             FROM income_batch_lines l JOIN income_batches b ON b.id = l.batch_id \
             WHERE b.period IN (SELECT DISTINCT period FROM income_batches \
                                ORDER BY period DESC LIMIT $1) \
             GROUP BY b.period, l.fund_code ORDER BY b.period DESC, l.fund_code",
        )
        .bind(i64::from(months))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(PeriodFundTotal {
                period: row.col("period")?,
                fund_code: row.col("fund_code")?,
                rows: row.col("rows_posted")?,
                total: row.col("total")?,
            })
        })
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store day_lines_elsewhere", otel.kind = "client", db.system = B::SYSTEM))]
    async fn day_lines_elsewhere(
        &self,
        account: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        batch_id: &str,
    ) -> Result<Vec<LineElsewhere>, StoreError> {
        statement::<B>(
            "SELECT d.*, l.batch_id, b.reference AS batch_reference FROM ( \
               SELECT 'payment' AS kind, p.id AS line_id, p.id AS payment_id, \
                 p.finished_at AS at, p.amount \
               FROM payments p WHERE p.status = 'succeeded' AND p.account = $1 \
                 AND p.finished_at >= $2 AND p.finished_at < $3 \
               UNION ALL \
               SELECT 'refund' AS kind, r.id AS line_id, r.payment_id, r.finished_at AS at, \
                 -r.amount AS amount \
               FROM refunds r JOIN payments p ON p.id = r.payment_id \
               WHERE r.status = 'succeeded' AND p.account = $1 \
                 AND r.finished_at >= $2 AND r.finished_at < $3 \
             ) AS d \
             LEFT JOIN income_batch_lines l ON l.line_id = d.line_id \
             LEFT JOIN income_batches b ON b.id = l.batch_id \
             WHERE l.batch_id IS NULL OR l.batch_id <> $4 \
             ORDER BY d.at, d.line_id",
        )
        .bind(account)
        .bind(start)
        .bind(end)
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(LineElsewhere {
                line_id: row.col("line_id")?,
                kind: row.col("kind")?,
                payment_id: row.col("payment_id")?,
                at: row.col("at")?,
                amount: row.col("amount")?,
                batch_id: row.col("batch_id")?,
                batch_reference: row.col("batch_reference")?,
            })
        })
        .collect()
    }
}
