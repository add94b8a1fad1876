//! The mop-up poller: payments whose webhook was lost, and creates whose answer was lost, are
//! settled from the provider's records. Rounds are run directly with `poll_once`.

use std::time::Duration;

use counterfoil::service::payments::{PollSettings, PollSummary};
use serde_json::json;

use crate::helpers::{payment_body, Backend, TestApp};

fn every_payment() -> PollSettings {
    PollSettings {
        min_age: Duration::ZERO,
        lease: Duration::from_secs(60),
        batch_size: 2,
    }
}

async fn quiet(backend: Backend) -> TestApp {
    let app = TestApp::spawn_with(backend, |s| s.payments.refresh_on_read = false).await;
    app.simulator_webhooks(json!({"mode": "drop"})).await;
    app
}

each_backend! {
    async fn a_payment_whose_webhook_was_lost_is_mopped_up(backend) {
        let app = quiet(backend).await;
        let paid = app.new_payment("CRM-8001").await;
        let abandoned = app.new_payment("CRM-8002").await;
        // Three payments, batches of two: the round goes on until all are seen.
        app.new_payment("CRM-8003").await;
        app.press(paid["next_url"].as_str().unwrap(), "pay").await;
        app.press(abandoned["next_url"].as_str().unwrap(), "cancel").await;
        let paid_id = paid["id"].as_str().unwrap();
        assert_eq!(app.get_payment(paid_id).await["status"], "created", "no webhook, no refresh");

        let summary = app.services.payments.poll_once(&every_payment()).await.unwrap();
        assert_eq!(summary, PollSummary { polled: 3, changed: 2 });
        assert_eq!(app.get_payment(paid_id).await["status"], "succeeded");
        assert_eq!(app.get_payment(abandoned["id"].as_str().unwrap()).await["status"], "cancelled");
        assert!(app.timeline(paid_id).await.contains(&(json!("created"), json!("succeeded"), json!("poll"))));
        assert_eq!(app.outbox_for(paid_id).await, vec!["payment.succeeded"]);

        // Leased for a minute: a second round (another server, say) leaves them alone.
        let again = app.services.payments.poll_once(&every_payment()).await.unwrap();
        assert_eq!(again.polled, 0);
    }

    async fn recent_payments_are_left_to_the_payer(backend) {
        let app = quiet(backend).await;
        app.new_payment("CRM-8004").await;
        let defaults = PollSettings { min_age: Duration::from_secs(95 * 60), lease: Duration::from_secs(900), batch_size: 100 };
        assert_eq!(app.services.payments.poll_once(&defaults).await.unwrap().polled, 0);
    }

    async fn lost_creates_are_found_or_given_up(backend) {
        let app = quiet(backend).await;
        // The provider made this one but its answer came too late.
        app.simulator_faults(json!({"create_delay_ms": 4000, "create_delays": 1})).await;
        let lost = app.create_payment("lost", &payment_body("CRM-8005")).await;
        assert_eq!(lost.status(), 502);
        let lost_id = lost.json::<serde_json::Value>().await.unwrap()["payment_id"].as_str().unwrap().to_owned();
        // The provider failed on this one and made nothing.
        app.simulator_faults(json!({"create_errors": 1})).await;
        let failed = app.create_payment("failed", &payment_body("CRM-8006")).await;
        assert_eq!(failed.status(), 502);
        let failed_id = failed.json::<serde_json::Value>().await.unwrap()["payment_id"].as_str().unwrap().to_owned();

        app.services.payments.poll_once(&every_payment()).await.unwrap();
        let found = app.get_payment(&lost_id).await;
        assert_eq!(found["create_outcome"], "confirmed");
        assert!(found["provider_payment_id"].is_string());
        let given_up = app.get_payment(&failed_id).await;
        assert_eq!(given_up["status"], "error");
        assert_eq!(given_up["create_outcome"], "not_created");
        assert_eq!(given_up["failure_code"], "not_found_at_provider");
        assert_eq!(app.outbox_for(&failed_id).await, vec!["payment.error"], "the CRM is told");
        assert_eq!(app.simulator_payments().await.len(), 1, "nothing was created twice");
    }
}
