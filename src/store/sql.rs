//! The one store implementation, over any [`Backend`]: the SQL both databases share (SQLite and
//! PostgreSQL both accept `$N` placeholders, `ON CONFLICT` and row-value comparisons).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Pool, Transaction};

use crate::domain::refund::{refund_notification_type, Refund, RefundStatus};
use crate::domain::{
    decide_transition, notification_type, CreateOutcome, EventOutcome, Payment, PaymentEvent,
    PaymentId, PaymentStatus, ProviderEvent, TransitionDecision, TransitionSource,
};
use crate::store::backend::{Backend, Column, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::{
    create_outcome_text, parse_column, ApiKeyRecord, AuditEntry, AuditHead, ClaimOutcome,
    ColumnInfo, DailyTotal, DeliveryResult, Discrepancy, ErasureCounts, IdempotencyClaim,
    IdempotencySettle, LedgerLine, Notification, OutboxCounts, PaymentQuery, PoolStatus,
    ReconciliationRun, RefundClaim, StatusChange, Store, StoreError,
};
use futures_util::TryStreamExt;

/// The store on one SQL database.
pub struct SqlStore<B: Backend> {
    pool: Pool<B>,
}

impl<B: Backend> SqlStore<B> {
    pub(super) fn new(pool: Pool<B>) -> Self {
        Self { pool }
    }
}

impl ColumnInfo {
    pub(super) fn from_row(row: &impl ReadRow) -> Result<Self, StoreError> {
        Ok(ColumnInfo {
            table: row.col("table_name")?,
            column: row.col("column_name")?,
            is_text: row.col("is_text")?,
        })
    }
}

const PAYMENT_COLUMNS: &str = "id, request_ref, service, account, provider, amount, \
    description, email, metadata, return_url, status, create_outcome, \
    provider_payment_id, next_url, failure_code, created_at, updated_at, \
    finished_at, refreshed_at, refunded_amount";

fn payment_from_row(row: &impl ReadRow) -> Result<Payment, StoreError> {
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

fn api_key_from_row(row: &impl ReadRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.col("id")?,
        role: parse_column(&row.col::<String>("role")?, "api_keys.role")?,
        label: row.col("label")?,
        token_sha256: row.col("token_sha256")?,
        created_at: row.col("created_at")?,
        revoked_at: row.col("revoked_at")?,
        last_used_at: row.col("last_used_at")?,
        expires_at: row.col("expires_at")?,
    })
}

