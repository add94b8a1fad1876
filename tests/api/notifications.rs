//! Telling the CRM: Standard Webhooks signatures (checked by an independent implementation and
//! the specification's test vector), retries on schedule driven by a manual clock, Retry-After,
//! dead notifications and the admin's retry.

use std::sync::Arc;
use std::time::Duration;

use counterfoil::config::{SecretSource, Settings};
use serde_json::{json, Value};

use crate::helpers::{govuk_message, ManualClock, TestApp, WEBHOOK_SECRET};
use crate::support::crm::{Answer, Crm};

/// The specification's example secret, and a second one for rotations.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const NEXT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn tell(crm: &Crm, secrets: &[&str]) -> impl FnOnce(&mut Settings) {
    let url = crm.url.clone();
    let secrets: Vec<_> = secrets
        .iter()
        .map(|s| SecretSource::Value((*s).into()))
        .collect();
    move |s: &mut Settings| {
        s.notifications.default_url = Some(url);
        s.notifications.secrets = secrets;
        s.notifications.timeout_seconds = 1;
        s.notifications.lease_seconds = 5;
        s.payments.refresh_on_read = false;
    }
}

/// A payment made to succeed by a signed provider webhook, which queues its notification.
async fn succeeded_payment(app: &TestApp, request_ref: &str) -> String {
    let p = app.new_payment(request_ref).await;
    let provider_id = p["provider_payment_id"].as_str().unwrap();
    let message = govuk_message(
        &format!("m-{request_ref}"),
        provider_id,
        "card_payment_succeeded",
        "success",
        None,
    );
    let response = app
        .send_webhook("sandbox", &message.to_string(), Some(WEBHOOK_SECRET))
        .await;
    assert_eq!(response.status(), 200);
    p["id"].as_str().unwrap().to_owned()
}

fn oracle(secret: &str) -> standardwebhooks::Webhook {
    standardwebhooks::Webhook::new(secret).unwrap()
}

/// Whether any signature in the header is the one the independent implementation computes.
fn signed_by(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected = oracle(secret).sign(id, timestamp, body).unwrap();
    header.split(' ').any(|s| s == expected)
}

