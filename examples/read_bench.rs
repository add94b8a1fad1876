//! What people read, at a shared deployment's size. Run by hand, after the seeder:
//!
//!     cargo run --release --example seed -- 10000000            # once: counterfoil_bench
//!     cargo run --release --example read_bench -- [runs] [database]   # 30, counterfoil_bench
//!
//! It starts the service on the seeded database (migrating it if it is behind), signs in to the
//! console through the built-in test identity provider, and reads each console page and API
//! answer `runs` times over HTTP, in turn, printing p50/p95/p99. Beside each: the page's own
//! database work, every statement it made (the session's read, the queries, `BEGIN`/`COMMIT` of
//! the audit entry a page of personal data writes) timed from just before it was sent to its last
//! row read, summed per page, at p95, and the page's p95 as a ratio to it (what the service adds:
//! HTTP, sign-in checks, rendering); and, for the searches, the store's main statement run
//! directly as many times with `EXPLAIN (ANALYZE, BUFFERS)` (the database's own work on that one
//! statement, nothing in the way) with the page's ratio to it; when a page's p95 is over 100 ms
//! its plan is printed. The month's payments CSV and ledger are read five times each, as they arrive, in
//! rows per second with the process's peak memory. `BENCH_ONLY=text` runs only the reads whose
//! names hold `text`.

#[path = "support/database_time.rs"]
mod database_time;
#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "support/seeded.rs"]
mod seeded;

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use counterfoil::domain::api_key::Role;
use counterfoil::domain::ledger::london_day;
use counterfoil::domain::Actor;
use counterfoil::startup::Application;
use database_time::database_time;
use reqwest::Client;
use sqlx::{PgPool, Row};

/// One read: its name, the page or answer, and the store's statement with its values inlined.
struct Read {
    name: &'static str,
    path: String,
    sql: Option<String>,
}

/// How many times each export is read.
const EXPORT_RUNS: usize = 5;

/// This process's peak resident memory (the service runs inside it), from `/proc`.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signs in to the console as the built-in identity provider's administrator.
async fn signed_in(base: &str) -> Client {
    let browser = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = browser
        .get(format!("{base}/console/sign-in/start"))
        .send()
        .await
        .unwrap();
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    let query = authorize.split_once('?').unwrap().1;
    let chosen = browser
        .post(format!("{base}/sandbox/identity/authorize"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("{query}&subject=test-admin"))
        .send()
        .await
        .unwrap();
    let back = chosen.headers()["location"].to_str().unwrap().to_owned();
    let signed = browser.get(back).send().await.unwrap();
    assert_eq!(signed.status(), 303, "signed in");
    browser
}

/// The execution times of `sql` run `runs` times with EXPLAIN ANALYZE, sorted; and its plan.
async fn direct(pool: &PgPool, sql: &str, runs: usize) -> (Vec<Duration>, String) {
    let mut times = Vec::new();
    let mut plan = String::new();
    for _ in 0..runs {
        let rows = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        plan = rows
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n");
        let total: f64 = plan
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix("Execution Time: ")
                    .or_else(|| l.strip_prefix("Planning Time: "))
            })
            .filter_map(|t| t.trim_end_matches(" ms").parse::<f64>().ok())
            .sum();
        times.push(Duration::from_secs_f64(total / 1000.0));
    }
    times.sort();
    (times, plan)
}