fn event_from_row(row: &impl ReadRow) -> Result<PaymentEvent, StoreError> {
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

const NOTIFICATION_COLUMNS: &str = "id, event_type, payment_id, refund_id, created_at, \
    status, attempts, next_attempt_at, last_error, delivered_at";

const REFUND_COLUMNS: &str = "id, payment_id, amount, status, create_outcome, \
    provider_refund_id, provider_status, reason, requested_by, requested_by_label, \
    failure_code, created_at, updated_at, finished_at";

fn refund_from_row(row: &impl ReadRow) -> Result<Refund, StoreError> {
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

fn audit_from_row(row: &impl ReadRow) -> Result<AuditEntry, StoreError> {
    let detail: String = row.col("detail")?;
    Ok(AuditEntry {
        at: row.col("at")?,
        actor_key_id: row.col("actor_key_id")?,
        actor_label: row.col("actor_label")?,
        action: row.col("action")?,
        subject: row.col("subject")?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::Corrupt("audit_log.detail".into()))?,
    })
}

fn notification_from_row(row: &impl ReadRow) -> Result<Notification, StoreError> {
    let payment_id: String = row.col("payment_id")?;
    Ok(Notification {
        id: row.col("id")?,
        event_type: row.col("event_type")?,
        payment_id: PaymentId::parse(&payment_id)
            .map_err(|_| StoreError::Corrupt("outbox.payment_id".into()))?,
        refund_id: row.col("refund_id")?,
        created_at: row.col("created_at")?,
        status: row.col("status")?,
        attempts: row.col("attempts")?,
        next_attempt_at: row.col("next_attempt_at")?,
        last_error: row.col("last_error")?,
        delivered_at: row.col("delivered_at")?,
    })
}

/// What pseudonymised personal fields read.
const ERASED: &str = "[erased]";

/// Appends `(id1, id2, …)` with each id bound.
fn push_ids<B: Backend>(sql: &mut Builder<B>, ids: &[String]) {
    sql.push("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push_bind(id.clone());
    }
    sql.push(")");
}

/// The first column of each row.
fn first_column<T>(rows: Vec<impl ReadRow>) -> Result<Vec<T>, StoreError>
where
    T: Column,
{
    rows.iter().map(|row| Ok(row.col_at(0)?)).collect()
}

fn metadata_json(payment: &Payment) -> String {
    serde_json::to_string(&payment.metadata).expect("a map of strings serialises")
}

impl<B: Backend> SqlStore<B> {
    async fn insert_event(
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

    /// Claims an idempotency key (forgetting an expired claim first); false when the
    /// key is already held.
    async fn claim_key_tx(
        tx: &mut Transaction<'static, B>,
        claim: &IdempotencyClaim,
    ) -> Result<bool, StoreError> {
        statement::<B>(
            "DELETE FROM idempotency_keys \
             WHERE principal = $1 AND idempotency_key = $2 AND expires_at <= $3",
        )
        .bind(&claim.principal)
        .bind(claim.key.as_ref())
        .bind(claim.now)
        .execute(&mut *tx)
        .await?;
        Ok(statement::<B>(
            "INSERT INTO idempotency_keys \
             (principal, idempotency_key, route, fingerprint, state, locked_until, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 'in_flight', $5, $6, $7) \
             ON CONFLICT (principal, idempotency_key) DO NOTHING",
        )
        .bind(&claim.principal)
        .bind(claim.key.as_ref())
        .bind(&claim.route)
        .bind(&claim.fingerprint)
        .bind(claim.lease_until)
        .bind(claim.now)
        .bind(claim.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// Notes which resource (`payment_id` or `refund_id` column) a claim created.
    async fn link_key_tx(
        tx: &mut Transaction<'static, B>,
        claim: &IdempotencyClaim,
        column: &'static str,
        id: &str,
    ) -> Result<(), StoreError> {
        statement::<B>(&format!(
            "UPDATE idempotency_keys SET {column} = $3 WHERE principal = $1 AND idempotency_key = $2"
        ))
        .bind(&claim.principal)
        .bind(claim.key.as_ref())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// What a key that was already held means for this request.
    async fn existing_claim_tx(
        tx: &mut Transaction<'static, B>,
        claim: &IdempotencyClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        let row = statement::<B>(
            "SELECT fingerprint, state, payment_id, refund_id, response_status, response_body, \
             locked_until FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2",
        )
        .bind(&claim.principal)
        .bind(claim.key.as_ref())
        .fetch_one(&mut *tx)
        .await?;
        let fingerprint: String = row.col("fingerprint")?;
        if fingerprint != claim.fingerprint {
            return Ok(ClaimOutcome::KeyReused);
        }
        let state: String = row.col("state")?;
        let payment_id: Option<String> = row.col("payment_id")?;
        let refund_id: Option<String> = row.col("refund_id")?;
        let (table, resource) = match (refund_id, payment_id) {
            (Some(refund), _) => ("refunds", Some(refund)),
            (None, payment) => ("payments", payment),
        };
        let locked_until: DateTime<Utc> = row.col("locked_until")?;
        Ok(match (state.as_str(), resource) {
            ("completed", _) => {
                let status: Option<i32> = row.col("response_status")?;
                let body: Option<String> = row.col("response_body")?;
                match (status.and_then(|s| u16::try_from(s).ok()), body) {
                    (Some(status), Some(body)) => ClaimOutcome::Replay { status, body },
                    _ => return Err(StoreError::Corrupt("idempotency_keys.response".into())),
                }
            }
            ("linked", Some(resource_id)) => ClaimOutcome::Linked { resource_id },
            ("in_flight", _) if locked_until > claim.now => ClaimOutcome::InFlight,
            ("in_flight", Some(resource_id)) => {
                // Whoever claimed it stopped mid-call: the provider may or may not have
                // acted, so the resource becomes unresolved rather than retried.
                statement::<B>(&format!(
                    "UPDATE {table} SET create_outcome = 'unknown', updated_at = $2 \
                     WHERE id = $1 AND create_outcome = 'pending'"
                ))
                .bind(&resource_id)
                .bind(claim.now)
                .execute(&mut *tx)
                .await?;
                Self::settle_key_tx(tx, claim, &IdempotencySettle::Linked).await?;
                ClaimOutcome::Linked { resource_id }
            }
            _ => return Err(StoreError::Corrupt("idempotency_keys.state".into())),
        })
    }

    /// Leaves an idempotency key as the provider's answer decided.
    async fn settle_key_tx(
        tx: &mut Transaction<'static, B>,
        claim: &IdempotencyClaim,
        settle: &IdempotencySettle,
    ) -> Result<(), StoreError> {
        let query = match settle {
            IdempotencySettle::Completed { status, body } => statement::<B>(
                "UPDATE idempotency_keys SET state = 'completed', response_status = $3, \
                 response_body = $4 WHERE principal = $1 AND idempotency_key = $2",
            )
            .bind(&claim.principal)
            .bind(claim.key.as_ref())
            .bind(i32::from(*status))
            .bind(body.clone()),
            IdempotencySettle::Linked => statement::<B>(
                "UPDATE idempotency_keys SET state = 'linked' \
                 WHERE principal = $1 AND idempotency_key = $2",
            )
            .bind(&claim.principal)
            .bind(claim.key.as_ref()),
            IdempotencySettle::Release => statement::<B>(
                "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2",
            )
            .bind(&claim.principal)
            .bind(claim.key.as_ref()),
        };
        query.execute(&mut *tx).await?;
        Ok(())
    }

    /// The one way a status changes: compare-and-set on the payment, its timeline
    /// event and (for a final status, when `notify`) the CRM notification, all in the
    /// caller's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn apply_transition_tx(
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

    async fn insert_outbox(
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

    async fn insert_outbox_row(
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

    /// What a refund's move into `to` does beyond its own row: a succeeded refund
    /// adds to the payment's refunded amount, and a final one tells the CRM.
    async fn refund_effects_tx(
        tx: &mut Transaction<'static, B>,
        refund: &Refund,
        from: RefundStatus,
        to: RefundStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let delta = match (from, to) {
            (RefundStatus::Succeeded, RefundStatus::Succeeded) => 0,
            (_, RefundStatus::Succeeded) => refund.amount,
            (RefundStatus::Succeeded, _) => -refund.amount,
            _ => 0,
        };
        if delta != 0 {
            statement::<B>(
                "UPDATE payments SET refunded_amount = refunded_amount + $2 WHERE id = $1",
            )
            .bind(refund.payment_id.as_ref())
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(event_type) = refund_notification_type(to).filter(|_| from != to) {
            Self::insert_outbox_row(tx, event_type, &refund.payment_id, Some(&refund.id), at)
                .await?;
        }
        Ok(())
    }

    async fn insert_audit_tx(
        tx: &mut Transaction<'static, B>,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        use crate::domain::audit::{chain_time, entry_hash, ChainedFields};
        // The audit writer's own card-number guard: the entry is kept, the number not.
        let entry = &entry.without_card_numbers();
        // The chain's end, locked until this transaction ends: writers queue here,
        // so two entries never claim the same place.
        let head = statement::<B>(&format!(
            "SELECT last_seq, last_hash FROM audit_head WHERE id = 1{}",
            B::FOR_UPDATE
        ))
        .fetch_one(&mut *tx)
        .await?;
        let last_seq: i64 = head.col("last_seq")?;
        let prev_hash: String = head.col("last_hash")?;
        let seq = last_seq + 1;
        let at = chain_time(entry.at);
        let detail = entry.detail.to_string();
        let hash = entry_hash(&ChainedFields {
            seq,
            prev_hash: &prev_hash,
            at,
            actor_key_id: &entry.actor_key_id,
            actor_label: &entry.actor_label,
            action: &entry.action,
            subject: &entry.subject,
            detail: &detail,
        });
        statement::<B>(
            "INSERT INTO audit_log (at, actor_key_id, actor_label, action, subject, detail, seq, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(at)
        .bind(&entry.actor_key_id)
        .bind(&entry.actor_label)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&detail)
        .bind(seq)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        statement::<B>("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Applies webhooks that arrived before we knew the provider's id for a payment.
    async fn match_orphans_tx(
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
        let mut status = payment.status;
        for orphan in &orphans {
            let reported: Option<String> = orphan.col("reported_status")?;
            let reported = reported
                .as_deref()
                .map(|r| parse_column::<PaymentStatus>(r, "webhook_receipts.reported_status"))
                .transpose()?;
            let code: Option<String> = orphan.col("failure_code")?;
            if let Some(TransitionDecision::Apply { from, to }) =
                reported.map(|r| decide_transition(status, r))
            {
                if Self::apply_transition_tx(
                    tx,
                    &payment.id,
                    from,
                    to,
                    at,
                    TransitionSource::Webhook,
                    code.as_deref(),
                    true,
                )
                .await?
                {
                    status = to;
                }
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
impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::SYSTEM
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "ping"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn ping(&self) -> Result<(), StoreError> {
        statement::<B>("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "migrate"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn migrate(&self) -> Result<(), StoreError> {
        B::run_migrations(&self.pool).await
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "pending_migrations"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied: Vec<i64> =
            match statement::<B>("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => first_column(rows)?,
                // No migrations table: nothing is applied.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        Ok(B::embedded_migrations()
            .into_iter()
            .filter(|v| !applied.contains(v))
            .collect())
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "outbox_counts"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let row = statement::<B>(
            "SELECT \
               COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
               COALESCE(SUM(CASE WHEN status = 'pending' AND attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying, \
               COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) AS dead \
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxCounts {
            pending: row.col("pending")?,
            retrying: row.col("retrying")?,
            dead: row.col("dead")?,
        })
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "insert_api_key"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        statement::<B>("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        statement::<B>(
            "INSERT INTO api_keys (id, role, label, token_sha256, created_at, revoked_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.id)
        .bind(key.role.as_str())
        .bind(&key.label)
        .bind(&key.token_sha256)
        .bind(key.created_at)
        .bind(key.revoked_at)
        .bind(key.last_used_at)
        .bind(key.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "find_api_key"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        statement::<B>("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "list_api_keys"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        statement::<B>("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "revoke_api_key"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = statement::<B>(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "claim_and_insert_payment"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn claim_and_insert_payment(
        &self,
        claim: &IdempotencyClaim,
        payment: &Payment,
        audit: &AuditEntry,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        if !Self::claim_key_tx(&mut tx, claim).await? {
            let outcome = Self::existing_claim_tx(&mut tx, claim).await?;
            tx.commit().await?;
            return Ok(outcome);
        }
        statement::<B>(&format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        ))
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "settle_payment_create"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn settle_payment_create(
        &self,
        payment: &Payment,
        previous_status: PaymentStatus,
        source: TransitionSource,
        notify: bool,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let updated = statement::<B>(
            "UPDATE payments SET status = $2, create_outcome = $3, provider_payment_id = $4, \
             next_url = $5, failure_code = $6, updated_at = $7, finished_at = $8, refreshed_at = $9 \
             WHERE id = $1 AND create_outcome IN ('pending', 'unknown')",
        )
        .bind(payment.id.as_ref())
        .bind(payment.status.as_str())
        .bind(create_outcome_text(payment.create_outcome))
        .bind(&payment.provider_payment_id)
        .bind(&payment.next_url)
        .bind(&payment.failure_code)
        .bind(payment.updated_at)
        .bind(payment.finished_at)
        .bind(payment.refreshed_at)
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "get_payment"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "list_payments"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn list_payments(&self, query: &PaymentQuery) -> Result<Vec<Payment>, StoreError> {
        let mut sql = Builder::<B>::new(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE 1 = 1"
        ));
        if let Some(request_ref) = &query.request_ref {
            sql.push(" AND request_ref = ")
                .push_bind(request_ref.clone());
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "record_status_change"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "apply_provider_event"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn apply_provider_event(
        &self,
        account: &str,
        event: &ProviderEvent,
        received_at: DateTime<Utc>,
    ) -> Result<EventOutcome, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // The receipt is the dedupe: a second copy of the message, even one arriving at
        // the same moment on another server, waits here and then finds it taken.
        let fresh = statement::<B>(
            "INSERT INTO webhook_receipts (account, message_id, event_type, provider_payment_id, \
             reported_status, failure_code, occurred_at, received_at, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ignored') \
             ON CONFLICT (account, message_id) DO NOTHING",
        )
        .bind(account)
        .bind(&event.message_id)
        .bind(&event.event_type)
        .bind(&event.provider_payment_id)
        .bind(event.reported.map(|s| s.as_str()))
        .bind(&event.failure_code)
        .bind(event.occurred_at)
        .bind(received_at)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(EventOutcome::Duplicate);
        }
        if event.provider_payment_id.is_empty() {
            // It names no payment we could ever match (an event type we do not act
            // on, or about a payment that is not ours): acknowledged and kept as ignored.
            tx.commit().await?;
            return Ok(EventOutcome::Ignored);
        }
        let row = statement::<B>(&format!(
            "SELECT id, status, created_at FROM payments WHERE account = $1 AND provider_payment_id = $2{}",
            B::FOR_UPDATE
        ))
        .bind(account)
        .bind(&event.provider_payment_id)
        .fetch_optional(&mut tx)
        .await?;
        let set_outcome = |outcome: &'static str, payment_id: Option<String>| {
            statement::<B>(
                "UPDATE webhook_receipts SET outcome = $3, payment_id = $4 \
                 WHERE account = $1 AND message_id = $2",
            )
            .bind(account.to_owned())
            .bind(event.message_id.clone())
            .bind(outcome)
            .bind(payment_id)
        };
        let Some(row) = row else {
            set_outcome("orphan", None).execute(&mut tx).await?;
            tx.commit().await?;
            return Ok(EventOutcome::Orphan);
        };
        let id: String = row.col("id")?;
        let payment_id =
            PaymentId::parse(&id).map_err(|_| StoreError::Corrupt("payments.id".into()))?;
        let current: PaymentStatus =
            parse_column(&row.col::<String>("status")?, "payments.status")?;
        // When it happened at the provider (a retried webhook can arrive hours later,
        // and finance dates a payment by when it was made), kept within sense: not
        // before the payment existed, not after we heard of it.
        let created_at: DateTime<Utc> = row.col("created_at")?;
        let happened_at = event
            .occurred_at
            .map(|t| t.max(created_at).min(received_at))
            .unwrap_or(received_at);
        let decision = event
            .reported
            .map(|reported| decide_transition(current, reported));
        let outcome = match decision {
            Some(TransitionDecision::Apply { from, to }) => {
                let applied = Self::apply_transition_tx(
                    &mut tx,
                    &payment_id,
                    from,
                    to,
                    happened_at,
                    TransitionSource::Webhook,
                    event.failure_code.as_deref(),
                    true,
                )
                .await?;
                if applied {
                    EventOutcome::Applied {
                        payment_id: payment_id.clone(),
                        from,
                        to,
                    }
                } else {
                    EventOutcome::Ignored
                }
            }
            _ => EventOutcome::Ignored,
        };
        set_outcome(outcome.as_str(), Some(id))
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "lease_payments_to_poll"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn lease_payments_to_poll(
        &self,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        // The lease is committed before any provider call: no transaction is held
        // across HTTP, and other servers skip the rows this one took.
        let rows = statement::<B>(&format!(
            "UPDATE payments SET poll_leased_until = $3 WHERE id IN ( \
               SELECT id FROM payments \
               WHERE status IN ('created', 'in_progress') AND created_at < $1 \
                 AND (poll_leased_until IS NULL OR poll_leased_until < $2) \
               ORDER BY created_at LIMIT $4{}) \
             RETURNING {PAYMENT_COLUMNS}",
            B::SKIP_LOCKED
        ))
        .bind(created_before)
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(payment_from_row).collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "lease_due_notifications"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "record_delivery"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "release_notification_leases"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "list_notifications"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "retry_notification"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn retry_notification(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = statement::<B>(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
             leased_until = NULL WHERE id = $1 AND status <> 'delivered'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "claim_and_insert_refund"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "settle_refund"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "record_refund_status"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "get_refund"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "list_refunds"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "open_refunds"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "find_payment_by_provider_id"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "ledger_page"), otel.kind = "client", db.system = B::SYSTEM))]
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
                    kind: row.col("kind")?,
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "payments_created_between"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_created_between(
        &self,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Payment>, StoreError> {
        statement::<B>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE account = $1 \
             AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id"
        ))
        .bind(account)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(payment_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "insert_reconciliation_run"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn insert_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        statement::<B>(
            "INSERT INTO reconciliation_runs (id, account, period_from, period_to, requested_by, \
             started_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'running')",
        )
        .bind(&run.id)
        .bind(&run.account)
        .bind(run.period_from)
        .bind(run.period_to)
        .bind(&run.requested_by)
        .bind(run.started_at)
        .execute(&mut tx)
        .await?;
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "finish_reconciliation_run"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn finish_reconciliation_run(
        &self,
        run: &ReconciliationRun,
        discrepancies: &[Discrepancy],
    ) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        statement::<B>(
            "UPDATE reconciliation_runs SET finished_at = $2, status = $3, provider_payments = $4, \
             provider_refunds = $5, local_payments = $6, error = $7 WHERE id = $1",
        )
        .bind(&run.id)
        .bind(run.finished_at)
        .bind(&run.status)
        .bind(run.provider_payments)
        .bind(run.provider_refunds)
        .bind(run.local_payments)
        .bind(&run.error)
        .execute(&mut tx)
        .await?;
        for d in discrepancies {
            statement::<B>(
                "INSERT INTO reconciliation_discrepancies (run_id, kind, payment_id, \
                 provider_payment_id, ours, theirs, healed, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&run.id)
            .bind(&d.kind)
            .bind(&d.payment_id)
            .bind(&d.provider_payment_id)
            .bind(&d.ours)
            .bind(&d.theirs)
            .bind(d.healed)
            .bind(&d.note)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "get_reconciliation_run"), otel.kind = "client", db.system = B::SYSTEM))]
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
        let run = ReconciliationRun {
            id: row.col("id")?,
            account: row.col("account")?,
            period_from: row.col("period_from")?,
            period_to: row.col("period_to")?,
            requested_by: row.col("requested_by")?,
            started_at: row.col("started_at")?,
            finished_at: row.col("finished_at")?,
            status: row.col("status")?,
            provider_payments: row.col("provider_payments")?,
            provider_refunds: row.col("provider_refunds")?,
            local_payments: row.col("local_payments")?,
            error: row.col("error")?,
        };
        let found = statement::<B>(
            "SELECT kind, payment_id, provider_payment_id, ours, theirs, healed, note \
             FROM reconciliation_discrepancies WHERE run_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Discrepancy {
                kind: r.col("kind")?,
                payment_id: r.col("payment_id")?,
                provider_payment_id: r.col("provider_payment_id")?,
                ours: r.col("ours")?,
                theirs: r.col("theirs")?,
                healed: r.col("healed")?,
                note: r.col("note")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((run, found)))
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "append_audit"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        Self::insert_audit_tx(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "erase_payments"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn erase_payments(
        &self,
        payment_ids: &[String],
        at: DateTime<Utc>,
        audit: Option<&AuditEntry>,
    ) -> Result<ErasureCounts, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let mut counts = ErasureCounts::default();
        if !payment_ids.is_empty() {
            let mut select = Builder::<B>::new(
                "SELECT id, metadata FROM payments WHERE personal_erased_at IS NULL AND id IN ",
            );
            push_ids(&mut select, payment_ids);
            let due: Vec<(String, String)> = select
                .build()
                .fetch_all(&mut tx)
                .await?
                .iter()
                .map(|row| Ok((row.col("id")?, row.col("metadata")?)))
                .collect::<Result<_, StoreError>>()?;
            for (id, metadata) in &due {
                // Keys are the CRM's field names; values may be personal.
                let keys: BTreeMap<String, String> =
                    serde_json::from_str::<BTreeMap<String, String>>(metadata)
                        .unwrap_or_default()
                        .into_keys()
                        .map(|k| (k, ERASED.to_owned()))
                        .collect();
                statement::<B>(
                    "UPDATE payments SET description = $2, email = NULL, metadata = $3, \
                     return_url = $2, next_url = NULL, personal_erased_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(ERASED)
                .bind(serde_json::to_string(&keys).expect("a map of strings serialises"))
                .bind(at)
                .execute(&mut tx)
                .await?;
            }
            counts.payments = due.len() as u64;
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "payments_due_for_erasure"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_due_for_erasure(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        first_column(
            statement::<B>(
                "SELECT id FROM payments WHERE personal_erased_at IS NULL \
             AND finished_at IS NOT NULL AND finished_at < $1 ORDER BY finished_at, id LIMIT $2",
            )
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
        )
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "erase_refund_reasons"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn erase_refund_reasons(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = statement::<B>(
            "UPDATE refunds SET reason = $1 WHERE reason <> $1 \
             AND finished_at IS NOT NULL AND finished_at < $2",
        )
        .bind(ERASED)
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "payments_due_for_removal"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn payments_due_for_removal(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        first_column(
            statement::<B>(
                "SELECT p.id FROM payments p WHERE p.created_at < $1 \
             AND (p.finished_at IS NULL OR p.finished_at < $1) \
             AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id \
               AND (r.created_at >= $1 OR r.finished_at >= $1)) \
             ORDER BY p.created_at, p.id LIMIT $2",
            )
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
        )
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "money_movements"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "archive_and_remove"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "archived_totals"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "purge_expired_idempotency"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn purge_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = statement::<B>(
            "DELETE FROM idempotency_keys WHERE expires_at < $1 AND state <> 'in_flight'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "try_lease_job"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn try_lease_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = statement::<B>(
            "INSERT INTO job_leases (name, holder, leased_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, leased_until = excluded.leased_until \
             WHERE job_leases.leased_until < $4 OR job_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "payment_ids_for_request"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "notifications_for_payment"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "audit_chain_page"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_chain_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::domain::audit::StoredEntry>, StoreError> {
        statement::<B>(
            "SELECT seq, prev_hash, hash, at, actor_key_id, actor_label, action, subject, detail \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(crate::domain::audit::StoredEntry {
                seq: row.col("seq")?,
                prev_hash: row.col::<Option<String>>("prev_hash")?.unwrap_or_default(),
                hash: row.col::<Option<String>>("hash")?.unwrap_or_default(),
                at: row.col("at")?,
                actor_key_id: row.col("actor_key_id")?,
                actor_label: row.col("actor_label")?,
                action: row.col("action")?,
                subject: row.col("subject")?,
                detail: row.col("detail")?,
            })
        })
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "audit_head"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let head = statement::<B>("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let unchained: i64 = statement::<B>("SELECT COUNT(*) FROM audit_log WHERE seq IS NULL")
            .fetch_one(&self.pool)
            .await?
            .col_at(0)?;
        let unchained_since_start: i64 = statement::<B>(
            "SELECT COUNT(*) FROM audit_log WHERE seq IS NULL \
             AND id > (SELECT MIN(id) FROM audit_log WHERE seq IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await?
        .col_at(0)?;
        Ok(AuditHead {
            last_seq: head.col("last_seq")?,
            last_hash: head.col("last_hash")?,
            unchained,
            unchained_since_start,
        })
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "audit_page"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_page(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let mut sql = Builder::<B>::new(
            "SELECT id, at, actor_key_id, actor_label, action, subject, detail FROM audit_log WHERE 1 = 1",
        );
        if let Some(after) = after {
            sql.push(" AND id > ").push_bind(after);
        }
        if let Some(from) = from {
            sql.push(" AND at >= ").push_bind(from);
        }
        if let Some(to) = to {
            sql.push(" AND at < ").push_bind(to);
        }
        sql.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.col("id")?, audit_from_row(row)?)))
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "scan_text_column"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn scan_text_column(
        &self,
        column: &ColumnInfo,
        visit: &mut (dyn for<'v> FnMut(&'v str, &'v str) + Send),
    ) -> Result<u64, StoreError> {
        let columns = B::schema_columns(&self.pool).await?;
        let has_id = columns
            .iter()
            .any(|c| c.table == column.table && c.column == "id");
        let locator = if has_id {
            "CAST(id AS TEXT)"
        } else {
            B::ROW_LOCATOR
        };
        let sql = format!(
            "SELECT {locator} AS row_key, CAST(\"{col}\" AS TEXT) AS value FROM \"{table}\" \
             WHERE \"{col}\" IS NOT NULL",
            col = column.column.replace('"', ""),
            table = column.table.replace('"', ""),
        );
        let mut rows = statement::<B>(&sql).fetch(&self.pool);
        let mut scanned = 0;
        while let Some(row) = rows.try_next().await? {
            let key: String = row.col("row_key")?;
            let value: String = row.col("value")?;
            visit(&key, &value);
            scanned += 1;
        }
        Ok(scanned)
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "mark_refreshed"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn mark_refreshed(&self, id: &PaymentId, at: DateTime<Utc>) -> Result<(), StoreError> {
        statement::<B>("UPDATE payments SET refreshed_at = $2 WHERE id = $1")
            .bind(id.as_ref())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "payment_events"), otel.kind = "client", db.system = B::SYSTEM))]
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

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = concat!("store ", "describe_schema"), otel.kind = "client", db.system = B::SYSTEM))]
    async fn describe_schema(&self) -> Result<Vec<ColumnInfo>, StoreError> {
        let mut columns = B::schema_columns(&self.pool).await?;
        columns.sort();
        Ok(columns)
    }
}
