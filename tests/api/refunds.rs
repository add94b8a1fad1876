//! Refunds: finance only, never more than was taken (also under concurrent requests), idempotent,
//! followed to their end, audited.

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A payment the citizen has paid (pressed Pay on the simulator's page).
async fn paid(app: &TestApp, request_ref: &str) -> String {
    let p = app.new_payment(request_ref).await;
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    let id = p["id"].as_str().unwrap().to_owned();
    app.wait_for_status(&id, "succeeded").await;
    id
}

async fn refund(
    app: &TestApp,
    key: &str,
    payment: &str,
    idempotency: &str,
    body: Value,
) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/payments/{payment}/refunds")))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn control(app: &TestApp, path: &str, body: Value) {
    let response = app
        .client
        .post(app.url(&format!("/sandbox/govuk-pay/_control/{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

both_stores! {
    async fn part_then_the_rest_and_not_a_penny_more(app) {
        let id = paid(&app, "CRM-R001").await;
        let (status, first) = refund(&app, &app.finance_key, &id, "r1", json!({"amount": 1000, "reason": "Permit cancelled"})).await;
        assert_eq!(status, 201, "{first}");
        assert!(first["id"].as_str().unwrap().starts_with("rfd_"));
        assert_eq!(first["payment_id"], json!(id));
        assert_eq!(first["amount"], 1000);
        assert_eq!(first["status"], "succeeded", "the sandbox refunds at once");
        assert_eq!(first["reason"], "Permit cancelled");
        assert_eq!(first["requested_by"], "test");
        assert!(first["provider_refund_id"].is_string());
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 1000);

        let (status, _) = refund(&app, &app.finance_key, &id, "r2", json!({"amount": 1500, "reason": "Rest of it"})).await;
        assert_eq!(status, 201);
        let (status, problem) = refund(&app, &app.finance_key, &id, "r3", json!({"amount": 1, "reason": "One more"})).await;
        assert_eq!(status, 422);
        assert_eq!(problem["code"], "refund_exceeds_captured");
        assert_eq!(problem["refundable_amount"], 0);
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 2500);

        let listed: Value = app.get(&format!("/v1/payments/{id}/refunds"), &app.finance_key).await.json().await.unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 2);
        assert_eq!(app.outbox_for(&id).await, vec!["payment.succeeded", "refund.succeeded", "refund.succeeded"]);
        let audit: Value = app.get("/v1/audit", &app.admin_key).await.json().await.unwrap();
        let refunds_audited = audit["items"].as_array().unwrap().iter()
            .filter(|e| e["action"] == "refund.requested" && e["detail"]["payment_id"] == json!(id))
            .count();
        assert_eq!(refunds_audited, 2, "the refused third is not a refund");
        assert_eq!(app.count_rows("refunds").await, 2);
    }

    async fn only_succeeded_payments_can_be_refunded(app) {
        let p = app.new_payment("CRM-R002").await;
        let id = p["id"].as_str().unwrap();
        let (status, problem) = refund(&app, &app.finance_key, id, "r", json!({"amount": 100, "reason": "x"})).await;
        assert_eq!((status, problem["code"].as_str()), (409, Some("payment_not_refundable")));
        let (status, _) = refund(&app, &app.finance_key, "pay_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "r", json!({"amount": 100, "reason": "x"})).await;
        assert_eq!(status, 404);
        assert_eq!(app.count_rows("refunds").await, 0);
        assert_eq!(app.count_rows("idempotency_keys").await, 1, "only the payment's own");
    }

    async fn finance_routes_refuse_crm_keys(app) {
        let id = paid(&app, "CRM-R003").await;
        let (status, problem) = refund(&app, &app.crm_key, &id, "r", json!({"amount": 100, "reason": "x"})).await;
        assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));
        assert_eq!(app.get(&format!("/v1/payments/{id}/refunds"), &app.crm_key).await.status(), 403);
        assert_eq!(app.get("/v1/audit", &app.crm_key).await.status(), 403);
        assert_eq!(app.get("/v1/audit", &app.finance_key).await.status(), 403, "the audit trail is for admins");
        let (status, _) = refund(&app, &app.admin_key, &id, "r", json!({"amount": 100, "reason": "x"})).await;
        assert_eq!(status, 201, "admin may do what finance may");
    }

    async fn a_repeated_refund_request_is_answered_not_repeated(app) {
        let id = paid(&app, "CRM-R004").await;
        let body = json!({"amount": 700, "reason": "Duplicate booking"});
        let (s1, first) = refund(&app, &app.finance_key, &id, "same", body.clone()).await;
        let (s2, second) = refund(&app, &app.finance_key, &id, "same", body).await;
        assert_eq!((s1, s2), (201, 201));
        assert_eq!(first, second);
        let (status, problem) = refund(&app, &app.finance_key, &id, "same", json!({"amount": 800, "reason": "Duplicate booking"})).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some("idempotency_key_reused")));
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 700);
    }

    async fn concurrent_refunds_never_exceed_what_was_taken(app) {
        let id = paid(&app, "CRM-R005").await;
        let attempts = (0..10).map(|n| {
            let (app, id) = (&app, id.clone());
            async move { refund(app, &app.finance_key, &id, &format!("c{n}"), json!({"amount": 1000, "reason": "Race"})).await }
        });
        let results = futures_util::future::join_all(attempts).await;
        let granted = results.iter().filter(|(s, _)| *s == 201).count();
        let refused = results.iter().filter(|(s, p)| *s == 422 && p["code"] == "refund_exceeds_captured").count();
        let answers: Vec<_> = results.iter().map(|(s, p)| (*s, p["code"].clone())).collect();
        assert_eq!((granted, refused), (2, 8), "2,500 taken: two refunds of 1,000 fit, a third does not: {answers:?}");
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 2000);
        assert_eq!(app.count_rows("refunds").await, 2);
    }

    async fn a_stale_amount_available_is_read_again_not_failed(app) {
        let id = paid(&app, "CRM-R008").await;
        let provider_id = app.get_payment(&id).await["provider_payment_id"].as_str().unwrap().to_owned();
        // Someone refunds 300 in GOV.UK Pay's own admin tool: its amount available is now 2,200,
        // while ours is still 2,500, so our first request is refused with 412 P0604.
        let outside = app.client.post(app.url(&format!("/sandbox/govuk-pay/v1/payments/{provider_id}/refunds")))
            .bearer_auth("api_test_counterfoil_simulator_key")
            .json(&json!({"amount": 300, "refund_amount_available": 2500})).send().await.unwrap();
        assert_eq!(outside.status(), 202);
        let (status, refund_made) = refund(&app, &app.finance_key, &id, "stale", json!({"amount": 500, "reason": "After an outside refund"})).await;
        assert_eq!(status, 201, "{refund_made}");
        assert_eq!(refund_made["status"], "succeeded");
    }

    async fn bad_refund_input_is_named(app) {
        let id = paid(&app, "CRM-R006").await;
        for (body, fields) in [
            (json!({"amount": 0, "reason": "x"}), vec!["amount"]),
            (json!({"amount": 10.5, "reason": "x"}), vec!["amount"]),
            (json!({"amount": "100", "reason": "x"}), vec!["amount"]),
            (json!({"amount": 100}), vec!["reason"]),
            (json!({"amount": 100, "reason": "<b>"}), vec!["reason"]),
            (json!({"amount": 100, "reason": "x", "card": "y"}), vec!["card"]),
        ] {
            let (status, problem) = refund(&app, &app.finance_key, &id, &uuid::Uuid::new_v4().to_string(), body.clone()).await;
            assert_eq!(status, 422, "{body}");
            let named: Vec<_> = problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect();
            assert_eq!(named, fields, "{body}");
        }
        assert_eq!(app.count_rows("refunds").await, 0);
    }

    async fn a_submitted_refund_is_followed_to_success_and_an_errored_one_rechecked(app) {
        // Only the poller and reading bring news here (a card_payment_refunded webhook would race them).
        app.simulator_webhooks(json!({"mode": "drop"})).await;
        let id = paid(&app, "CRM-R007").await;
        control(&app, "refunds", json!({"status": "submitted"})).await;
        let (_, pending) = refund(&app, &app.finance_key, &id, "p1", json!({"amount": 500, "reason": "Submitted first"})).await;
        assert_eq!(pending["status"], "pending");
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 0, "not refunded until it succeeds");
        let provider_refund_id = pending["provider_refund_id"].as_str().unwrap();
        control(&app, &format!("refunds/{provider_refund_id}"), json!({"status": "success"})).await;
        assert_eq!(app.services.refunds.poll_once().await.unwrap(), 1, "the poller follows it");
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 500);

        control(&app, "refunds", json!({"status": "error"})).await;
        let (_, errored) = refund(&app, &app.finance_key, &id, "e1", json!({"amount": 300, "reason": "Errored first"})).await;
        assert_eq!(errored["status"], "failed");
        // A failed refund frees its amount...
        let (status, _) = refund(&app, &app.finance_key, &id, "big", json!({"amount": 2001, "reason": "Too much"})).await;
        assert_eq!(status, 422);
        // ...but GOV.UK Pay's error can still become success, so it is re-checked on reading.
        control(&app, &format!("refunds/{}", errored["provider_refund_id"].as_str().unwrap()), json!({"status": "success"})).await;
        let listed: Value = app.get(&format!("/v1/payments/{id}/refunds"), &app.finance_key).await.json().await.unwrap();
        let statuses: Vec<_> = listed["items"].as_array().unwrap().iter().map(|r| r["status"].clone()).collect();
        assert_eq!(statuses, vec![json!("succeeded"), json!("succeeded")]);
        assert_eq!(app.get_payment(&id).await["refunded_amount"], 800);
        assert_eq!(
            app.outbox_for(&id).await,
            vec!["payment.succeeded", "refund.succeeded", "refund.failed", "refund.succeeded"]
        );
    }
}

