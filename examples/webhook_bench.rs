//! Webhook throughput benchmark, run by hand (never in the test suite):
//!
//!     cargo run --release --example webhook_bench -- [events] [concurrency]
//!
//! On PostgreSQL (found or started like the test suite's), it seeds payments, then measures in the
//! same run and on the same database:
//! - baseline: the exact unit of work a webhook causes (`Store::apply_provider_event`: receipt,
//!   row lock, state machine, timeline, outbox, one transaction), called directly, at the same
//!   concurrency and pool size;
//! - counterfoil: distinct signed GOV.UK Pay webhooks over HTTP to the running service
//!   (signature check, allow-listed parsing, the same unit of work, the response).
//!
//! It prints throughput and p50/p99 latency for each, and the ratio of the two.

#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use counterfoil::config::{Settings, SIMULATOR_BASE_URL};
use counterfoil::domain::{PaymentStatus, ProviderEvent};
use counterfoil::providers::govuk_pay::sign_webhook;
use counterfoil::startup::Application;
use counterfoil::store::{self, Store};

const SECRET: &str = "webhook_test_counterfoil_simulator_secret";
const POOL: u32 = 16;

struct Figures {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn throughput(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<12} {:>8.0} events/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            self.throughput(),
            self.percentile(0.50).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0
        )
    }
}

/// Runs `work(i)` for every i in `range` with `concurrency` workers, timing each call.
async fn drive<F, Fut>(range: std::ops::Range<usize>, concurrency: usize, work: F) -> Figures
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

fn message(i: usize) -> String {
    serde_json::json!({
        "webhook_message_id": format!("bench-message-{i}"),
        "created_date": "2026-11-23T10:36:26.988Z",
        "resource_id": format!("bench-{i}"),
        "api_version": 1,
        "resource_type": "payment",
        "event_type": "card_payment_succeeded",
        "resource": {
            "payment_id": format!("bench-{i}"), "amount": 2500, "reference": "BENCH",
            "state": {"status": "success", "finished": true},
            "card_details": {"last_digits_card_number": "4242", "first_digits_card_number": "424242",
                             "cardholder_name": "Bench Mark", "expiry_date": "04/30", "card_brand": "Visa"}
        }
    })
    .to_string()
}

/// Inserts `n` payments, created and confirmed at the provider as `bench-<i>`, in one statement.
async fn seed(database_url: &str, n: usize) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, \
           metadata, return_url, status, create_outcome, provider_payment_id, created_at, updated_at) \
         SELECT 'pay_' || translate(lpad(to_hex(i), 32, '0'), '0123456789abcdef', 'abcdefghijklmnop'), 'BENCH-' || i, 'demo', 'sandbox', 'govuk_pay', 2500, \
           'Benchmark', '{}', 'https://example.gov.uk/done', 'created', 'confirmed', 'bench-' || i, now(), now() \
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(n as i64)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(4000);
    let concurrency = args.get(1).copied().unwrap_or(32);
    // BENCH_LOGS=1: the production log pipeline (JSON lines on stderr, one per request and per
    // webhook, with their spans) is on, as in a deployment; run with 2>/dev/null.
    let _telemetry = std::env::var_os("BENCH_LOGS").map(|_| {
        counterfoil::telemetry::init(
            counterfoil::config::Environment::Production,
            &counterfoil::config::TelemetrySettings::default(),
        )
        .expect("logs")
    });
    let database_url = postgres::fresh_database().await;
    let store: Arc<dyn Store> = store::connect(&database_url, POOL).await.unwrap();
    store.migrate().await.unwrap();
    // Two rounds each, interleaved, so drift on the machine hits both alike.
    seed(&database_url, events * 4).await;

    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = database_url.clone();
    settings.database.max_connections = POOL;
    settings.payments.refresh_on_read = false;
    settings.poller.enabled = false;
    // Measure the service, not its rate limits.
    settings.rate_limits = counterfoil::config::RateLimitSettings {
        per_key_per_minute: 0,
        per_ip_per_minute: 0,
        per_webhook_account_per_minute: 0,
    };
    assert_eq!(settings.accounts["sandbox"].base_url, SIMULATOR_BASE_URL);
    let settings = settings.validate().unwrap();
    let app = Application::build(settings).await.unwrap();
    let url = format!("http://{}/v1/webhooks/govuk-pay/sandbox", app.address());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    let baseline = |store: Arc<dyn Store>| {
        move |i: usize| {
            let store = store.clone();
            async move {
                let event = ProviderEvent {
                    message_id: format!("bench-message-{i}"),
                    event_type: "card_payment_succeeded".into(),
                    provider_payment_id: format!("bench-{i}"),
                    reported: Some(PaymentStatus::Succeeded),
                    failure_code: None,
                    occurred_at: None,
                    counterfoil_id: None,
                    refund_activity: false,
                };
                store
                    .apply_provider_event("sandbox", &event, Utc::now())
                    .await
                    .unwrap();
            }
        }
    };
    let http = |client: reqwest::Client, url: String| {
        move |i: usize| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let body = message(i);
                let response = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Pay-Signature", sign_webhook(SECRET, body.as_bytes()))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }
    };

    println!(
        "webhook_bench: {events} events per run, concurrency {concurrency}, pool {POOL}, {} cores, PostgreSQL",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let b1 = drive(0..events, concurrency, baseline(store.clone())).await;
    let h1 = drive(
        events..2 * events,
        concurrency,
        http(client.clone(), url.clone()),
    )
    .await;
    let b2 = drive(2 * events..3 * events, concurrency, baseline(store.clone())).await;
    let h2 = drive(
        3 * events..4 * events,
        concurrency,
        http(client.clone(), url.clone()),
    )
    .await;
    for (name, figures) in [
        ("baseline #1", &b1),
        ("webhooks #1", &h1),
        ("baseline #2", &b2),
        ("webhooks #2", &h2),
    ] {
        println!("{}", figures.line(name));
    }
    let baseline_rate = (b1.throughput() + b2.throughput()) / 2.0;
    let http_rate = (h1.throughput() + h2.throughput()) / 2.0;
    println!(
        "ratio: webhooks over HTTP run at {:.0}% of the baseline's throughput",
        100.0 * http_rate / baseline_rate
    );
}