async fn reads(pool: &PgPool) -> Vec<Read> {
    let one = sqlx::query(
        "SELECT id, provider_payment_id FROM payments WHERE request_ref = 'CRM-05000001'",
    )
    .fetch_one(pool)
    .await
    .expect("a seeded database (run the seeder first)");
    let (id, provider): (String, String) = (one.get(0), one.get(1));
    let today = london_day(Utc::now());
    let month_ago = today - Days::new(30);
    let yesterday = today - Days::new(1);
    let boxes = |prefix: &str, d: chrono::NaiveDate| {
        use chrono::Datelike;
        format!(
            "{prefix}-day={}&{prefix}-month={}&{prefix}-year={}",
            d.day(),
            d.month(),
            d.year()
        )
    };
    let month = format!("{}&{}", boxes("from", month_ago), boxes("to", today));
    let cols = "id, request_ref, service, account, provider, amount, description, email, metadata, \
        return_url, status, create_outcome, provider_payment_id, next_url, failure_code, created_at, \
        updated_at, finished_at, refreshed_at, refunded_amount";
    let search = |filter: &str| {
        Some(format!(
            "SELECT {cols} FROM payments WHERE 1 = 1{filter} ORDER BY created_at DESC, id DESC LIMIT 51"
        ))
    };
    vec![
        Read { name: "search: CRM reference", path: "/console/payments?reference=CRM-05000000".into(),
               sql: search(" AND request_ref = 'CRM-05000000'") },
        Read { name: "search: provider reference", path: format!("/console/payments?provider_reference={provider}"),
               sql: search(&format!(" AND provider_payment_id = '{provider}'")) },
        Read { name: "search: amount, last 30 days", path: format!("/console/payments?amount=25.00&{month}"),
               sql: search(&format!(" AND amount = 2500 AND created_at >= '{month_ago}' AND created_at < '{today}'::date + 1")) },
        Read { name: "search: status in a service", path: "/console/payments?status=error&service=svc-c".into(),
               sql: search(" AND status = 'error' AND service = 'svc-c'") },
        Read { name: "search: newest", path: "/console/payments".into(), sql: search("") },
        Read { name: "payment page", path: format!("/console/payments/{id}"), sql: None },
        Read { name: "dashboard", path: "/console".into(), sql: None },
        Read { name: "takings: a day", path: format!("/console/takings/{yesterday}"), sql: None },
        Read { name: "takings: 30 days", path: format!("/console/takings?from={month_ago}&to={today}"), sql: None },
        Read { name: "refunds register", path: "/console/refunds".into(), sql: None },
        Read { name: "needs attention", path: "/console/attention".into(), sql: None },
        Read { name: "audit: by person", path: "/console/audit?who=viewer%20i".into(),
               sql: Some("SELECT id, at, actor_key_id, actor_label, action, subject, detail FROM audit_log \
                          WHERE (actor_key_id = 'viewer i' OR LOWER(actor_label) LIKE 'viewer i%') \
                          ORDER BY id DESC LIMIT 51".into()) },
        Read { name: "audit: by reference", path: format!("/console/audit?reference={id}"),
               sql: Some(format!("SELECT id, at, actor_key_id, actor_label, action, subject, detail \
                          FROM audit_log WHERE subject = '{id}' ORDER BY id DESC LIMIT 51")) },
        Read { name: "API: newest payments", path: "/v1/payments?limit=50".into(), sql: search("") },
    ]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let name = args.next().unwrap_or_else(|| "counterfoil_bench".into());
    let url = seeded::database_on(postgres::server_url(), &name);
    // BENCH_LOGS=1: the service's logs on stderr (development format), to see why a read failed.
    let _telemetry = std::env::var_os("BENCH_LOGS").map(|_| {
        counterfoil::telemetry::init(
            counterfoil::config::Environment::Development,
            &counterfoil::config::TelemetrySettings::default(),
        )
        .expect("logs")
    });
    if _telemetry.is_none() {
        database_time::install();
    }
    let app = Application::build(seeded::settings(&url).validate().unwrap())
        .await
        .expect("the service starts on the seeded database");
    let base = format!("http://{}", app.address());
    let services = app.services();
    tokio::spawn(app.run_until_stopped());
    let pool = PgPool::connect(&url).await.unwrap();
    let actor = Actor::CommandLine("read bench");
    let crm = services
        .keys
        .create(&actor, Role::Crm, "read bench")
        .await
        .unwrap()
        .1;
    let finance = services
        .keys
        .create(&actor, Role::Finance, "read bench")
        .await
        .unwrap()
        .1;
    let console = signed_in(&base).await;
    let api = Client::new();
    let payments: i64 = sqlx::query("SELECT count(*) FROM payments")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    println!("read_bench: {payments} payments in {name}; {runs} runs of each read, in turn\n");
    println!(
        "{:<30} {:>7} {:>7} {:>7}  {:>10} {:>9} {:>6}  {:>10} {:>6}",
        "read",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "statements",
        "db p95",
        "ratio",
        "direct p95",
        "ratio"
    );
    // BENCH_ONLY=text: only the reads and exports whose names hold it (to profile one).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for read in reads(&pool)
        .await
        .into_iter()
        .filter(|r| r.name.contains(&only))
    {
        let mut times = Vec::new();
        let mut database = Vec::new();
        let mut statements = 0;
        for _ in 0..runs {
            database_time();
            let began = Instant::now();
            let request = if read.path.starts_with("/v1/") {
                api.get(format!("{base}{}", read.path)).bearer_auth(&crm)
            } else {
                console.get(format!("{base}{}", read.path))
            };
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let _ = answer.bytes().await.unwrap();
            assert!(status.is_success(), "{}: {status}", read.name);
            times.push(began.elapsed());
            let (waited, made) = database_time();
            database.push(waited);
            statements = made;
        }
        times.sort();
        database.sort();
        let database_p95 = percentile(&database, 0.95);
        let (p50, p95, p99) = (
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 0.99),
        );
        let (baseline, plan) = match &read.sql {
            Some(sql) => {
                let (direct_times, plan) = direct(&pool, sql, runs).await;
                (Some(percentile(&direct_times, 0.95)), Some(plan))
            }
            None => (None, None),
        };
        let ratio = baseline.map(|b| ms(p95) / ms(b).max(0.001));
        let database_ratio = ms(p95) / ms(database_p95).max(0.001);
        println!(
            "{:<30} {:>7.1} {:>7.1} {:>7.1}  {:>10} {:>9.2} {:>5.2}x  {:>10} {:>6}",
            read.name,
            ms(p50),
            ms(p95),
            ms(p99),
            statements,
            ms(database_p95),
            database_ratio,
            baseline
                .map(|b| format!("{:.2}", ms(b)))
                .unwrap_or_else(|| "-".into()),
            ratio
                .map(|r| format!("{r:.1}x"))
                .unwrap_or_else(|| "-".into())
        );
        if ms(p95) > 100.0 || ratio.is_some_and(|r| r > 1.5) {
            if let Some(plan) = plan.filter(|_| ms(p95) > 100.0) {
                println!("    plan:\n      {}", plan.replace('\n', "\n      "));
            }
        }
    }
    let today = london_day(Utc::now());
    let from = today - Days::new(30);
    let boxes = {
        use chrono::Datelike;
        format!(
            "from-day={}&from-month={}&from-year={}&to-day={}&to-month={}&to-year={}",
            from.day(),
            from.month(),
            from.year(),
            today.day(),
            today.month(),
            today.year()
        )
    };
    let csv = format!("/console/payments.csv?{boxes}");
    let ledger = format!("/v1/ledger?from={from}&to={today}&format=csv");
    for (name, request, path) in [
        (
            "payments CSV, 30 days",
            console.get(format!("{base}{csv}")),
            csv.clone(),
        ),
        (
            "ledger CSV, 30 days",
            api.get(format!("{base}{ledger}")).bearer_auth(&finance),
            ledger.clone(),
        ),
    ] {
        if !name.contains(&only) {
            continue;
        }
        let peak_before = peak_rss_mib();
        let mut rates = Vec::new();
        let mut rows = 0;
        for _ in 0..EXPORT_RUNS {
            let began = Instant::now();
            let mut answer = request.try_clone().unwrap().send().await.unwrap();
            assert!(answer.status().is_success(), "{name}: {}", answer.status());
            // Read as it arrives, counting lines: nothing held but the chunk in hand.
            let mut lines = 0usize;
            while let Some(chunk) = answer.chunk().await.unwrap() {
                lines += chunk.iter().filter(|b| **b == b'\n').count();
            }
            rows = lines.saturating_sub(1);
            rates.push(rows as f64 / began.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{name:<30} {rows:>9} rows: median {:.0} rows/s (slowest {:.0}, fastest {:.0}, {EXPORT_RUNS} runs); \
             process peak RSS {:.1} MiB before, {:.1} MiB after ({path})",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1],
            peak_before,
            peak_rss_mib()
        );
    }
}
