//! The benchmarks' load: calls driven at a fixed concurrency, each one timed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Figures {
    pub events: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Figures {
    pub fn throughput(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
    }
    /// The tail beyond p50, for a closer look at where p99 comes from.
    #[allow(dead_code)]
    pub fn tail(&self) -> String {
        let ms = |p: f64| self.percentile(p).as_secs_f64() * 1000.0;
        format!(
            "{:<12} p90 {:>6.2}   p95 {:>6.2}   p99.9 {:>6.2}   max {:>6.2} ms",
            "",
            ms(0.90),
            ms(0.95),
            ms(0.999),
            ms(1.0)
        )
    }
    #[allow(dead_code)]
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<12} {:>8.0} events/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            self.throughput(),
            self.percentile(0.50).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0
        )
    }
}

/// Runs `work(i)` for every i in `range` with `concurrency` workers, timing each call.
pub async fn drive<F, Fut>(range: std::ops::Range<usize>, concurrency: usize, work: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(range.start));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (work, next, end) = (work.clone(), next.clone(), range.end);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return latencies;
                }
                let t = Instant::now();
                work(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    Figures {
        events: range.len(),
        elapsed: started.elapsed(),
        latencies,
    }
}
