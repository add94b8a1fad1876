//! The SQL of [`IdempotencyStore`](crate::store::IdempotencyStore), and the claim, link and
//! settle steps that writes guarded by an Idempotency-Key take inside their own transactions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

impl<B: Backend> SqlStore<B> {
    /// Claims an idempotency key, taking over a claim that has expired; false when the key is
    /// still held. One statement: the claim is the insert, or the expired row written over with
    /// nothing of its old request left (no resource, no stored answer).
    pub(super) async fn claim_key_tx(
        tx: &mut Transaction<'static, B>,
        claim: &IdempotencyClaim,
    ) -> Result<bool, StoreError> {
        Ok(statement::<B>(
            "INSERT INTO idempotency_keys \
             (principal, idempotency_key, route, fingerprint, state, locked_until, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 'in_flight', $5, $6, $7) \
             ON CONFLICT (principal, idempotency_key) DO UPDATE SET \
             route = excluded.route, fingerprint = excluded.fingerprint, state = 'in_flight', \
             locked_until = excluded.locked_until, created_at = excluded.created_at, \
             expires_at = excluded.expires_at, payment_id = NULL, refund_id = NULL, \
             response_status = NULL, response_body = NULL \
             WHERE idempotency_keys.expires_at <= excluded.created_at",
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
    pub(super) async fn link_key_tx(
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
    pub(super) async fn existing_claim_tx(
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
    pub(super) async fn settle_key_tx(
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
}

#[async_trait]
impl<B: Backend> IdempotencyStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store purge_expired_idempotency", otel.kind = "client", db.system = B::SYSTEM))]
    async fn purge_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = statement::<B>(
            "DELETE FROM idempotency_keys WHERE expires_at < $1 AND state <> 'in_flight'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
