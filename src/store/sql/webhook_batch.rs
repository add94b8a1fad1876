//! Provider events applied together: six statements for a transaction's events however many they
//! are (receipts, locks, outcomes, statuses, timeline, notifications), each event's effect exactly
//! what it would have been alone, in arrival order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::domain::{
    decide_transition, happened_at, notification_type, EventOutcome, PaymentId, PaymentStatus,
    TransitionDecision, TransitionSource,
};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::Builder;
use crate::store::*;

/// A payment as locked for the batch, and where the batch has moved it so far.
struct Locked {
    id: PaymentId,
    created_at: DateTime<Utc>,
    status: PaymentStatus,
}

/// One status move the batch makes.
struct Move {
    payment_id: PaymentId,
    from: PaymentStatus,
    to: PaymentStatus,
    at: DateTime<Utc>,
    failure_code: Option<String>,
}

/// A fresh receipt's outcome, when it is not the `ignored` it was written with.
struct ReceiptOutcome<'a> {
    account: &'a str,
    message_id: &'a str,
    outcome: &'static str,
    payment_id: Option<String>,
}

impl<B: Backend> SqlStore<B> {
    /// Applies `batch` in `tx`: answers in the batch's order.
    ///
    /// Locks are taken receipts first (in message-id order), then payments (in provider-id
    /// order), by every transaction that applies events, so two at once cannot deadlock; a second
    /// copy of a message waits on the first's receipt and, once that commits, is a duplicate.
    pub(super) async fn apply_events_tx(
        tx: &mut Transaction<'static, B>,
        batch: &[ReceivedEvent],
    ) -> Result<Vec<EventOutcome>, StoreError> {
        let mut outcomes = vec![EventOutcome::Duplicate; batch.len()];
        let fresh = Self::insert_receipts_tx(tx, batch).await?;
        let mut locked = Self::lock_payments_tx(tx, batch, &fresh).await?;
        let mut moves = Vec::new();
        let mut receipts = Vec::new();
        for &i in &fresh {
            let ReceivedEvent {
                account,
                event,
                received_at,
            } = &batch[i];
            if event.provider_payment_id.is_empty() {
                // It names no payment we could ever match (an event type we do not act on,
                // or about a payment that is not ours): acknowledged and kept as ignored.
                outcomes[i] = EventOutcome::Ignored;
                continue;
            }
            let key = (account.clone(), event.provider_payment_id.clone());
            let Some(payment) = locked.get_mut(&key) else {
                outcomes[i] = EventOutcome::Orphan;
                receipts.push(ReceiptOutcome {
                    account,
                    message_id: &event.message_id,
                    outcome: "orphan",
                    payment_id: None,
                });
                continue;
            };
            let decision = event
                .reported
                .map(|reported| decide_transition(payment.status, reported));
            outcomes[i] = match decision {
                Some(TransitionDecision::Apply { from, to }) => {
                    moves.push(Move {
                        payment_id: payment.id.clone(),
                        from,
                        to,
                        at: happened_at(event.occurred_at, payment.created_at, *received_at),
                        failure_code: event.failure_code.clone(),
                    });
                    payment.status = to;
                    EventOutcome::Applied {
                        payment_id: payment.id.clone(),
                        from,
                        to,
                    }
                }
                _ => EventOutcome::Ignored,
            };
            receipts.push(ReceiptOutcome {
                account,
                message_id: &event.message_id,
                outcome: outcomes[i].as_str(),
                payment_id: Some(payment.id.to_string()),
            });
        }
        Self::set_receipt_outcomes_tx(tx, &receipts).await?;
        Self::move_payments_tx(tx, &moves).await?;
        Ok(outcomes)
    }

