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
    use tokio::sync::{oneshot, Notify};

    use super::*;

    #[tokio::test]
    async fn a_periodic_job_runs_again_until_shutdown_and_never_after() {
        let runs = Arc::new(AtomicUsize::new(0));
        let third_run = Arc::new(Notify::new());
        let background = Background::new();
        let (counted, told) = (runs.clone(), third_run.clone());
        background.every("count", Duration::ZERO, move || {
            let (counted, told) = (counted.clone(), told.clone());
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                    told.notify_one();
                }
                Duration::from_millis(1)
            }
            .boxed()
        });
        third_run.notified().await;
        assert_eq!(background.shut_down(Duration::from_secs(5)).await, 0);
        let at_shutdown = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            at_shutdown,
            "no run after shutdown"
        );
    }

    #[tokio::test]
    async fn shutdown_lets_running_work_finish_and_aborts_what_outlives_the_deadline() {
        let background = Background::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let (release, released) = oneshot::channel::<()>();
        let done = finished.clone();
        background.spawn("finishes", async move {
            let _ = released.await;
            done.fetch_add(1, Ordering::SeqCst);
        });
        background.spawn("never finishes", std::future::pending());
        release.send(()).unwrap();
        assert_eq!(background.shut_down(Duration::from_secs(1)).await, 1);
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        // Nothing new starts once shutdown has begun.
        let late = finished.clone();
        background.spawn("late", async move {
            late.fetch_add(1, Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
