//! Signed GOV.UK Pay webhooks: verification before anything else, dedupe, ordering, orphans, and
//! the end-to-end path where the webhook alone tells us the outcome.

use serde_json::{json, Value};

use crate::helpers::{govuk_message, Backend, TestApp, WEBHOOK_SECRET};

/// A payment created through the API, and its provider id.
async fn payment(app: &TestApp, request_ref: &str) -> (String, String) {
    let p = app.new_payment(request_ref).await;
    (
        p["id"].as_str().unwrap().to_owned(),
        p["provider_payment_id"].as_str().unwrap().to_owned(),
    )
}

async fn send(app: &TestApp, message: &Value) -> (u16, Value) {
    let response = app
        .send_webhook("sandbox", &message.to_string(), Some(WEBHOOK_SECRET))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn without_refresh(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| s.payments.refresh_on_read = false).await
}

both_stores! {
    async fn a_bad_missing_or_tampered_signature_is_401_and_nothing_is_kept(app) {
        let (id, provider_id) = payment(&app, "CRM-7001").await;
        let body = govuk_message("m-bad", &provider_id, "card_payment_succeeded", "success", None).to_string();
        let unsigned = app.send_webhook("sandbox", &body, None).await;
        assert_eq!(unsigned.status(), 401);
        let problem: Value = unsigned.json().await.unwrap();
        assert_eq!(problem["code"], "webhook_signature_invalid");
        assert_eq!(app.send_webhook("sandbox", &body, Some("some_other_secret")).await.status(), 401);
        let tampered = app
            .client
            .post(app.url("/v1/webhooks/govuk-pay/sandbox"))
            .header("Pay-Signature", counterfoil::providers::govuk_pay::sign_webhook(WEBHOOK_SECRET, body.as_bytes()))
            .body(body.replace("card_payment_succeeded", "card_payment_expired"))
            .send()
            .await
            .unwrap();
        assert_eq!(tampered.status(), 401);
        let garbage_signature = app
            .client
            .post(app.url("/v1/webhooks/govuk-pay/sandbox"))
            .header("Pay-Signature", "not hex at all")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(garbage_signature.status(), 401);
        assert_eq!(app.count_rows("webhook_receipts").await, 0);
        assert_eq!(app.get_payment(&id).await["status"], "created");
        // Operators see it: the figure they alert on when a secret is rotated wrongly.
        let refused = r#"counterfoil_webhooks_total{provider="govuk_pay",account="sandbox",outcome="bad_signature"}"#;
        assert_eq!(app.metric(refused).await, 4.0);
    }

    async fn unknown_accounts_oversize_bodies_and_malformed_json(app) {
        let body = govuk_message("m1", "p1", "card_payment_started", "started", None).to_string();
        let unknown = app.send_webhook("no-such-account", &body, Some(WEBHOOK_SECRET)).await;
        assert_eq!(unknown.status(), 404);
        assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "webhook_account_unknown");
        // The offline account exists but is another service's: its own secret only.
        assert_eq!(app.send_webhook("offline", &body, Some(WEBHOOK_SECRET)).await.status(), 401);

        let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
        assert_eq!(app.send_webhook("sandbox", &huge, Some(WEBHOOK_SECRET)).await.status(), 413);

        let malformed = app.send_webhook("sandbox", "{\"webhook_message_id\": ", Some(WEBHOOK_SECRET)).await;
        assert_eq!(malformed.status(), 400);
        assert_eq!(malformed.json::<Value>().await.unwrap()["code"], "malformed_json");
        let not_a_message = app.send_webhook("sandbox", "{\"hello\": \"world\"}", Some(WEBHOOK_SECRET)).await;
        assert_eq!(not_a_message.status(), 400);
        assert_eq!(app.count_rows("webhook_receipts").await, 0);
    }

    async fn an_unknown_event_type_is_acknowledged_and_recorded_as_ignored(app) {
        let (id, provider_id) = payment(&app, "CRM-7002").await;
        let (status, body) = send(&app, &govuk_message("m-new", &provider_id, "card_payment_teleported", "success", None)).await;
        assert_eq!(status, 200);
        assert_eq!(body["outcome"], "ignored");
        assert_eq!(app.count_rows("webhook_receipts").await, 1);
        assert_eq!(app.get_payment(&id).await["status"], "created");
    }

    async fn duplicates_have_no_second_effect(app) {
        let (id, provider_id) = payment(&app, "CRM-7003").await;
        let message = govuk_message("m-dup", &provider_id, "card_payment_succeeded", "success", None);
        let (first, body) = send(&app, &message).await;
        assert_eq!((first, body["outcome"].as_str()), (200, Some("applied")));
        let (second, body) = send(&app, &message).await;
        assert_eq!((second, body["outcome"].as_str()), (200, Some("duplicate")));
        assert_eq!(app.outbox_for(&id).await, vec!["payment.succeeded"]);
        let webhook_moves = app.timeline(&id).await.into_iter().filter(|t| t.2 == "webhook").count();
        assert_eq!(webhook_moves, 1);
    }

    async fn late_and_out_of_order_events_never_move_a_payment_back(app) {
        let (id, provider_id) = payment(&app, "CRM-7004").await;
        send(&app, &govuk_message("m-3", &provider_id, "card_payment_succeeded", "success", None)).await;
        let (status, body) = send(&app, &govuk_message("m-1", &provider_id, "card_payment_started", "started", None)).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
        let (_, body) = send(&app, &govuk_message("m-4", &provider_id, "card_payment_failed", "failed", Some("P0010"))).await;
        assert_eq!(body["outcome"], "ignored", "a final status never changes");
        assert_eq!(app.get_payment(&id).await["status"], "succeeded");
        assert_eq!(app.timeline(&id).await, vec![
            (Value::Null, json!("created"), json!("api")),
            (json!("created"), json!("succeeded"), json!("webhook")),
        ]);
    }

    async fn a_webhook_that_cannot_be_committed_is_not_acknowledged(app) {
        let (id, provider_id) = payment(&app, "CRM-7005").await;
        let message = govuk_message("m-db", &provider_id, "card_payment_succeeded", "success", None);
        app.execute("ALTER TABLE webhook_receipts RENAME TO webhook_receipts_away").await;
        let (status, problem) = send(&app, &message).await;
        assert_eq!(status, 503, "the provider must retry");
        assert_eq!(problem["code"], "storage_unavailable");
        app.execute("ALTER TABLE webhook_receipts_away RENAME TO webhook_receipts").await;
        assert_eq!(app.get_payment(&id).await["status"], "created", "nothing half-written");
        // The provider's retry then lands.
        let (status, body) = send(&app, &message).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")));
    }

    async fn a_webhook_for_an_unknown_payment_is_kept_as_an_orphan(app) {
        let (status, body) = send(&app, &govuk_message("m-orphan", "notourpayment00000000000aa", "card_payment_succeeded", "success", None)).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("orphan")));
        assert_eq!(app.count_rows("webhook_receipts").await, 1);
        let (_, again) = send(&app, &govuk_message("m-orphan", "notourpayment00000000000aa", "card_payment_succeeded", "success", None)).await;
        assert_eq!(again["outcome"], "duplicate");
    }
}

