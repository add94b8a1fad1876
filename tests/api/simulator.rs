//! The simulator speaks GOV.UK Pay's published contract: paths, fields, statuses and error shapes.

use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

const SIM_KEY: &str = "api_test_counterfoil_simulator_key";

async fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await
}

fn create_body() -> Value {
    json!({"amount": 1200, "reference": "12345", "description": "New passport application",
           "return_url": "https://service-name.gov.uk/transactions/12345"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_and_cancel_use_the_published_shapes() {
    let app = app().await;
    let api = app.url("/sandbox/govuk-pay/v1/payments");
    let created = app
        .client
        .post(&api)
        .bearer_auth(SIM_KEY)
        .json(&create_body())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    let id = body["payment_id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert_eq!(
        body["state"],
        json!({"status": "created", "finished": false})
    );
    assert!(body["_links"]["next_url"]["href"].is_string());
    assert_eq!(body["_links"]["next_url"]["method"], "GET");
    assert!(body["created_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["refund_summary"]["status"], "pending");

    let got: Value = app
        .client
        .get(format!("{api}/{id}"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["amount"], 1200);

    let cancelled = app
        .client
        .post(format!("{api}/{id}/cancel"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    let got: Value = app
        .client
        .get(format!("{api}/{id}"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["state"]["status"], "cancelled");
    assert_eq!(got["state"]["code"], "P0040");
    assert!(got["_links"]["next_url"].is_null());

    let again = app
        .client
        .post(format!("{api}/{id}/cancel"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(again.json::<Value>().await.unwrap()["code"], "P0501");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_govuk_pay_codes() {
    let app = app().await;
    let api = app.url("/sandbox/govuk-pay/v1/payments");
    let no_key = app
        .client
        .post(&api)
        .json(&create_body())
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let wrong_key = app
        .client
        .get(format!("{api}/x"))
        .bearer_auth("api_test_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);

    let missing = app
        .client
        .get(format!("{api}/nosuchpayment"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "P0200");

    let mut too_much = create_body();
    too_much["amount"] = json!(10_000_001);
    let refused = app
        .client
        .post(&api)
        .bearer_auth(SIM_KEY)
        .json(&too_much)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "P0102");
    assert_eq!(body["field"], "amount");
    assert_eq!(
        body["description"],
        "Invalid attribute value: amount. Must be less than or equal to 10000000"
    );

    let mut no_reference = create_body();
    no_reference.as_object_mut().unwrap().remove("reference");
    let refused = app
        .client
        .post(&api)
        .bearer_auth(SIM_KEY)
        .json(&no_reference)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "P0101");

    let mut firewall = create_body();
    firewall["description"] = json!("<script>");
    let blocked = app
        .client
        .post(&api)
        .bearer_auth(SIM_KEY)
        .json(&firewall)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 400);
    assert_eq!(blocked.json::<Value>().await.unwrap()["code"], "P0920");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_by_reference_and_pages() {
    let app = app().await;
    let api = app.url("/sandbox/govuk-pay/v1/payments");
    for _ in 0..3 {
        app.client
            .post(&api)
            .bearer_auth(SIM_KEY)
            .json(&create_body())
            .send()
            .await
            .unwrap();
    }
    let page: Value = app
        .client
        .get(format!("{api}?reference=12345&display_size=2&page=2"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 3);
    assert_eq!(page["count"], 1);
    let none: Value = app
        .client
        .get(format!("{api}?reference=other"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 0);
    let bad = app
        .client
        .get(format!("{api}?display_size=501"))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "P0401");
}
