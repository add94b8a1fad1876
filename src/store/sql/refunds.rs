//! The SQL of [`RefundStore`](crate::store::RefundStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::domain::refund::{
    refund_notification_on, refunded_amount_change, Refund, RefundStatus, SecondPerson,
};
use crate::domain::retention::ERASED;
use crate::domain::staff::RefundedAlone;
use crate::domain::{CreateOutcome, PaymentId, PaymentStatus};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

pub(super) const REFUND_COLUMNS: &str = "id, payment_id, amount, status, create_outcome, \
    provider_refund_id, provider_status, reason, requested_by, requested_by_label, \
    failure_code, created_at, updated_at, finished_at, approval_id, approved_by, \
    approved_by_label, approved_at";

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
        approved: match row.col::<Option<String>>("approval_id")? {
            Some(approval_id) => Some(SecondPerson {
                approval_id,
                by: row
                    .col::<Option<String>>("approved_by")?
                    .unwrap_or_default(),
                by_label: row
                    .col::<Option<String>>("approved_by_label")?
                    .unwrap_or_default(),
                at: row
                    .col::<Option<DateTime<Utc>>>("approved_at")?
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            }),
            None => None,
        },
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

impl<B: Backend> SqlStore<B> {
    /// Reads (and, on PostgreSQL, locks) a payment's row for deciding a refund of it.
    pub(super) async fn lock_payment_tx(
        tx: &mut Transaction<'static, B>,
        payment_id: &PaymentId,
    ) -> Result<Option<B::Row>, StoreError> {
        Ok(statement::<B>(&format!(
            "SELECT status, amount, personal_erased_at FROM payments WHERE id = $1{}",
            B::FOR_UPDATE
        ))
        .bind(payment_id.as_ref())
        .fetch_optional(&mut *tx)
        .await?)
    }

    /// What may still be refunded of the payment: taken, less every refund not failed and every
    /// refund waiting for a second person (but `deciding`, the one being approved). `Err` is the
    /// refusal when `refund` does not fit.
    pub(super) async fn refundable_tx(
        tx: &mut Transaction<'static, B>,
        payment: Option<&B::Row>,
        refund: &Refund,
        deciding: Option<&str>,
    ) -> Result<Result<i64, RefundClaim>, StoreError> {
        let Some(payment) = payment else {
            return Ok(Err(RefundClaim::NotRefundable));
        };
        let status: String = payment.col("status")?;
        if status != PaymentStatus::Succeeded.as_str() {
            return Ok(Err(RefundClaim::NotRefundable));
        }
        let captured: i64 = payment.col("amount")?;
        let committed: i64 = statement::<B>(
            "SELECT CAST(COALESCE((SELECT SUM(amount) FROM refunds \
             WHERE payment_id = $1 AND status <> 'failed'), 0) \
             + COALESCE((SELECT SUM(amount) FROM refund_approvals \
             WHERE payment_id = $1 AND status = 'waiting' AND id <> $2), 0) AS BIGINT)",
        )
        .bind(refund.payment_id.as_ref())
        .bind(deciding.unwrap_or(""))
        .fetch_one(&mut *tx)
        .await?
        .col_at(0)?;
        let available = crate::domain::refund::refundable_remaining(captured, committed);
        if refund.amount > available {
            return Ok(Err(RefundClaim::Exceeds { available }));
        }
        Ok(Ok(available))
    }

    /// What the requester has refunded alone (no approver, not failed): on this payment, and
    /// since the start of the day when a daily limit applies.
    async fn refunded_alone_tx(
        tx: &mut Transaction<'static, B>,
        refund: &Refund,
        solo: &SoloCheck<'_>,
    ) -> Result<RefundedAlone, StoreError> {
        let on_payment: i64 = statement::<B>(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE payment_id = $1 \
             AND requested_by = $2 AND approved_by IS NULL AND status <> 'failed'",
        )
        .bind(refund.payment_id.as_ref())
        .bind(solo.requester)
        .fetch_one(&mut *tx)
        .await?
        .col_at(0)?;
        let today: i64 = match solo.allowance.per_day {
            None => 0,
            Some(_) => {
                // Across payments, the payment's lock does not serialise one person's requests:
                // on PostgreSQL, a lock on the person does (SQLite's writes are one at a time).
                if B::SYSTEM == "postgres" {
                    statement::<B>("SELECT pg_advisory_xact_lock(hashtext($1))")
                        .bind(solo.requester)
                        .fetch_optional(&mut *tx)
                        .await?;
                }
                statement::<B>(
                    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds \
                 WHERE requested_by = $1 AND created_at >= $2 AND approved_by IS NULL \
                 AND status <> 'failed'",
                )
                .bind(solo.requester)
                .bind(solo.day_start)
                .fetch_one(&mut *tx)
                .await?
                .col_at(0)?
            }
        };
        Ok(RefundedAlone { on_payment, today })
    }

