//! The card-number guard at the API edge: a card number anywhere in a request gets 422
//! `card_data_rejected`, and it is neither stored nor logged. Each test uses a card number made up
//! for it alone, so finding it anywhere can only mean this request leaked it.

use serde_json::{json, Value};

use crate::helpers::{fresh_test_pan, payment_body, TestApp};
use crate::support::logs;

fn spaced(pan: &str) -> String {
    pan.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn assert_refused_and_forgotten(app: &TestApp, response: reqwest::Response, pan: &str) {
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "card_data_rejected");
    assert!(
        !problem.to_string().contains(&pan[..8]),
        "the answer does not echo the number"
    );
    assert_eq!(app.count_rows("payments").await, 0);
    assert_eq!(app.count_rows("idempotency_keys").await, 0);
    assert!(app.simulator_payments().await.is_empty());
    let logged = logs::captured();
    assert!(
        logged.contains("appears to contain a card number"),
        "log capture works (else the checks below would pass vacuously)"
    );
    // Ten consecutive digits: long enough that no timestamp or latency can match by chance.
    for needle in [pan.to_owned(), spaced(pan), pan[3..13].to_owned()] {
        assert!(
            app.columns_containing(&needle).await.is_empty(),
            "stored: {needle}"
        );
        assert!(!logged.contains(&needle), "logged: {needle}");
    }
}

const PLACEMENTS: usize = 8;

/// A create body with `pan` put somewhere a person (or a buggy CRM) might put it.
fn with_pan(placement: usize, pan: &str) -> Value {
    let mut body = payment_body("CRM-5001");
    match placement {
        0 => body["description"] = json!(format!("Card {pan}")),
        1 => body["description"] = json!(format!("card: {}", spaced(pan))),
        2 => {
            body["metadata"] =
                json!({"note": pan.chars().map(String::from).collect::<Vec<_>>().join("-")})
        }
        3 => body["request_ref"] = json!(pan),
        4 => body["amount"] = json!(pan.parse::<u64>().unwrap()),
        5 => body[pan] = json!("as a key"),
        6 => body["card"] = json!({"deep": [{"number": pan}]}),
        _ => body["email"] = json!(format!("{pan}@example.org")),
    }
    body
}

both_stores! {
    async fn a_card_number_in_any_field_is_refused_and_forgotten(app) {
        for placement in 0..PLACEMENTS {
            let pan = fresh_test_pan();
            let response = app.create_payment(&uuid::Uuid::new_v4().to_string(), &with_pan(placement, &pan)).await;
            assert_refused_and_forgotten(&app, response, &pan).await;
        }
    }

    async fn a_card_number_in_malformed_json_or_escaped_is_still_refused(app) {
        let pan = fresh_test_pan();
        let raw = format!("{{\"description\": \"{pan}\", ");
        let response = app
            .client
            .post(app.url("/v1/payments"))
            .bearer_auth(&app.crm_key)
            .header("Idempotency-Key", "malformed-pan")
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_refused_and_forgotten(&app, response, &pan).await;

        let pan = fresh_test_pan();
        let escaped: String = pan.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let raw = serde_json::to_string(&payment_body("CRM-5002")).unwrap()
            .replace("Resident parking permit, zone B", &escaped);
        let response = app
            .client
            .post(app.url("/v1/payments"))
            .bearer_auth(&app.crm_key)
            .header("Idempotency-Key", "escaped-pan")
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_refused_and_forgotten(&app, response, &pan).await;
    }

    async fn a_card_number_in_the_url_or_idempotency_key_is_refused(app) {
        let pan = fresh_test_pan();
        let response = app.get(&format!("/v1/payments?request_ref={pan}"), &app.crm_key).await;
        assert_refused_and_forgotten(&app, response, &pan).await;
        let pan = fresh_test_pan();
        let response = app.get(&format!("/v1/payments/{}", spaced(&pan).replace(' ', "%20")), &app.crm_key).await;
        assert_refused_and_forgotten(&app, response, &pan).await;
        let pan = fresh_test_pan();
        let response = app.create_payment(&pan, &payment_body("CRM-5003")).await;
        assert_refused_and_forgotten(&app, response, &pan).await;
    }

    async fn ordinary_references_pass_the_guard(app) {
        let mut body = payment_body("UPRN-100023336956");
        body["description"] = json!("PCN AB12345678, case 2024-000123, tel 01632 960 001");
        body["metadata"] = json!({"uprn": "100023336956", "order": "20241123-000042"});
        assert_eq!(app.create_payment("ordinary", &body).await.status(), 201);
    }
}
