//! Several server processes on one PostgreSQL database: the same webhook arriving at two at once
//! has one effect, and a process killed mid-burst loses nothing it acknowledged.

use std::sync::Arc;

use serde_json::Value;
use sqlx::Row;

use crate::helpers::govuk_message;
use crate::support::postgres;
use crate::support::process::{crm_key, write_config, ServerProcess, WEBHOOK_SECRET};
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
