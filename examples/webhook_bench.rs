//! Webhook throughput benchmark, run by hand (never in the test suite):
//!
//!     cargo run --release --example webhook_bench -- [events] [concurrency]
//!
//! On PostgreSQL (found or started like the test suite's), it seeds payments, starts the service as
//! a process of its own (this binary again, so its memory is its own), then measures in the same
//! run, on the same database, at the same concurrency, twice each and interleaved:
//! - **pgbench**: PostgreSQL's own load generator running the obvious SQL of one webhook (insert a
//!   receipt keyed on the message id, update the payment, insert a status event, insert an outbox
//!   row; one transaction, prepared statements), the database's own figure for this work;
//! - **store**: the store's unit of work for one webhook (`Store::apply_provider_event`), called
//!   directly, one transaction per event;
//! - **webhooks**: distinct signed GOV.UK Pay webhooks over HTTP to the running service
//!   (signature check, allow-listed parsing, the unit of work, the answer).
//!
//! It prints throughput, p50 and p99 for each, the webhooks' ratios to pgbench and to the store
//! call, and the service's peak resident memory.

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/load.rs"]
mod load;
#[path = "support/memory.rs"]
mod memory;
#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::{drive, Figures};

use chrono::Utc;
use counterfoil::config::{Settings, SIMULATOR_BASE_URL};
use counterfoil::domain::{PaymentStatus, ProviderEvent};
use counterfoil::providers::govuk_pay::sign_webhook;
use counterfoil::startup::Application;
use counterfoil::store::{self, Store};

const SECRET: &str = "webhook_test_counterfoil_simulator_secret";
const POOL: u32 = 16;
/// Set in the child process: the database it serves.
const SERVE: &str = "WEBHOOK_BENCH_SERVE";

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

fn settings(database_url: &str) -> Settings {
    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = database_url.to_owned();
    settings.database.max_connections = POOL;
    settings.payments.refresh_on_read = false;
    settings.poller.enabled = false;
    settings.console.enabled = false;
    // Measure the service, not its rate limits.
    settings.rate_limits = counterfoil::config::RateLimitSettings::OFF;
    // Group commit as configured, or as these say (to compare settings in one run).
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    if let Some(n) = number("BENCH_GROUP_MAX") {
        settings.database.webhook_group_commit_max_events = n as usize;
    }
    if let Some(n) = number("BENCH_GROUP_WORKERS") {
        settings.database.webhook_group_commit_workers = n as usize;
    }
    if let Some(n) = number("BENCH_GROUP_WINDOW_MICROS") {
        settings.database.webhook_group_commit_window_micros = n;
    }
    assert_eq!(settings.accounts["sandbox"].base_url, SIMULATOR_BASE_URL);
    settings
}

/// The child process: the service on `database_url`, its address on the first line of stdout.
async fn serve(database_url: &str) {
    // BENCH_LOGS=1: the production log pipeline (JSON lines on stderr, one per request and per
    // webhook, with their spans) is on, as in a deployment; run with 2>/dev/null.
    let _telemetry = std::env::var_os("BENCH_LOGS").map(|_| {
        counterfoil::telemetry::init(
            counterfoil::config::Environment::Production,
            &counterfoil::config::TelemetrySettings::default(),
        )
        .expect("logs")
    });
    let app = Application::build(settings(database_url).validate().unwrap())
        .await
        .unwrap();
    println!("listening {}", app.address());
    app.run_until_stopped().await.unwrap();
}

/// The service as a process of its own, and where it listens.
fn start_service(database_url: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVE, database_url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the service");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening ")
        .expect("the service's address")
        .to_owned();
    (child, address)
}

fn pgbench_binary() -> PathBuf {
    let on_path = Command::new("pgbench").arg("--version").output().is_ok();
    if on_path {
        return "pgbench".into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().expect(
        "pgbench (PostgreSQL's server packages: apt-get install postgresql) is not installed",
    )
}

/// The obvious SQL of one webhook, as pgbench runs it: one transaction, four statements.
const PGBENCH_SCRIPT: &str = "\
\\set p random(0, :payments - 1)
\\set m random(1, 9000000000000000)
BEGIN;
INSERT INTO webhook_receipts (account, message_id, event_type, provider_payment_id, reported_status, received_at, outcome, payment_id) VALUES ('sandbox', 'pgbench-' || :m, 'card_payment_succeeded', 'bench-' || :p, 'succeeded', now(), 'applied', NULL) ON CONFLICT (account, message_id) DO NOTHING;
UPDATE payments SET status = 'succeeded', updated_at = now(), finished_at = now() WHERE account = 'sandbox' AND provider_payment_id = 'bench-' || :p RETURNING id AS payment_id \\gset
INSERT INTO payment_events (payment_id, at, from_status, to_status, source) VALUES (:payment_id, now(), 'created', 'succeeded', 'webhook');
INSERT INTO outbox (id, event_type, payment_id, created_at, next_attempt_at) VALUES ('evt_pgbench' || :m, 'payment.succeeded', :payment_id, now(), now());
END;
";

/// pgbench running [`PGBENCH_SCRIPT`] for `events` transactions at `concurrency`.
fn pgbench(database_url: &str, events: usize, concurrency: usize, payments: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("webhook.sql");
    std::fs::write(&script, PGBENCH_SCRIPT).unwrap();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(concurrency);
    let started = Instant::now();
    let output = Command::new(pgbench_binary())
        .args(["--no-vacuum", "--protocol=prepared", "--log"])
        .arg(format!("--log-prefix={}", dir.path().join("log").display()))
        .arg(format!("--client={concurrency}"))
        .arg(format!("--jobs={threads}"))
        .arg(format!("--transactions={}", events / concurrency))
        .arg(format!("--define=payments={payments}"))
        .arg(format!("--file={}", script.display()))
        .arg(database_url)
        .output()
        .expect("run pgbench");
    let wall = started.elapsed();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps: f64 = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|t| t.parse().ok())
        .expect("pgbench's tps");
    let latencies = pgbench_latencies(dir.path());
    let events = latencies.len();
    // pgbench's own figure excludes its connection set-up, as the others' do.
    let elapsed = Duration::from_secs_f64(events as f64 / tps).min(wall);
    Figures {
        events,
        elapsed,
        latencies,
    }
}

