//! Ledger streaming benchmark, run by hand (never in the test suite):
//!
//!     cargo run --release --example ledger_bench -- [lines]
//!
//! Seeds `lines` succeeded payments (default 1,000,000, one a second from 1 January 2026) on
//! PostgreSQL, then downloads the ledger as CSV through the running service, twice: first the
//! first two days (172,800 lines, the baseline), then all of it. It prints lines per second and
//! the process's peak memory after each, so bounded memory shows as a ratio near 1.

#[path = "support/memory.rs"]
mod memory;
#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::time::Instant;

use counterfoil::config::Settings;
use counterfoil::domain::api_key::Role;
use counterfoil::startup::Application;

#[tokio::main]
async fn main() {
    let lines: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let database_url = postgres::fresh_database().await;
    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = database_url.clone();
    settings.poller.enabled = false;
    // Measure the service, not its rate limits.
    settings.rate_limits = counterfoil::config::RateLimitSettings::OFF;
    let app = Application::build(settings.validate().unwrap())
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    let key = app
        .services()
        .keys
        .create(
            &counterfoil::domain::Actor::CommandLine("bench"),
            Role::Finance,
            "bench",
        )
        .await
        .unwrap()
        .1;
    tokio::spawn(app.run_until_stopped());

    // One payment a second from 2026-01-01.
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, metadata, \
           return_url, status, create_outcome, provider_payment_id, created_at, updated_at, finished_at) \
         SELECT 'pay_' || translate(lpad(to_hex(i), 32, '0'), '0123456789abcdef', 'abcdefghijklmnop'), 'LEDGER-' || i, 'demo', 'sandbox', 'govuk_pay', 1000 + i % 9000, \
           'Benchmark line, with a comma', '{}', 'https://example.gov.uk/done', 'succeeded', 'confirmed', \
           'bench-' || i, t, t, t \
         FROM (SELECT i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' AS t \
               FROM generate_series(0, $1 - 1) AS i) AS s",
    )
    .bind(lines)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE payments")
        .execute(&pool)
        .await
        .unwrap();
    println!(
        "ledger_bench: {lines} payments seeded; {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let client = reqwest::Client::new();
    let download = |to: &'static str| {
        let (client, address, key) = (client.clone(), address.clone(), key.clone());
        async move {
            let started = Instant::now();
            let mut response = client
                .get(format!(
                    "{address}/v1/ledger?from=2026-01-01&to={to}&format=csv"
                ))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let (mut bytes, mut newlines) = (0usize, 0usize);
            while let Some(chunk) = response.chunk().await.unwrap() {
                bytes += chunk.len();
                newlines += chunk.iter().filter(|b| **b == b'\n').count();
            }
            (newlines - 1, bytes, started.elapsed())
        }
    };
    let before = memory::peak_rss_mib("self").unwrap_or(0.0);
    let (small, _, small_time) = download("2026-01-02").await;
    let after_small = memory::peak_rss_mib("self").unwrap_or(0.0);
    let (all, bytes, all_time) = download("2026-12-31").await;
    let after_all = memory::peak_rss_mib("self").unwrap_or(0.0);
    let rate = |n: usize, t: std::time::Duration| n as f64 / t.as_secs_f64();
    println!("baseline   {small:>9} lines  {:>9.0} lines/s  peak memory {after_small:>7.1} MiB (before: {before:.1} MiB)", rate(small, small_time));
    println!("full       {all:>9} lines  {:>9.0} lines/s  peak memory {after_all:>7.1} MiB  ({:.0} MiB of CSV)", rate(all, all_time), bytes as f64 / 1048576.0);
    println!(
        "ratio: {}x the lines for {:.2}x the peak memory (the service, the client and the driver in one process)",
        all / small.max(1),
        after_all / after_small
    );
}
