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

each_backend! {
    async fn concurrent_webhooks_share_transactions_and_each_still_applies_once(backend) {
        // One worker waiting up to a second for company: concurrent webhooks group.
        let app = TestApp::spawn_with(backend, |s| {
            s.payments.refresh_on_read = false;
            s.database.webhook_group_commit_workers = 1;
            s.database.webhook_group_commit_window_micros = 1_000_000;
        })
        .await;
        let mut payments = Vec::new();
        for i in 0..12 {
            payments.push(payment(&app, &format!("CRM-GC-{i}")).await);
        }
        // Each payment's success, each sent twice at once, and a progress report for half of them.
        let mut messages = Vec::new();
        for (i, (_, provider_id)) in payments.iter().enumerate() {
            let success = govuk_message(&format!("gc-{i}"), provider_id, "card_payment_succeeded", "success", None);
            messages.push(success.clone());
            messages.push(success);
            if i % 2 == 0 {
                messages.push(govuk_message(&format!("gc-started-{i}"), provider_id, "card_payment_started", "started", None));
            }
        }
        let answers = futures_util::future::join_all(messages.iter().map(|m| send(&app, m))).await;
        assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
        for (id, _) in &payments {
            assert_eq!(app.get_payment(id).await["status"], "succeeded");
            assert_eq!(app.outbox_for(id).await, vec!["payment.succeeded".to_owned()], "one notification each");
        }
        assert_eq!(app.count_rows("webhook_receipts").await, 18, "one receipt per message");
        let counts = app.services.webhooks.group_commit_counts();
        assert!(counts.shared_transactions >= 1 && counts.shared_events >= 2, "{counts:?}");
        assert_eq!(counts.retried_alone, 0);
        let buckets = app.metric("counterfoil_webhook_transaction_events_count").await;
        assert!((1.0..30.0).contains(&buckets), "fewer transactions than webhooks: {buckets}");
    }

    async fn a_failing_event_fails_alone_and_the_rest_of_its_transaction_commits(backend) {
        use counterfoil::domain::{EventOutcome, PaymentStatus, ProviderEvent};
        use counterfoil::service::group_commit::{GroupCommit, GroupCommitSettings};
        let app = without_refresh(backend).await;
        let store = counterfoil::store::connect(&app.db_url, 4).await.unwrap();
        // A batch of exactly these three (it commits as soon as it is full).
        let metrics = std::sync::Arc::new(counterfoil::metrics::Metrics::new());
        let group = GroupCommit::start(store.clone(), GroupCommitSettings {
            max_events: 3,
            workers: 1,
            window: std::time::Duration::from_secs(10),
        }, metrics.clone());
        let (first, first_provider) = payment(&app, "CRM-GC-A").await;
        let (second, second_provider) = payment(&app, "CRM-GC-B").await;
        let event = |message: &str, provider_id: &str, failure_code: Option<String>| ProviderEvent {
            message_id: message.into(),
            event_type: "card_payment_succeeded".into(),
            provider_payment_id: provider_id.into(),
            reported: Some(PaymentStatus::Succeeded),
            failure_code,
            occurred_at: None,
            counterfoil_id: None,
            refund_activity: false,
        };
        // The store refuses to write a card number: that event's write fails, in any batch.
        let events = [
            event("iso-1", &first_provider, None),
            event("iso-2", &second_provider, Some(crate::helpers::fresh_test_pan())),
            event("iso-3", &second_provider, None),
        ];
        let now = chrono::Utc::now();
        let outcomes = futures_util::future::join_all(events.iter().map(|e| group.apply("sandbox", e, now))).await;
        assert!(matches!(outcomes[0], Ok(EventOutcome::Applied { .. })), "{outcomes:?}");
        assert!(matches!(outcomes[1], Err(counterfoil::store::StoreError::CardData)), "{outcomes:?}");
        assert!(matches!(outcomes[2], Ok(EventOutcome::Applied { .. })), "{outcomes:?}");
        assert_eq!(app.get_payment(&first).await["status"], "succeeded");
        assert_eq!(app.get_payment(&second).await["status"], "succeeded");
        assert_eq!(app.count_rows("webhook_receipts").await, 2, "the refused event left nothing");
        assert_eq!(group.counts().retried_alone, 3, "the shared transaction failed, each was tried alone");
        let exported = metrics.render(store.as_ref()).await;
        assert!(exported.contains("counterfoil_webhook_batch_retries_total 3"), "{exported}");
    }
}
