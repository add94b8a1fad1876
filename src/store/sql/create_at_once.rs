//! A payment create's two durable steps, and an audit entry's append, in the fewest round trips
//! PostgreSQL allows: each one statement of data-modifying `WITH` clauses, committed on its own.
//! SQLite has no writes in `WITH` and keeps the step-by-step transactions in `payments.rs`, which
//! also remain PostgreSQL's path when the one statement does not apply (a key already held,
//! webhooks that arrived before the answer, a payment settled already).

use super::payments::{bind_create_outcome, bind_payment_row, PAYMENT_COLUMNS, SETTLED_COLUMNS};
use super::*;
use crate::domain::audit::{chain_time, chained_time_text};
use crate::domain::payment::notification_type;
use crate::domain::{Payment, PaymentStatus, TransitionSource};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

/// SQL for one length-prefixed part of an audit entry's hash, as `entry_hash` feeds SHA-256:
/// the text's length in UTF-8 bytes (eight bytes, big-endian), then the bytes.
fn hashed_part(text: &str) -> String {
    format!(
        "int8send(octet_length(convert_to({text}, 'UTF8'))::bigint) || convert_to({text}, 'UTF8')"
    )
}

/// The claim's statement (PostgreSQL), committed on its own: the audit chain's head locked;
/// the key claimed (or an expired claim taken over) already linked to the payment; and only
/// when it was, the payment, its first timeline event, the audit entry in the head's next place
/// with its hash computed here exactly as `domain::audit::entry_hash` computes it (SHA-256 over
/// each length-prefixed field, written in the letters `a`-`p`), and the head moved to it.
/// Nothing is written when the key is still held. The head moves only after the entry is added
/// (it reads the entry's `RETURNING`, so the entry's own check still sees the head where it
/// was), and the head's forward-only check runs after the statement (migration 0019).
fn claim_statement() -> String {
    format!(
        "WITH {AUDIT_HEAD_CLAUSE}, \
         claimed AS (INSERT INTO idempotency_keys \
           (principal, idempotency_key, route, fingerprint, state, locked_until, created_at, \
            expires_at, payment_id) \
           VALUES ($21, $22, $24, $25, 'in_flight', $26, $27, $28, $1) \
           ON CONFLICT (principal, idempotency_key) DO UPDATE SET \
           route = excluded.route, fingerprint = excluded.fingerprint, state = 'in_flight', \
           locked_until = excluded.locked_until, created_at = excluded.created_at, \
           expires_at = excluded.expires_at, payment_id = excluded.payment_id, refund_id = NULL, \
           response_status = NULL, response_body = NULL \
           WHERE idempotency_keys.expires_at <= excluded.created_at RETURNING 1 AS one), \
         payment AS (INSERT INTO payments ({PAYMENT_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, \
           $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20 FROM claimed), \
         event AS (INSERT INTO payment_events (payment_id, at, from_status, to_status, source) \
           SELECT $1, $16, NULL, $11, $23 FROM claimed), \
         {} \
         SELECT COUNT(*) AS claimed FROM claimed",
        audit_clauses(29, ", claimed")
    )
}

/// The `WITH` clause that locks the audit chain's head until the statement commits: writers
/// queue here, so two entries never claim the same place.
const AUDIT_HEAD_CLAUSE: &str = "head AS (SELECT last_seq + 1 AS seq, last_hash AS prev_hash \
    FROM audit_head WHERE id = 1 FOR UPDATE)";

/// The `WITH` clauses, after [`AUDIT_HEAD_CLAUSE`], that append an audit entry in the head's next
/// place and move the head to it: `link` (its hash computed exactly as `entry_hash` computes it),
/// `audited` (the entry) and `moved` (the head). The entry's fields are parameters from `$first`:
/// its time, that time as chained text, actor key id, actor label, action, subject and detail.
/// `gate` joins another clause to `link` (", claimed": only when the key was claimed), or is empty.
fn audit_clauses(first: usize, gate: &str) -> String {
    let p = |n: usize| format!("${}", first + n);
    let hash = [
        "head.prev_hash".to_owned(),
        "head.seq::text".to_owned(),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
    ]
    .map(|part| hashed_part(&part))
    .join(" || ");
    format!(
        "link AS (SELECT head.seq, head.prev_hash, translate(encode(sha256({hash}), 'hex'), \
           '0123456789abcdef', 'abcdefghijklmnop') AS hash FROM head{gate}), \
         audited AS (INSERT INTO audit_log \
           (at, actor_key_id, actor_label, action, subject, detail, seq, prev_hash, hash) \
           SELECT {}, {}, {}, {}, {}, {}, link.seq, link.prev_hash, link.hash FROM link \
           RETURNING seq, hash), \
         moved AS (UPDATE audit_head SET last_seq = audited.seq, last_hash = audited.hash \
           FROM audited WHERE audit_head.id = 1)",
        p(0),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6)
    )
}

/// An audit entry appended on its own (PostgreSQL) in one statement, committed on its own: the
/// head locked, the entry, the head moved. Built once.
pub(super) static APPEND_AUDIT_STATEMENT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "WITH {AUDIT_HEAD_CLAUSE}, {} SELECT COUNT(*) AS appended FROM audited",
            audit_clauses(1, "")
        )
    });

