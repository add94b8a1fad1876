//! Group commit for webhooks: events from concurrent requests share one transaction, each request
//! answered only after the commit that holds its event; a batch that fails is retried event by
//! event, so one bad event fails alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::domain::{EventOutcome, ProviderEvent};
use crate::metrics::Metrics;
use crate::store::{ReceivedEvent, Store, StoreError};

/// How events are grouped.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitSettings {
    /// At most this many events in one transaction; 1 turns grouping off.
    pub max_events: usize,
    /// Transactions being built or committed at once.
    pub workers: usize,
    /// How long a batch that is not full waits for more events before committing (zero: it
    /// takes what is queued, which under load is plenty; alone, an event is never delayed).
    pub window: Duration,
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        Self {
            max_events: 64,
            workers: 4,
            window: Duration::ZERO,
        }
    }
}

struct Waiting {
    event: ReceivedEvent,
    reply: oneshot::Sender<Result<EventOutcome, StoreError>>,
}

/// What grouping has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitCounts {
    /// Transactions of more than one event that committed.
    pub shared_transactions: u64,
    /// Events those transactions held.
    pub shared_events: u64,
    /// Events applied alone after their batch failed.
    pub retried_alone: u64,
}

/// The counts, and the metrics operators see them as.
struct Counters {
    shared_transactions: AtomicU64,
    shared_events: AtomicU64,
    retried_alone: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Counters {
    fn committed(&self, events: usize) {
        if events > 1 {
            self.shared_transactions.fetch_add(1, Ordering::Relaxed);
            self.shared_events
                .fetch_add(events as u64, Ordering::Relaxed);
        }
        self.metrics.webhook_transaction(events);
    }

    fn retried(&self, events: usize) {
        self.retried_alone
            .fetch_add(events as u64, Ordering::Relaxed);
        self.metrics.webhook_batch_retried(events);
    }
}

/// Applies provider events, grouping concurrent ones into shared transactions.
pub struct GroupCommit {
    store: Arc<dyn Store>,
    queue: Option<mpsc::Sender<Waiting>>,
    counters: Arc<Counters>,
}

impl GroupCommit {
    /// Starts the workers (on the current Tokio runtime); they stop when this is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        settings: GroupCommitSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let counters = Arc::new(Counters {
            shared_transactions: AtomicU64::new(0),
            shared_events: AtomicU64::new(0),
            retried_alone: AtomicU64::new(0),
            metrics,
        });
        if settings.max_events <= 1 {
            return Self {
                store,
                queue: None,
                counters,
            };
        }
        let (sender, receiver) = mpsc::channel(settings.max_events * settings.workers.max(1) * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..settings.workers.max(1) {
            tokio::spawn(work(
                store.clone(),
                receiver.clone(),
                settings,
                counters.clone(),
            ));
        }
        Self {
            store,
            queue: Some(sender),
            counters,
        }
    }

    /// What grouping has done so far.
    pub fn counts(&self) -> GroupCommitCounts {
        GroupCommitCounts {
            shared_transactions: self.counters.shared_transactions.load(Ordering::Relaxed),
            shared_events: self.counters.shared_events.load(Ordering::Relaxed),
            retried_alone: self.counters.retried_alone.load(Ordering::Relaxed),
        }
    }

    /// Applies one event; returns once the transaction holding it has committed.
    pub async fn apply(
        &self,
        account: &str,
        event: &ProviderEvent,
        received_at: DateTime<Utc>,
    ) -> Result<EventOutcome, StoreError> {
        let Some(queue) = &self.queue else {
            let outcome = self
                .store
                .apply_provider_event(account, event, received_at)
                .await;
            if outcome.is_ok() {
                self.counters.committed(1);
            }
            return outcome;
        };
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting {
            event: ReceivedEvent {
                account: account.to_owned(),
                event: event.clone(),
                received_at,
            },
            reply,
        };
        // Only at shutdown: the workers have gone with the pool.
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        queue.send(waiting).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// One worker: takes what is queued (up to the batch size), commits it, answers each event.
async fn work(
    store: Arc<dyn Store>,
    queue: Arc<Mutex<mpsc::Receiver<Waiting>>>,
    settings: GroupCommitSettings,
    counters: Arc<Counters>,
) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + settings.window;
            while batch.len() < settings.max_events {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) if settings.window.is_zero() => break,
                    Err(_) => match tokio::time::timeout_at(deadline, queue.recv()).await {
                        Ok(Some(next)) => batch.push(next),
                        _ => break,
                    },
                }
            }
            batch
        };
        commit(&*store, batch, &counters).await;
    }
}

/// Commits a batch; if the shared transaction fails, each event is tried again alone (a retry is
/// safe: an event whose receipt did commit is answered as a duplicate, its effect already made).
async fn commit(store: &dyn Store, batch: Vec<Waiting>, counters: &Counters) {
    let alone = batch.len() == 1;
    if !alone {
        let events: Vec<ReceivedEvent> = batch.iter().map(|w| w.event.clone()).collect();
        match store.apply_provider_events(&events).await {
            Ok(outcomes) => {
                counters.committed(outcomes.len());
                for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = waiting.reply.send(Ok(outcome));
                }
                return;
            }
            Err(error) => {
                tracing::warn!(events = events.len(), %error, "webhook batch failed; applying its events one by one");
                counters.retried(events.len());
            }
        }
    }
    for waiting in batch {
        let ReceivedEvent {
            account,
            event,
            received_at,
        } = &waiting.event;
        let outcome = store
            .apply_provider_event(account, event, *received_at)
            .await;
        if outcome.is_ok() {
            counters.committed(1);
        }
        let _ = waiting.reply.send(outcome);
    }
}
