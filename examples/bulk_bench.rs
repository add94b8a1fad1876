//! Bulk work at a shared deployment's size. Run by hand, after the seeder:
//!
//!     cargo run --release --example seed -- 10000000                 # once: counterfoil_bench
//!     cargo run --release --example bulk_bench -- [database]          # counterfoil_bench
//!
//! On the seeded database (about a million payments' personal data due for the retention sweep at
//! ten million), with the service running in this process, it measures:
//! - **webhooks alone**: signed GOV.UK Pay webhooks over HTTP at a steady 200 a second for 30 s;
//! - **the retention sweep**, start to end, with the same webhooks at the same pace during its
//!   first 30 s (their p99 beside the first figure's: the sweep must not starve the money path);
//! - **erasure by reference** of one request's payments;
//! - **reconciliation of a busy day**: 30,000 payments on one London day, at the provider (the
//!   built-in simulator, seeded) and among the ten million;
//! - **`pci-scan`** of every text column of the whole database.
//!
//! Each with its time and the process's peak resident memory before and after.
//! `BENCH_ONLY=sweep` (or `erasure`, `reconciliation`, `scan`, or several: `sweep,erasure`) runs
//! only those parts;
//! `SWEEP_WINDOW_ONLY=1` measures the webhooks beside the sweep without sweeping the rest. The sweep changes
//! the database; afterwards the payments it pseudonymised are made due again (their fields filled
//! with new made-up values), so the next run sweeps as many.

#[path = "support/memory.rs"]
mod memory;
#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "support/seeded.rs"]
mod seeded;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use counterfoil::domain::refs::RequestRef;
use counterfoil::domain::Actor;
use counterfoil::providers::govuk_pay::sign_webhook;
use counterfoil::startup::Application;
use sqlx::{PgPool, Row};

const SECRET: &str = "webhook_test_counterfoil_simulator_secret";
const SIMULATOR_KEY: &str = "api_test_counterfoil_simulator_key";
/// Payments on the busy day reconciled (a shared deployment's average day is about 4,500).
const BUSY_DAY: u32 = 30_000;
/// The busy day's provider ids begin with this (letters only, as the card-number guards expect).
const BUSY_PREFIX: &str = "busyday";
/// Webhooks a second, and for how long, in each measured window.
const PACE: u64 = 200;
const WINDOW: Duration = Duration::from_secs(30);
/// Windows alone and during the sweep, taken in turn.
const ROUNDS: usize = 4;

fn message(provider_id: &str, n: usize) -> String {
    serde_json::json!({
        "webhook_message_id": format!("{provider_id}-message-{n}"),
        "created_date": Utc::now().to_rfc3339(),
        "resource_id": provider_id,
        "api_version": 1,
        "resource_type": "payment",
        "event_type": "card_payment_succeeded",
        "resource": {
            "payment_id": provider_id, "amount": 2500, "reference": "BULK",
            "state": {"status": "success", "finished": true}
        }
    })
    .to_string()
}

/// Payments waiting at the provider, one per webhook to come: `bulk-<tag>-<n>`.
async fn seed_waiting(pool: &PgPool, tag: &str, n: usize) {
    sqlx::query(
        "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, \
           metadata, return_url, status, create_outcome, provider_payment_id, created_at, updated_at) \
         SELECT 'pay_' || translate(lpad(to_hex(i), 24, '0') || $2, '0123456789abcdef', 'abcdefghijklmnop'), \
           'BULK-' || i, 'svc-a', 'sandbox', 'govuk_pay', 2500, 'Bulk benchmark', '{}', \
           'https://example.gov.uk/done', 'in_progress', 'confirmed', 'bulk-' || $2 || '-' || i, now(), now() \
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(n as i64)
    .bind(tag)
    .execute(pool)
    .await
    .unwrap();
}

/// Webhooks for `bulk-<tag>-<from..>` at [`PACE`] a second for [`WINDOW`] (each sent on time
/// whether or not the last was answered), and each one's time to a 2xx.
async fn paced_webhooks(url: &str, tag: &str, from: usize) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / PACE));
    let mut sent = Vec::new();
    for n in 0..(PACE * WINDOW.as_secs()) as usize {
        ticks.tick().await;
        let body = message(&format!("bulk-{tag}-{}", from + n), n);
        let request = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("Pay-Signature", sign_webhook(SECRET, body.as_bytes()))
            .body(body);
        let latencies = latencies.clone();
        sent.push(tokio::spawn(async move {
            let began = Instant::now();
            let answer = request.send().await.unwrap();
            assert!(answer.status().is_success(), "webhook: {}", answer.status());
            latencies.lock().unwrap().push(began.elapsed());
        }));
    }
    for task in sent {
        task.await.unwrap();
    }
    let mut all = latencies.lock().unwrap().clone();
    all.sort();
    all
}

fn ms_at(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1000.0
}

