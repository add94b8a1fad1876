//! One story per behaviour, told for every provider (GOV.UK Pay and Stripe) on every store: a
//! payment end to end with a refund; duplicate and out-of-order messages; bad, stale and future
//! signatures; no card data kept or logged; reconciliation healing a lost webhook. Each provider
//! runs against its own simulator over real HTTP, through the same handlers and state machine.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    contains_standalone, payment_body, without_timing, Backend, TestApp, WEBHOOK_SECRET,
};
use crate::support::logs;

/// The provider a story is told for, and how to steer its simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GovukPay,
    Stripe,
}

/// The simulated Stripe account's signing secret (see `Settings::development_default`).
const STRIPE_SECRET: &str = "whsec_counterfoil_simulator_secret";

impl Provider {
    fn service(self) -> &'static str {
        match self {
            Self::GovukPay => "demo",
            Self::Stripe => "demo-stripe",
        }
    }

    fn account(self) -> &'static str {
        match self {
            Self::GovukPay => "sandbox",
            Self::Stripe => "stripe-sandbox",
        }
    }

    fn webhook_path(self) -> String {
        match self {
            Self::GovukPay => format!("/v1/webhooks/govuk-pay/{}", self.account()),
            Self::Stripe => format!("/v1/webhooks/stripe/{}", self.account()),
        }
    }

    /// Tells the simulator how to deliver its messages (`deliver`, `drop`, `duplicate`, `hold`).
    async fn messages(self, app: &TestApp, mode: &str) {
        self.control(app, json!({"mode": mode})).await;
    }

    async fn control(self, app: &TestApp, body: Value) {
        let path = match self {
            Self::GovukPay => "/sandbox/govuk-pay/_control/webhooks",
            Self::Stripe => "/sandbox/stripe/_control/events",
        };
        let response = app
            .client
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    async fn release(self, app: &TestApp, reverse: bool, duplicate: bool) {
        let path = match self {
            Self::GovukPay => "/sandbox/govuk-pay/_control/webhooks/release",
            Self::Stripe => "/sandbox/stripe/_control/events/release",
        };
        let response = app
            .client
            .post(app.url(path))
            .json(&json!({"reverse": reverse, "duplicate": duplicate}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// A signed message saying the payment succeeded, as this provider writes it.
    fn success_message(self, message_id: &str, provider_payment_id: &str, ours: &str) -> String {
        match self {
            Self::GovukPay => crate::helpers::govuk_message(
                message_id,
                provider_payment_id,
                "card_payment_succeeded",
                "success",
                None,
            )
            .to_string(),
            Self::Stripe => json!({
                "id": message_id, "object": "event", "type": "checkout.session.completed",
                "created": chrono::Utc::now().timestamp(), "livemode": false,
                "data": {"object": {"id": provider_payment_id, "object": "checkout.session",
                    "status": "complete", "payment_status": "paid", "client_reference_id": ours,
                    "amount_total": 2500, "currency": "gbp"}}
            })
            .to_string(),
        }
    }

    /// The signature header for `body`, signed with `secret` at `at` (Stripe signs a time).
    fn sign(self, body: &str, secret: &str, at: i64) -> (&'static str, String) {
        match self {
            Self::GovukPay => (
                "Pay-Signature",
                counterfoil::providers::govuk_pay::sign_webhook(secret, body.as_bytes()),
            ),
            Self::Stripe => (
                "Stripe-Signature",
                counterfoil::providers::stripe::sign_webhook(secret, at, body.as_bytes()),
            ),
        }
    }

    fn secret(self) -> &'static str {
        match self {
            Self::GovukPay => WEBHOOK_SECRET,
            Self::Stripe => STRIPE_SECRET,
        }
    }

    async fn send(self, app: &TestApp, body: &str, signature: Option<(&str, String)>) -> u16 {
        let mut request = app
            .client
            .post(app.url(&self.webhook_path()))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some((name, value)) = signature {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

async fn app_for(backend: Backend, refresh_on_read: bool) -> TestApp {
    TestApp::spawn_with(backend, move |s| {
        s.payments.refresh_on_read = refresh_on_read
    })
    .await
}

async fn create(app: &TestApp, provider: Provider, request_ref: &str) -> Value {
    let mut body = payment_body(request_ref);
    body["service"] = json!(provider.service());
    let response = app
        .create_payment(&format!("story-{request_ref}"), &body)
        .await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.unwrap();
    assert_eq!(
        payment["provider"],
        json!(match provider {
            Provider::GovukPay => "govuk_pay",
            Provider::Stripe => "stripe",
        })
    );
    payment
}

/// The stored status, without asking the provider.
async fn stored_status(app: &TestApp, id: &str) -> String {
    app.get_payment(id).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn wait_stored(app: &TestApp, id: &str, status: &str) {
    for _ in 0..200 {
        if stored_status(app, id).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "payment {id} is {} not {status}",
        stored_status(app, id).await
    );
}

macro_rules! each_provider {
    ($(async fn $name:ident($provider:ident, $backend:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($provider: Provider, $backend: Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn govuk_pay_on_sqlite() { run(Provider::GovukPay, Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn govuk_pay_on_postgres() { run(Provider::GovukPay, Backend::Postgres).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn stripe_on_sqlite() { run(Provider::Stripe, Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn stripe_on_postgres() { run(Provider::Stripe, Backend::Postgres).await }
            }
        )*
    };
}

each_provider! {
    async fn a_payment_is_made_notified_and_refunded_by_webhook_alone(provider, backend) {
        // No refresh on read: only the provider's signed messages can move the payment.
        let app = app_for(backend, false).await;
        let p = create(&app, provider, "STORY-E2E").await;
        let id = p["id"].as_str().unwrap();
        assert_eq!(p["status"], "created");
        let next = url::Url::parse(p["next_url"].as_str().unwrap()).unwrap();
        assert_eq!(next.host_str(), Some("127.0.0.1"), "the page is on the allowed host");
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        wait_stored(&app, id, "succeeded").await;
        let outbox = app.outbox_for(id).await;
        assert!(outbox.iter().any(|kind| kind == "payment.succeeded"), "{outbox:?}");

        let refund = app.client.post(app.url(&format!("/v1/payments/{id}/refunds")))
            .bearer_auth(&app.finance_key)
            .header("Idempotency-Key", "story-refund")
            .json(&json!({"amount": 700, "reason": "Permit cancelled"}))
            .send().await.unwrap();
        assert_eq!(refund.status(), 201);
        let refund: Value = refund.json().await.unwrap();
        assert!(refund["provider_refund_id"].is_string());
        // The same request again is the same refund, at our end and the provider's.
        let again: Value = app.client.post(app.url(&format!("/v1/payments/{id}/refunds")))
            .bearer_auth(&app.finance_key)
            .header("Idempotency-Key", "story-refund")
            .json(&json!({"amount": 700, "reason": "Permit cancelled"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(again["id"], refund["id"]);
        for _ in 0..200 {
            if app.get_payment(id).await["refunded_amount"] == 700 { break; }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(app.get_payment(id).await["refunded_amount"], 700);
        assert_eq!(app.count_rows("refunds").await, 1);
    }

    async fn duplicated_and_reordered_messages_never_move_a_payment_back(provider, backend) {
        let app = app_for(backend, false).await;
        provider.messages(&app, "hold").await;
        let p = create(&app, provider, "STORY-ORDER").await;
        let id = p["id"].as_str().unwrap();
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        // Everything at once, newest first, each twice.
        provider.release(&app, true, true).await;
        wait_stored(&app, id, "succeeded").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stored_status(&app, id).await, "succeeded");
        let timeline = app.timeline(id).await;
        let succeeded = timeline.iter().filter(|(_, to, _)| *to == "succeeded").count();
        assert_eq!(succeeded, 1, "{timeline:?}");
        // A hand-made copy of success, sent again, is a duplicate; a late "created" is old news.
        let provider_id = app.get_payment(id).await["provider_payment_id"].as_str().unwrap().to_owned();
        let message = provider.success_message("story-dup-1", &provider_id, id);
        let now = chrono::Utc::now().timestamp();
        assert_eq!(provider.send(&app, &message, Some(provider.sign(&message, provider.secret(), now))).await, 200);
        assert_eq!(provider.send(&app, &message, Some(provider.sign(&message, provider.secret(), now))).await, 200);
        assert_eq!(stored_status(&app, id).await, "succeeded");
    }

    async fn bad_stale_and_future_signatures_are_refused_and_nothing_is_kept(provider, backend) {
        let app = app_for(backend, false).await;
        provider.messages(&app, "drop").await;
        let p = create(&app, provider, "STORY-SIG").await;
        let id = p["id"].as_str().unwrap();
        let provider_id = p["provider_payment_id"].as_str().unwrap();
        let message = provider.success_message("story-sig-1", provider_id, id);
        let now = chrono::Utc::now().timestamp();
        let secret = provider.secret();
        let (name, good) = provider.sign(&message, secret, now);
        let tampered = message.replace("2500", "2501");
        let mut refused = vec![
            ("unsigned", provider.send(&app, &message, None).await),
            ("another secret", provider.send(&app, &message, Some(provider.sign(&message, "whsec_someone_else", now))).await),
            ("tampered body", provider.send(&app, &tampered, Some((name, good.clone()))).await),
            ("garbage", provider.send(&app, &message, Some((name, "t=x,v1=zz".into()))).await),
        ];
        if provider == Provider::Stripe {
            // Stripe signs a time: more than 300 s either way is refused, however good the MAC.
            // (A few seconds' margin: the server reads its clock a moment after ours, maybe in the
            // next second; the exact boundary is a unit test of the verifier.)
            refused.push(("stale", provider.send(&app, &message, Some(provider.sign(&message, secret, now - 305))).await));
            refused.push(("future", provider.send(&app, &message, Some(provider.sign(&message, secret, now + 305))).await));
        }
        for (what, status) in &refused {
            assert_eq!(*status, 401, "{what}");
        }
        assert_eq!(app.count_rows("webhook_receipts").await, 0);
        assert_eq!(stored_status(&app, id).await, "created");
        let refused_count = format!(
            r#"counterfoil_webhooks_total{{provider="{}",account="{}",outcome="bad_signature"}}"#,
            match provider { Provider::GovukPay => "govuk_pay", Provider::Stripe => "stripe" },
            provider.account()
        );
        assert_eq!(app.metric(&refused_count).await as usize, refused.len());
        // A signature problem is not a bearer-key challenge.
        let unsigned = app.client.post(app.url(&provider.webhook_path())).body(message.clone()).send().await.unwrap();
        assert_eq!(unsigned.status(), 401);
        assert!(!unsigned.headers().contains_key("www-authenticate"));

        // Within the tolerance, with the good signature among others (rotation), it is applied.
        let signed_at = if provider == Provider::Stripe { now - 250 } else { now };
        let (name, value) = provider.sign(&message, secret, signed_at);
        let value = if provider == Provider::Stripe {
            let other = provider.sign(&message, "whsec_previous_secret", signed_at).1;
            format!("{},{}", other, value.split(',').nth(1).unwrap())
        } else {
            value
        };
        assert_eq!(provider.send(&app, &message, Some((name, value))).await, 200);
        assert_eq!(stored_status(&app, id).await, "succeeded");
    }

    async fn no_card_data_from_any_message_is_kept_or_logged(provider, backend) {
        let app = app_for(backend, true).await;
        // Only this test's time in the log: fewer unrelated numbers to match short values.
        let log_mark = logs::mark();
        let tag: String = (0..8).map(|_| (b'a' + rand::random::<u8>() % 26) as char).collect();
        let last4 = format!("{}", 5000 + rand::random::<u16>() % 5000);
        let fingerprint = format!("Fp{tag}Zq");
        let name = format!("Ottoline Quillfeather-{tag}");
        let address = format!("{} Quillfeather Crescent {tag}", 100 + rand::random::<u16>() % 800);
        let email = format!("ottoline.{tag}@quillfeather.example");
        match provider {
            Provider::GovukPay => provider.control(&app, json!({
                "card_details": {"last_digits_card_number": last4, "first_digits_card_number": "424242",
                    "cardholder_name": name, "expiry_date": "11/39", "card_brand": "Visa",
                    "billing_address": {"line1": address, "postcode": "ZX9 9QY", "city": "Quill", "country": "GB"}},
                "email": email})).await,
            Provider::Stripe => provider.control(&app, json!({
                "card": {"brand": "visa", "last4": last4, "exp_month": 11, "exp_year": 2039,
                         "fingerprint": fingerprint, "iin": "424242", "country": "GB"},
                "billing_details": {"name": name, "email": email, "address": {"line1": address, "postal_code": "ZX9 9QY"}}})).await,
        }
        let p = create(&app, provider, "STORY-PROOF").await;
        let id = p["id"].as_str().unwrap();
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        app.wait_for_status(id, "succeeded").await;
        // A refund: Stripe's charge.refunded carries the whole Charge again.
        let refund = app.client.post(app.url(&format!("/v1/payments/{id}/refunds")))
            .bearer_auth(&app.finance_key).header("Idempotency-Key", "proof-refund")
            .json(&json!({"amount": 100, "reason": "Proof"})).send().await.unwrap();
        assert_eq!(refund.status(), 201);
        // Let every message arrive.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(app.count_rows("webhook_receipts").await >= 2, "the messages arrived");

        let logged = without_timing(&logs::captured_since(log_mark));
        let mut values = vec![("last four", last4.as_str()), ("cardholder", name.as_str()),
                              ("address", address.as_str()), ("email", email.as_str())];
        if provider == Provider::Stripe {
            values.push(("card fingerprint", fingerprint.as_str()));
        }
        for (what, value) in values {
            let stored = app.columns_containing(value).await;
            assert!(stored.is_empty(), "the {what} was stored in {stored:?}");
            assert!(!logged.lines().any(|l| contains_standalone(l, value)), "the {what} was logged");
        }
    }

    async fn reconciliation_heals_a_payment_whose_messages_were_lost(provider, backend) {
        let app = app_for(backend, false).await;
        provider.messages(&app, "drop").await;
        let p = create(&app, provider, "STORY-REC").await;
        let id = p["id"].as_str().unwrap();
        app.press(p["next_url"].as_str().unwrap(), "pay").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stored_status(&app, id).await, "created", "nothing told us");
        let now = chrono::Utc::now();
        let response = app.client.post(app.url("/v1/reconciliations"))
            .bearer_auth(&app.finance_key)
            .json(&json!({"account": provider.account(),
                          "from": (now - chrono::Duration::minutes(30)).to_rfc3339(),
                          "to": (now + chrono::Duration::minutes(1)).to_rfc3339()}))
            .send().await.unwrap();
        assert_eq!(response.status(), 201);
        let run: Value = response.json().await.unwrap();
        assert_eq!(run["status"], "completed", "{run}");
        let found = run["discrepancies"].as_array().unwrap();
        assert!(found.iter().any(|d| d["payment_id"] == json!(id) && d["kind"] == "status_mismatch" && d["healed"] == true), "{run}");
        assert_eq!(stored_status(&app, id).await, "succeeded");
        assert_eq!(run["provider_payments"], 1);
    }
}

/// Stripe keeps an Idempotency-Key's answer, so a create whose answer was lost is simply asked
/// again with the same key: one Checkout Session, and the CRM gets its payment at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_create_whose_answer_was_lost_is_retried_with_the_same_key() {
    let app = app_for(Backend::Sqlite, false).await;
    Provider::Stripe
        .control(&app, json!({"lose_create_answers": 2}))
        .await;
    let p = create(&app, Provider::Stripe, "STORY-LOST").await;
    assert_eq!(p["create_outcome"], "confirmed");
    let sessions: Value = app
        .client
        .get(app.url("/sandbox/stripe/v1/checkout/sessions?limit=100"))
        .bearer_auth("sk_test_counterfoil_simulator_key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["data"].as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions["data"][0]["id"], p["provider_payment_id"]);
}

/// A payment page on a host the account does not allow is never handed to the CRM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_page_on_an_unexpected_host_is_refused() {
    for provider in [Provider::GovukPay, Provider::Stripe] {
        let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
            s.accounts
                .get_mut(provider.account())
                .unwrap()
                .redirect_hosts = vec![
                "checkout.stripe.com".into(),
                "card.payments.service.gov.uk".into(),
            ];
        })
        .await;
        let mut body = payment_body("STORY-HOST");
        body["service"] = json!(provider.service());
        let response = app.create_payment("story-host", &body).await;
        assert_eq!(response.status(), 502, "{provider:?}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "provider_unavailable");
        assert!(logs::captured().contains("not on an allowed host"));
    }
}

each_provider! {
    async fn a_payment_not_yet_made_can_be_cancelled(provider, backend) {
        let app = app_for(backend, true).await;
        let p = create(&app, provider, "STORY-CANCEL").await;
        let id = p["id"].as_str().unwrap();
        let cancelled = app.post(&format!("/v1/payments/{id}/cancel"), &app.crm_key).await;
        assert_eq!(cancelled.status(), 200);
        let cancelled: Value = cancelled.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(cancelled["next_url"], Value::Null);
        // The provider's page no longer takes a payment, and its late news changes nothing.
        let page = app.client.get(p["next_url"].as_str().unwrap()).send().await.unwrap();
        assert!(!page.text().await.unwrap().contains("Pay (simulated success)"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stored_status(&app, id).await, "cancelled");
        // Once final, it cannot be cancelled again differently: the same answer.
        assert_eq!(app.post(&format!("/v1/payments/{id}/cancel"), &app.crm_key).await.status(), 200);
    }
}

/// The Stripe simulator answers mistakes the way Stripe does.
#[tokio::test]
async fn the_stripe_simulator_speaks_stripes_errors_and_replays_keys() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let post = |form: &'static str, key: &'static str| {
        app.client
            .post(app.url("/sandbox/stripe/v1/checkout/sessions"))
            .bearer_auth("sk_test_counterfoil_simulator_key")
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let base = "mode=payment&line_items[0][price_data][currency]=gbp&line_items[0][quantity]=1\
                &line_items[0][price_data][product_data][name]=Permit&success_url=https://x.example/ok";
    let too_small = post(
        Box::leak(format!("{base}&line_items[0][price_data][unit_amount]=10").into_boxed_str()),
        "k1",
    )
    .await
    .unwrap();
    assert_eq!(too_small.status(), 400);
    let error: Value = too_small.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(
        error["error"]["param"],
        "line_items[0][price_data][unit_amount]"
    );
    let good =
        Box::leak(format!("{base}&line_items[0][price_data][unit_amount]=500").into_boxed_str());
    let first: Value = post(good, "k2").await.unwrap().json().await.unwrap();
    let replay = post(good, "k2").await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    let other =
        Box::leak(format!("{base}&line_items[0][price_data][unit_amount]=600").into_boxed_str());
    let reused: Value = post(other, "k2").await.unwrap().json().await.unwrap();
    assert_eq!(reused["error"]["type"], "idempotency_error");
    let unauthorised = app
        .client
        .get(app.url("/sandbox/stripe/v1/checkout/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
}