each_backend! {
    async fn a_payment_whose_provider_account_was_removed_is_answered_never_a_panic(backend) {
        let app = TestApp::spawn(backend).await;
        let id = paid(&app, "CRM-GONE-ACCOUNT").await;
        // The council renames the account in its configuration: old payments name one that is gone.
        let db_url = app.db_url.clone();
        let later = TestApp::spawn_with(backend, move |s| {
            s.database.url = db_url;
            let account = s.accounts.remove("sandbox").unwrap();
            s.accounts.insert("sandbox-renamed".into(), account);
            for service in s.services.values_mut() {
                if service.account == "sandbox" {
                    service.account = "sandbox-renamed".into();
                }
            }
        })
        .await;
        let (status, body) = refund(&later, &later.finance_key, &id, "gone-1", json!({"amount": 100, "reason": "Test"})).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "provider_account_not_configured");
        let listed = later.get(&format!("/v1/payments/{id}/refunds"), &later.finance_key).await;
        assert_eq!(listed.status(), 200, "reads still answer");
        let read = later.get(&format!("/v1/payments/{id}"), &later.crm_key).await;
        assert_eq!(read.status(), 200);
        let refunds: Value = listed.json().await.unwrap();
        assert!(refunds["items"].as_array().unwrap().is_empty(), "nothing was recorded");
    }
}
