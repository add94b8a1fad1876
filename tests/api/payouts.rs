//! Stripe's payouts, read from the simulator: each traced to its payments, refunds and fees and
//! to the income batches that posted them; a payout holding a charge Counterfoil never made, or
//! a payment no batch has posted yet, is flagged for a person. The card and billing details an
//! expanded charge carries are never kept.

use serde_json::{json, Value};

use crate::helpers::fresh_test_pan;
use crate::income::{during, Week};

const STRIPE_KEY: &str = "sk_test_counterfoil_simulator_key";

async fn payout(week: &Week, body: Value) -> Value {
    let response = week
        .app
        .client
        .post(week.app.url("/sandbox/stripe/_control/payouts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Stripe's standard UK card fee, as the simulator charges it.
fn fee(amount: i64) -> i64 {
    (amount * 15 + 500) / 1000 + 20
}

each_backend! {
    async fn a_payout_is_traced_to_its_payments_refunds_fees_and_batches_and_a_stranger_is_flagged(backend) {
        let week = Week::begin(backend).await;
        let (d0, d1) = (week.day(0), week.day(1));
        // What an expanded charge carries about the payer must never be kept.
        let pan = fresh_test_pan();
        let control = week.app.client.post(week.app.url("/sandbox/stripe/_control/events"))
            .json(&json!({"billing_details": {"name": format!("Payer {pan}"), "email": "payer@example.com"}}))
            .send().await.unwrap();
        assert_eq!(control.status(), 204);

        let a = week.paid("demo-stripe", "PO-A", 2500, during(d0, 0)).await;
        let b = week.paid("demo-stripe", "PO-B", 1000, during(d0, 1)).await;
        let refund = week.refunded(&a, 500, during(d0, 5)).await;
        let first = payout(&week, json!({"api_key": STRIPE_KEY})).await;
        let paid_out = 3000 - fee(2500) - fee(1000);
        // Paid now (Stripe signs its webhooks with the time, so the clock is not moved yet),
        // dated tomorrow: the next payout holds it before any batch has posted it.
        let c = week.paid("demo-stripe", "PO-C", 1200, during(d1, 0)).await;
        week.close(d0).await;
        assert_eq!(first["amount"], paid_out);

        let payouts = &week.app.services.payouts;
        let reading = payouts.read_all().await.unwrap();
        assert_eq!(reading.changed, 1);
        // The test settings' `offline` account points at a closed port: named, not fatal.
        assert_eq!(reading.unread.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), vec!["offline"]);
        assert_eq!(payouts.read_all().await.unwrap().changed, 0, "a payout read again changes nothing");
        let (view, lines) = payouts.payout("stripe-sandbox", first["id"].as_str().unwrap()).await.unwrap().unwrap();
        let check = &view.check;
        assert_eq!((check.charges, check.refunds, check.fees), (3500, -500, fee(2500) + fee(1000)));
        assert_eq!((check.batched, check.expected, check.difference), (3000, paid_out, 0));
        assert!(!check.needs_a_person(), "{check:?}");
        assert_eq!(check.batches.iter().collect::<Vec<_>>(), vec!["CF-stripe-sandbox-000001"]);
        let mut matched: Vec<_> = lines.iter().filter_map(|l| l.refund_id.clone().or(l.payment_id.clone())).collect();
        matched.sort();
        let mut expected = vec![a.clone(), b.clone(), refund.clone()];
        expected.sort();
        assert_eq!(matched, expected);
        assert_eq!(view.payout.arrival_date, (chrono::Utc::now() + chrono::Duration::days(2)).date_naive());

        // The next payout holds a charge made in Stripe's dashboard, and C, whose day is not
        // over, so no batch has posted it yet.
        let second = payout(&week, json!({"api_key": STRIPE_KEY, "outside_charge": 700})).await;
        assert_eq!(payouts.read_all().await.unwrap().changed, 1);
        let (view, lines) = payouts.payout("stripe-sandbox", second["id"].as_str().unwrap()).await.unwrap().unwrap();
        assert!(view.check.needs_a_person());
        assert_eq!(view.check.unmatched.len(), 1, "{:?}", view.check);
        let c_line = lines.iter().find(|l| l.payment_id.as_deref() == Some(c.as_str())).unwrap();
        assert_eq!(view.check.unbatched, vec![c_line.item.id.clone()]);
        // Once its day is posted, only the stranger is left: its takings are the difference (its
        // fee, like every fee, is set against the payout, not the batches).
        week.close(d1).await;
        let (view, _) = payouts.payout("stripe-sandbox", second["id"].as_str().unwrap()).await.unwrap().unwrap();
        assert!(view.check.unbatched.is_empty());
        assert_eq!(view.check.unmatched.len(), 1);
        assert_eq!(view.check.difference, 700, "the takings no batch accounts for");
        let listed = payouts.payouts(None, 10).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|v| v.check.needs_a_person()) && listed.iter().any(|v| !v.check.needs_a_person()));

        assert!(week.app.columns_containing(&pan).await.is_empty(), "a payer's details were kept");
    }
}

each_backend! {
    async fn a_govuk_pay_settlement_day_is_a_payout_traced_to_its_batches(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        let a = week.paid("demo", "GS-A", 2500, during(d0, 0)).await;
        let b = week.paid("permits", "GS-B", 1000, during(d0, 1)).await;
        let refund = week.refunded(&a, 500, during(d0, 5)).await;
        let payouts = &week.app.services.payouts;
        assert_eq!(payouts.read_all().await.unwrap().changed, 0, "nothing settled yet");
        week.close(d0).await;
        // GOV.UK Pay's Stripe-backed service pays them out: each now says the day it settled.
        let settled = d0 + chrono::Days::new(2);
        let answer = week.app.client.post(week.app.url("/sandbox/govuk-pay/_control/settle"))
            .json(&json!({"date": settled})).send().await.unwrap();
        assert_eq!(answer.status(), 204);
        let reading = payouts.read_all().await.unwrap();
        assert_eq!(reading.changed, 1, "{reading:?}");
        let id = format!("settled-{settled}");
        let (view, lines) = payouts.payout("sandbox", &id).await.unwrap().unwrap();
        let fees = fee(2500) + fee(1000);
        assert_eq!(view.payout.arrival_date, settled);
        assert_eq!(view.payout.amount, 3000 - fees, "what reached the bank");
        let check = &view.check;
        assert_eq!((check.charges, check.refunds, check.fees), (3500, -500, fees));
        assert_eq!((check.batched, check.difference), (3000, 0));
        assert!(!check.needs_a_person(), "{check:?}");
        let mut matched: Vec<_> = lines.iter().filter_map(|l| l.refund_id.clone().or(l.payment_id.clone())).collect();
        matched.sort();
        let mut expected = vec![a, b, refund];
        expected.sort();
        assert_eq!(matched, expected);
    }
}
