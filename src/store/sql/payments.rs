//! The SQL of [`PaymentStore`](crate::store::PaymentStore).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::domain::{
    CreateOutcome, Payment, PaymentEvent, PaymentId, PaymentStatus, TransitionSource,
};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

pub(super) const PAYMENT_COLUMNS: &str = "id, request_ref, service, account, provider, amount, \
    description, email, metadata, return_url, status, create_outcome, \
    provider_payment_id, next_url, failure_code, created_at, updated_at, \
    finished_at, refreshed_at, refunded_amount";

/// Binds a payment's row as `$1` to `$20`, in the order of [`PAYMENT_COLUMNS`].
pub(super) fn bind_payment_row<'q, B: Backend>(
    query: crate::store::guard::Statement<'q, 'q, B>,
    payment: &Payment,
) -> crate::store::guard::Statement<'q, 'q, B> {
    query
        .bind(payment.id.as_ref())
        .bind(&payment.request_ref)
        .bind(&payment.service)
        .bind(&payment.account)
        .bind(payment.provider.as_str())
        .bind(payment.amount)
        .bind(&payment.description)
        .bind(&payment.email)
        .bind(metadata_json(payment))
        .bind(&payment.return_url)
        .bind(payment.status.as_str())
        .bind(create_outcome_text(payment.create_outcome))
        .bind(&payment.provider_payment_id)
        .bind(&payment.next_url)
        .bind(&payment.failure_code)
        .bind(payment.created_at)
        .bind(payment.updated_at)
        .bind(payment.finished_at)
        .bind(payment.refreshed_at)
        .bind(payment.refunded_amount)
}

/// What a create's settle writes: the provider's answer, `$2` to `$9` (the payment is `$1`).
pub(super) const SETTLED_COLUMNS: &str = "status = $2, create_outcome = $3, \
    provider_payment_id = $4, next_url = $5, failure_code = $6, updated_at = $7, \
    finished_at = $8, refreshed_at = $9";

/// Binds the payment's id and the outcome a settle writes, `$1` to `$9`, for [`SETTLED_COLUMNS`].
pub(super) fn bind_create_outcome<'q, B: Backend>(
    query: crate::store::guard::Statement<'q, 'q, B>,
    payment: &Payment,
) -> crate::store::guard::Statement<'q, 'q, B> {
    query
        .bind(payment.id.as_ref())
        .bind(payment.status.as_str())
        .bind(create_outcome_text(payment.create_outcome))
        .bind(&payment.provider_payment_id)
        .bind(&payment.next_url)
        .bind(&payment.failure_code)
        .bind(payment.updated_at)
        .bind(payment.finished_at)
        .bind(payment.refreshed_at)
}

pub(super) fn payment_from_row(row: &impl ReadRow) -> Result<Payment, StoreError> {
    let metadata: String = row.col("metadata")?;
    let metadata: BTreeMap<String, String> = serde_json::from_str(&metadata)
        .map_err(|_| StoreError::Corrupt("payments.metadata is not a JSON object".into()))?;
    let id: String = row.col("id")?;
    Ok(Payment {
        id: PaymentId::parse(&id).map_err(|_| StoreError::Corrupt("payments.id".into()))?,
        request_ref: row.col("request_ref")?,
        service: row.col("service")?,
        account: row.col("account")?,
        provider: parse_column(&row.col::<String>("provider")?, "payments.provider")?,
        amount: row.col("amount")?,
        description: row.col("description")?,
        email: row.col("email")?,
        metadata,
        return_url: row.col("return_url")?,
        status: parse_column(&row.col::<String>("status")?, "payments.status")?,
        create_outcome: parse_column(
            &row.col::<String>("create_outcome")?,
            "payments.create_outcome",
        )?,
        provider_payment_id: row.col("provider_payment_id")?,
        next_url: row.col("next_url")?,
        failure_code: row.col("failure_code")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        finished_at: row.col("finished_at")?,
        refreshed_at: row.col("refreshed_at")?,
        refunded_amount: row.col("refunded_amount")?,
    })
}