    /// Writes a refund's row (an erased payment's refund keeps no reason).
    async fn insert_refund_tx(
        tx: &mut Transaction<'static, B>,
        payment: Option<&B::Row>,
        refund: &Refund,
    ) -> Result<(), StoreError> {
        let erased: Option<DateTime<Utc>> = match payment {
            Some(row) => row.col("personal_erased_at")?,
            None => None,
        };
        let reason = if erased.is_some() {
            ERASED
        } else {
            refund.reason.as_str()
        };
        let approved = refund.approved.as_ref();
        statement::<B>(&format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}, requested_at, service) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             COALESCE((SELECT requested_at FROM refund_approvals WHERE id = $15), $12), \
             (SELECT service FROM payments WHERE id = $2))"
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
        .bind(approved.map(|a| a.approval_id.as_str()))
        .bind(approved.map(|a| a.by.as_str()))
        .bind(approved.map(|a| a.by_label.as_str()))
        .bind(approved.map(|a| a.at))
        .execute(&mut *tx)
        .await?;
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
        solo: Option<&SoloCheck<'_>>,
        audit: &AuditEntry,
    ) -> Result<RefundClaim, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // Hold the payment's row: refunds of one payment are decided one at a time.
        let payment = Self::lock_payment_tx(&mut tx, &refund.payment_id).await?;
        if !Self::claim_key_tx(&mut tx, claim).await? {
            let outcome = Self::existing_claim_tx(&mut tx, claim).await?;
            tx.commit().await?;
            return Ok(RefundClaim::Existing(outcome));
        }
        // From here a refusal rolls back: nothing is kept of a refused request.
        let available = match Self::refundable_tx(&mut tx, payment.as_ref(), refund, None).await? {
            Ok(available) => available,
            Err(refused) => return Ok(refused),
        };
        if let Some(solo) = solo {
            let already = Self::refunded_alone_tx(&mut tx, refund, solo).await?;
            if solo.allowance.needs_second_person(refund.amount, already) {
                return Ok(RefundClaim::NeedsSecondPerson);
            }
        }
        Self::insert_refund_tx(&mut tx, payment.as_ref(), refund).await?;
        Self::link_key_tx(&mut tx, claim, "refund_id", &refund.id).await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(RefundClaim::Claimed { available })
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store approve_and_insert_refund", otel.kind = "client", db.system = B::SYSTEM))]
    async fn approve_and_insert_refund(
        &self,
        decision: &ApprovalDecision<'_>,
        refund: &Refund,
        audit: &AuditEntry,
    ) -> Result<RefundClaim, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let payment = Self::lock_payment_tx(&mut tx, &refund.payment_id).await?;
        if !Self::decide_approval_tx(&mut tx, decision).await? {
            return Ok(RefundClaim::AlreadyDecided);
        }
        let available = match Self::refundable_tx(
            &mut tx,
            payment.as_ref(),
            refund,
            Some(decision.id),
        )
        .await?
        {
            Ok(available) => available,
            Err(refused) => return Ok(refused),
        };
        Self::insert_refund_tx(&mut tx, payment.as_ref(), refund).await?;
        statement::<B>(
            "UPDATE refund_approvals SET refund_id = $2, last_failure = NULL WHERE id = $1",
        )
        .bind(decision.id)
        .bind(&refund.id)
        .execute(&mut tx)
        .await?;
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
        reopened: Option<&AuditEntry>,
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
        if let (true, CreateOutcome::NotCreated, Some(approved)) =
            (updated, refund.create_outcome, refund.approved.as_ref())
        {
            let reopened_now = statement::<B>(
                "UPDATE refund_approvals SET status = 'waiting', decided_by = NULL, \
                 decided_by_label = NULL, decided_at = NULL, refund_id = NULL, last_failure = $3 \
                 WHERE id = $1 AND refund_id = $2",
            )
            .bind(&approved.approval_id)
            .bind(&refund.id)
            .bind(refund.failure_code.as_deref().unwrap_or("provider_refused"))
            .execute(&mut tx)
            .await?
            .rows_affected()
                == 1;
            if let (true, Some(audit)) = (reopened_now, reopened) {
                Self::insert_audit_tx(&mut tx, audit).await?;
            }
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
