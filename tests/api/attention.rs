//! "Needs attention" over HTTP, as a browser uses it: each kind of trouble made to happen through
//! the simulators (a payment nobody finished, a create whose answer was lost, a CRM that keeps
//! failing, a payment only the provider has, a refund the provider refused) is listed with what
//! happened and what was tried; its action settles it, in the person's name in the audit trail;
//! a viewer sees the list and may do nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::console::{hidden, page, paid, post_form, signed_in};
use crate::helpers::{payment_body, ManualClock, TestApp};
use crate::support::crm::{Answer, Crm};

const SIM_KEY: &str = "api_test_counterfoil_simulator_key";

/// The path of the first form or link in `html` whose address contains `needle`.
fn action_path(html: &str, needle: &str) -> String {
    html.split(['"'])
        .find(|part| part.starts_with("/console/attention/") && part.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} action in:\n{html}"))
        .to_owned()
}

each_backend! {
    async fn every_kind_of_trouble_is_listed_and_settled_by_its_action_in_the_persons_name(backend) {
        let crm = Crm::start().await;
        let clock = ManualClock::new();
        let url = crm.url.clone();
        let app = TestApp::spawn_with_clock(backend, move |s| {
            s.notifications.default_url = Some(url);
            s.notifications.secrets = vec![counterfoil::config::SecretSource::Value(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            )];
            s.notifications.retry_schedule_seconds = vec![1];
            s.notifications.timeout_seconds = 1;
            s.payments.refresh_on_read = false;
        }, clock.clone()).await;

        // A payment only the provider has (taken at the counter): a discrepancy no run can heal.
        let till = app.client.post(app.url("/sandbox/govuk-pay/v1/payments")).bearer_auth(SIM_KEY)
            .json(&json!({"amount": 700, "reference": "COUNTER-TILL", "description": "Paid at the counter",
                          "return_url": "https://council.example.gov.uk/x"}))
            .send().await.unwrap();
        assert_eq!(till.status(), 201);
        let now = chrono::Utc::now();
        let actor = counterfoil::domain::Actor::CommandLine("test");
        let run = app.services.reconciliation
            .run(&actor, "sandbox", now - chrono::Duration::minutes(5), now + chrono::Duration::minutes(5))
            .await.unwrap();
        assert_eq!(run.discrepancies.len(), 1);

        // A payment the citizen never finished.
        let stuck = app.new_payment("CRM-STUCK-1").await;
        // A CRM that keeps failing: the notification of a paid payment gives up.
        let paid_id = paid(&app, "CRM-DEAD-1").await;
        crm.plan([Answer::Status(500), Answer::Status(500)]);
        let notifications = &app.services.notifications;
        assert_eq!(notifications.run_once().await.unwrap().retrying, 1);
        clock.advance(Duration::from_secs(2));
        assert_eq!(notifications.run_once().await.unwrap().dead, 1);
        // A refund the provider refused.
        app.simulator_faults(json!({"refund_refusals": 1})).await;
        let refused = app.client.post(app.url(&format!("/v1/payments/{paid_id}/refunds")))
            .bearer_auth(&app.finance_key).header("Idempotency-Key", "refused-1")
            .json(&json!({"amount": 300, "reason": "Permit cancelled"})).send().await.unwrap();
        assert_eq!(refused.status(), 502, "{}", refused.text().await.unwrap());
        // A create whose answer was lost (the provider answers after our 3 s timeout).
        app.simulator_faults(json!({"create_delay_ms": 4000, "create_delays": 1})).await;
        let lost = app.create_payment("lost-1", &payment_body("CRM-LOST-1")).await;
        assert_eq!(lost.status(), 502);

        // Three hours on, the payment nobody finished is stuck too.
        clock.advance(Duration::from_secs(3 * 3600));
        let fiona = signed_in(&app, "test-refunder").await;
        let (status, queue) = page(&fiona, &app, "/console/attention").await;
        assert_eq!(status, 200);
        for said in [
            "A £25.00 payment is still created.",
            "The answer to creating a £25.00 payment was lost",
            "The CRM was not told of payment.succeeded after 2 attempts (last: HTTP 500).",
            "Only the provider has it: we hold nothing, the provider holds created.",
            "A £3.00 refund failed at the provider (P0941).",
            "Delivery was tried 2 times with growing waits, then given up.",
            "The provider has not been asked yet.",
        ] {
            assert!(queue.contains(said), "{said} missing from:\n{queue}");
        }
        let (_, dashboard) = page(&fiona, &app, "/console").await;
        for kind in ["stuck_payment", "unknown_create", "dead_notification", "discrepancy", "failed_refund"] {
            assert!(dashboard.contains(&format!("kind={kind}\">1<")), "{kind}: {dashboard}");
        }
        let (_, only) = page(&fiona, &app, "/console/attention?kind=failed_refund").await;
        assert!(only.contains("P0941") && !only.contains("CRM-STUCK-1"), "{only}");

        // A viewer sees the list, offered nothing, and is refused every action.
        let vera = signed_in(&app, "test-viewer").await;
        let (status, seen) = page(&vera, &app, "/console/attention").await;
        assert_eq!(status, 200);
        assert!(seen.contains("CRM-STUCK-1") && !seen.contains("/ask-provider") && !seen.contains("/resolve"));
        let csrf = hidden(&seen, "csrf_token");
        for path in [
            action_path(&queue, "/ask-provider"),
            action_path(&queue, "/retry"),
            action_path(&queue, "/resolve"),
        ] {
            let tried = post_form(&vera, &app, &path, &[("csrf_token", csrf.as_str()), ("note", "x")]).await;
            assert_eq!(tried.status(), StatusCode::FORBIDDEN, "{path}");
        }
        let (status, _) = page(&vera, &app, &action_path(&queue, "/resolve")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let csrf = hidden(&queue, "csrf_token");
        let form = [("csrf_token", csrf.as_str())];
        let stuck_id = stuck["id"].as_str().unwrap();
        // Asked while the citizen has still done nothing: still waiting, and said so.
        let asked = post_form(&fiona, &app, &format!("/console/attention/stuck_payment/{stuck_id}/ask-provider"), &form).await;
        assert_eq!(asked.headers()["location"], "/console/attention?done=waiting#main");
        let (_, queue) = page(&fiona, &app, "/console/attention?kind=stuck_payment").await;
        assert!(queue.contains("CRM-STUCK-1") && queue.contains("Last asked the provider at"));
        // The citizen pays; we do not hear (webhooks lost); asking now settles it.
        app.simulator_webhooks(json!({"mode": "drop"})).await;
        app.press(stuck["next_url"].as_str().unwrap(), "pay").await;
        let asked = post_form(&fiona, &app, &format!("/console/attention/stuck_payment/{stuck_id}/ask-provider"), &form).await;
        assert_eq!(asked.headers()["location"], "/console/attention?done=settled#main");
        assert_eq!(app.get_payment(stuck_id).await["status"], "succeeded");

        let (_, queue) = page(&fiona, &app, "/console/attention").await;
        let asked = post_form(&fiona, &app, &action_path(&queue, "unknown_create/"), &form).await;
        assert_eq!(asked.status(), StatusCode::SEE_OTHER);
        let (_, queue) = page(&fiona, &app, "/console/attention").await;
        assert!(!queue.contains("was lost"), "found at the provider");
        // Found, it is a payment like any other: made three hours ago and not finished.
        let abandoned = action_path(&queue, "stuck_payment/").replace("/ask-provider", "/resolve");
        assert!(queue.contains("CRM-LOST-1"));

        crm.plan([]);
        let retried = post_form(&fiona, &app, &action_path(&queue, "/retry"), &form).await;
        assert_eq!(retried.headers()["location"], "/console/attention?done=retried#main");
        // The retried notification, and the one for the payment the provider was just asked about.
        assert_eq!(notifications.run_once().await.unwrap().delivered, 2);

        // Resolving needs a note, and never a card number.
        let (_, queue) = page(&fiona, &app, "/console/attention").await;
        let resolve = action_path(&queue, "discrepancy/");
        let (status, confirm) = page(&fiona, &app, &resolve).await;
        assert_eq!(status, 200);
        assert!(confirm.contains("Only the provider has it"));
        let empty = post_form(&fiona, &app, &resolve, &[("csrf_token", csrf.as_str()), ("note", "  ")]).await;
        assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(empty.text().await.unwrap().contains("Enter what was done"));
        let pan = crate::helpers::fresh_test_pan();
        let carded = post_form(&fiona, &app, &resolve, &[("csrf_token", csrf.as_str()), ("note", pan.as_str())]).await;
        assert_eq!(carded.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!carded.text().await.unwrap().contains(&pan), "the number is not shown back");
        let note = "Taken at the counter; booked by the cashier";
        let done = post_form(&fiona, &app, &resolve, &[("csrf_token", csrf.as_str()), ("note", note)]).await;
        assert_eq!(done.headers()["location"], "/console/attention?done=resolved#main");
        let again = post_form(&fiona, &app, &resolve, &[("csrf_token", csrf.as_str()), ("note", note)]).await;
        assert_eq!(again.status(), StatusCode::CONFLICT, "resolved once");
        let run = app.services.reconciliation.get(&run.id).await.unwrap().unwrap();
        assert_eq!(run.discrepancies.len(), 1);

        let refund = action_path(&queue, "failed_refund/");
        let done = post_form(&fiona, &app, &refund, &[("csrf_token", csrf.as_str()), ("note", "Refunded by cheque")]).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);

        let note = [("csrf_token", csrf.as_str()), ("note", "Citizen left without paying")];
        let done = post_form(&fiona, &app, &abandoned, &note).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);

        let (_, queue) = page(&fiona, &app, "/console/attention").await;
        assert!(queue.contains("Nothing needs attention"), "{queue}");
        assert_eq!(
            crate::console::actions_of(&app, "staff:test-refunder").await,
            ["console.signed_in", "payment.provider_asked", "payment.provider_asked", "payment.provider_asked",
             "notification.retried", "attention.resolved", "attention.resolved", "attention.resolved"],
        );
        assert!(crate::console::actions_of(&app, "staff:test-viewer").await.iter().all(|a| a == "console.signed_in"), "a viewer did nothing");
    }
}
