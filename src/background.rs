//! Background work under one supervisor: periodic jobs and one-off tasks, every one of them
//! stopped or finished at shutdown, none left running detached.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Owns every task the server starts besides its HTTP workers. Cheap to clone: clones share
/// the same tasks.
#[derive(Clone)]
pub struct Background {
    inner: Arc<Inner>,
}

struct Inner {
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    running: JoinSet<()>,
    closed: bool,
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

impl Background {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                shutdown: watch::channel(false).0,
                tasks: Mutex::new(Tasks::default()),
            }),
        }
    }

    /// Runs `task` once, in the background. After shutdown has begun nothing new is started.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.inner.tasks.lock().expect("background tasks lock");
        if tasks.closed {
            tracing::debug!(task = name, "shutting down: not started");
            return;
        }
        // Forget the tasks that have finished, so a long-running server does not keep them.
        while tasks.running.try_join_next().is_some() {}
        tasks.running.spawn(task);
    }

    /// Runs `job` after `first_wait`, then again after whatever wait each run returns, until
    /// shutdown. A run that has started is finished: shutdown interrupts only the waits.
    pub fn every<F>(&self, name: &'static str, first_wait: Duration, mut job: F)
    where
        F: FnMut() -> BoxFuture<'static, Duration> + Send + 'static,
    {
        let mut shutdown = self.inner.shutdown.subscribe();
        self.spawn(name, async move {
            let mut wait = first_wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
                if *shutdown.borrow() {
                    return;
                }
                wait = job().await;
            }
        });
    }

    /// Stops the periodic jobs' waits and lets every task finish within `deadline`; what is
    /// still running then is aborted. Returns how many were aborted.
    pub async fn shut_down(&self, deadline: Duration) -> usize {
        let _ = self.inner.shutdown.send(true);
        let mut running = {
            let mut tasks = self.inner.tasks.lock().expect("background tasks lock");
            tasks.closed = true;
            std::mem::take(&mut tasks.running)
        };
        let until = tokio::time::Instant::now() + deadline;
        while let Ok(Some(_)) = tokio::time::timeout_at(until, running.join_next()).await {}
        let aborted = running.len();
        running.abort_all();
        while running.join_next().await.is_some() {}
        aborted
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_periodic_job_runs_on_its_schedule_and_stops_at_shutdown() {
        let runs = Arc::new(AtomicUsize::new(0));
        let background = Background::new();
        let counted = runs.clone();
        background.every("count", Duration::ZERO, move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Duration::from_secs(10)
            }
            .boxed()
        });
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "at 0, 10 and 20 seconds");
        assert_eq!(background.shut_down(Duration::from_secs(1)).await, 0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "not after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_a_task_within_the_deadline_and_aborts_the_rest() {
        let background = Background::new();
        let finished = Arc::new(AtomicUsize::new(0));
        for seconds in [1, 100] {
            let finished = finished.clone();
            background.spawn("sleeper", async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(background.shut_down(Duration::from_secs(5)).await, 1);
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        // Nothing new starts once shutdown has begun.
        let late = finished.clone();
        background.spawn("late", async move {
            late.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