/// Binds an audit entry's seven chained fields, in [`audit_clauses`]' order.
pub(super) fn bind_audit_entry<'q, B: Backend>(
    query: crate::store::guard::Statement<'q, 'q, B>,
    entry: &AuditEntry,
) -> crate::store::guard::Statement<'q, 'q, B> {
    query
        .bind(chain_time(entry.at))
        .bind(chained_time_text(entry.at))
        .bind(&entry.actor_key_id)
        .bind(&entry.actor_label)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(entry.detail.to_string())
}

/// [`claim_statement`], built once: it is the same text for every create.
static CLAIM_STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(claim_statement);

/// How the settle leaves the Idempotency-Key, as a `WITH` clause applied only when the payment
/// was settled by the same statement (parameters from `$16`).
fn key_clause(settle: Option<&IdempotencySettle>) -> &'static str {
    match settle {
        None => "",
        Some(IdempotencySettle::Completed { .. }) => {
            ", keyed AS (UPDATE idempotency_keys SET state = 'completed', response_status = $18, \
             response_body = $19 WHERE principal = $16 AND idempotency_key = $17 \
             AND EXISTS (SELECT 1 FROM settled))"
        }
        Some(IdempotencySettle::Linked) => {
            ", keyed AS (UPDATE idempotency_keys SET state = 'linked' \
             WHERE principal = $16 AND idempotency_key = $17 AND EXISTS (SELECT 1 FROM settled))"
        }
        Some(IdempotencySettle::Release) => {
            ", keyed AS (DELETE FROM idempotency_keys WHERE principal = $16 \
             AND idempotency_key = $17 AND EXISTS (SELECT 1 FROM settled))"
        }
    }
}

impl<B: Backend> SqlStore<B> {
    /// The claim (PostgreSQL): one statement; a key already held is then read in a transaction
    /// of its own (a replay, a conflict, or a claim whose holder stopped).
    pub(super) async fn claim_and_insert_at_once(
        &self,
        claim: &IdempotencyClaim,
        payment: &Payment,
        audit: &AuditEntry,
    ) -> Result<ClaimOutcome, StoreError> {
        // The audit writer's own card-number guard: the entry is kept, the number not.
        let entry = audit.without_card_numbers();
        let claimed = bind_payment_row(statement::<B>(&CLAIM_STATEMENT), payment)
            .bind(&claim.principal)
            .bind(claim.key.as_ref())
            .bind(TransitionSource::Api.as_str())
            .bind(&claim.route)
            .bind(&claim.fingerprint)
            .bind(claim.lease_until)
            .bind(claim.now)
            .bind(claim.expires_at);
        let claimed: i64 = bind_audit_entry(claimed, &entry)
            .fetch_one(&self.pool)
            .await?
            .col("claimed")?;
        if claimed == 1 {
            return Ok(ClaimOutcome::Claimed);
        }
        let mut tx = B::begin_write(&self.pool).await?;
        let outcome = Self::existing_claim_tx(&mut tx, claim).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The settle (PostgreSQL) as one statement, committed on its own: the payment's outcome,
    /// its timeline event and CRM notification when its status changed, and the key's stored
    /// answer. True when it settled the payment; false when it wrote nothing, because the
    /// payment was settled already or webhooks that arrived before the answer wait to be
    /// matched: the caller then takes the step-by-step transaction, which decides both.
    pub(super) async fn settle_create_at_once(
        &self,
        payment: &Payment,
        previous_status: PaymentStatus,
        source: TransitionSource,
        notify: bool,
        idempotency: Option<&(&IdempotencyClaim, IdempotencySettle)>,
    ) -> Result<bool, StoreError> {
        let changed = payment.status != previous_status;
        let notification = notification_type(payment.status).filter(|_| changed && notify);
        let sql = format!(
            "WITH settled AS (UPDATE payments SET {SETTLED_COLUMNS} \
               WHERE id = $1 AND create_outcome IN ('pending', 'unknown') AND NOT EXISTS \
               (SELECT 1 FROM webhook_receipts WHERE account = $10 \
                AND provider_payment_id = $4 AND outcome = 'orphan') RETURNING id), \
             event AS (INSERT INTO payment_events (payment_id, at, from_status, to_status, source) \
               SELECT id, $7, $11, $2, $12 FROM settled WHERE $13), \
             notified AS (INSERT INTO outbox \
               (id, event_type, payment_id, refund_id, created_at, next_attempt_at) \
               SELECT $14, $15::text, id, NULL, $7, $7 FROM settled WHERE $15::text IS NOT NULL)\
             {} SELECT COUNT(*) AS settled FROM settled",
            key_clause(idempotency.map(|(_, settle)| settle))
        );
        let mut write = bind_create_outcome(statement::<B>(&sql), payment)
            .bind(&payment.account)
            .bind(previous_status.as_str())
            .bind(source.as_str())
            .bind(changed)
            .bind(crate::domain::refs::new_id("evt_"))
            .bind(notification);
        if let Some((claim, settle)) = idempotency {
            write = write.bind(&claim.principal).bind(claim.key.as_ref());
            if let IdempotencySettle::Completed { status, body } = settle {
                write = write.bind(i32::from(*status)).bind(body.clone());
            }
        }
        let settled: i64 = write.fetch_one(&self.pool).await?.col("settled")?;
        Ok(settled == 1)
    }
}