fn peak() -> f64 {
    memory::peak_rss_mib("self").unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "counterfoil_bench".into());
    let url = seeded::database_on(postgres::server_url(), &name);
    let pool = PgPool::connect(&url).await.unwrap();
    let app = Application::build(seeded::settings(&url).validate().unwrap())
        .await
        .expect("the service starts on the seeded database");
    let webhooks = format!("http://{}/v1/webhooks/govuk-pay/sandbox", app.address());
    let simulator = format!("http://{}/sandbox/govuk-pay", app.address());
    let services = app.services();
    tokio::spawn(app.run_until_stopped());
    let actor = Actor::CommandLine("bulk bench");
    let tag = format!("{:x}", Utc::now().timestamp());
    let per_window = (PACE * WINDOW.as_secs()) as usize;
    seed_waiting(&pool, &tag, (2 * ROUNDS + 1) * per_window).await;
    let due: i64 = sqlx::query(
        "SELECT COUNT(*) FROM payments WHERE personal_erased_at IS NULL \
         AND finished_at < now() - interval '90 days'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    println!("bulk_bench on {name}: {due} payments' personal data due for the sweep\n");

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    if wanted("sweep") {
        sweep(&services, &actor, &webhooks, &tag, per_window, &pool).await;
    }
    // The payments the webhooks paid are the benchmark's, not the seeded deployment's: gone,
    // so that the next read benchmark reads the month the seeder made.
    remove_payments(&pool, "BULK-%").await;
    if wanted("erasure") {
        erasure(&services, &actor, &pool).await;
    }
    if wanted("reconciliation") {
        reconciliation(&services, &actor, &simulator, &pool).await;
    }
    if wanted("scan") {
        scan(&services).await;
    }
}

/// Rounds of webhooks alone and webhooks during the sweep, in turn (a 30 s window's p99 varies
/// by a third from one window to the next on this machine, so each side pools several windows
/// taken side by side); then the whole sweep, start to end; then what it pseudonymised is made
/// due again.
async fn sweep(
    services: &counterfoil::service::AppServices,
    actor: &Actor,
    webhooks: &str,
    tag: &str,
    per_window: usize,
    pool: &PgPool,
) {
    // Not counted: the first window after start-up is slower (connections opened, caches cold).
    paced_webhooks(webhooks, tag, 0).await;
    let swept_from = Utc::now();
    let (mut alone, mut during) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let from = (2 * round + 1) * per_window;
        let quiet = paced_webhooks(webhooks, tag, from).await;
        let sweeper = {
            let (services, actor) = (services.clone(), actor.clone());
            tokio::spawn(async move { services.data_protection.sweep(&actor, false).await })
        };
        let busy = paced_webhooks(webhooks, tag, from + per_window).await;
        let finished_early = sweeper.is_finished();
        sweeper.abort();
        assert!(!finished_early, "the sweep ended before its window did");
        println!(
            "round {}: webhooks alone p99 {:.1} ms, during the sweep p99 {:.1} ms",
            round + 1,
            ms_at(&quiet, 0.99),
            ms_at(&busy, 0.99)
        );
        alone.extend(quiet);
        during.extend(busy);
    }
    alone.sort();
    during.sort();
    for (name, all) in [("alone", &alone), ("during the sweep", &during)] {
        println!(
            "webhooks {name:<16} {} at {PACE}/s   p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            all.len(),
            ms_at(all, 0.5),
            ms_at(all, 0.99),
            ms_at(all, 1.0)
        );
    }
    println!(
        "p99 during the sweep / alone: {:.2}x",
        ms_at(&during, 0.99) / ms_at(&alone, 0.99)
    );
    if std::env::var("SWEEP_WINDOW_ONLY").is_err() {
        let before = peak();
        let began = Instant::now();
        let report = services.data_protection.sweep(actor, false).await.unwrap();
        let took = began.elapsed();
        println!(
            "retention sweep:       the rest: {} payments pseudonymised, {} refund reasons, {} removed \
             in {:.1} s ({:.0} payments/s); peak RSS {before:.1} MiB before, {:.1} MiB after",
            report.payments_pseudonymised,
            report.refund_reasons_pseudonymised,
            report.payments_removed,
            took.as_secs_f64(),
            report.payments_pseudonymised as f64 / took.as_secs_f64(),
            peak()
        );
    }
    restore(pool, swept_from).await;
}

