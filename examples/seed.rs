//! Fills PostgreSQL with what a deployment shared by several councils holds after six years, so
//! that what people read can be measured at that size. Run by hand (it is not part of the suite):
//!
//!     cargo run --release --example seed -- [payments] [database]   # 10,000,000, counterfoil_bench
//!
//! On PostgreSQL (found or started like the test suite's) it makes the database afresh, migrates
//! it, and fills it set by set, each with one `INSERT … SELECT` over `generate_series` run by the
//! server itself (no row crosses the wire) with the tables' secondary indexes and foreign keys
//! dropped first and built and checked again after, and the audit trail with `COPY` from here (its hash chain is computed here,
//! as the service computes it, so `counterfoil audit verify` passes on the result). The mix is
//! fixed by hashes of each row's number, so two runs of the same size make the same database:
//! - payments spread evenly over six years to now across 12 services: 85% succeeded, 6% failed,
//!   4% cancelled, 3.5% expired, 0.2% error, 0.05% still in progress (stuck), 0.01% with a create
//!   whose answer was lost; personal data pseudonymised on those finished more than 100 days ago
//!   except one in ten (about a million due for the retention sweep), and some old enough for
//!   their records to be removed;
//! - their status timelines (two or three events each), a CRM notification for each finished one
//!   (one in 5,000 dead), refunds of 3% of succeeded payments (90% succeeded, 5% failed, 5%
//!   pending), refund approvals (waiting and declined), one nightly reconciliation a day with
//!   three differences each (two healed), and audit entries for refunds, console reads and runs.
//!
//! It prints each step's time and the database's size per table.

#[path = "../tests/api/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "support/seeded.rs"]
mod seeded;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use counterfoil::domain::audit::{chain_time, entry_hash, ChainedFields, GENESIS};
use counterfoil::startup::Application;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Row};

/// Payments inserted per statement (progress is printed after each).
const CHUNK: i64 = 1_000_000;
/// Six years, in days.
const DAYS: i64 = 6 * 365 + 1;

/// A non-negative hash of the row number `i` in stream `k`: the seeder's dice.
fn r(i: &str, k: u32) -> String {
    format!("((hashint8extended({i}, {k}) & 2147483647)::int)")
}

async fn step(pool: &PgPool, what: &str, sql: &str) {
    step_at(pool, what, sql, None).await
}

/// One statement, timed; `$1` is `now` when given.
async fn step_at(pool: &PgPool, what: &str, sql: &str, now: Option<DateTime<Utc>>) {
    let began = Instant::now();
    let mut query = sqlx::query(sql);
    if let Some(now) = now {
        query = query.bind(now);
    }
    let done = query
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    println!(
        "  {what}: {} rows in {:.1} s",
        done.rows_affected(),
        began.elapsed().as_secs_f64()
    );
}

/// The secondary indexes of `tables` (not primary keys or unique constraints' own): dropped now,
/// their definitions returned to build again once the rows are in.
async fn drop_indexes(pool: &PgPool, tables: &[&str]) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i \
         WHERE i.schemaname = 'public' AND i.tablename = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .bind(tables)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut definitions = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        definitions.push(row.get::<String, _>(1));
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(pool)
            .await
            .unwrap();
    }
    definitions
}

/// The foreign keys of `tables`: dropped now (each checked row by row as rows go in would cost
/// a lookup per row), their statements to add them back (checked once, in one pass) returned.
async fn drop_foreign_keys(pool: &PgPool, tables: &[&str]) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE contype = 'f' AND conrelid::regclass::text = ANY($1)",
    )
    .bind(tables)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut restore = Vec::new();
    for row in rows {
        let (table, name, definition): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""))
            .execute(pool)
            .await
            .unwrap();
        restore.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {definition}"
        ));
    }
    restore
}

