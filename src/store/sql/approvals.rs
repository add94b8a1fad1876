//! The SQL of [`ApprovalStore`](crate::store::ApprovalStore).

use async_trait::async_trait;

use super::*;
use crate::domain::PaymentId;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

const APPROVAL_COLUMNS: &str = "id, payment_id, amount, reason, requested_by, \
    requested_by_label, requested_at, status, decided_by, decided_by_label, decided_at, refund_id";

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
    })
}

#[async_trait]
impl<B: Backend> ApprovalStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store insert_refund_approval", otel.kind = "client", db.system = B::SYSTEM))]
    async fn insert_refund_approval(
        &self,
        approval: &RefundApproval,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let inserted = statement::<B>(&format!(
            "INSERT INTO refund_approvals ({APPROVAL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL) \
             ON CONFLICT (id) DO NOTHING"
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
        .await?
        .rows_affected()
            == 1;
        if inserted {
            Self::insert_audit_tx(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(inserted)
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store decide_refund_approval", otel.kind = "client", db.system = B::SYSTEM))]
    async fn decide_refund_approval(
        &self,
        decision: &ApprovalDecision<'_>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let decided = statement::<B>(
            "UPDATE refund_approvals SET status = $2, decided_by = $3, decided_by_label = $4, \
             decided_at = $5 WHERE id = $1 AND status = 'waiting'",
        )
        .bind(decision.id)
        .bind(decision.status.as_str())
        .bind(decision.decided_by)
        .bind(decision.decided_by_label)
        .bind(decision.at)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if decided {
            Self::insert_audit_tx(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(decided)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store link_refund_approval", otel.kind = "client", db.system = B::SYSTEM))]
    async fn link_refund_approval(&self, id: &str, refund_id: &str) -> Result<(), StoreError> {
        statement::<B>("UPDATE refund_approvals SET refund_id = $2 WHERE id = $1")
            .bind(id)
            .bind(refund_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