/// Erasure of one request's payments by its reference.
async fn erasure(services: &counterfoil::service::AppServices, actor: &Actor, pool: &PgPool) {
    let reference: String = sqlx::query(
        "SELECT request_ref FROM payments WHERE personal_erased_at IS NULL \
         AND request_ref LIKE 'CRM-%' ORDER BY id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .get(0);
    let before = peak();
    let began = Instant::now();
    let erased = services
        .data_protection
        .erase(actor, &RequestRef::parse(&reference).unwrap())
        .await
        .unwrap();
    println!(
        "erasure by reference:  {reference}, {} payment(s) in {:.1} ms; peak RSS {before:.1} MiB \
         before, {:.1} MiB after",
        erased.payments,
        began.elapsed().as_secs_f64() * 1000.0,
        peak()
    );
}

/// A busy day's reconciliation: [`BUSY_DAY`] payments on one London day, at the provider (the
/// built-in simulator, seeded) and in the ten-million-payment table alike, compared in full.
/// The day is before the seeded six years, so its payments are only the busy day's; they are
/// removed afterwards.
async fn reconciliation(
    services: &counterfoil::service::AppServices,
    actor: &Actor,
    simulator: &str,
    pool: &PgPool,
) {
    let (from, to) = (
        "2020-12-01T00:00:00Z"
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        "2020-12-02T00:00:00Z"
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
    );
    let seeded = reqwest::Client::new()
        .post(format!("{simulator}/_control/seed"))
        .bearer_auth(SIMULATOR_KEY)
        .json(
            &serde_json::json!({"count": BUSY_DAY, "from": from, "to": to,
                                  "id_prefix": BUSY_PREFIX, "amount": 2500}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 204);
    // Ours: the same ids, amounts and times as the simulator's seed makes them.
    sqlx::query(
        "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, \
           metadata, return_url, status, create_outcome, provider_payment_id, created_at, \
           updated_at, finished_at, refunded_amount) \
         SELECT 'pay_' || $1 || translate(lpad(to_hex(i), 20, '0'), '0123456789abcdef', 'abcdefghijklmnop'), \
           'BUSY-' || i, 'svc-b', 'sandbox', 'govuk_pay', 2500, 'Busy day', '{}', \
           'https://example.gov.uk/done', 'succeeded', 'confirmed', \
           $1 || translate(lpad(to_hex(i), 26 - length($1), '0'), '0123456789abcdef', 'abcdefghijklmnop'), \
           t, t, t, 0 \
         FROM (SELECT i, $2::timestamptz + (86400000000::bigint * i / $3::bigint) * interval '1 microsecond' AS t \
               FROM generate_series(0, $3::bigint - 1) AS i) AS s",
    )
    .bind(BUSY_PREFIX)
    .bind(from)
    .bind(i64::from(BUSY_DAY))
    .execute(pool)
    .await
    .unwrap();
    let before = peak();
    let began = Instant::now();
    let run = services
        .reconciliation
        .run(actor, "sandbox", from, to)
        .await
        .unwrap();
    let took = began.elapsed();
    println!(
        "reconciliation:        a day of {} payments of ours against {} at the provider, {} \
         discrepancies, in {:.1} s ({:.0} payments/s); peak RSS {before:.1} MiB before, {:.1} MiB after",
        run.local_payments,
        run.provider_payments,
        run.discrepancies.len(),
        took.as_secs_f64(),
        run.local_payments as f64 / took.as_secs_f64(),
        peak()
    );
    remove_payments(pool, "BUSY-%").await;
}

/// Removes the payments whose CRM reference is `like` (a pattern), with all that hangs on them.
async fn remove_payments(pool: &PgPool, like: &str) {
    for table in [
        "payment_events",
        "webhook_receipts",
        "outbox",
        "idempotency_keys",
        "payments",
    ] {
        let id = if table == "payments" {
            "id"
        } else {
            "payment_id"
        };
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {id} IN (SELECT id FROM payments WHERE request_ref LIKE $1)"
        ))
        .bind(like)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// `pci-scan` of the whole database.
async fn scan(services: &counterfoil::service::AppServices) {
    let before = peak();
    let began = Instant::now();
    let scan = counterfoil::service::compliance::pci_scan(services.store.as_ref())
        .await
        .unwrap();
    let took = began.elapsed();
    println!(
        "pci-scan:              {} values in {} columns of {} tables in {:.1} s ({:.0} values/s), \
         {} findings; peak RSS {before:.1} MiB before, {:.1} MiB after",
        scan.values,
        scan.columns,
        scan.tables,
        took.as_secs_f64(),
        scan.values as f64 / took.as_secs_f64(),
        scan.findings.len(),
        peak()
    );
}

/// What a sweep that began at `swept_from` pseudonymised is made due again, for the next run.
async fn restore(pool: &PgPool, swept_from: chrono::DateTime<Utc>) {
    let began = Instant::now();
    let restored = sqlx::query(
        "UPDATE payments SET personal_erased_at = NULL, description = 'Seeded payment again', \
           email = 'person' || substr(id, 5, 6) || '@example.org', metadata = '{\"case\":\"A-1\"}', \
           return_url = 'https://myaccount.example.gov.uk/done' \
         WHERE personal_erased_at >= $1",
    )
    .bind(swept_from)
    .execute(pool)
    .await
    .unwrap()
    .rows_affected();
    println!(
        "\n(made due again: {restored} payments in {:.0} s)",
        began.elapsed().as_secs_f64()
    );
}
