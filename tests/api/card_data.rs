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

/// Message ids with card-number-like digit runs, the ways a provider's opaque ids might hold one.
fn digit_heavy_ids<R: rand::Rng>(rng: &mut R) -> Vec<String> {
    use crate::helpers::fresh_pan;
    let pan = |rng: &mut R| {
        let (prefix, len) = [("4", 16), ("51", 16), ("37", 15), ("6011", 16)][rng.gen_range(0..4)];
        fresh_pan(rng, prefix, len)
    };
    vec![
        pan(rng),
        format!("msg-{}", pan(rng)),
        format!("{}-{}", pan(rng), pan(rng)),
        spaced(&pan(rng)),
        format!("evt_{}x", pan(rng)),
        format!("{}1227", pan(rng)),
        format!("a{}b{}", pan(rng), pan(rng)),
        pan(rng)
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join("-"),
    ]
}

both_stores! {
    async fn paid_webhooks_with_digit_heavy_ids_are_all_recorded(app) {
        use rand::SeedableRng;
        let seed: u64 = rand::Rng::gen(&mut rand::thread_rng());
        // Shown with a failure, so the texts that failed can be made again.
        eprintln!("why_table seed: {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let ids = digit_heavy_ids(&mut rng);
        for (i, message_id) in ids.iter().enumerate() {
            let payment = app.new_payment(&format!("CRM-DIGITS-{i}")).await;
            let provider_id = payment["provider_payment_id"].as_str().unwrap();
            let mut message = crate::helpers::govuk_message(message_id, provider_id, "card_payment_captured", "success", None);
            // The failure code a provider sends may hold digits too: withheld, the rest applied.
            message["resource"]["state"]["code"] = json!(message_id);
            let body = message.to_string();
            let answer = app.send_webhook("sandbox", &body, Some(crate::helpers::WEBHOOK_SECRET)).await;
            assert_eq!(answer.status(), 200, "message id {message_id:?}");
            let paid = app.get_payment(payment["id"].as_str().unwrap()).await;
            assert_eq!(paid["status"], "succeeded", "message id {message_id:?}");
            // The provider's retry of the same message is recognised by its hash: no second effect.
            let again = app.send_webhook("sandbox", &body, Some(crate::helpers::WEBHOOK_SECRET)).await;
            assert_eq!(again.status(), 200);
            let outcome: Value = again.json().await.unwrap();
            assert_eq!(outcome["outcome"], "duplicate", "message id {message_id:?}");
        }
        // None of those ids was kept as written.
        for message_id in &ids {
            let digits: String = message_id.chars().filter(char::is_ascii_digit).collect();
            assert!(app.columns_containing(&digits[..13]).await.is_empty(), "{message_id}");
        }
    }

    async fn a_webhook_naming_a_card_like_payment_id_is_answered_and_applies_nothing(app) {
        let pan = fresh_test_pan();
        let message = crate::helpers::govuk_message("msg-card-like-payment", &pan, "card_payment_captured", "success", None);
        let answer = app.send_webhook("sandbox", &message.to_string(), Some(crate::helpers::WEBHOOK_SECRET)).await;
        assert_eq!(answer.status(), 200, "the provider is not made to retry what can never apply");
        assert!(app.columns_containing(&pan).await.is_empty());
        assert!(app.columns_containing(&pan[..13]).await.is_empty());
    }
}

/// The shapes councils wrote that were refused one time in five, generated afresh.
/// Fails naming what was sent and the whole answer, so a refusal says which rule made it.
async fn expect_status(response: reqwest::Response, status: u16, what: &str) {
    let got = response.status();
    if got != status {
        panic!(
            "{what}: {got} {}",
            response.text().await.unwrap_or_default()
        );
    }
}

fn why_table(rng: &mut impl rand::Rng) -> Vec<String> {
    let d = |rng: &mut dyn rand::RngCore, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + (rng.next_u32() % 10) as u8))
            .collect()
    };
    let amounts = |rng: &mut dyn rand::RngCore| -> String {
        (0..8)
            .map(|_| format!("{}.{:02}", 100 + rng.next_u32() % 900, rng.next_u32() % 100))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let date = |rng: &mut dyn rand::RngCore| {
        format!(
            "{:02}/{:02}/2026",
            1 + rng.next_u32() % 28,
            1 + rng.next_u32() % 12
        )
    };
    vec![
        format!("Bulky waste collection UPRN {}, {}", d(rng, 12), d(rng, 12)),
        amounts(rng),
        format!("Invoice {} / {}", d(rng, 8), d(rng, 8)),
        format!("NNDR {} / {}", d(rng, 10), d(rng, 6)),
        format!("Resident parking permit {} - {}", date(rng), date(rng)),
        format!("Contact 01632 {}, 07700 {}", d(rng, 6), d(rng, 6)),
        format!("CTAX-{}-2026", d(rng, 10)),
        format!("2025-{}-{}", d(rng, 6), d(rng, 5)),
    ]
}

both_stores! {
    async fn what_councils_write_is_accepted_as_description_metadata_and_refund_reason(app) {
        use rand::SeedableRng;
        let seed: u64 = rand::Rng::gen(&mut rand::thread_rng());
        // Shown with a failure, so the texts that failed can be made again.
        eprintln!("why_table seed: {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let paid = app.new_payment("CRM-WHY-PAID").await;
        app.press(paid["next_url"].as_str().unwrap(), "pay").await;
        let paid = app.wait_for_status(paid["id"].as_str().unwrap(), "succeeded").await;
        for round in 0..5 {
            for (i, text) in why_table(&mut rng).into_iter().enumerate() {
                let mut body = payment_body(&format!("CRM-WHY-{round}-{i}"));
                body["description"] = json!(text);
                body["metadata"] = json!({"note": text});
                let created = app.create_payment(&uuid::Uuid::new_v4().to_string(), &body).await;
                expect_status(created, 201, &format!("description {text:?}")).await;
                if i == 6 {
                    body["request_ref"] = json!(text);
                    let created = app.create_payment(&uuid::Uuid::new_v4().to_string(), &body).await;
                    expect_status(created, 201, &format!("request_ref {text:?}")).await;
                }
                let refund = app
                    .client
                    .post(app.url(&format!("/v1/payments/{}/refunds", paid["id"].as_str().unwrap())))
                    .bearer_auth(&app.finance_key)
                    .header("Idempotency-Key", uuid::Uuid::new_v4().simple().to_string())
                    .json(&json!({"amount": 1, "reason": text}))
                    .send()
                    .await
                    .unwrap();
                expect_status(refund, 201, &format!("refund reason {text:?}")).await;
            }
        }
    }
}
