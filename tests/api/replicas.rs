//! Several server processes on one PostgreSQL database: the same webhook arriving at two at once
//! has one effect, and a process killed mid-burst loses nothing it acknowledged.

use std::sync::Arc;

use serde_json::Value;
use sqlx::Row;

use crate::helpers::govuk_message;
use crate::support::crm::Crm;
use crate::support::postgres;
use crate::support::process::{
    crm_key, write_config, write_config_with, ServerProcess, WEBHOOK_SECRET,
};
use counterfoil::providers::govuk_pay::sign_webhook;

/// Creates `n` payments through `server` and returns (payment id, provider id) pairs.
async fn make_payments(server: &ServerProcess, key: &str, n: usize) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut made = Vec::new();
    for i in 0..n {
        let response = client
            .post(format!("{}/v1/payments", server.address))
            .bearer_auth(key)
            .header("Idempotency-Key", format!("replica-{i}"))
            .json(&crate::helpers::payment_body(&format!("CRM-R{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let p: Value = response.json().await.unwrap();
        made.push((
            p["id"].as_str().unwrap().to_owned(),
            p["provider_payment_id"].as_str().unwrap().to_owned(),
        ));
    }
    made
}

async fn send(client: &reqwest::Client, server: &str, body: &str) -> Option<u16> {
    client
        .post(format!("{server}/v1/webhooks/govuk-pay/sandbox"))
        .header("Content-Type", "application/json")
        .header(
            "Pay-Signature",
            sign_webhook(WEBHOOK_SECRET, body.as_bytes()),
        )
        .body(body.to_owned())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Per payment: (webhook transitions, outbox rows, status).
async fn effects(database_url: &str) -> std::collections::HashMap<String, (i64, i64, String)> {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let rows = sqlx::query(
        "SELECT p.id, p.status, \
           (SELECT COUNT(*) FROM payment_events e WHERE e.payment_id = p.id AND e.source = 'webhook') AS moves, \
           (SELECT COUNT(*) FROM outbox o WHERE o.payment_id = p.id) AS notes \
         FROM payments p",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| {
            (
                r.get::<String, _>("id"),
                (r.get("moves"), r.get("notes"), r.get("status")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_receiving_the_same_webhook_apply_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = postgres::fresh_database().await;
    let config = write_config(dir.path(), &database_url);
    let key = crm_key(&config);
    let a = ServerProcess::start(&config).await;
    let b = ServerProcess::start(&config).await;
    let payments = make_payments(&a, &key, 20).await;
    let client = reqwest::Client::new();
    for (n, (_, provider_id)) in payments.iter().enumerate() {
        let body = govuk_message(
            &format!("both-{n}"),
            provider_id,
            "card_payment_succeeded",
            "success",
            None,
        )
        .to_string();
        let (x, y) = tokio::join!(
            send(&client, &a.address, &body),
            send(&client, &b.address, &body)
        );
        assert_eq!((x, y), (Some(200), Some(200)));
    }
    for (id, (moves, notes, status)) in effects(&database_url).await {
        assert_eq!(
            (moves, notes, status.as_str()),
            (1, 1, "succeeded"),
            "payment {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_killed_mid_burst_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = postgres::fresh_database().await;
    let config = write_config(dir.path(), &database_url);
    let key = crm_key(&config);
    let mut server = ServerProcess::start(&config).await;
    let payments = make_payments(&server, &key, 120).await;
    let bodies: Arc<Vec<String>> = Arc::new(
        payments
            .iter()
            .enumerate()
            .map(|(n, (_, provider_id))| {
                govuk_message(
                    &format!("burst-{n}"),
                    provider_id,
                    "card_payment_succeeded",
                    "success",
                    None,
                )
                .to_string()
            })
            .collect(),
    );

    // 16 senders at once; the process is killed with SIGKILL after the 40th answer.
    let client = reqwest::Client::new();
    let answered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = Arc::new(std::sync::Mutex::new(Some(kill_tx)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (client, address, bodies, answered, next, kill_tx) = (
            client.clone(),
            server.address.clone(),
            bodies.clone(),
            answered.clone(),
            next.clone(),
            kill_tx.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= bodies.len() {
                    return;
                }
                if send(&client, &address, &bodies[n]).await == Some(200) {
                    let mut answered = answered.lock().unwrap();
                    answered.push(n);
                    if answered.len() == 40 {
                        if let Some(tx) = kill_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        }));
    }
    kill_rx.await.unwrap();
    server.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = answered.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 40 && acknowledged.len() < bodies.len(),
        "the kill landed mid-burst"
    );

    // Every acknowledged webhook is reflected, even though the process died straight after.
    let after_crash = effects(&database_url).await;
    for &n in &acknowledged {
        let (moves, notes, status) = &after_crash[&payments[n].0];
        assert_eq!(
            (*moves, *notes, status.as_str()),
            (1, 1, "succeeded"),
            "acknowledged webhook {n}"
        );
    }

    // Restarted, every webhook is sent again (as the provider would): each applies exactly once.
    let server = ServerProcess::start(&config).await;
    for body in bodies.iter() {
        assert_eq!(send(&client, &server.address, body).await, Some(200));
    }
    for (id, (moves, notes, status)) in effects(&database_url).await {
        assert_eq!(
            (moves, notes, status.as_str()),
            (1, 1, "succeeded"),
            "payment {id}"
        );
    }
}

const CRM_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Config for delivering processes: quick polling, short leases (4 s, so a killed replica's work
/// is soon taken over), the test CRM.
fn delivering(crm: &Crm) -> String {
    delivering_with_lease(crm, 4, 2)
}

/// `timeout_seconds` is how long a replica waits for the CRM's answer: an answer later than that
/// is a failed attempt, retried, though the CRM did receive it (at least once, by design).
fn delivering_with_lease(crm: &Crm, lease_seconds: u64, timeout_seconds: u64) -> String {
    format!(
        r#"
[notifications]
default_url = "{}"
secrets = [{{ value = "{CRM_SECRET}" }}]
poll_interval_ms = 50
batch_size = 25
timeout_seconds = {timeout_seconds}
lease_seconds = {lease_seconds}

[server]
shutdown_deadline_seconds = 10
"#,
        crm.url
    )
}

/// `n` succeeded payments, each with its `payment.succeeded` notification due now.
async fn seed_notifications(database_url: &str, n: usize) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO payments (id, request_ref, service, account, provider, amount, description, metadata, \
           return_url, status, create_outcome, provider_payment_id, created_at, updated_at, finished_at) \
         SELECT 'pay_' || translate(lpad(to_hex(i), 32, '0'), '0123456789abcdef', 'abcdefghijklmnop'), 'SEED-' || i, 'demo', 'sandbox', 'govuk_pay', 2500, 'Seeded', \
           '{}', 'https://example.gov.uk/done', 'succeeded', 'confirmed', 'seed-' || i, now(), now(), now() \
         FROM generate_series(1, $1) AS i",
    )
    .bind(n as i64)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbox (id, event_type, payment_id, created_at, next_attempt_at) \
         SELECT 'evt_seed_' || i, 'payment.succeeded', 'pay_' || translate(lpad(to_hex(i), 32, '0'), '0123456789abcdef', 'abcdefghijklmnop'), now(), now() \
         FROM generate_series(1, $1) AS i",
    )
    .bind(n as i64)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// How many times each notification id reached the CRM with a 2xx.
fn deliveries(crm: &Crm) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for r in crm.received().iter().filter(|r| r.answered == 200) {
        *counts.entry(r.id.clone()).or_insert(0) += 1;
    }
    counts
}

async fn outbox_delivered(database_url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let n = sqlx::query("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    pool.close().await;
    n
}

async fn wait_until_delivered(crm: &Crm, n: usize) {
    for _ in 0..1200 {
        if deliveries(crm).len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "only {} of {n} notifications were delivered",
        deliveries(crm).len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_deliver_a_burst_each_exactly_once() {
    const N: usize = 2000;
    let crm = Crm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = postgres::fresh_database().await;
    // No replica dies here, so leases far longer than any round, and the CRM's answers awaited
    // for as long: a repeat can then only come from two replicas holding the same row, which is
    // what this proves. (With 4 s leases, a round starved of CPU on a busy machine outlived its
    // lease and was rightly taken over; with a 2 s timeout, an answer the starved CRM gave late
    // counted as failed and was rightly sent again: at least once, by design.)
    let config = write_config_with(
        dir.path(),
        &database_url,
        &delivering_with_lease(&crm, 60, 30),
    );
    let first = ServerProcess::start(&config).await; // migrates the database
    seed_notifications(&database_url, N).await;
    let _others = (
        ServerProcess::start(&config).await,
        ServerProcess::start(&config).await,
    );
    wait_until_delivered(&crm, N).await;
    let counts = deliveries(&crm);
    assert_eq!(counts.len(), N);
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "delivered twice: {doubled:?}");
    for _ in 0..100 {
        if outbox_delivered(&database_url).await == N as i64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(outbox_delivered(&database_url).await, N as i64);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_burst_loses_no_notification() {
    const N: usize = 1500;
    let crm = Crm::start().await;
    crm.delay_each(std::time::Duration::from_millis(5));
    let dir = tempfile::tempdir().unwrap();
    let database_url = postgres::fresh_database().await;
    let config = write_config_with(dir.path(), &database_url, &delivering(&crm));
    let mut doomed = ServerProcess::start(&config).await;
    seed_notifications(&database_url, N).await;
    let _others = (
        ServerProcess::start(&config).await,
        ServerProcess::start(&config).await,
    );
    for _ in 0..400 {
        if deliveries(&crm).len() >= N / 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    doomed.kill();
    // Its leases expire (4 s) and the others finish its work.
    wait_until_delivered(&crm, N).await;
    let counts = deliveries(&crm);
    assert_eq!(counts.len(), N, "every notification reached the CRM");
    let doubled = counts.values().filter(|n| **n > 1).count();
    assert!(
        doubled <= 25,
        "only a killed round's deliveries may repeat ({doubled})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_burst_exits_cleanly_and_loses_or_doubles_nothing() {
    const N: usize = 600;
    let crm = Crm::start().await;
    crm.delay_each(std::time::Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let database_url = postgres::fresh_database().await;
    // The CRM's answers awaited for 8 s, inside the 10 s shutdown deadline: with 2 s, an answer a
    // CPU-starved CRM gave late counted as a failed attempt though the CRM had it (failed CI once,
    // 148 recorded of 150 sent), which is at least once by design, not what this test is about.
    let config = write_config_with(
        dir.path(),
        &database_url,
        &delivering_with_lease(&crm, 30, 8),
    );
    let mut server = ServerProcess::start(&config).await;
    seed_notifications(&database_url, N).await;
    for _ in 0..400 {
        if deliveries(&crm).len() >= N / 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    let status =
        tokio::task::block_in_place(|| server.terminate(std::time::Duration::from_secs(15)));
    let status = status.expect("exited within the deadline");
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(11));
    // Everything it sent was recorded as delivered before it exited.
    let sent = deliveries(&crm);
    assert!(sent.len() < N, "stopped mid-burst");
    assert_eq!(outbox_delivered(&database_url).await, sent.len() as i64);

    let _next = ServerProcess::start(&config).await;
    wait_until_delivered(&crm, N).await;
    let counts = deliveries(&crm);
    assert!(counts.values().all(|n| *n == 1), "nothing delivered twice");
}
