//! Reconciliation against the provider's records: a clean period finds nothing; each kind of
//! discrepancy is found; what the provider is authoritative for is healed, once.

use serde_json::{json, Value};

use crate::helpers::{payment_body, TestApp};

const SIM_KEY: &str = "api_test_counterfoil_simulator_key";

fn around_now() -> (String, String) {
    let now = chrono::Utc::now();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    (
        fmt(now - chrono::Duration::minutes(5)),
        fmt(now + chrono::Duration::minutes(5)),
    )
}

async fn reconcile(app: &TestApp, from: &str, to: &str) -> Value {
    let response = app
        .client
        .post(app.url("/v1/reconciliations"))
        .bearer_auth(&app.finance_key)
        .json(&json!({"account": "sandbox", "from": from, "to": to}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    run
}

/// (kind, payment_id or provider id, healed) for each discrepancy, sorted.
fn found(run: &Value) -> Vec<(String, String, bool)> {
    let mut found: Vec<_> = run["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let who = d["payment_id"]
                .as_str()
                .or(d["provider_payment_id"].as_str())
                .unwrap_or("")
                .to_owned();
            (
                d["kind"].as_str().unwrap().to_owned(),
                who,
                d["healed"].as_bool().unwrap(),
            )
        })
        .collect();
    found.sort();
    found
}

async fn paid(app: &TestApp, request_ref: &str, read_it: bool) -> Value {
    let p = app.new_payment(request_ref).await;
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    if read_it {
        app.wait_for_status(p["id"].as_str().unwrap(), "succeeded")
            .await;
    }
    p
}

both_stores! {
    async fn a_clean_period_finds_nothing(app) {
        paid(&app, "REC-CLEAN", true).await;
        let (from, to) = around_now();
        let run = reconcile(&app, &from, &to).await;
        assert_eq!(found(&run), vec![]);
        assert_eq!((run["provider_payments"].as_i64(), run["local_payments"].as_i64()), (Some(1), Some(1)));
        assert_eq!(app.get(&format!("/v1/reconciliations/{}", run["id"].as_str().unwrap()), &app.crm_key).await.status(), 403);
    }

    async fn the_nightly_run_happens_once_per_account_and_day(app) {
        let reconciliation = &app.services.reconciliation;
        let now = chrono::Utc::now();
        let first = reconciliation.nightly("sandbox", now).await.unwrap();
        assert!(first.is_some(), "the first server to try runs it");
        let run = first.unwrap();
        assert_eq!(run.requested_by, "nightly");
        assert!(reconciliation.nightly("sandbox", now).await.unwrap().is_none(), "a second replica does not");
    }

    async fn a_lagging_search_shows_as_missing_at_the_provider(app) {
        app.client.post(app.url("/sandbox/govuk-pay/_control/search")).json(&json!({"delay_ms": 60000})).send().await.unwrap();
        let p = paid(&app, "REC-LAG", true).await;
        let (from, to) = around_now();
        let run = reconcile(&app, &from, &to).await;
        assert_eq!(found(&run), vec![("missing_at_provider".to_string(), p["id"].as_str().unwrap().to_owned(), false)]);
        assert!(run["discrepancies"][0]["note"].as_str().unwrap().contains("re-run later"));
    }
}

each_backend! {
    // One record per step: every step boundary of the streamed comparison is crossed (the default
    // step of 500 is what the other tests use).
    async fn every_kind_is_found_and_the_provider_heals_what_it_is_authoritative_for(backend) {
        let app = TestApp::spawn_with(backend, |s| s.reconciliation.batch_size = 1).await;
        // The provider gets ahead of us: its webhooks are lost.
        app.simulator_webhooks(json!({"mode": "drop"})).await;
        let (from, _) = around_now();

        // A: paid, but we never heard (nobody read it): status_mismatch, healed.
        let a = paid(&app, "REC-A", false).await;
        // B: the create's answer was lost: missing_locally, healed.
        app.simulator_faults(json!({"create_delay_ms": 4000, "create_delays": 1})).await;
        let lost = app.create_payment("rec-b", &payment_body("REC-B")).await;
        assert_eq!(lost.status(), 502);
        let b = lost.json::<Value>().await.unwrap()["payment_id"].as_str().unwrap().to_owned();
        // C: made at the provider, not through Counterfoil: missing_locally, not healable.
        let c: Value = app.client.post(app.url("/sandbox/govuk-pay/v1/payments")).bearer_auth(SIM_KEY)
            .json(&json!({"amount": 700, "reference": "COUNTER-TILL", "description": "Paid at the counter",
                          "return_url": "https://council.example.gov.uk/x"}))
            .send().await.unwrap().json().await.unwrap();
        // D: ours points at a payment the provider does not have: missing_at_provider.
        let d = app.new_payment("REC-D").await;
        let d_id = d["id"].as_str().unwrap();
        app.execute(&format!("UPDATE payments SET provider_payment_id = 'ghost00000000000000000000d' WHERE id = '{d_id}'")).await;
        // E: ours says another amount: amount_mismatch.
        let e = app.new_payment("REC-E").await;
        let e_id = e["id"].as_str().unwrap();
        app.execute(&format!("UPDATE payments SET amount = 9999 WHERE id = '{e_id}'")).await;
        // F: refunded at the provider, not through us: refund_mismatch, not healable.
        let f = paid(&app, "REC-F", true).await;
        let f_provider = f["provider_payment_id"].as_str().unwrap();
        let outside = app.client.post(app.url(&format!("/sandbox/govuk-pay/v1/payments/{f_provider}/refunds")))
            .bearer_auth(SIM_KEY).json(&json!({"amount": 300, "refund_amount_available": 2500})).send().await.unwrap();
        assert_eq!(outside.status(), 202);
        // G: our refund is pending, the provider's has succeeded: refund_mismatch, healed.
        let g = paid(&app, "REC-G", true).await;
        let g_id = g["id"].as_str().unwrap();
        app.client.post(app.url("/sandbox/govuk-pay/_control/refunds")).json(&json!({"status": "submitted"})).send().await.unwrap();
        let refund: Value = app.client.post(app.url(&format!("/v1/payments/{g_id}/refunds")))
            .bearer_auth(&app.finance_key).header("Idempotency-Key", "rec-g").json(&json!({"amount": 400, "reason": "Overpaid"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(refund["status"], "pending");
        let provider_refund = refund["provider_refund_id"].as_str().unwrap();
        app.client.post(app.url(&format!("/sandbox/govuk-pay/_control/refunds/{provider_refund}")))
            .json(&json!({"status": "success"})).send().await.unwrap();

        let (_, to) = around_now();
        let run = reconcile(&app, &from, &to).await;
        let a_id = a["id"].as_str().unwrap().to_owned();
        let mut expected = vec![
            ("amount_mismatch".to_string(), e_id.to_owned(), false),
            ("missing_at_provider".to_string(), d_id.to_owned(), false),
            ("missing_locally".to_string(), b.clone(), true),
            ("missing_locally".to_string(), c["payment_id"].as_str().unwrap().to_owned(), false),
            // D's real provider payment, which its row no longer names.
            ("missing_locally".to_string(), d["provider_payment_id"].as_str().unwrap().to_owned(), false),
            ("refund_mismatch".to_string(), f["id"].as_str().unwrap().to_owned(), false),
            ("refund_mismatch".to_string(), g_id.to_owned(), true),
            ("status_mismatch".to_string(), a_id.clone(), true),
        ];
        expected.sort();
        assert_eq!(found(&run), expected);

        // What was healed went through the state machine, and the CRM is told.
        assert!(app.timeline(&a_id).await.contains(&(json!("created"), json!("succeeded"), json!("reconciliation"))));
        assert_eq!(app.outbox_for(&a_id).await, vec!["payment.succeeded"]);
        assert_eq!(app.get_payment(&b).await["create_outcome"], "confirmed");
        assert_eq!(app.get_payment(g_id).await["refunded_amount"], 400);

        // A second run heals nothing more; the unhealable remain reported.
        let again = reconcile(&app, &from, &to).await;
        let second = found(&again);
        assert!(second.iter().all(|(_, _, healed)| !healed), "{second:?}");
        assert_eq!(second.len(), 5, "{second:?}");

        // Stored, and read back as JSON or CSV.
        let id = run["id"].as_str().unwrap();
        let stored: Value = app.get(&format!("/v1/reconciliations/{id}"), &app.finance_key).await.json().await.unwrap();
        assert_eq!(stored["discrepancies"], run["discrepancies"]);
        let csv = app.get(&format!("/v1/reconciliations/{id}?format=csv"), &app.finance_key).await.text().await.unwrap();
        assert_eq!(csv.lines().count(), 1 + 8);
        let audit: Value = app.get("/v1/audit", &app.admin_key).await.json().await.unwrap();
        let runs = audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "reconciliation.run").count();
        assert_eq!(runs, 2);

        // What the provider listed was staged only while the run ran.
        assert_eq!(app.count_rows("reconciliation_provider_payments").await, 0);
        assert_eq!(app.count_rows("reconciliation_provider_refunds").await, 0);
    }
}

both_stores! {
    async fn a_run_whose_process_died_is_marked_failed_and_its_staging_removed(app) {
        use counterfoil::store::{AuditEntry, ReconciliationRun};
        let store = &app.services.store;
        let began = chrono::Utc::now() - chrono::Duration::days(2);
        let died = ReconciliationRun {
            id: "rec_died".into(),
            account: "sandbox".into(),
            period_from: began - chrono::Duration::days(1),
            period_to: began,
            requested_by: "nightly".into(),
            requested_by_label: "nightly reconciliation".into(),
            started_at: began,
            finished_at: None,
            status: counterfoil::domain::reconciliation::RunStatus::Running,
            provider_payments: 0,
            provider_refunds: 0,
            local_payments: 0,
            error: None,
        };
        let audit = AuditEntry {
            at: began,
            actor_key_id: "nightly".into(),
            actor_label: "nightly reconciliation".into(),
            action: "reconciliation.run".into(),
            subject: died.id.clone(),
            detail: json!({}),
        };
        store.insert_reconciliation_run(&died, &audit).await.unwrap();
        let listed = counterfoil::providers::ProviderPayment {
            provider_payment_id: "staged0000000000000000000a".into(),
            status: counterfoil::domain::PaymentStatus::Succeeded,
            failure_code: None,
            next_url: None,
            amount: 2500,
            reference: "REC-DIED".into(),
            counterfoil_id: None,
            created_at: Some(began),
            finished_at: Some(began),
            refund_available: None,
        };
        store.stage_provider_payments(&died.id, &[listed]).await.unwrap();
        assert_eq!(app.count_rows("reconciliation_provider_payments").await, 1);

        let (from, to) = around_now();
        reconcile(&app, &from, &to).await;
        let (run, _) = store.get_reconciliation_run("rec_died").await.unwrap().unwrap();
        assert_eq!(run.status, counterfoil::domain::reconciliation::RunStatus::Failed);
        assert!(run.error.unwrap().contains("did not finish"));
        assert_eq!(app.count_rows("reconciliation_provider_payments").await, 0);
    }
}

both_stores! {
    // A citizen typed their card number as the reference on a payment made at the provider, not
    // through Counterfoil: the run still finishes, the payment is reported, the number is kept
    // nowhere.
    async fn a_card_number_in_a_providers_reference_does_not_stop_the_run(app) {
        let pan = crate::helpers::fresh_test_pan();
        let made: Value = app.client.post(app.url("/sandbox/govuk-pay/v1/payments")).bearer_auth(SIM_KEY)
            .json(&json!({"amount": 900, "reference": format!("card {pan}"), "description": "Payment link",
                          "return_url": "https://council.example.gov.uk/x"}))
            .send().await.unwrap().json().await.unwrap();
        assert!(made["payment_id"].is_string(), "{made}");
        paid(&app, "REC-CARD-REF", true).await;
        let (from, to) = around_now();
        let run = reconcile(&app, &from, &to).await;
        assert_eq!(run["status"], "completed", "{run}");
        let kinds: Vec<String> = found(&run).into_iter().map(|(kind, _, _)| kind).collect();
        assert_eq!(kinds, vec!["missing_locally".to_string()], "{run}");
        assert!(app.columns_containing(&pan).await.is_empty());
        assert!(app.columns_containing(&pan[..13]).await.is_empty());
    }
}
