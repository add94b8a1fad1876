//! The SQL of [`NotificationStore`](crate::store::NotificationStore): the CRM outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::domain::{notification_type, PaymentId, PaymentStatus};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

pub(super) const NOTIFICATION_COLUMNS: &str = "id, event_type, payment_id, refund_id, created_at, \
    status, attempts, next_attempt_at, last_error, delivered_at";

pub(super) fn notification_from_row(row: &impl ReadRow) -> Result<Notification, StoreError> {
    let payment_id: String = row.col("payment_id")?;
    Ok(Notification {
        id: row.col("id")?,
        event_type: row.col("event_type")?,
        payment_id: PaymentId::parse(&payment_id)
            .map_err(|_| StoreError::Corrupt("outbox.payment_id".into()))?,
        refund_id: row.col("refund_id")?,
        created_at: row.col("created_at")?,
        status: parse_column(&row.col::<String>("status")?, "outbox.status")?,
        attempts: row.col("attempts")?,
        next_attempt_at: row.col("next_attempt_at")?,
        last_error: row.col("last_error")?,
        delivered_at: row.col("delivered_at")?,
    })
}

impl<B: Backend> SqlStore<B> {
    pub(super) async fn insert_outbox(
        tx: &mut Transaction<'static, B>,
        payment_id: &PaymentId,
        to: PaymentStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match notification_type(to) {
            Some(event_type) => Self::insert_outbox_row(tx, event_type, payment_id, None, at).await,
            None => Ok(()),
        }
    }

    pub(super) async fn insert_outbox_row(
        tx: &mut Transaction<'static, B>,
        event_type: &str,
        payment_id: &PaymentId,
        refund_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        statement::<B>(
            "INSERT INTO outbox (id, event_type, payment_id, refund_id, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(crate::domain::refs::new_id("evt_"))
        .bind(event_type)
        .bind(payment_id.as_ref())
        .bind(refund_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> NotificationStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store lease_due_notifications", otel.kind = "client", db.system = B::SYSTEM))]
    async fn lease_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let rows = statement::<B>(&format!(
            "UPDATE outbox SET leased_until = $2 WHERE id IN ( \
               SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                 AND (leased_until IS NULL OR leased_until < $1) \
               ORDER BY next_attempt_at, id LIMIT $3{}) \
             RETURNING {NOTIFICATION_COLUMNS}",
            B::SKIP_LOCKED
        ))
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(notification_from_row).collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store record_delivery", otel.kind = "client", db.system = B::SYSTEM))]
    async fn record_delivery(&self, id: &str, result: &DeliveryResult) -> Result<(), StoreError> {
        let query = match result {
            DeliveryResult::Delivered { at } => statement::<B>(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = $2, \
                 leased_until = NULL, last_error = NULL WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(*at),
            DeliveryResult::Retry { next_attempt_at, error } => statement::<B>(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, \
                 leased_until = NULL, last_error = $3 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(*next_attempt_at)
            .bind(error.clone()),
            DeliveryResult::Dead { error } => statement::<B>(
                "UPDATE outbox SET status = 'dead', attempts = attempts + 1, leased_until = NULL, \
                 last_error = $2 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(error.clone()),
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store release_notification_leases", otel.kind = "client", db.system = B::SYSTEM))]
    async fn release_notification_leases(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            statement::<B>(
                "UPDATE outbox SET leased_until = NULL WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store list_notifications", otel.kind = "client", db.system = B::SYSTEM))]
    async fn list_notifications(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        statement::<B>(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM outbox WHERE ($1 IS NULL OR status = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(notification_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store retry_notification", otel.kind = "client", db.system = B::SYSTEM))]
    async fn retry_notification(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let done = statement::<B>(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
             leased_until = NULL WHERE id = $1 AND status <> 'delivered'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store notifications_for_payment", otel.kind = "client", db.system = B::SYSTEM))]
    async fn notifications_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<Notification>, StoreError> {
        statement::<B>(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM outbox WHERE payment_id = $1 ORDER BY created_at, id"
        ))
        .bind(payment_id.as_ref())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(notification_from_row)
        .collect()
    }
}