/// Per-transaction latencies from pgbench's logs (third column, microseconds).
fn pgbench_latencies(dir: &Path) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("log") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            if let Some(us) = line.split_whitespace().nth(2).and_then(|t| t.parse().ok()) {
                latencies.push(Duration::from_micros(us));
            }
        }
    }
    latencies
}

/// CPU seconds used so far: the service, this process (the load), the whole machine.
#[derive(Clone, Copy)]
struct CpuNow {
    service: f64,
    load: f64,
    machine: cpu::MachineTime,
}

fn cpu_now(service_pid: &str) -> Option<CpuNow> {
    Some(CpuNow {
        service: cpu::process_seconds(service_pid)?,
        load: cpu::process_seconds("self")?,
        machine: cpu::MachineTime::now()?,
    })
}

impl CpuNow {
    fn since(self, before: CpuNow) -> CpuNow {
        CpuNow {
            service: self.service - before.service,
            load: self.load - before.load,
            machine: self.machine.since(before.machine),
        }
    }
}

impl std::fmt::Display for CpuNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<12} CPU during the webhooks: service {:.2} s, load generator {:.2} s, everything else (PostgreSQL) {:.2} s; \
             taken by the hypervisor (steal) {:.0}%",
            "",
            self.service,
            self.load,
            self.machine.busy - self.service - self.load,
            self.machine.steal_percent()
        )
    }
}

#[tokio::main]
async fn main() {
    if let Ok(database_url) = std::env::var(SERVE) {
        return serve(&database_url).await;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(4000);
    let concurrency = args.get(1).copied().unwrap_or(32);
    let database_url = postgres::fresh_database().await;
    let store: Arc<dyn Store> = store::connect(&database_url, POOL).await.unwrap();
    store.migrate().await.unwrap();
    // Two rounds of the store and of webhooks, each on payments of its own.
    // Warm-up first (connections opened, statements prepared, caches filled), on payments of its
    // own after the measured rounds' ones.
    let warm_up = concurrency * 16;
    seed(&database_url, events * 4 + 2 * warm_up).await;
    let (mut service, address) = start_service(&database_url);
    let url = format!("http://{address}/v1/webhooks/govuk-pay/sandbox");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    let direct = |store: Arc<dyn Store>| {
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
    let warm = events * 4;
    pgbench(&database_url, warm_up, concurrency, events * 4);
    drive(warm..warm + warm_up, concurrency, direct(store.clone())).await;
    let warm_webhooks = drive(
        warm + warm_up..warm + 2 * warm_up,
        concurrency,
        http(client.clone(), url.clone()),
    )
    .await;
    println!(
        "{}   (warm-up, not counted: connections opened, statements prepared)",
        warm_webhooks.line("webhooks")
    );
    let mut rounds = Vec::new();
    for round in 0..2 {
        let first = round * 2 * events;
        let database = pgbench(&database_url, events, concurrency, events * 4);
        let store_call = drive(first..first + events, concurrency, direct(store.clone())).await;
        let service_pid = service.id().to_string();
        let cpu_before = cpu_now(&service_pid);
        let webhooks = drive(
            first + events..first + 2 * events,
            concurrency,
            http(client.clone(), url.clone()),
        )
        .await;
        let cpu_used = cpu_now(&service_pid).map(|after| after.since(cpu_before.unwrap()));
        for (name, figures) in [
            ("pgbench", &database),
            ("store", &store_call),
            ("webhooks", &webhooks),
        ] {
            println!("{}", figures.line(&format!("{name} #{}", round + 1)));
            println!("{}", figures.tail());
        }
        if let Some(used) = cpu_used {
            println!("{used}");
        }
        rounds.push((database, store_call, webhooks));
    }
    let peak = memory::peak_rss_mib(&service.id().to_string());
    let _ = service.kill();
    let _ = service.wait();
    let mean = |pick: fn(&(Figures, Figures, Figures)) -> &Figures| {
        rounds.iter().map(|r| pick(r).throughput()).sum::<f64>() / rounds.len() as f64
    };
    let (database, store_call, webhooks) = (mean(|r| &r.0), mean(|r| &r.1), mean(|r| &r.2));
    println!(
        "ratios: webhooks over HTTP run at {:.2}x pgbench's throughput and {:.2}x the direct store call's",
        webhooks / database,
        webhooks / store_call
    );
    match peak {
        Some(mib) => println!("service peak resident memory: {mib:.1} MiB"),
        None => println!("service peak resident memory: not available (no /proc)"),
    }
}
