//! What Counterfoil adds to a payment create, beyond the provider's own latency. Run by hand:
//!
//!     cargo run --release --example create_bench -- [creates] [delay_ms]
//!
//! On PostgreSQL (found or started like the test suite's), with the built-in GOV.UK Pay simulator
//! answering every create after a fixed delay, it measures in the same run, interleaved, at
//! concurrency 1 and 16:
//! - **provider**: creates sent straight to the simulator's API (the provider's own latency: its
//!   delay and an HTTP round trip);
//! - **counterfoil**: `POST /v1/payments` to the service (API key, idempotency claim, the guarded
//!   body, the payment stored, the provider's create through the outbound client, the answer).
//!
//! Each is warmed up first (connections opened, statements prepared; not counted). Counterfoil's
//! own share is the difference, printed at p50 and p99. Beside it, the same run measures one
//! database round trip (`SELECT 1` on the same database), one durable commit (a one-row insert
//! committing on its own) and the floor a create keeping its guarantees cannot go below (a round
//! trip and two durable commits in a row), on a pool that hands out connections as the service's
//! does, so the share can be read as round trips. The floor is measured again at each
//! concurrency, interleaved with the creates, shaped like a create (the provider's delay between
//! its two commits, not counted: a database left idle for that long is slower to wake than one
//! kept busy), and the own share printed as a ratio to it. With `BENCH_DB_TIME=1`, each create's
//! own database work at concurrency 1 is measured too (every statement's time as sqlx reports
//! it), and the rest of the share beside it.

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/database_time.rs"]
mod database_time;
#[path = "support/load.rs"]
mod load;
#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::time::Duration;

use load::{drive, Figures};

use counterfoil::config::Settings;
use counterfoil::domain::api_key::Role;
use counterfoil::startup::Application;
use serde_json::json;

