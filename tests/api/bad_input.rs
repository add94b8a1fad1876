//! Every kind of bad input gets its own clear problem+json, and nothing is stored for any of them.

use serde_json::{json, Value};

use crate::helpers::{payment_body, TestApp};

/// Sends `body` (already serialised) as a create and returns the status and problem.
async fn send_raw(app: &TestApp, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&app.crm_key)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, response.json().await.unwrap())
}

async fn send(app: &TestApp, body: &Value) -> (u16, Value) {
    send_raw(app, "application/json", serde_json::to_vec(body).unwrap()).await
}

fn error_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    fields.sort();
    fields
}

async fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(app.count_rows("payments").await, 0, "no payment row");
    assert_eq!(
        app.count_rows("idempotency_keys").await,
        0,
        "no idempotency row"
    );
    assert!(
        app.simulator_payments().await.is_empty(),
        "nothing reached the provider"
    );
}

both_stores! {
    async fn malformed_json_is_400(app) {
        let (status, problem) = send_raw(&app, "application/json", b"{\"amount\": 12,".to_vec()).await;
        assert_eq!(status, 400);
        assert_eq!(problem["code"], "malformed_json");
        assert_nothing_stored(&app).await;
    }

    async fn a_non_json_content_type_is_415(app) {
        let body = serde_json::to_vec(&payment_body("CRM-3001")).unwrap();
        let (status, problem) = send_raw(&app, "text/plain", body.clone()).await;
        assert_eq!(status, 415);
        assert_eq!(problem["code"], "unsupported_media_type");
        let (status, _) = send_raw(&app, "application/x-www-form-urlencoded", body).await;
        assert_eq!(status, 415);
        assert_nothing_stored(&app).await;
    }

    async fn a_body_over_64_kib_is_413(app) {
        let mut body = payment_body("CRM-3002");
        body["description"] = json!("x".repeat(70 * 1024));
        let (status, problem) = send(&app, &body).await;
        assert_eq!(status, 413);
        assert_eq!(problem["code"], "payload_too_large");
        assert_nothing_stored(&app).await;
    }

    async fn bad_amounts_are_422_naming_amount(app) {
        for amount in [json!(0), json!(-100), json!(12.5), json!(1e3), json!("2500"), json!(10_000_001), json!(null)] {
            let mut body = payment_body("CRM-3003");
            body["amount"] = amount.clone();
            let (status, problem) = send(&app, &body).await;
            assert_eq!(status, 422, "amount {amount}");
            assert_eq!(problem["code"], "validation_failed");
            assert_eq!(error_fields(&problem), vec!["amount"], "amount {amount}");
        }
        assert_nothing_stored(&app).await;
    }

    async fn bad_text_fields_are_each_named(app) {
        let cases = [
            ("request_ref", json!("has spaces")),
            ("request_ref", json!("")),
            ("request_ref", json!("r".repeat(65))),
            ("description", json!("d".repeat(256))),
            ("description", json!("Fee <b>now</b>")),
            ("description", json!("Pipe | character")),
            ("description", json!("A \"quoted\" word")),
            ("description", json!("back\\slash")),
            ("email", json!("not-an-email")),
            ("email", json!(format!("{}@example.org", "e".repeat(250)))),
            ("return_url", json!("http://myaccount.example.gov.uk/done")),
            ("return_url", json!("javascript:alert(1)")),
            ("return_url", json!("not a url")),
            ("service", json!("no-such-service")),
            ("metadata", json!({"k": "v|w"})),
            ("metadata", json!({"k": 5})),
        ];
        for (field, value) in cases {
            let mut body = payment_body("CRM-3004");
            body[field] = value.clone();
            let (status, problem) = send(&app, &body).await;
            assert_eq!(status, 422, "{field} = {value}");
            assert_eq!(error_fields(&problem), vec![field.to_owned()], "{field} = {value}");
            // The message explains, but never repeats the value.
            let text = problem.to_string();
            if let Some(s) = value.as_str().filter(|s| s.len() > 3) {
                assert!(!text.contains(s), "{field}: the problem echoes the value");
            }
        }
        assert_nothing_stored(&app).await;
    }

    async fn unknown_and_missing_fields_are_all_named_at_once(app) {
        let body = json!({
            "request_ref": "CRM-3005", "amount": 100,
            "colour": "red", "card_holder": "x"
        });
        let (status, problem) = send(&app, &body).await;
        assert_eq!(status, 422);
        assert_eq!(
            error_fields(&problem),
            vec!["card_holder", "colour", "description", "return_url", "service"]
        );
        let codes: Vec<_> = problem["errors"].as_array().unwrap().iter().map(|e| e["code"].clone()).collect();
        assert!(codes.contains(&json!("unknown_field")) && codes.contains(&json!("required")));
        let (status, _) = send(&app, &json!([1, 2, 3])).await;
        assert_eq!(status, 422);
        assert_nothing_stored(&app).await;
    }
}

/// Outside production a return URL may be plain http to the developer's own machine (production
/// refuses it: see `ReturnUrl`'s unit tests, as production also refuses the simulator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_http_return_urls_are_allowed_in_development() {
    use crate::helpers::Backend;
    let dev = TestApp::spawn(Backend::Sqlite).await;
    let mut body = payment_body("CRM-3006");
    body["return_url"] = json!("http://127.0.0.1:3000/done");
    assert_eq!(dev.create_payment("k", &body).await.status(), 201);
}