async fn payments(pool: &PgPool, n: i64, now: DateTime<Utc>) {
    let span_us = Duration::days(DAYS).num_microseconds().unwrap();
    let mut lo = 0;
    while lo < n {
        let hi = (lo + CHUNK).min(n);
        let (s, r1, r2, r3, r4, r5, r6) = (
            r("i", 1),
            r("i", 2),
            r("i", 3),
            r("i", 4),
            r("i", 5),
            r("i", 6),
            r("i", 7),
        );
        let sql = format!(
            "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, \
               email, metadata, return_url, status, create_outcome, provider_payment_id, next_url, \
               failure_code, created_at, updated_at, finished_at, refreshed_at, refunded_amount, \
               personal_erased_at) \
             SELECT 'pay_' || pg_temp.letters(i), 'CRM-' || lpad(i::text, 8, '0'), \
               'svc-' || chr(97 + ({r1} % {services})), 'sandbox', 'govuk_pay', 500 + {r2} % 49500, \
               CASE WHEN erased THEN '[erased]' ELSE 'Seeded payment ' || {r3} % 1000 END, \
               CASE WHEN erased THEN NULL ELSE 'person' || {r4} % 400000 || '@example.org' END, \
               CASE WHEN erased THEN '{{\"case\":\"[erased]\"}}' ELSE '{{\"case\":\"A-' || {r4} % 9999 || '\"}}' END, \
               CASE WHEN erased THEN '[erased]' ELSE 'https://myaccount.example.gov.uk/done' END, \
               status, CASE WHEN unknown THEN 'unknown' ELSE 'confirmed' END, \
               CASE WHEN unknown THEN NULL ELSE 'prov' || pg_temp.letters(i) END, NULL, \
               CASE WHEN status IN ('failed', 'error') THEN 'P0010' END, \
               created_at, COALESCE(finished_at, created_at), finished_at, NULL, 0, \
               CASE WHEN erased THEN finished_at + interval '91 days' END \
             FROM (SELECT *, status NOT IN ('created', 'in_progress') \
                       AND created_at < $1 - interval '100 days' AND {r6} % 10 <> 0 AS erased, \
                     CASE WHEN status IN ('created', 'in_progress') THEN NULL \
                       ELSE created_at + (30 + {r5} % 600) * interval '1 second' END AS finished_at \
                   FROM (SELECT i, $1 - ($2 - 1 - i) * ($3 / $2) * interval '1 microsecond' AS created_at, \
                           {s} % 10000 < 1 AS unknown, \
                           CASE WHEN {s} % 10000 < 1 THEN 'created' \
                                WHEN {s} % 10000 < 6 THEN 'in_progress' \
                                WHEN {s} % 10000 < 8506 THEN 'succeeded' \
                                WHEN {s} % 10000 < 9106 THEN 'failed' \
                                WHEN {s} % 10000 < 9506 THEN 'cancelled' \
                                WHEN {s} % 10000 < 9856 THEN 'expired' \
                                WHEN {s} % 10000 < 9876 THEN 'error' \
                                ELSE 'expired' END AS status \
                         FROM generate_series($4::bigint, $5::bigint - 1) AS i) AS dice) AS rolled",
            services = seeded::SERVICES,
        );
        let began = Instant::now();
        sqlx::query(&sql)
            .bind(now)
            .bind(n)
            .bind(span_us)
            .bind(lo)
            .bind(hi)
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("payments: {e}"));
        println!(
            "  payments {lo}..{hi} in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        lo = hi;
    }
}

