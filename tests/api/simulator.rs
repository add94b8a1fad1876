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
    // next_url_post, as GOV.UK Pay gives it: the charge token posted as a form reaches the page.
    let post = &body["_links"]["next_url_post"];
    assert_eq!(post["method"], "POST");
    assert_eq!(post["type"], "application/x-www-form-urlencoded");
    assert_eq!(post["params"]["chargeTokenId"], json!(id));
    let page = app
        .client
        .post(post["href"].as_str().unwrap())
        .form(&[("chargeTokenId", id)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/pay"));
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

/// A seeded period is searched newest first, a window and a page at a time, each payment once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_period_is_searched_in_windows_and_pages() {
    let app = app().await;
    let seeded = app
        .client
        .post(app.url("/sandbox/govuk-pay/_control/seed"))
        .bearer_auth(SIM_KEY)
        .json(
            &json!({"count": 1200, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:20:00Z",
                      "id_prefix": "seed", "amount": 2500}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 204);
    let search = |query: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/sandbox/govuk-pay/v1/payments?{query}")))
                .bearer_auth(SIM_KEY)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // One a second: the window [00:05, 00:10) holds 300 of them.
    let window = "from_date=2026-01-01T00:05:00Z&to_date=2026-01-01T00:10:00Z";
    let mut seen = Vec::new();
    for page in 1..=2 {
        let found = search(format!("{window}&display_size=200&page={page}")).await;
        assert_eq!(found["total"], 300);
        for p in found["results"].as_array().unwrap() {
            assert_eq!(p["state"]["status"], "success");
            seen.push((
                p["created_date"].as_str().unwrap().to_owned(),
                p["payment_id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(seen.len(), 300);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, none twice"
    );
    assert!(seen.first().unwrap().0.starts_with("2026-01-01T00:09:59"));
    assert!(seen.last().unwrap().0.starts_with("2026-01-01T00:05:00"));
    assert!(seen
        .iter()
        .all(|(_, id)| id.len() == 26 && !id.bytes().any(|b| b.is_ascii_digit())));
    // Without a window, all of them.
    assert_eq!(search(String::new()).await["total"], 1200);
}
