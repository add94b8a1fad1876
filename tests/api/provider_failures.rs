//! The provider down, failing or slow: the CRM gets 502/503 `provider_unavailable` and the local
//! row is left in an honest state; a create whose answer was lost is resolved, never repeated.

use serde_json::{json, Value};

use crate::helpers::payment_body;

both_stores! {
    async fn a_provider_that_cannot_be_reached_gives_503_and_a_retry_may_try_again(app) {
        let mut body = payment_body("CRM-6001");
        body["service"] = json!("offline");
        let response = app.create_payment("down", &body).await;
        assert_eq!(response.status(), 503);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "provider_unavailable");
        let id = problem["payment_id"].as_str().unwrap().to_owned();
        let row = app.get_payment(&id).await;
        assert_eq!(row["status"], "error");
        assert_eq!(row["create_outcome"], "not_created");
        assert_eq!(row["failure_code"], "provider_unreachable");
        // Nothing reached the provider, so the same key may simply be retried.
        let retry = app.create_payment("down", &body).await;
        assert_eq!(retry.status(), 503);
        assert_eq!(app.count_rows("payments").await, 2);
    }

    async fn a_provider_5xx_gives_502_and_leaves_the_create_unresolved(app) {
        app.simulator_faults(json!({"create_errors": 1})).await;
        let body = payment_body("CRM-6002");
        let response = app.create_payment("five-hundred", &body).await;
        assert_eq!(response.status(), 502);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "provider_unavailable");
        let id = problem["payment_id"].as_str().unwrap().to_owned();
        let row = app.get_payment(&id).await;
        assert_eq!(row["status"], "created");
        assert_eq!(row["create_outcome"], "unknown");
        assert!(row["next_url"].is_null());
        // A retry with the same key never makes a second provider payment.
        let retry = app.create_payment("five-hundred", &body).await;
        assert_eq!(retry.status(), 502);
        assert_eq!(retry.json::<Value>().await.unwrap()["payment_id"], json!(id));
        assert_eq!(app.count_rows("payments").await, 1);
        assert!(app.simulator_payments().await.is_empty());
    }

    async fn a_lost_create_answer_is_resolved_by_searching_the_provider(app) {
        // The provider creates the payment but answers after our 3 s timeout.
        app.simulator_faults(json!({"create_delay_ms": 4000, "create_delays": 1})).await;
        let body = payment_body("CRM-6003");
        let response = app.create_payment("lost", &body).await;
        assert_eq!(response.status(), 502);
        let problem: Value = response.json().await.unwrap();
        let id = problem["payment_id"].as_str().unwrap().to_owned();
        assert_eq!(app.simulator_payments().await.len(), 1, "the provider did create it");
        // Reading the payment finds it at the provider by reference and our id.
        let row = app.get_payment(&id).await;
        assert_eq!(row["create_outcome"], "confirmed");
        assert_eq!(row["status"], "created");
        assert!(row["next_url"].is_string());
        assert_eq!(row["provider_payment_id"], app.simulator_payments().await[0]["payment_id"]);
        // Now a repeat of the request answers with the payment, still without a second create.
        let retry = app.create_payment("lost", &body).await;
        assert_eq!(retry.status(), 201);
        assert_eq!(retry.json::<Value>().await.unwrap()["id"], json!(id));
        assert_eq!(app.simulator_payments().await.len(), 1);
    }

    async fn reads_still_answer_when_the_provider_is_down(app) {
        let p = app.new_payment("CRM-6004").await;
        let id = p["id"].as_str().unwrap();
        // Point the read at a payment the provider no longer has (as good as the provider failing).
        app.execute(&format!("UPDATE payments SET provider_payment_id = 'gone' WHERE id = '{id}'")).await;
        let row = app.get_payment(id).await;
        assert_eq!(row["status"], "created");
    }
}
