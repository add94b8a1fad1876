//! The payments contract: create, read (with refresh from the provider), list, cancel, timeline.

use serde_json::{json, Value};

use crate::helpers::payment_body;

both_stores! {
    async fn create_answers_201_with_the_contracts_payment(app) {
        let response = app.create_payment("key-1", &payment_body("CRM-1001")).await;
        assert_eq!(response.status(), 201);
        let p: Value = response.json().await.unwrap();
        assert!(p["id"].as_str().unwrap().starts_with("pay_"));
        assert_eq!(p["request_ref"], "CRM-1001");
        assert_eq!(p["service"], "demo");
        assert_eq!(p["amount"], 2500);
        assert_eq!(p["currency"], "GBP");
        assert_eq!(p["description"], "Resident parking permit, zone B");
        assert_eq!(p["status"], "created");
        assert_eq!(p["provider"], "govuk_pay");
        assert_eq!(p["create_outcome"], "confirmed");
        assert_eq!(p["metadata"], json!({"case": "A-1"}));
        assert!(p["provider_payment_id"].as_str().unwrap().len() == 26);
        assert!(p["next_url"].as_str().unwrap().starts_with(&app.address));
        assert!(p["finished_at"].is_null());
        for field in ["created_at", "updated_at"] {
            assert!(p[field].as_str().unwrap().ends_with('Z'), "{field} is UTC");
        }
        // The simulator received our reference and our id (to resolve lost answers later).
        let sim = app.simulator_payments().await;
        assert_eq!(sim.len(), 1);
        assert_eq!(sim[0]["reference"], "CRM-1001");
        assert_eq!(sim[0]["metadata"]["counterfoil_payment_id"], p["id"]);
    }

    async fn pressing_pay_makes_the_payment_succeed(app) {
        let p = app.new_payment("CRM-1002").await;
        assert_eq!(app.get_payment(p["id"].as_str().unwrap()).await["status"], "created");
        let redirect = app.press(p["next_url"].as_str().unwrap(), "pay").await;
        assert_eq!(redirect.status(), 303);
        assert_eq!(redirect.headers()["location"], "https://myaccount.example.gov.uk/requests/done");
        let read = app.get_payment(p["id"].as_str().unwrap()).await;
        assert_eq!(read["status"], "succeeded");
        assert!(read["next_url"].is_null(), "no next_url once final");
        assert!(read["finished_at"].is_string());
    }

    async fn pressing_decline_or_cancel_finishes_it_accordingly(app) {
        for (button, status, code) in [("decline", "failed", "P0010"), ("cancel", "cancelled", "P0030")] {
            let p = app.new_payment(&format!("CRM-{button}")).await;
            app.press(p["next_url"].as_str().unwrap(), button).await;
            let read = app.get_payment(p["id"].as_str().unwrap()).await;
            assert_eq!(read["status"], status, "{button}");
            assert_eq!(read["failure_code"], code, "{button}");
        }
    }

    async fn opening_the_page_moves_the_payment_in_progress(app) {
        let p = app.new_payment("CRM-1003").await;
        let page = app.client.get(p["next_url"].as_str().unwrap()).send().await.unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains("TEST PAGE"));
        assert!(!html.to_lowercase().contains("<input"), "the hosted page has no fields at all");
        let read = app.get_payment(p["id"].as_str().unwrap()).await;
        assert_eq!(read["status"], "in_progress");
    }

    async fn cancel_cancels_and_repeating_it_is_harmless(app) {
        let p = app.new_payment("CRM-1004").await;
        let id = p["id"].as_str().unwrap();
        let first = app.post(&format!("/v1/payments/{id}/cancel"), &app.crm_key).await;
        assert_eq!(first.status(), 200);
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["status"], "cancelled");
        let again = app.post(&format!("/v1/payments/{id}/cancel"), &app.crm_key).await;
        assert_eq!(again.status(), 200);
        let sim = &app.simulator_payments().await[0];
        assert_eq!(sim["status"], "cancelled");
    }

    async fn a_final_payment_cannot_be_cancelled(app) {
        let p = app.new_payment("CRM-1005").await;
        let id = p["id"].as_str().unwrap();
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        let response = app.post(&format!("/v1/payments/{id}/cancel"), &app.crm_key).await;
        assert_eq!(response.status(), 409);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "payment_not_cancellable");
        assert_eq!(app.get_payment(id).await["status"], "succeeded");
    }

    async fn the_timeline_records_each_change_and_its_source(app) {
        // Only the API's own refresh brings news here.
        app.simulator_webhooks(json!({"mode": "drop"})).await;
        let p = app.new_payment("CRM-1006").await;
        let id = p["id"].as_str().unwrap();
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        app.get_payment(id).await;
        app.get_payment(id).await;
        let events: Value = app.get(&format!("/v1/payments/{id}/events"), &app.crm_key).await.json().await.unwrap();
        let steps: Vec<(Value, Value, Value)> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["from"].clone(), e["to"].clone(), e["source"].clone()))
            .collect();
        assert_eq!(steps, vec![
            (Value::Null, json!("created"), json!("api")),
            (json!("created"), json!("succeeded"), json!("api")),
        ]);
    }

    async fn unknown_payments_are_404_problems(app) {
        for id in ["pay_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "nonsense"] {
            let response = app.get(&format!("/v1/payments/{id}"), &app.crm_key).await;
            assert_eq!(response.status(), 404);
            assert_eq!(response.headers()["content-type"], "application/problem+json");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["code"], "payment_not_found");
        }
    }

    async fn list_filters_and_pages_newest_first(app) {
        let mut ids = Vec::new();
        for i in 0..5 {
            let p = app.new_payment(if i % 2 == 0 { "CRM-EVEN" } else { "CRM-ODD" }).await;
            ids.push(p["id"].as_str().unwrap().to_owned());
        }
        // Page through everything two at a time.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/payments?limit=2&cursor={c}"),
                None => "/v1/payments?limit=2".into(),
            };
            let page: Value = app.get(&path, &app.crm_key).await.json().await.unwrap();
            for item in page["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first);

        let evens: Value = app.get("/v1/payments?request_ref=CRM-EVEN", &app.finance_key).await.json().await.unwrap();
        assert_eq!(evens["items"].as_array().unwrap().len(), 3);
        let none: Value = app.get("/v1/payments?status=succeeded&service=demo", &app.crm_key).await.json().await.unwrap();
        assert!(none["items"].as_array().unwrap().is_empty());
        let future: Value = app
            .get("/v1/payments?created_from=2099-01-01T00:00:00Z", &app.crm_key)
            .await
            .json()
            .await
            .unwrap();
        assert!(future["items"].as_array().unwrap().is_empty());
        let bad = app.get("/v1/payments?limit=500&status=paid", &app.crm_key).await;
        assert_eq!(bad.status(), 422);
        let problem: Value = bad.json().await.unwrap();
        let fields: Vec<_> = problem["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
        assert_eq!(fields, vec![json!("limit"), json!("status")]);
    }

    async fn healthz_answers(app) {
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// The refresh on read is throttled: within the interval a second read does not ask again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ask_the_provider_at_most_once_per_interval() {
    use crate::helpers::{Backend, TestApp};
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.payments.refresh_interval_seconds = 3600
    })
    .await;
    app.simulator_webhooks(serde_json::json!({"mode": "drop"}))
        .await;
    let p = app.new_payment("CRM-THROTTLE").await;
    let id = p["id"].as_str().unwrap();
    // The first read asks the provider; within the interval, the next is served from storage.
    assert_eq!(app.get_payment(id).await["status"], "created");
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    assert_eq!(app.get_payment(id).await["status"], "created");
}
