//! Prometheus metrics: the figures operators alert on. Counters and histograms are recorded where
//! things happen; gauges (notification backlog, database pool) are read from the store at scrape.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::Store;

type Labels<const N: usize> = [(&'static str, String); N];
type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Latency buckets from 5 ms to about 20 s: API requests, provider and database calls alike.
fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    ])
}

/// Every metric Counterfoil exports. One per application (tests run several side by side).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<Labels<3>, Counter>,
    http_duration: HistogramFamily<2>,
    payments_created: Family<Labels<2>, Counter>,
    webhooks: Family<Labels<3>, Counter>,
    provider_duration: HistogramFamily<2>,
    provider_errors: Family<Labels<3>, Counter>,
    notification_attempts: Family<Labels<1>, Counter>,
    rate_limited: Family<Labels<1>, Counter>,
    webhook_transaction_events: Histogram,
    webhook_batch_retries: Counter,
    notification_backlog: Gauge,
    notification_retrying: Gauge,
    notification_dead: Gauge,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("counterfoil"),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            payments_created: Family::default(),
            webhooks: Family::default(),
            provider_duration: Family::new_with_constructor(latency_histogram),
            provider_errors: Family::default(),
            notification_attempts: Family::default(),
            rate_limited: Family::default(),
            webhook_transaction_events: Histogram::new([
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0,
            ]),
            webhook_batch_retries: Counter::default(),
            notification_backlog: Gauge::default(),
            notification_retrying: Gauge::default(),
            notification_dead: Gauge::default(),
            pool_connections: Gauge::default(),
            pool_idle: Gauge::default(),
            pool_max: Gauge::default(),
            ready: Gauge::default(),
        };
        // Each metric is registered as a handle onto the same cells the methods below update.
        let mut registry = std::mem::take(&mut metrics.registry);
        metrics.register_flows(&mut registry);
        metrics.register_gauges(&mut registry);
        metrics.registry = registry;
        metrics
    }

    /// Counters and histograms: what happened, and how long it took.
    fn register_flows(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            self.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route pattern",
            self.http_duration.clone(),
        );
        registry.register(
            "payments_created",
            "Payments created at a provider, by service and provider",
            self.payments_created.clone(),
        );
        registry.register(
            "webhooks",
            "Provider webhooks received, by provider, account and outcome \
             (accepted, duplicate, ignored, orphan, withheld, bad_signature, malformed, failed)",
            self.webhooks.clone(),
        );
        registry.register(
            "provider_call_duration_seconds",
            "Time taken by calls to a payment provider, by provider and operation",
            self.provider_duration.clone(),
        );
        registry.register(
            "provider_call_errors",
            "Failed calls to a payment provider, by provider, operation and kind",
            self.provider_errors.clone(),
        );
        registry.register(
            "notification_attempts",
            "CRM notification delivery attempts, by result (delivered, retry, dead)",
            self.notification_attempts.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by limit (key, ip, webhook_account)",
            self.rate_limited.clone(),
        );
        registry.register(
            "webhook_transaction_events",
            "Webhooks per committed webhook transaction (group commit)",
            self.webhook_transaction_events.clone(),
        );
        registry.register(
            "webhook_batch_retries",
            "Webhooks tried again alone after the transaction they shared failed",
            self.webhook_batch_retries.clone(),
        );
    }

    /// Gauges: how things stand now.
    fn register_gauges(&self, registry: &mut Registry) {
        registry.register(
            "notification_backlog",
            "CRM notifications not yet delivered (pending, including retries)",
            self.notification_backlog.clone(),
        );
        registry.register(
            "notification_retrying",
            "CRM notifications pending after at least one failed attempt",
            self.notification_retrying.clone(),
        );
        registry.register(
            "notification_dead",
            "CRM notifications that exhausted their retries (need an operator)",
            self.notification_dead.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database connections open in this process's pool",
            self.pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle",
            "Open database connections not in use",
            self.pool_idle.clone(),
        );
        registry.register(
            "db_pool_max",
            "The pool's configured maximum (database.max_connections)",
            self.pool_max.clone(),
        );
        registry.register(
            "ready",
            "1 when the database is reachable and its migrations are current",
            self.ready.clone(),
        );
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&[
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&[("method", method.to_owned()), ("route", route.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    pub fn payment_created(&self, service: &str, provider: &str) {
        self.payments_created
            .get_or_create(&[
                ("service", service.to_owned()),
                ("provider", provider.to_owned()),
            ])
            .inc();
    }

    /// A webhook transaction committed with `events` webhooks in it.
    pub fn webhook_transaction(&self, events: usize) {
        self.webhook_transaction_events.observe(events as f64);
    }

    /// `events` webhooks tried again alone after their shared transaction failed.
    pub fn webhook_batch_retried(&self, events: usize) {
        self.webhook_batch_retries.inc_by(events as u64);
    }

    pub fn webhook(&self, provider: &str, account: &str, outcome: &str) {
        self.webhooks
            .get_or_create(&[
                ("provider", provider.to_owned()),
                ("account", account.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// One call to a provider: its latency, and its error kind when it failed.
    pub fn provider_call(
        &self,
        provider: &str,
        operation: &str,
        elapsed: Duration,
        error: Option<&str>,
    ) {
        self.provider_duration
            .get_or_create(&[
                ("provider", provider.to_owned()),
                ("operation", operation.to_owned()),
            ])
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.provider_errors
                .get_or_create(&[
                    ("provider", provider.to_owned()),
                    ("operation", operation.to_owned()),
                    ("kind", kind.to_owned()),
                ])
                .inc();
        }
    }

    pub fn notification_attempt(&self, result: &str) {
        self.notification_attempts
            .get_or_create(&[("result", result.to_owned())])
            .inc();
    }

    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited
            .get_or_create(&[("limit", limit.to_owned())])
            .inc();
    }

    /// The Prometheus text exposition, with the store's gauges read now.
    pub async fn render(&self, store: &dyn Store) -> String {
        let pool = store.pool_status();
        self.pool_connections.set(i64::from(pool.size));
        self.pool_idle.set(pool.idle as i64);
        self.pool_max.set(i64::from(pool.max));
        match store.outbox_counts().await {
            Ok(counts) => {
                self.notification_backlog.set(counts.pending);
                self.notification_retrying.set(counts.retrying);
                self.notification_dead.set(counts.dead);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox"),
        }
        let ready = matches!(store.pending_migrations().await, Ok(p) if p.is_empty());
        self.ready.set(i64::from(ready));
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
