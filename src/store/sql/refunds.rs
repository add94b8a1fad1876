//! The SQL of [`RefundStore`](crate::store::RefundStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::privacy::ERASED;
use super::*;
use crate::domain::refund::{refund_notification_on, refunded_amount_change, Refund, RefundStatus};
use crate::domain::{CreateOutcome, PaymentId, PaymentStatus};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

pub(super) const REFUND_COLUMNS: &str = "id, payment_id, amount, status, create_outcome, \
    provider_refund_id, provider_status, reason, requested_by, requested_by_label, \
    failure_code, created_at, updated_at, finished_at";

pub(super) fn refund_from_row(row: &impl ReadRow) -> Result<Refund, StoreError> {
    let payment_id: String = row.col("payment_id")?;
    Ok(Refund {
        id: row.col("id")?,
        payment_id: PaymentId::parse(&payment_id)
            .map_err(|_| StoreError::Corrupt("refunds.payment_id".into()))?,
        amount: row.col("amount")?,
        status: parse_column(&row.col::<String>("status")?, "refunds.status")?,
        create_outcome: parse_column(
            &row.col::<String>("create_outcome")?,
            "refunds.create_outcome",
        )?,
        provider_refund_id: row.col("provider_refund_id")?,
        provider_status: row.col("provider_status")?,
        reason: row.col("reason")?,
        requested_by: row.col("requested_by")?,
        requested_by_label: row.col("requested_by_label")?,
        failure_code: row.col("failure_code")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        finished_at: row.col("finished_at")?,
    })
}

