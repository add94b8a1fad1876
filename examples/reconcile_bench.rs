//! Reconciliation's memory against the size of its period. Run by hand:
//!
//!     cargo run --release --example reconcile_bench -- [payments]     # default 1,000,000
//!
//! On PostgreSQL (found or started like the test suite's), it seeds the built-in GOV.UK Pay
//! simulator and our payments table with the same `payments` succeeded payments, one a second,
//! then reconciles twice, each run in a process of its own (this example re-runs itself) so the
//! memory it reports is the reconciler's alone, not the simulator's:
//! - **tenth**: the first tenth of the period (100,000 payments by default);
//! - **whole**: the whole period (1,000,000).
//!
//! It prints each run's payments compared, time taken and peak resident memory (VmHWM), and the
//! whole run's memory as a ratio to the tenth's.

#[path = "support/memory.rs"]
mod memory;
#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use counterfoil::config::Settings;
use counterfoil::domain::Actor;
use counterfoil::startup::Application;
use serde_json::{json, Value};

const SIMULATOR_KEY: &str = "api_test_counterfoil_simulator_key";
/// Set in the re-run child: `database url|simulator api base|from|to`.
const RUN: &str = "RECONCILE_BENCH_RUN";
/// Ids in letters (a-p for 0-f) like every id Counterfoil makes: a run of digits in an id could
/// be mistaken for a card number by the card-number guards.
const ID_PREFIX: &str = "seed";

fn start() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn settings(database_url: &str) -> Settings {
    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = database_url.to_owned();
    settings.poller.enabled = false;
    settings.notifications.worker = false;
    settings.retention.sweep = false;
    settings.console.enabled = false;
    settings
}

/// The child: one reconciliation of the sandbox account against the parent's simulator.
async fn run_child(spec: &str) {
    let parts: Vec<&str> = spec.split('|').collect();
    let [database_url, simulator, from, to] = parts[..] else {
        panic!("{RUN} is database|simulator|from|to");
    };
    let mut settings = settings(database_url);
    settings
        .accounts
        .get_mut("sandbox")
        .expect("the development default has the sandbox account")
        .base_url = simulator.to_owned();
    let app = Application::build(settings.validate().unwrap())
        .await
        .unwrap();
    let services = app.services();
    tokio::spawn(app.run_until_stopped());
    let actor = Actor::CommandLine("reconcile bench");
    let began = Instant::now();
    let run = services
        .reconciliation
        .run(
            &actor,
            "sandbox",
            from.parse().unwrap(),
            to.parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(run.status, "completed", "{:?}", run.error);
    println!(
        "{}",
        json!({
            "seconds": began.elapsed().as_secs_f64(),
            "provider_payments": run.provider_payments,
            "local_payments": run.local_payments,
            "discrepancies": run.discrepancies.len(),
            "peak_rss_mib": memory::peak_rss_mib("self").expect("Linux /proc"),
        })
    );
}

fn reconcile_in_child(
    database_url: &str,
    simulator: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Value {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(
            RUN,
            format!(
                "{database_url}|{simulator}|{}|{}",
                rfc3339(from),
                rfc3339(to)
            ),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the reconciler");
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with('{'))
        .expect("the reconciler reports");
    assert!(child.wait().unwrap().success());
    serde_json::from_str(&line).unwrap()
}

/// Our side: the same payments in our table, in one statement.
async fn seed_ours(database_url: &str, payments: u32, span_us: i64) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, \
         email, metadata, return_url, status, create_outcome, provider_payment_id, next_url, \
         failure_code, created_at, updated_at, finished_at, refreshed_at, refunded_amount) \
         SELECT 'pay_' || translate(lpad(to_hex(i), 32, '0'), '0123456789abcdef', 'abcdefghijklmnop'), \
           'SEED-' || i, 'demo', 'sandbox', 'govuk_pay', 2500, 'Seeded payment', NULL, '{}', \
           'https://council.example.gov.uk/done', 'succeeded', 'confirmed', \
           $1 || translate(lpad(to_hex(i), 26 - length($1), '0'), '0123456789abcdef', 'abcdefghijklmnop'), \
           NULL, NULL, t, t, t, NULL, 0 \
         FROM (SELECT i, $2::timestamptz + ($3::bigint * i / $4::bigint) * interval '1 microsecond' AS t \
               FROM generate_series(0, $4::bigint - 1) AS i) AS s",
    )
    .bind(ID_PREFIX)
    .bind(start())
    .bind(span_us)
    .bind(i64::from(payments))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE payments")
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    if let Ok(spec) = std::env::var(RUN) {
        return run_child(&spec).await;
    }
    let payments: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let database_url = postgres::fresh_database().await;
    // This process serves the provider's side: the built-in simulator, seeded.
    let app = Application::build(settings(&database_url).validate().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    let span = Duration::seconds(i64::from(payments));
    let span_us = span.num_microseconds().unwrap();
    let (from, to) = (start(), start() + span);

    let began = Instant::now();
    let seeded = reqwest::Client::new()
        .post(format!("{base}/sandbox/govuk-pay/_control/seed"))
        .bearer_auth(SIMULATOR_KEY)
        .json(&json!({"count": payments, "from": from, "to": to,
                      "id_prefix": ID_PREFIX, "amount": 2500}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 204);
    seed_ours(&database_url, payments, span_us).await;
    println!(
        "reconcile_bench: {payments} payments seeded at the simulator and in PostgreSQL in {:.1} s, {} cores",
        began.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    let simulator = format!("{base}/sandbox/govuk-pay");
    let tenth = reconcile_in_child(&database_url, &simulator, from, from + span / 10);
    let whole = reconcile_in_child(&database_url, &simulator, from, to);
    for (name, run) in [("tenth", &tenth), ("whole", &whole)] {
        println!(
            "{name}: {:>8} of ours, {:>8} listed by the provider, {} discrepancies, {:>6.1} s, peak RSS {:>6.1} MiB",
            run["local_payments"], run["provider_payments"], run["discrepancies"],
            run["seconds"].as_f64().unwrap(), run["peak_rss_mib"].as_f64().unwrap()
        );
    }
    println!(
        "peak memory, whole period to its tenth: {:.2}x",
        whole["peak_rss_mib"].as_f64().unwrap() / tenth["peak_rss_mib"].as_f64().unwrap()
    );
}