async fn around_payments(pool: &PgPool, now: DateTime<Utc>) {
    let h = r("hashtext(p.id)::bigint", 9);
    // A second die for what is chosen among those the first picked (one die for both would tie
    // them: every refund picked by `h % 1000 < 30` would have `h % 100 < 30`).
    let state = r("hashtext(p.id)::bigint", 10);
    step(pool, "status timelines", "INSERT INTO payment_events (payment_id, at, from_status, to_status, source) \
        SELECT id, created_at, NULL, 'created', 'api' FROM payments WHERE create_outcome = 'confirmed' \
        UNION ALL SELECT id, created_at + interval '20 seconds', 'created', 'in_progress', 'webhook' \
          FROM payments WHERE status IN ('succeeded', 'failed', 'in_progress') \
        UNION ALL SELECT id, finished_at, CASE WHEN status IN ('succeeded', 'failed') THEN 'in_progress' \
          ELSE 'created' END, status, 'webhook' FROM payments WHERE finished_at IS NOT NULL").await;
    step(
        pool,
        "CRM notifications",
        &format!(
            "INSERT INTO outbox (id, event_type, payment_id, created_at, status, \
        attempts, next_attempt_at, last_error, delivered_at) \
        SELECT 'evt_' || substr(p.id, 5), 'payment.' || p.status, p.id, p.finished_at, \
          CASE WHEN {h} % 5000 = 0 THEN 'dead' ELSE 'delivered' END, \
          CASE WHEN {h} % 5000 = 0 THEN 8 ELSE 1 END, p.finished_at, \
          CASE WHEN {h} % 5000 = 0 THEN 'HTTP 503' END, \
          CASE WHEN {h} % 5000 = 0 THEN NULL ELSE p.finished_at + interval '1 second' END \
        FROM payments p WHERE p.finished_at IS NOT NULL"
        ),
    )
    .await;
    step_at(pool, "refunds", &format!("INSERT INTO refunds (id, payment_id, amount, status, create_outcome, \
        provider_refund_id, provider_status, reason, requested_by, requested_by_label, failure_code, \
        created_at, updated_at, finished_at, requested_at, service) \
        SELECT 'rfd_' || substr(p.id, 5), p.id, CASE WHEN h % 2 = 0 THEN p.amount ELSE p.amount / 2 END, \
          state, 'confirmed', 'refund' || substr(p.id, 5), \
          CASE state WHEN 'succeeded' THEN 'success' WHEN 'failed' THEN 'error' ELSE 'submitted' END, \
          CASE WHEN p.personal_erased_at IS NULL THEN 'Permit cancelled' ELSE '[erased]' END, \
          'staff:finance-' || chr(97 + h % 20), 'Finance officer ' || chr(65 + h % 20) || ' (refunder)', \
          CASE WHEN state = 'failed' THEN 'P0941' END, at, at, CASE WHEN state <> 'pending' THEN at END, at, p.service \
        FROM (SELECT p.*, {h} AS h, LEAST($1, p.finished_at + ({h} % 30) * interval '1 day') AS at, \
                CASE WHEN {state} % 100 < 90 THEN 'succeeded' WHEN {state} % 100 < 95 THEN 'failed' \
                  ELSE 'pending' END AS state \
              FROM payments p WHERE p.status = 'succeeded') AS p WHERE p.h % 1000 < 30"), Some(now))
        .await;
    let began = Instant::now();
    sqlx::query(
        "UPDATE payments p SET refunded_amount = f.amount FROM refunds f \
                 WHERE f.payment_id = p.id AND f.status = 'succeeded'",
    )
    .execute(pool)
    .await
    .unwrap();
    println!(
        "  refunded amounts in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    step(pool, "refund approvals", &format!("INSERT INTO refund_approvals (id, payment_id, amount, reason, \
        requested_by, requested_by_label, requested_at, status, decided_by, decided_by_label, decided_at) \
        SELECT 'apr_' || substr(p.id, 5), p.id, p.amount / 4 + 1, 'Charged twice', 'staff:finance-a', \
          'Finance officer A (refunder)', p.finished_at + interval '1 day', \
          CASE WHEN {state} % 5 = 0 THEN 'waiting' ELSE 'declined' END, \
          CASE WHEN {state} % 5 = 0 THEN NULL ELSE 'staff:approver-a' END, \
          CASE WHEN {state} % 5 = 0 THEN NULL ELSE 'Approver A (refund_approver)' END, \
          CASE WHEN {state} % 5 = 0 THEN NULL ELSE p.finished_at + interval '2 days' END \
        FROM payments p WHERE p.status = 'succeeded' AND {h} % 10000 < 2")).await;
}

async fn reconciliation(pool: &PgPool, now: DateTime<Utc>) {
    step_at(pool, "reconciliation runs", &format!("INSERT INTO reconciliation_runs (id, account, period_from, \
        period_to, requested_by, requested_by_label, started_at, finished_at, status, provider_payments, \
        provider_refunds, local_payments) \
        SELECT 'rec_' || pg_temp.letters(d), 'sandbox', day, day + interval '1 day', 'nightly', \
          'nightly reconciliation', day + interval '1 day 2 hours', day + interval '1 day 2 hours 3 minutes', \
          'completed', 4500, 130, 4500 \
        FROM (SELECT d, date_trunc('day', $1::timestamptz) - ({DAYS} - d) * interval '1 day' AS day \
              FROM generate_series(0, {DAYS} - 2) AS d) AS days"), Some(now))
        .await;
    step(pool, "reconciliation differences", "INSERT INTO reconciliation_discrepancies (run_id, kind, \
        payment_id, provider_payment_id, ours, theirs, healed, note) \
        SELECT r.id, (ARRAY['status_mismatch', 'missing_locally', 'amount_mismatch'])[k], NULL, \
          'prov' || pg_temp.letters(k), (ARRAY['created', NULL, '2500'])[k], \
          (ARRAY['success', 'created', '2600'])[k], k < 3, \
          (ARRAY['the provider''s status was applied', 'a create whose answer was lost, now recorded', ''])[k] \
        FROM reconciliation_runs r, generate_series(1, 3) AS k").await;
}

/// Audit entries with their hash chain, written with COPY: a refund's request, every twentieth
/// payment read in the console, each reconciliation run.
async fn audit(conn: &mut PgConnection) -> i64 {
    let began = Instant::now();
    let rows = sqlx::query(
        "SELECT at, actor, label, action, subject FROM ( \
           SELECT created_at AS at, requested_by AS actor, requested_by_label AS label, \
             'refund.requested' AS action, id AS subject FROM refunds \
           UNION ALL SELECT created_at + interval '1 hour', 'staff:viewer-' || chr(97 + (hashtext(id) & 15)), \
             'Viewer ' || chr(65 + (hashtext(id) & 15)) || ' (viewer)', 'console.viewed', id \
             FROM payments WHERE hashtext(id) % 20 = 0 \
           UNION ALL SELECT started_at, 'nightly', 'nightly reconciliation', 'reconciliation.run', id \
             FROM reconciliation_runs) AS e ORDER BY at",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_in_chain")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut prev = GENESIS.to_owned();
    let mut body = String::with_capacity(rows.len() * 300);
    let mut seq = 0;
    for row in &rows {
        seq += 1;
        let at = chain_time(row.get::<DateTime<Utc>, _>(0));
        let (actor, label, action, subject): (String, String, String, String) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        let detail = if action == "console.viewed" {
            r#"{"filters":[],"route":"/console/payments/{id}"}"#
        } else {
            "{}"
        };
        let hash = entry_hash(&ChainedFields {
            seq,
            prev_hash: &prev,
            at,
            actor_key_id: &actor,
            actor_label: &label,
            action: &action,
            subject: &subject,
            detail,
        });
        let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        body.push_str(&format!(
            "{},{},{},{},{},{},{seq},{},{}\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            quoted(&actor),
            quoted(&label),
            action,
            subject,
            quoted(detail),
            prev,
            hash
        ));
        prev = hash;
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY audit_log (at, actor_key_id, actor_label, action, subject, detail, seq, prev_hash, hash) \
             FROM STDIN (FORMAT csv)",
        )
        .await
        .unwrap();
    copy.send(body.into_bytes()).await.unwrap();
    copy.finish().await.unwrap();
    sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER audit_log_in_chain")
        .execute(&mut *conn)
        .await
        .unwrap();
    // The head moves to the last entry in one step (its trigger allows one at a time).
    sqlx::query("ALTER TABLE audit_head DISABLE TRIGGER audit_head_forward")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_head ENABLE TRIGGER audit_head_forward")
        .execute(&mut *conn)
        .await
        .unwrap();
    println!(
        "  audit trail: {seq} chained entries in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    seq
}

/// What was made is what the service reads: a page of every status through its own search (each
/// column parsed as the service parses it), and its audit chain verified.
async fn read_back(url: &str) {
    use counterfoil::domain::queries::PaymentQuery;
    use counterfoil::domain::PaymentStatus;
    let began = Instant::now();
    let app = Application::build(seeded::settings(url).validate().unwrap())
        .await
        .unwrap();
    let services = app.services();
    let mut read = 0;
    for status in PaymentStatus::ALL {
        let query = PaymentQuery {
            status: Some(status),
            limit: 200,
            ..PaymentQuery::default()
        };
        read += services
            .payments
            .search(&query)
            .await
            .expect("seeded payments read")
            .len();
    }
    let verified = services
        .audit
        .verify()
        .await
        .expect("the audit chain reads");
    assert!(
        verified.intact(),
        "the seeded audit chain is intact: {:?}",
        verified.broken
    );
    println!(
        "  read back through the service: {read} payments parsed, audit chain of {} intact, in {:.1} s",
        verified.entries,
        began.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: i64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let name = args.next().unwrap_or_else(|| "counterfoil_bench".into());
    let began = Instant::now();
    let server = postgres::server_url();
    let mut admin = PgConnection::connect(server).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = seeded::database_on(server, &name);
    // Migrated as the service migrates it.
    drop(
        Application::build(seeded::settings(&url).validate().unwrap())
            .await
            .unwrap(),
    );
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for setting in [
                    "SET synchronous_commit = off",
                    "SET maintenance_work_mem = '1GB'",
                    "SET work_mem = '256MB'",
                    "CREATE FUNCTION pg_temp.letters(bigint) RETURNS text LANGUAGE sql IMMUTABLE AS \
                     $$ SELECT translate(lpad(to_hex($1), 32, '0'), '0123456789abcdef', 'abcdefghijklmnop') $$",
                ] {
                    sqlx::query(setting).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let now = Utc::now();
    println!("seed: {n} payments into {name} (dropped and made afresh)");
    let tables = [
        "payments",
        "payment_events",
        "outbox",
        "refunds",
        "refund_approvals",
        "audit_log",
        "reconciliation_runs",
        "reconciliation_discrepancies",
    ];
    let indexes = drop_indexes(&pool, &tables).await;
    let foreign_keys = drop_foreign_keys(&pool, &tables).await;
    payments(&pool, n, now).await;
    around_payments(&pool, now).await;
    reconciliation(&pool, now).await;
    let mut conn = pool.acquire().await.unwrap();
    audit(&mut conn).await;
    drop(conn);
    let rebuilt = Instant::now();
    for definition in &indexes {
        sqlx::query(definition).execute(&pool).await.unwrap();
    }
    println!(
        "  {} indexes built in {:.1} s",
        indexes.len(),
        rebuilt.elapsed().as_secs_f64()
    );
    let checked = Instant::now();
    for statement in &foreign_keys {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    println!(
        "  {} foreign keys added back and checked in {:.1} s",
        foreign_keys.len(),
        checked.elapsed().as_secs_f64()
    );
    let analysed = Instant::now();
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&pool)
        .await
        .unwrap();
    println!(
        "  vacuumed and analysed in {:.1} s",
        analysed.elapsed().as_secs_f64()
    );
    read_back(&url).await;
    println!(
        "seed: done in {:.1} min; {url}",
        began.elapsed().as_secs_f64() / 60.0
    );
    for row in sqlx::query(
        "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) \
         FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC LIMIT 12",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        println!(
            "  {:<30} {:>12} rows {:>10}",
            row.get::<String, _>(0),
            row.get::<i64, _>(1),
            row.get::<String, _>(2)
        );
    }
}