impl<B: Backend> SqlStore<B> {
    /// What a refund's move into `to` does beyond its own row: a succeeded refund
    /// adds to the payment's refunded amount, and a final one tells the CRM.
    pub(super) async fn refund_effects_tx(
        tx: &mut Transaction<'static, B>,
        refund: &Refund,
        from: RefundStatus,
        to: RefundStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let delta = refunded_amount_change(refund.amount, from, to);
        if delta != 0 {
            statement::<B>(
                "UPDATE payments SET refunded_amount = refunded_amount + $2 WHERE id = $1",
            )
            .bind(refund.payment_id.as_ref())
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(event_type) = refund_notification_on(from, to) {
            Self::insert_outbox_row(tx, event_type, &refund.payment_id, Some(&refund.id), at)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> RefundStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store claim_and_insert_refund", otel.kind = "client", db.system = B::SYSTEM))]
    async fn claim_and_insert_refund(
        &self,
        claim: &IdempotencyClaim,
        refund: &Refund,
        audit: &AuditEntry,
    ) -> Result<RefundClaim, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // Hold the payment's row: refunds of one payment are decided one at a time.
        let payment = statement::<B>(&format!(
            "SELECT status, amount, personal_erased_at FROM payments WHERE id = $1{}",
            B::FOR_UPDATE
        ))
        .bind(refund.payment_id.as_ref())
        .fetch_optional(&mut tx)
        .await?;
        if !Self::claim_key_tx(&mut tx, claim).await? {
            let outcome = Self::existing_claim_tx(&mut tx, claim).await?;
            tx.commit().await?;
            return Ok(RefundClaim::Existing(outcome));
        }
        // From here a refusal rolls back: nothing is kept of a refused request.
        let Some(payment) = payment else {
            return Ok(RefundClaim::NotRefundable);
        };
        let status: String = payment.col("status")?;
        if status != PaymentStatus::Succeeded.as_str() {
            return Ok(RefundClaim::NotRefundable);
        }
        let captured: i64 = payment.col("amount")?;
        let committed: i64 = statement::<B>(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds \
             WHERE payment_id = $1 AND status <> 'failed'",
        )
        .bind(refund.payment_id.as_ref())
        .fetch_one(&mut tx)
        .await?
        .col_at(0)?;
        let available = crate::domain::refund::refundable_remaining(captured, committed);
        if refund.amount > available {
            return Ok(RefundClaim::Exceeds { available });
        }
        // A payment whose personal data was erased takes none afterwards: its
        // request stays erased.
        let erased: Option<DateTime<Utc>> = payment.col("personal_erased_at")?;
        let reason = if erased.is_some() {
            ERASED
        } else {
            refund.reason.as_str()
        };
        statement::<B>(&format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&refund.id)
        .bind(refund.payment_id.as_ref())
        .bind(refund.amount)
        .bind(refund.status.as_str())
        .bind(create_outcome_text(refund.create_outcome))
        .bind(&refund.provider_refund_id)
        .bind(&refund.provider_status)
        .bind(reason)
        .bind(&refund.requested_by)
        .bind(&refund.requested_by_label)
        .bind(&refund.failure_code)
        .bind(refund.created_at)
        .bind(refund.updated_at)
        .bind(refund.finished_at)
        .execute(&mut tx)
        .await?;
        Self::link_key_tx(&mut tx, claim, "refund_id", &refund.id).await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(RefundClaim::Claimed { available })
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store settle_refund", otel.kind = "client", db.system = B::SYSTEM))]
    async fn settle_refund(
        &self,
        refund: &Refund,
        previous: RefundStatus,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let updated = statement::<B>(
            "UPDATE refunds SET status = $2, create_outcome = $3, provider_refund_id = $4, \
             provider_status = $5, failure_code = $6, updated_at = $7, finished_at = $8 \
             WHERE id = $1 AND create_outcome IN ('pending', 'unknown')",
        )
        .bind(&refund.id)
        .bind(refund.status.as_str())
        .bind(create_outcome_text(refund.create_outcome))
        .bind(&refund.provider_refund_id)
        .bind(&refund.provider_status)
        .bind(&refund.failure_code)
        .bind(refund.updated_at)
        .bind(refund.finished_at)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if updated && refund.create_outcome == CreateOutcome::Confirmed {
            Self::refund_effects_tx(&mut tx, refund, previous, refund.status, refund.updated_at)
                .await?;
        }
        if let Some((claim, settle)) = idempotency {
            Self::settle_key_tx(&mut tx, claim, &settle).await?;
            // The answer names the reason: for an erased payment it is not kept, and
            // a replay reads the (pseudonymised) row instead.
            statement::<B>(
                "UPDATE idempotency_keys SET state = 'linked', response_status = NULL, \
                 response_body = NULL WHERE principal = $1 AND idempotency_key = $2 \
                 AND state = 'completed' AND EXISTS (SELECT 1 FROM payments \
                 WHERE id = $3 AND personal_erased_at IS NOT NULL)",
            )
            .bind(&claim.principal)
            .bind(claim.key.as_ref())
            .bind(refund.payment_id.as_ref())
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store record_refund_status", otel.kind = "client", db.system = B::SYSTEM))]
    async fn record_refund_status(
        &self,
        refund_id: &str,
        from: RefundStatus,
        to: RefundStatus,
        provider_status: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let row = statement::<B>(&format!(
            "UPDATE refunds SET status = $3, provider_status = $4, updated_at = $5, \
             finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $5 END \
             WHERE id = $1 AND status = $2 RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(provider_status)
        .bind(at)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let refund = refund_from_row(&row)?;
        Self::refund_effects_tx(&mut tx, &refund, from, to, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store get_refund", otel.kind = "client", db.system = B::SYSTEM))]
    async fn get_refund(&self, id: &str) -> Result<Option<Refund>, StoreError> {
        statement::<B>(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(refund_from_row)
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store list_refunds", otel.kind = "client", db.system = B::SYSTEM))]
    async fn list_refunds(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError> {
        statement::<B>(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
        ))
        .bind(payment_id.as_ref())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(refund_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store open_refunds", otel.kind = "client", db.system = B::SYSTEM))]
    async fn open_refunds(
        &self,
        failed_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        statement::<B>(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE provider_refund_id IS NOT NULL \
             AND (status = 'pending' OR (status = 'failed' AND updated_at >= $1)) \
             ORDER BY updated_at LIMIT $2"
        ))
        .bind(failed_since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(refund_from_row)
        .collect()
    }
}