const SIMULATOR_KEY: &str = "api_test_counterfoil_simulator_key";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let creates = args.first().copied().unwrap_or(800);
    let delay_ms = args.get(1).copied().unwrap_or(20) as u64;
    // Opt-in (it makes sqlx describe every statement, which the service does not otherwise do):
    // each create's own database work at concurrency 1, to split its share into database and
    // the rest.
    let database_work = std::env::var_os("BENCH_DB_TIME").is_some();
    if database_work {
        database_time::install();
    }
    let database_url = postgres::fresh_database().await;
    let machine_before = cpu::MachineTime::now();
    let costs = database_costs(&database_url).await;
    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = database_url;
    settings.poller.enabled = false;
    settings.console.enabled = false;
    settings.rate_limits = counterfoil::config::RateLimitSettings::OFF;
    // No webhooks: the simulator's answers are what is measured, not its deliveries.
    let app = Application::build(settings.validate().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", app.address());
    let services = app.services();
    tokio::spawn(app.run_until_stopped());
    let crm_key = services
        .keys
        .create(
            &counterfoil::domain::Actor::CommandLine("create bench"),
            Role::Crm,
            "create bench",
        )
        .await
        .unwrap()
        .1;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let faults = client
        .post(format!("{base}/sandbox/govuk-pay/_control/faults"))
        .json(&json!({"create_delay_ms": delay_ms, "create_delays": u32::MAX}))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 204);

    let provider = |client: reqwest::Client, base: String| {
        move |i: usize| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let response = client
                    .post(format!("{base}/sandbox/govuk-pay/v1/payments"))
                    .bearer_auth(SIMULATOR_KEY)
                    .json(&json!({"amount": 2500, "reference": format!("DIRECT-{i}"),
                                  "description": "Resident parking permit",
                                  "return_url": "https://myaccount.example.gov.uk/done"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        }
    };
    let work = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let counterfoil = |client: reqwest::Client, base: String, key: String| {
        let work = work.clone();
        move |i: usize| {
            let (client, base, key, work) =
                (client.clone(), base.clone(), key.clone(), work.clone());
            async move {
                database_time::database_time();
                let response = client
                    .post(format!("{base}/v1/payments"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", format!("create-bench-{i}"))
                    .json(
                        &json!({"request_ref": format!("BENCH-{i}"), "service": "demo",
                                  "amount": 2500, "description": "Resident parking permit",
                                  "return_url": "https://myaccount.example.gov.uk/done"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                work.lock().unwrap().push(database_time::database_time());
            }
        }
    };

    // The floor at the load's own concurrency: a round trip and two durable commits, on a pool
    // as large as the service's, interleaved with the creates so both see the same machine.
    let floor_pool = service_pool(16).connect(&costs.database_url).await.unwrap();
    // Shaped like a create: the provider's delay between the claim's commit and the settle's
    // (a database that idles between them is slower to wake than one kept busy), timed without it.
    let floor_times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let gap = Duration::from_millis(delay_ms);
    let floor = |pool: sqlx::PgPool| {
        let times = floor_times.clone();
        move |i: usize| {
            let (pool, times) = (pool.clone(), times.clone());
            async move {
                let took = floor_sequence(&pool, i as i64, gap).await;
                times.lock().unwrap().push(took);
            }
        }
    };

    println!(
        "create_bench: {creates} creates per run, provider delay {delay_ms} ms, PostgreSQL, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    costs.print();
    let mut next = 0;
    for concurrency in [1, 16] {
        // Warm-up, not counted: connections opened (the service's to the database and to the
        // provider, the load's to both), statements prepared.
        let warm_up = 16 * concurrency;
        drive(
            next..next + warm_up,
            concurrency,
            provider(client.clone(), base.clone()),
        )
        .await;
        drive(
            next..next + warm_up,
            concurrency,
            counterfoil(client.clone(), base.clone(), crm_key.clone()),
        )
        .await;
        next += warm_up;
        drive(0..warm_up, concurrency, floor(floor_pool.clone())).await;
        work.lock().unwrap().clear();
        let mut theirs = Figures::default();
        let mut ours = Figures::default();
        let mut floors = Figures::default();
        for _ in 0..2 {
            floor_times.lock().unwrap().clear();
            drive(0..creates / 2, concurrency, floor(floor_pool.clone())).await;
            floors
                .latencies
                .extend(floor_times.lock().unwrap().drain(..));
            theirs.latencies.extend(
                drive(
                    next..next + creates / 2,
                    concurrency,
                    provider(client.clone(), base.clone()),
                )
                .await
                .latencies,
            );
            next += creates;
            ours.latencies.extend(
                drive(
                    next..next + creates / 2,
                    concurrency,
                    counterfoil(client.clone(), base.clone(), crm_key.clone()),
                )
                .await
                .latencies,
            );
            next += creates;
        }
        let (p50, p99) = (theirs.percentile(0.50), theirs.percentile(0.99));
        let (o50, o99) = (ours.percentile(0.50), ours.percentile(0.99));
        let (f50, f99) = (floors.percentile(0.50), floors.percentile(0.99));
        let (s50, s99) = (ms(o50) - ms(p50), ms(o99) - ms(p99));
        println!(
            "concurrency {concurrency:>2}: provider p50 {:>6.2} ms p99 {:>6.2} ms | counterfoil p50 {:>6.2} ms p99 {:>6.2} ms | Counterfoil's own share p50 {:>5.2} ms p99 {:>5.2} ms",
            ms(p50), ms(p99), ms(o50), ms(o99), s50, s99
        );
        if database_work && concurrency == 1 {
            let work = work.lock().unwrap();
            let statements = work.iter().map(|(_, n)| n).sum::<u64>() as f64 / work.len() as f64;
            let times = Figures {
                latencies: work.iter().map(|(t, _)| *t).collect(),
                ..Figures::default()
            };
            println!(
                "concurrency  1: a create's own database work ({statements:.1} statements) p50 {:>5.2} ms p99 {:>5.2} ms; the rest of its share at p50 {:.2} ms",
                ms(times.percentile(0.50)),
                ms(times.percentile(0.99)),
                s50 - ms(times.percentile(0.50))
            );
        }
        println!(
            "concurrency {concurrency:>2}: the floor at this concurrency p50 {:>5.2} ms p99 {:>5.2} ms | own share / floor: p50 {:.2}x, p99 {:.2}x",
            ms(f50), ms(f99), s50 / ms(f50), s99 / ms(f99)
        );
    }
    if let (Some(before), Some(after)) = (machine_before, cpu::MachineTime::now()) {
        println!(
            "this machine's hypervisor took {:.0}% of its cores' time during the run (steal)",
            after.since(before).steal_percent()
        );
    }
    if std::env::var_os("BENCH_METRICS").is_some() {
        // Where the service's own figures put the time (sums and counts of its histograms).
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in text.lines().filter(|l| {
            (l.contains("_sum") || l.contains("_count"))
                && (l.contains("operation=\"create")
                    || l.contains("route=\"/v1/payments\"")
                    || l.contains("/sandbox"))
        }) {
            println!("{line}");
        }
    }
}

/// What the database alone costs here, p50 and p99: one round trip (`SELECT 1`), one durable
/// commit (a one-row insert in its own transaction), and the floor under any create that keeps
/// the guarantees (the key looked up, the claim committed before the provider is called, the
/// answer committed before the CRM hears: a round trip and two durable commits, one after another).
async fn database_costs(database_url: &str) -> DatabaseCosts {
    let pool = service_pool(1).connect(database_url).await.unwrap();
    sqlx::query("CREATE TABLE bench_commits (n BIGINT)")
        .execute(&pool)
        .await
        .unwrap();
    let mut costs = DatabaseCosts {
        database_url: database_url.to_owned(),
        ..DatabaseCosts::default()
    };
    for n in 0..1000_i64 {
        let began = std::time::Instant::now();
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        costs.round_trip.latencies.push(began.elapsed());
        let began = std::time::Instant::now();
        durable_commit(&pool, n).await;
        costs.commit.latencies.push(began.elapsed());
        costs
            .floor
            .latencies
            .push(floor_sequence(&pool, n, Duration::ZERO).await);
    }
    costs
}

/// A pool that hands out connections as the service's does (no ping before a connection used in
/// the last second), so the floor pays no round trip the service does not.
fn service_pool(max_connections: u32) -> sqlx::postgres::PgPoolOptions {
    counterfoil::store::pool::pool_options(max_connections, Duration::from_secs(5))
}

/// One durable commit, the cheapest there is: a one-row insert committing on its own (one round
/// trip, as the create's claim and settle each are one statement committing on its own).
async fn durable_commit(pool: &sqlx::PgPool, n: i64) {
    sqlx::query("INSERT INTO bench_commits (n) VALUES ($1)")
        .bind(n)
        .execute(pool)
        .await
        .unwrap();
}

/// The floor under a create that keeps its guarantees: a round trip (the key), then two durable
/// commits (the claim, the settle) with `gap` between them (the provider's time); the time taken
/// without the gap.
async fn floor_sequence(pool: &sqlx::PgPool, n: i64, gap: Duration) -> Duration {
    let began = std::time::Instant::now();
    sqlx::query("SELECT 1").execute(pool).await.unwrap();
    durable_commit(pool, n).await;
    let before_gap = began.elapsed();
    tokio::time::sleep(gap).await;
    let began = std::time::Instant::now();
    durable_commit(pool, n).await;
    before_gap + began.elapsed()
}

#[derive(Default)]
struct DatabaseCosts {
    database_url: String,
    round_trip: Figures,
    commit: Figures,
    floor: Figures,
}

impl DatabaseCosts {
    fn print(&self) {
        for (name, figures) in [
            ("a round trip (SELECT 1)", &self.round_trip),
            (
                "a durable commit (an INSERT committing on its own)",
                &self.commit,
            ),
            (
                "the guarantees' floor (a round trip and two durable commits)",
                &self.floor,
            ),
        ] {
            println!(
                "PostgreSQL here, {name}: p50 {:.2} ms, p99 {:.2} ms",
                ms(figures.percentile(0.50)),
                ms(figures.percentile(0.99))
            );
        }
    }
}