pub(super) fn event_from_row(row: &impl ReadRow) -> Result<PaymentEvent, StoreError> {
    let from: Option<String> = row.col("from_status")?;
    let id: String = row.col("payment_id")?;
    Ok(PaymentEvent {
        payment_id: PaymentId::parse(&id)
            .map_err(|_| StoreError::Corrupt("payment_events.payment_id".into()))?,
        at: row.col("at")?,
        from: from
            .as_deref()
            .map(|f| parse_column::<PaymentStatus>(f, "payment_events.from_status"))
            .transpose()?,
        to: parse_column(&row.col::<String>("to_status")?, "payment_events.to_status")?,
        source: parse_column::<TransitionSource>(
            &row.col::<String>("source")?,
            "payment_events.source",
        )?,
    })
}

pub(super) fn metadata_json(payment: &Payment) -> String {
    serde_json::to_string(&payment.metadata).expect("a map of strings serialises")
}

impl<B: Backend> SqlStore<B> {
    pub(super) async fn insert_event(
        tx: &mut Transaction<'static, B>,
        payment_id: &PaymentId,
        at: DateTime<Utc>,
        from: Option<PaymentStatus>,
        to: PaymentStatus,
        source: TransitionSource,
    ) -> Result<(), StoreError> {
        statement::<B>(
            "INSERT INTO payment_events (payment_id, at, from_status, to_status, source) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(payment_id.as_ref())
        .bind(at)
        .bind(from.map(|s| s.as_str()))
        .bind(to.as_str())
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// The one way a status changes: compare-and-set on the payment, its timeline
    /// event and (for a final status, when `notify`) the CRM notification, all in the
    /// caller's transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply_transition_tx(
        tx: &mut Transaction<'static, B>,
        payment_id: &PaymentId,
        from: PaymentStatus,
        to: PaymentStatus,
        at: DateTime<Utc>,
        source: TransitionSource,
        failure_code: Option<&str>,
        notify: bool,
    ) -> Result<bool, StoreError> {
        let finished_at = to.is_final().then_some(at);
        let applied = statement::<B>(
            "UPDATE payments SET status = $3, failure_code = COALESCE($4, failure_code), \
             updated_at = $5, finished_at = COALESCE($6, finished_at) \
             WHERE id = $1 AND status = $2",
        )
        .bind(payment_id.as_ref())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(failure_code)
        .bind(at)
        .bind(finished_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if applied {
            Self::insert_event(tx, payment_id, at, Some(from), to, source).await?;
            if notify {
                Self::insert_outbox(tx, payment_id, to, at).await?;
            }
        }
        Ok(applied)
    }
}

#[async_trait]
impl<B: Backend> PaymentStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store claim_and_insert_payment", otel.kind = "client", db.system = B::SYSTEM))]
    async fn claim_and_insert_payment(
        &self,
        claim: &IdempotencyClaim,
        payment: &Payment,
        audit: &AuditEntry,
    ) -> Result<ClaimOutcome, StoreError> {
        if B::WRITES_IN_WITH {
            return self.claim_and_insert_at_once(claim, payment, audit).await;
        }
        // Step by step (SQLite): the claim, the payment, the claim's link to it, its first
        // timeline event and the audit entry, in one transaction.
        let mut tx = B::begin_write(&self.pool).await?;
        if !Self::claim_key_tx(&mut tx, claim).await? {
            let outcome = Self::existing_claim_tx(&mut tx, claim).await?;
            tx.commit().await?;
            return Ok(outcome);
        }
        bind_payment_row(statement::<B>(&format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        )), payment)
        .execute(&mut tx)
        .await?;
        Self::link_key_tx(&mut tx, claim, "payment_id", payment.id.as_ref()).await?;
        Self::insert_event(
            &mut tx,
            &payment.id,
            payment.created_at,
            None,
            payment.status,
            TransitionSource::Api,
        )
        .await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(ClaimOutcome::Claimed)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store settle_payment_create", otel.kind = "client", db.system = B::SYSTEM))]
    async fn settle_payment_create(
        &self,
        payment: &Payment,
        previous_status: PaymentStatus,
        source: TransitionSource,
        notify: bool,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
    ) -> Result<bool, StoreError> {
        if B::WRITES_IN_WITH
            && self
                .settle_create_at_once(
                    payment,
                    previous_status,
                    source,
                    notify,
                    idempotency.as_ref(),
                )
                .await?
        {
            return Ok(true);
        }
        let mut tx = B::begin_write(&self.pool).await?;
        let updated = bind_create_outcome(
            statement::<B>(&format!(
                "UPDATE payments SET {SETTLED_COLUMNS} \
                 WHERE id = $1 AND create_outcome IN ('pending', 'unknown')"
            )),
            payment,
        )
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if updated && payment.status != previous_status {
            Self::insert_event(
                &mut tx,
                &payment.id,
                payment.updated_at,
                Some(previous_status),
                payment.status,
                source,
            )
            .await?;
            if notify {
                Self::insert_outbox(&mut tx, &payment.id, payment.status, payment.updated_at)
                    .await?;
            }
        }
        if updated && payment.create_outcome == CreateOutcome::Confirmed {
            Self::match_orphans_tx(&mut tx, payment, payment.updated_at).await?;
        }
        if let Some((claim, settle)) = idempotency {
            Self::settle_key_tx(&mut tx, claim, &settle).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store get_payment", otel.kind = "client", db.system = B::SYSTEM))]
    async fn get_payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        statement::<B>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
        ))
        .bind(id.as_ref())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(payment_from_row)
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store list_payments", otel.kind = "client", db.system = B::SYSTEM))]
    async fn list_payments(&self, query: &PaymentQuery) -> Result<Vec<Payment>, StoreError> {
        let mut sql = Builder::<B>::new(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE 1 = 1"
        ));
        if let Some(email) = &query.email {
            sql.push(" AND LOWER(email) = ")
                .push_bind(email.to_lowercase());
        }
        if let Some(request_ref) = &query.request_ref {
            sql.push(" AND request_ref = ")
                .push_bind(request_ref.clone());
        }
        if let Some(id) = &query.id {
            sql.push(" AND id = ").push_bind(id.clone());
        }
        if let Some(provider_id) = &query.provider_payment_id {
            sql.push(" AND provider_payment_id = ")
                .push_bind(provider_id.clone());
        }
        if let Some(amount) = query.amount {
            sql.push(" AND amount = ").push_bind(amount);
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(service) = &query.service {
            sql.push(" AND service = ").push_bind(service.clone());
        }
        if let Some(from) = query.created_from {
            sql.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = query.created_to {
            sql.push(" AND created_at < ").push_bind(to);
        }
        if let Some((at, id)) = &query.before {
            sql.push(" AND (created_at, id) < (")
                .push_bind(*at)
                .push(", ")
                .push_bind(id.as_ref().to_owned())
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(payment_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store record_status_change", otel.kind = "client", db.system = B::SYSTEM))]
    async fn record_status_change(&self, change: &StatusChange) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let applied = Self::apply_transition_tx(
            &mut tx,
            &change.payment_id,
            change.from,
            change.to,
            change.at,
            change.source,
            change.failure_code.as_deref(),
            true,
        )
        .await?;
        tx.commit().await?;
        Ok(applied)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store find_payment_by_provider_id", otel.kind = "client", db.system = B::SYSTEM))]
    async fn find_payment_by_provider_id(
        &self,
        account: &str,
        provider_payment_id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        statement::<B>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE account = $1 AND provider_payment_id = $2"
        ))
        .bind(account)
        .bind(provider_payment_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(payment_from_row)
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payment_ids_for_request", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payment_ids_for_request(&self, request_ref: &str) -> Result<Vec<String>, StoreError> {
        first_column(
            statement::<B>(
                "SELECT id FROM payments WHERE request_ref = $1 ORDER BY created_at, id",
            )
            .bind(request_ref)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store mark_refreshed", otel.kind = "client", db.system = B::SYSTEM))]
    async fn mark_refreshed(&self, id: &PaymentId, at: DateTime<Utc>) -> Result<(), StoreError> {
        statement::<B>("UPDATE payments SET refreshed_at = $2 WHERE id = $1")
            .bind(id.as_ref())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payment_events", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payment_events(&self, id: &PaymentId) -> Result<Vec<PaymentEvent>, StoreError> {
        statement::<B>(
            "SELECT payment_id, at, from_status, to_status, source FROM payment_events \
             WHERE payment_id = $1 ORDER BY id",
        )
        .bind(id.as_ref())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }
}