async fn notification(app: &TestApp, status: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/v1/notifications?status={status}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_independent_implementation_agrees_on_the_published_test_vector() {
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    let expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    assert_eq!(oracle(SECRET).sign(id, 1649367553, body).unwrap(), expected);
    let ours = counterfoil::domain::standard_webhooks::secret_key(SECRET).unwrap();
    assert_eq!(
        counterfoil::domain::standard_webhooks::sign(&ours, id, 1649367553, body),
        expected
    );
}

each_backend! {
    async fn notifications_are_signed_per_standard_webhooks(backend) {
        let crm = Crm::start().await;
        let app = TestApp::spawn_with(backend, tell(&crm, &[SECRET, NEXT_SECRET])).await;
        let id = succeeded_payment(&app, "CRM-9001").await;
        let round = app.services.notifications.run_once().await.unwrap();
        assert_eq!(round.delivered, 1);

        let received = crm.received();
        assert_eq!(received.len(), 1);
        let got = &received[0];
        assert!(got.id.starts_with("evt_"));
        // Verified in full (tolerance included) by the independent implementation, per secret.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("webhook-id", got.id.parse().unwrap());
        headers.insert("webhook-timestamp", got.timestamp.to_string().parse().unwrap());
        headers.insert("webhook-signature", got.signature.parse().unwrap());
        assert_eq!(got.signature.split(' ').count(), 2, "one signature per secret during a rotation");
        oracle(SECRET).verify(&got.body, &headers).expect("verifies with the current secret");
        oracle(NEXT_SECRET).verify(&got.body, &headers).expect("verifies with the next secret");
        let mut tampered = got.body.clone();
        tampered[10] ^= 1;
        assert!(oracle(SECRET).verify(&tampered, &headers).is_err(), "a tampered body is rejected");
        assert!(oracle("whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IHNlY3JldCE=").verify(&got.body, &headers).is_err());

        let body: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(body["type"], "payment.succeeded");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(body["data"]["id"], json!(id));
        assert_eq!(body["data"]["status"], "succeeded");
        let text = String::from_utf8_lossy(&got.body);
        assert!(!text.contains("whsec_") && !text.contains("api_test_"), "no secrets in notifications");

        let delivered = notification(&app, "delivered").await;
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0]["id"], json!(got.id));
        assert_eq!(delivered[0]["attempts"], 1);
        // Delivered once: a further round sends nothing.
        assert_eq!(app.services.notifications.run_once().await.unwrap().delivered, 0);
    }

    async fn failures_are_retried_on_schedule_until_delivered(backend) {
        let crm = Crm::start().await;
        let clock = ManualClock::new();
        let app = TestApp::spawn_with_clock(backend, tell(&crm, &[SECRET]), clock.clone()).await;
        succeeded_payment(&app, "CRM-9002").await;
        crm.plan([Answer::Status(500), Answer::Status(502), Answer::Slow(Duration::from_secs(3))]);
        let notifications = &app.services.notifications;
        let round = || async { notifications.run_once().await.unwrap() };

        assert_eq!(round().await.retrying, 1, "attempt 1: 500");
        assert_eq!(round().await.retrying, 0, "not due again for 5 s");
        clock.advance(Duration::from_secs(4));
        assert_eq!(round().await.retrying, 0, "still not due");
        clock.advance(Duration::from_millis(1600));
        assert_eq!(round().await.retrying, 1, "attempt 2 after 5 s (+ jitter): 502");
        clock.advance(Duration::from_secs(299));
        assert_eq!(round().await.retrying, 0, "the next wait is 5 minutes");
        clock.advance(Duration::from_secs(32));
        assert_eq!(round().await.retrying, 1, "attempt 3: too slow, past our 1 s timeout");
        let pending = notification(&app, "pending").await;
        assert_eq!(pending[0]["last_error"], "timed out");
        clock.advance(Duration::from_secs(1800 + 181));
        assert_eq!(round().await.delivered, 1, "attempt 4 after 30 minutes: the CRM is back");

        let received = crm.received();
        assert_eq!(received.len(), 4);
        let answers: Vec<u16> = received.iter().map(|r| r.answered).collect();
        assert_eq!(answers, vec![500, 502, 200, 200], "the third came too late to count");
        assert!(received.iter().all(|r| r.id == received[0].id), "the same webhook-id every time");
        assert!(received.windows(2).all(|w| w[0].timestamp < w[1].timestamp), "a fresh timestamp each attempt");
        for r in &received {
            assert!(signed_by(SECRET, &r.id, r.timestamp, &r.body, &r.signature));
        }
        assert_eq!(notification(&app, "delivered").await[0]["attempts"], 4);
    }

    async fn retry_after_is_honoured_and_a_down_crm_is_retried(backend) {
        let crm = Crm::start().await;
        let clock = ManualClock::new();
        let app = TestApp::spawn_with_clock(backend, tell(&crm, &[SECRET]), clock.clone()).await;
        succeeded_payment(&app, "CRM-9003").await;
        crm.plan([Answer::RetryAfter(503, 120)]);
        let notifications = &app.services.notifications;
        assert_eq!(notifications.run_once().await.unwrap().retrying, 1);
        clock.advance(Duration::from_secs(10));
        assert_eq!(notifications.run_once().await.unwrap().retrying, 0, "Retry-After: 120, not the 5 s schedule");
        clock.advance(Duration::from_secs(111));
        assert_eq!(notifications.run_once().await.unwrap().delivered, 1);
    }

    async fn the_last_failure_makes_it_dead_and_an_admin_can_retry_it(backend) {
        let crm = Crm::start().await;
        let clock = ManualClock::new();
        let mut adjust = Some(tell(&crm, &[SECRET]));
        let app = TestApp::spawn_with_clock(backend, move |s| {
            (adjust.take().unwrap())(s);
            s.notifications.retry_schedule_seconds = vec![1, 1];
            // Nothing listens here: the CRM is down.
            s.notifications.default_url =
                Some(format!("http://127.0.0.1:{}/down", crate::helpers::closed_port()));
        }, clock.clone()).await;
        let id = succeeded_payment(&app, "CRM-9004").await;
        let notifications = &app.services.notifications;
        for _ in 0..2 {
            assert_eq!(notifications.run_once().await.unwrap().retrying, 1);
            clock.advance(Duration::from_secs(2));
        }
        assert_eq!(notifications.run_once().await.unwrap().dead, 1, "third attempt, the last");
        clock.advance(Duration::from_secs(3600));
        assert_eq!(notifications.run_once().await.unwrap(), Default::default(), "dead stays dead");

        let dead = notification(&app, "dead").await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0]["payment_id"], json!(id));
        assert_eq!(dead[0]["last_error"], "could not connect");
        let notification_id = dead[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/v1/notifications", &app.crm_key).await.status(), 403);
        assert_eq!(app.post(&format!("/v1/notifications/{notification_id}/retry"), &app.crm_key).await.status(), 403);
        assert_eq!(app.post("/v1/notifications/evt_nope/retry", &app.admin_key).await.status(), 404);
        let retried = app.post(&format!("/v1/notifications/{notification_id}/retry"), &app.admin_key).await;
        assert_eq!(retried.status(), 202);
        assert_eq!(notification(&app, "pending").await.len(), 1);
        // (Still down, so it goes round again: one more attempt is made at once.)
        assert_eq!(notifications.run_once().await.unwrap().retrying, 1);
        let _ = Arc::clone(&clock);
    }
}