    /// Writes the receipt of each message not seen before (kept as `ignored` until its outcome is
    /// known); returns their positions in arrival order. A copy of a message earlier in the same
    /// batch, or in an earlier transaction, is left out: it is a duplicate.
    async fn insert_receipts_tx(
        tx: &mut Transaction<'static, B>,
        batch: &[ReceivedEvent],
    ) -> Result<Vec<usize>, StoreError> {
        let mut seen = HashSet::new();
        let mut firsts: Vec<usize> = (0..batch.len())
            .filter(|&i| seen.insert((&batch[i].account, &batch[i].event.message_id)))
            .collect();
        firsts.sort_by_key(|&i| (&batch[i].account, &batch[i].event.message_id));
        let mut sql = Builder::<B>::new(
            "INSERT INTO webhook_receipts (account, message_id, event_type, provider_payment_id, \
             reported_status, failure_code, occurred_at, received_at, outcome) VALUES ",
        );
        sql.push_rows(firsts.iter().map(|&i| {
            let ReceivedEvent {
                account,
                event,
                received_at,
            } = &batch[i];
            [
                account.as_str().into(),
                event.message_id.as_str().into(),
                event.event_type.as_str().into(),
                event.provider_payment_id.as_str().into(),
                event.reported.map(|s| s.as_str()).into(),
                event.failure_code.as_deref().into(),
                event.occurred_at.into(),
                (*received_at).into(),
                "ignored".into(),
            ]
        }));
        sql.push(" ON CONFLICT (account, message_id) DO NOTHING RETURNING account, message_id");
        let mut inserted = HashSet::new();
        for row in sql.build().fetch_all(&mut *tx).await? {
            inserted.insert((
                row.col::<String>("account")?,
                row.col::<String>("message_id")?,
            ));
        }
        firsts.retain(|&i| {
            inserted.contains(&(batch[i].account.clone(), batch[i].event.message_id.clone()))
        });
        firsts.sort_unstable();
        Ok(firsts)
    }

    /// Locks the payments the fresh events name, in (account, provider id) order.
    async fn lock_payments_tx(
        tx: &mut Transaction<'static, B>,
        batch: &[ReceivedEvent],
        fresh: &[usize],
    ) -> Result<HashMap<(String, String), Locked>, StoreError> {
        let mut named: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for &i in fresh {
            let provider_id = batch[i].event.provider_payment_id.as_str();
            if !provider_id.is_empty() {
                named
                    .entry(&batch[i].account)
                    .or_default()
                    .insert(provider_id);
            }
        }
        let mut locked = HashMap::new();
        for (account, provider_ids) in named {
            let mut sql = Builder::<B>::new(
                "SELECT id, provider_payment_id, status, created_at FROM payments WHERE account = ",
            );
            sql.push_bind(account).push(" AND provider_payment_id IN (");
            for (n, provider_id) in provider_ids.into_iter().enumerate() {
                sql.push(if n == 0 { "" } else { ", " })
                    .push_bind(provider_id);
            }
            sql.push(") ORDER BY provider_payment_id")
                .push(B::FOR_UPDATE);
            for row in sql.build().fetch_all(&mut *tx).await? {
                let id: String = row.col("id")?;
                let payment = Locked {
                    id: PaymentId::parse(&id)
                        .map_err(|_| StoreError::Corrupt("payments.id".into()))?,
                    created_at: row.col("created_at")?,
                    status: parse_column(&row.col::<String>("status")?, "payments.status")?,
                };
                locked.insert(
                    (account.to_owned(), row.col("provider_payment_id")?),
                    payment,
                );
            }
        }
        Ok(locked)
    }

    /// Sets what became of each fresh receipt that is not simply `ignored`, in one statement.
    async fn set_receipt_outcomes_tx(
        tx: &mut Transaction<'static, B>,
        receipts: &[ReceiptOutcome<'_>],
    ) -> Result<(), StoreError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let mut sql = Builder::<B>::new(
            "UPDATE webhook_receipts SET outcome = v.column3, payment_id = v.column4 FROM (VALUES ",
        );
        sql.push_rows(receipts.iter().map(|r| {
            [
                r.account.into(),
                r.message_id.into(),
                r.outcome.into(),
                r.payment_id.as_deref().into(),
            ]
        }));
        sql.push(
            ") AS v WHERE webhook_receipts.account = v.column1 \
             AND webhook_receipts.message_id = v.column2",
        );
        sql.build().execute(&mut *tx).await?;
        Ok(())
    }

