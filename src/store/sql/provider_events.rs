//! The SQL of [`ProviderEventStore`](crate::store::ProviderEventStore) (the batch itself is in
//! `webhook_batch.rs`), and the webhooks that waited for their payment.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::domain::{
    replay_in_order, EventOutcome, Payment, PaymentStatus, ProviderEvent, TransitionSource,
};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

impl<B: Backend> SqlStore<B> {
    /// Applies webhooks that arrived before we knew the provider's id for a payment.
    pub(super) async fn match_orphans_tx(
        tx: &mut Transaction<'static, B>,
        payment: &Payment,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(provider_id) = payment.provider_payment_id.as_deref() else {
            return Ok(());
        };
        let orphans = statement::<B>(
            "SELECT message_id, reported_status, failure_code FROM webhook_receipts \
             WHERE account = $1 AND provider_payment_id = $2 AND outcome = 'orphan' \
             ORDER BY occurred_at, received_at",
        )
        .bind(&payment.account)
        .bind(provider_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut reported = Vec::with_capacity(orphans.len());
        for orphan in &orphans {
            let status: Option<String> = orphan.col("reported_status")?;
            reported.push(
                status
                    .as_deref()
                    .map(|r| parse_column::<PaymentStatus>(r, "webhook_receipts.reported_status"))
                    .transpose()?,
            );
        }
        let moves = replay_in_order(payment.status, &reported);
        for (orphan, change) in orphans.iter().zip(moves) {
            if let Some((from, to)) = change {
                let code: Option<String> = orphan.col("failure_code")?;
                Self::apply_transition_tx(
                    tx,
                    &payment.id,
                    from,
                    to,
                    at,
                    TransitionSource::Webhook,
                    code.as_deref(),
                    true,
                )
                .await?;
            }
            let message_id: String = orphan.col("message_id")?;
            statement::<B>(
                "UPDATE webhook_receipts SET outcome = 'matched', payment_id = $3 \
                 WHERE account = $1 AND message_id = $2",
            )
            .bind(&payment.account)
            .bind(message_id)
            .bind(payment.id.as_ref())
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> ProviderEventStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store apply_provider_event", otel.kind = "client", db.system = B::SYSTEM))]
    async fn apply_provider_event(
        &self,
        account: &str,
        event: &ProviderEvent,
        received_at: DateTime<Utc>,
    ) -> Result<EventOutcome, StoreError> {
        let one = [ReceivedEvent {
            account: account.to_owned(),
            event: event.clone(),
            received_at,
        }];
        let mut tx = B::begin_write(&self.pool).await?;
        let mut outcomes = Self::apply_events_tx(&mut tx, &one).await?;
        tx.commit().await?;
        Ok(outcomes.remove(0))
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store apply_provider_events", otel.kind = "client", db.system = B::SYSTEM, events = batch.len()))]
    async fn apply_provider_events(
        &self,
        batch: &[ReceivedEvent],
    ) -> Result<Vec<EventOutcome>, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let outcomes = Self::apply_events_tx(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}