/// With refresh and polling off, only the webhook can tell us: press Pay, and it arrives, signed.
macro_rules! webhook_alone {
    ($name:ident, $backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let app = without_refresh($backend).await;
            let p = app.new_payment("CRM-7100").await;
            let id = p["id"].as_str().unwrap();
            app.press(p["next_url"].as_str().unwrap(), "pay").await;
            app.wait_for_status(id, "succeeded").await;
            let timeline = app.timeline(id).await;
            assert!(
                timeline.iter().all(|t| t.2 != "api" || t.0.is_null()),
                "no API refresh: {timeline:?}"
            );
            assert!(
                timeline.contains(&(json!("in_progress"), json!("succeeded"), json!("webhook")))
                    || timeline.contains(&(json!("created"), json!("succeeded"), json!("webhook")))
            );
            assert_eq!(app.outbox_for(id).await, vec!["payment.succeeded"]);
        }
    };
}
webhook_alone!(
    the_webhook_alone_makes_a_payment_succeed_on_sqlite,
    Backend::Sqlite
);
webhook_alone!(
    the_webhook_alone_makes_a_payment_succeed_on_postgres,
    Backend::Postgres
);

/// Webhooks held back, then delivered in reverse and twice each: the same end, one move per status.
macro_rules! reordered {
    ($name:ident, $backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let app = without_refresh($backend).await;
            app.simulator_webhooks(json!({"mode": "hold"})).await;
            let p = app.new_payment("CRM-7200").await;
            let id = p["id"].as_str().unwrap();
            app.press(p["next_url"].as_str().unwrap(), "pay").await;
            assert_eq!(app.get_payment(id).await["status"], "created");
            // started, succeeded, captured: released newest first, and each twice.
            let released: Value = app.client.post(app.url("/sandbox/govuk-pay/_control/webhooks/release"))
                .json(&json!({"reverse": true, "duplicate": true})).send().await.unwrap().json().await.unwrap();
            assert_eq!(released["released"], 3);
            app.wait_for_status(id, "succeeded").await;
            // Let every copy land before counting.
            for _ in 0..100 {
                let deliveries: Value = app.client.get(app.url("/sandbox/govuk-pay/_control/webhooks"))
                    .send().await.unwrap().json().await.unwrap();
                let done = deliveries["deliveries"].as_array().unwrap().iter()
                    .filter(|d| d["last_status"] == 200).count();
                if done == 6 { break; }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(app.count_rows("webhook_receipts").await, 3, "three messages, three receipts");
            let moves: Vec<_> = app.timeline(id).await.into_iter().filter(|t| t.2 == "webhook").collect();
            assert_eq!(moves.len(), 1, "{moves:?}");
        }
    };
}
reordered!(
    held_and_reversed_webhooks_end_the_same_on_sqlite,
    Backend::Sqlite
);
reordered!(
    held_and_reversed_webhooks_end_the_same_on_postgres,
    Backend::Postgres
);

/// During a rotation both the current and the next secret are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_secrets_work_during_a_rotation() {
    use counterfoil::config::SecretSource;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::spawn_with(backend, |s| {
            s.accounts.get_mut("sandbox").unwrap().webhook_secrets = vec![
                SecretSource::Value(WEBHOOK_SECRET.into()),
                SecretSource::Value("webhook_test_the_next_secret".into()),
            ];
        })
        .await;
        let (_, provider_id) = payment(&app, "CRM-7300").await;
        for (n, secret) in [WEBHOOK_SECRET, "webhook_test_the_next_secret"]
            .iter()
            .enumerate()
        {
            let body = govuk_message(
                &format!("m-rot-{n}"),
                &provider_id,
                "card_payment_started",
                "started",
                None,
            )
            .to_string();
            assert_eq!(
                app.send_webhook("sandbox", &body, Some(secret))
                    .await
                    .status(),
                200,
                "secret {n}"
            );
        }
        let body = govuk_message(
            "m-rot-x",
            &provider_id,
            "card_payment_started",
            "started",
            None,
        )
        .to_string();
        assert_eq!(
            app.send_webhook("sandbox", &body, Some("webhook_test_retired"))
                .await
                .status(),
            401
        );
    }
}