    /// The batch's status moves: each payment set once to where its moves end (compare-and-set
    /// on where they began), a timeline event per move, a CRM notification per final move.
    async fn move_payments_tx(
        tx: &mut Transaction<'static, B>,
        moves: &[Move],
    ) -> Result<(), StoreError> {
        if moves.is_empty() {
            return Ok(());
        }
        // Where each payment starts and ends within the batch, in first-move order.
        let mut ends: Vec<(&Move, &Move, Option<&str>)> = Vec::new();
        for m in moves {
            match ends
                .iter_mut()
                .find(|(first, _, _)| first.payment_id == m.payment_id)
            {
                Some((_, last, code)) => {
                    *last = m;
                    *code = m.failure_code.as_deref().or(*code);
                }
                None => ends.push((m, m, m.failure_code.as_deref())),
            }
        }
        let mut payments = Builder::<B>::new(
            "UPDATE payments SET status = v.column3, failure_code = COALESCE(v.column4, payments.failure_code), \
             updated_at = v.column5, finished_at = COALESCE(v.column6, payments.finished_at) FROM (VALUES ",
        );
        payments.push_rows(ends.iter().map(|(first, last, code)| {
            [
                first.payment_id.as_ref().into(),
                first.from.as_str().into(),
                last.to.as_str().into(),
                (*code).into(),
                last.at.into(),
                last.to.is_final().then_some(last.at).into(),
            ]
        }));
        payments.push(") AS v WHERE payments.id = v.column1 AND payments.status = v.column2");
        let moved = payments.build().execute(&mut *tx).await?.rows_affected();
        if moved != ends.len() as u64 {
            return Err(StoreError::Other(
                "a locked payment changed under its webhook".into(),
            ));
        }
        Self::insert_timeline_tx(tx, moves).await?;
        Self::insert_notifications_tx(tx, moves).await
    }

    /// A timeline event per move, in one statement.
    async fn insert_timeline_tx(
        tx: &mut Transaction<'static, B>,
        moves: &[Move],
    ) -> Result<(), StoreError> {
        let mut timeline = Builder::<B>::new(
            "INSERT INTO payment_events (payment_id, at, from_status, to_status, source) VALUES ",
        );
        timeline.push_rows(moves.iter().map(|m| {
            [
                m.payment_id.as_ref().into(),
                m.at.into(),
                m.from.as_str().into(),
                m.to.as_str().into(),
                TransitionSource::Webhook.as_str().into(),
            ]
        }));
        timeline.build().execute(&mut *tx).await?;
        Ok(())
    }

    /// A CRM notification per move to a status the CRM is told of, in one statement.
    async fn insert_notifications_tx(
        tx: &mut Transaction<'static, B>,
        moves: &[Move],
    ) -> Result<(), StoreError> {
        let notified: Vec<(&Move, &str)> = moves
            .iter()
            .filter_map(|m| notification_type(m.to).map(|t| (m, t)))
            .collect();
        if notified.is_empty() {
            return Ok(());
        }
        let mut outbox = Builder::<B>::new(
            "INSERT INTO outbox (id, event_type, payment_id, created_at, next_attempt_at) VALUES ",
        );
        outbox.push_rows(notified.iter().map(|(m, event_type)| {
            [
                crate::domain::refs::new_id("evt_").into(),
                (*event_type).into(),
                m.payment_id.as_ref().into(),
                m.at.into(),
                m.at.into(),
            ]
        }));
        outbox.build().execute(&mut *tx).await?;
        Ok(())
    }
}
