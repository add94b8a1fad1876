//! The SQL of [`ApprovalStore`](crate::store::ApprovalStore).

use async_trait::async_trait;

use super::*;
use crate::domain::PaymentId;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

const APPROVAL_COLUMNS: &str = "id, payment_id, amount, reason, requested_by, \
    requested_by_label, requested_at, status, decided_by, decided_by_label, decided_at, refund_id, \
    decline_reason, last_failure";

fn approval_from_row(row: &impl ReadRow) -> Result<RefundApproval, StoreError> {
    let payment_id: String = row.col("payment_id")?;
    Ok(RefundApproval {
        id: row.col("id")?,
        payment_id: PaymentId::parse(&payment_id)
            .map_err(|_| StoreError::Corrupt("refund_approvals.payment_id".into()))?,
        amount: row.col("amount")?,
        reason: row.col("reason")?,
        requested_by: row.col("requested_by")?,
        requested_by_label: row.col("requested_by_label")?,
        requested_at: row.col("requested_at")?,
        status: parse_column(&row.col::<String>("status")?, "refund_approvals.status")?,
        decided_by: row.col("decided_by")?,
        decided_by_label: row.col("decided_by_label")?,
        decided_at: row.col("decided_at")?,
        refund_id: row.col("refund_id")?,
        decline_reason: row.col("decline_reason")?,
        last_failure: row.col("last_failure")?,
    })
}

#[async_trait]
impl<B: Backend> ApprovalStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store insert_refund_approval", otel.kind = "client", db.system = B::SYSTEM))]
    async fn insert_refund_approval(
        &self,
        approval: &RefundApproval,
        audit: &AuditEntry,
    ) -> Result<ApprovalInsert, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // Hold the payment's row: what waits and what is refunded are decided one at a time.
        let payment = Self::lock_payment_tx(&mut tx, &approval.payment_id).await?;
        let exists = statement::<B>("SELECT 1 FROM refund_approvals WHERE id = $1")
            .bind(&approval.id)
            .fetch_optional(&mut tx)
            .await?
            .is_some();
        if exists {
            return Ok(ApprovalInsert::Existing);
        }
        let sized = crate::domain::refund::Refund {
            id: approval.id.clone(),
            payment_id: approval.payment_id.clone(),
            amount: approval.amount,
            status: crate::domain::refund::RefundStatus::Pending,
            create_outcome: crate::domain::CreateOutcome::Pending,
            provider_refund_id: None,
            provider_status: None,
            reason: String::new(),
            requested_by: String::new(),
            requested_by_label: String::new(),
            approved: None,
            failure_code: None,
            created_at: approval.requested_at,
            updated_at: approval.requested_at,
            finished_at: None,
        };
        match Self::refundable_tx(&mut tx, payment.as_ref(), &sized, None).await? {
            Ok(_) => {}
            Err(RefundClaim::Exceeds { available }) => {
                return Ok(ApprovalInsert::Exceeds { available })
            }
            Err(_) => return Ok(ApprovalInsert::NotRefundable),
        }
        statement::<B>(&format!(
            "INSERT INTO refund_approvals ({APPROVAL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL, NULL, NULL)"
        ))
        .bind(&approval.id)
        .bind(approval.payment_id.as_ref())
        .bind(approval.amount)
        .bind(&approval.reason)
        .bind(&approval.requested_by)
        .bind(&approval.requested_by_label)
        .bind(approval.requested_at)
        .bind(approval.status.as_str())
        .execute(&mut tx)
        .await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(ApprovalInsert::Inserted)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store get_refund_approval", otel.kind = "client", db.system = B::SYSTEM))]
    async fn get_refund_approval(&self, id: &str) -> Result<Option<RefundApproval>, StoreError> {
        statement::<B>(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM refund_approvals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(approval_from_row)
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store waiting_refund_approvals", otel.kind = "client", db.system = B::SYSTEM))]
    async fn waiting_refund_approvals(
        &self,
        limit: u32,
    ) -> Result<Vec<RefundApproval>, StoreError> {
        statement::<B>(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM refund_approvals WHERE status = 'waiting' \
             ORDER BY requested_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(approval_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store refund_approvals_for_payment", otel.kind = "client", db.system = B::SYSTEM))]
    async fn refund_approvals_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<RefundApproval>, StoreError> {
        statement::<B>(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM refund_approvals WHERE payment_id = $1 \
             ORDER BY requested_at, id"
        ))
        .bind(payment_id.as_ref())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(approval_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store decline_refund_approval", otel.kind = "client", db.system = B::SYSTEM))]
    async fn decline_refund_approval(
        &self,
        decision: &ApprovalDecision<'_>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let decided = Self::decide_approval_tx(&mut tx, decision).await?;
        if decided {
            Self::insert_audit_tx(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(decided)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store refund_register", otel.kind = "client", db.system = B::SYSTEM))]
    async fn refund_register(
        &self,
        query: &RegisterQuery,
    ) -> Result<Vec<crate::domain::refund::RefundRecord>, StoreError> {
        super::register::refund_register(&self.pool, query).await
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store refund_approvals_requested_by", otel.kind = "client", db.system = B::SYSTEM))]
    async fn refund_approvals_requested_by(
        &self,
        requested_by: &str,
        limit: u32,
    ) -> Result<Vec<RefundApproval>, StoreError> {
        statement::<B>(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM refund_approvals WHERE requested_by = $1 \
             ORDER BY requested_at DESC, id DESC LIMIT $2"
        ))
        .bind(requested_by)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(approval_from_row)
        .collect()
    }
}

impl<B: Backend> SqlStore<B> {
    /// Moves a waiting approval to its decision (compare-and-set): false when it was no longer
    /// waiting.
    pub(super) async fn decide_approval_tx(
        tx: &mut sqlx::Transaction<'static, B>,
        decision: &ApprovalDecision<'_>,
    ) -> Result<bool, StoreError> {
        Ok(statement::<B>(
            "UPDATE refund_approvals SET status = $2, decided_by = $3, decided_by_label = $4, \
             decided_at = $5, decline_reason = $6 WHERE id = $1 AND status = 'waiting'",
        )
        .bind(decision.id)
        .bind(decision.status.as_str())
        .bind(decision.decided_by)
        .bind(decision.decided_by_label)
        .bind(decision.at)
        .bind(decision.decline_reason)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1)
    }
}
