//! The privacy promises: the retention sweep's two stages at their boundaries, erasure on request
//! (ledger totals unchanged), and the subject export.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use counterfoil::service::data_protection::SWEEP;
use serde_json::{json, Value};

use crate::helpers::{payment_body, Backend, ManualClock, TestApp};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A payment with personal data in every personal field, paid, with a refund of 500 pence.
async fn paid_with_refund(app: &TestApp, request_ref: &str) -> String {
    let mut body = payment_body(request_ref);
    body["description"] = json!("Parking permit for Ottoline Quillfeather");
    body["email"] = json!("ottoline@quillfeather.example");
    body["metadata"] = json!({"resident": "Ottoline Quillfeather"});
    let created = app
        .create_payment(&format!("dp-{request_ref}"), &body)
        .await;
    assert_eq!(created.status(), 201);
    let p: Value = created.json().await.unwrap();
    let id = p["id"].as_str().unwrap().to_owned();
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    app.wait_for_status(&id, "succeeded").await;
    let refund = app
        .client
        .post(app.url(&format!("/v1/payments/{id}/refunds")))
        .bearer_auth(&app.finance_key)
        .header("Idempotency-Key", format!("dp-refund-{request_ref}"))
        .json(&json!({"amount": 500, "reason": "Ottoline moved house"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 201);
    id
}

const PERSONAL: [&str; 4] = [
    "Ottoline Quillfeather",
    "ottoline@quillfeather.example",
    "Ottoline moved house",
    "/return/",
];

/// Which personal values are still stored anywhere (every text column of every table).
async fn personal_data_held(app: &TestApp) -> Vec<(&'static str, Vec<(String, String)>)> {
    let mut held = Vec::new();
    for value in PERSONAL {
        let places = app.columns_containing(value).await;
        if !places.is_empty() {
            held.push((value, places));
        }
    }
    held
}

async fn summary(app: &TestApp, from: &str, to: &str) -> Value {
    let response = app
        .get(
            &format!("/v1/ledger/summary?from={from}&to={to}"),
            &app.finance_key,
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["items"].clone()
}

each_backend! {
    async fn personal_data_is_pseudonymised_ninety_days_after_the_payment_is_final(backend) {
        let clock = ManualClock::at(utc("2026-06-01T09:00:00Z"));
        let app = TestApp::spawn_with_clock(backend, |_| {}, clock.clone()).await;
        let id = paid_with_refund(&app, "CRM-DP-1").await;
        let finished = utc(app.get_payment(&id).await["finished_at"].as_str().unwrap());
        assert!(!personal_data_held(&app).await.is_empty());

        // Exactly 90 days after it finished: still held.
        clock.set(finished + chrono::Duration::days(90));
        let report = app.services.data_protection.sweep(&SWEEP, false).await.unwrap();
        assert_eq!(report.payments_pseudonymised, 0);
        assert!(!personal_data_held(&app).await.is_empty());
        // Idempotency keys (their stored answers hold the same fields) are long past their window.
        assert_eq!(report.idempotency_keys_removed, 2);

        // A second later, a dry run says what would change and changes nothing.
        clock.advance(Duration::from_secs(1));
        let dry = app.services.data_protection.sweep(&SWEEP, true).await.unwrap();
        assert_eq!(dry.payments_pseudonymised, 1);
        assert!(!personal_data_held(&app).await.is_empty());

        let before = summary(&app, "2026-06-01", "2026-06-01").await;
        let report = app.services.data_protection.sweep(&SWEEP, false).await.unwrap();
        assert_eq!((report.payments_pseudonymised, report.refund_reasons_pseudonymised), (1, 1));
        assert_eq!(personal_data_held(&app).await, vec![], "every personal field is gone");
        let payment = app.get_payment(&id).await;
        assert_eq!(payment["description"], "[erased]");
        assert_eq!(payment["metadata"], json!({"resident": "[erased]"}));
        assert_eq!((payment["amount"].clone(), payment["status"].clone(), payment["refunded_amount"].clone()),
                   (json!(2500), json!("succeeded"), json!(500)));
        assert_eq!(summary(&app, "2026-06-01", "2026-06-01").await, before);
        // Idempotency keys, whose stored answers held the same fields, outlived their window.
        assert_eq!(app.count_rows("idempotency_keys").await, 0);
        // The trail says how many, never what.
        let entries = app.services.store.list_audit(None, None, 1000).await.unwrap();
        let swept = entries.iter().find(|e| e.action == "retention.pseudonymised").unwrap();
        assert_eq!(swept.detail["payments"], 1);
        assert!(!swept.detail.to_string().contains("Ottoline"));
    }

    async fn the_sweep_goes_batch_by_batch_through_every_due_payment(backend) {
        // Batches of two over five payments finished at the same instant (the clock stands
        // still): each batch must start just past the last, ties in time taken in id order.
        let clock = ManualClock::at(utc("2026-06-01T09:00:00Z"));
        let app = TestApp::spawn_with_clock(backend, |s| s.retention.batch_size = 2, clock.clone()).await;
        let mut ids = Vec::new();
        for n in 0..5 {
            let mut body = payment_body(&format!("CRM-BATCH-{n}"));
            body["email"] = json!(format!("person{n}@batch.example"));
            let created = app.create_payment(&format!("batch-{n}"), &body).await;
            assert_eq!(created.status(), 201);
            let p: Value = created.json().await.unwrap();
            app.press(p["next_url"].as_str().unwrap(), "pay").await;
            ids.push(p["id"].as_str().unwrap().to_owned());
        }
        for id in &ids {
            app.wait_for_status(id, "succeeded").await;
        }
        // One already erased on request, in the middle of the order.
        let reference = counterfoil::domain::refs::RequestRef::parse("CRM-BATCH-2").unwrap();
        app.services.data_protection.erase(&SWEEP, &reference).await.unwrap();

        clock.advance(Duration::from_secs(91 * 24 * 3600));
        let report = app.services.data_protection.sweep(&SWEEP, false).await.unwrap();
        assert_eq!(report.payments_pseudonymised, 4);
        assert!(app.columns_containing("@batch.example").await.is_empty(), "every email is gone");
        for id in &ids {
            assert_eq!(app.get_payment(id).await["description"], "[erased]", "{id}");
        }
        let batches = app.services.store.list_audit(None, None, 1000).await.unwrap().into_iter()
            .filter(|e| e.action == "retention.pseudonymised").count();
        assert_eq!(batches, 2, "four payments in batches of two");
    }

    async fn records_go_six_years_after_their_financial_year_leaving_daily_totals(backend) {
        // Paid on 15 May 2019: the financial year ending 31 March 2020.
        let clock = ManualClock::at(utc("2019-05-15T10:00:00Z"));
        let app = TestApp::spawn_with_clock(backend, |_| {}, clock.clone()).await;
        let id = paid_with_refund(&app, "CRM-DP-2").await;
        // A payment of the next financial year stays longer.
        clock.set(utc("2020-04-01T10:00:00Z"));
        let later = paid_with_refund(&app, "CRM-DP-3").await;
        let totals_2019 = summary(&app, "2019-05-15", "2019-05-15").await;
        assert_eq!(totals_2019[0]["net_pence"], 2000);
        let tables = ["payments", "payment_events", "refunds", "outbox", "idempotency_keys"];
        let mut rows_before = Vec::new();
        for table in tables {
            rows_before.push(app.count_rows(table).await);
        }

        // 23:59:59 on 31 March 2026, London (BST): not yet.
        clock.set(utc("2026-03-31T22:59:59Z"));
        let report = app.services.data_protection.sweep(&SWEEP, false).await.unwrap();
        assert_eq!(report.payments_removed, 0);
        assert_eq!(report.payments_pseudonymised, 2, "long since pseudonymised, though");
        assert_eq!(app.count_rows("payments").await, 2);

        // Midnight: the year ending 31 March 2020 is six whole years gone.
        clock.set(utc("2026-03-31T23:00:00Z"));
        let report = app.services.data_protection.sweep(&SWEEP, false).await.unwrap();
        assert_eq!(report.payments_removed, 1);
        assert_eq!(app.get(&format!("/v1/payments/{id}"), &app.crm_key).await.status(), 404);
        assert_eq!(app.get(&format!("/v1/payments/{later}"), &app.crm_key).await.status(), 200);
        for (table, before) in tables.iter().zip(rows_before) {
            assert!(app.count_rows(table).await < before, "{table} kept rows of the removed payment");
        }
        // Finance still has the day's totals, to the penny.
        assert_eq!(summary(&app, "2019-05-15", "2019-05-15").await, totals_2019);
        let removed = app.services.store.list_audit(None, None, 1000).await.unwrap()
            .into_iter().find(|e| e.action == "retention.removed").unwrap();
        assert_eq!(removed.detail["payments"], 1);
        // Running it again finds nothing more to do.
        let again = app.services.data_protection.sweep(&SWEEP, false).await.unwrap();
        assert_eq!((again.payments_removed, again.payments_pseudonymised), (0, 0));
        assert_eq!(summary(&app, "2019-05-15", "2019-05-15").await, totals_2019);
    }

    async fn erasure_on_request_keeps_the_money_and_is_idempotent(backend) {
        let app = TestApp::spawn(backend).await;
        let id = paid_with_refund(&app, "CRM-DP-4").await;
        let today = Utc::now().date_naive();
        let (from, to) = (today.pred_opt().unwrap().to_string(), today.succ_opt().unwrap().to_string());
        let ledger_before = summary(&app, &from, &to).await;
        let erase = |app: &TestApp| {
            let request = app.client.post(app.url("/v1/data-protection/erasures"))
                .bearer_auth(&app.admin_key)
                .json(&json!({"request_ref": "CRM-DP-4"}));
            async move { request.send().await.unwrap() }
        };
        let first = erase(&app).await;
        assert_eq!(first.status(), 200);
        let first: Value = first.json().await.unwrap();
        assert_eq!((first["payments"].clone(), first["payments_pseudonymised"].clone(), first["refunds_pseudonymised"].clone()),
                   (json!(1), json!(1), json!(1)));
        assert_eq!(personal_data_held(&app).await, vec![]);
        assert_eq!(summary(&app, &from, &to).await, ledger_before);
        // Within the replay window, a repeated create answers with the pseudonymised payment.
        let mut body = payment_body("CRM-DP-4");
        body["description"] = json!("Parking permit for Ottoline Quillfeather");
        body["email"] = json!("ottoline@quillfeather.example");
        body["metadata"] = json!({"resident": "Ottoline Quillfeather"});
        let replay: Value = app.create_payment("dp-CRM-DP-4", &body).await.json().await.unwrap();
        assert_eq!((replay["id"].as_str(), replay["description"].as_str()), (Some(id.as_str()), Some("[erased]")));
        let second: Value = erase(&app).await.json().await.unwrap();
        assert_eq!((second["payments"].clone(), second["payments_pseudonymised"].clone()), (json!(1), json!(0)));
        // Only an admin may erase.
        let refused = app.client.post(app.url("/v1/data-protection/erasures"))
            .bearer_auth(&app.finance_key).json(&json!({"request_ref": "CRM-DP-4"})).send().await.unwrap();
        assert_eq!(refused.status(), 403);
        let erasures: Vec<_> = app.services.store.list_audit(None, None, 1000).await.unwrap()
            .into_iter().filter(|e| e.action == "data_protection.erased").collect();
        assert_eq!(erasures.len(), 2);
        assert_eq!(erasures[0].subject, "CRM-DP-4");
        assert_eq!(app.get_payment(&id).await["amount"], 2500);
    }

    async fn the_subject_export_holds_everything_about_a_request_and_after_erasure_only_money_facts(backend) {
        let app = TestApp::spawn(backend).await;
        let id = paid_with_refund(&app, "CRM-DP-5").await;
        let export = |format: &'static str| {
            let request = app.client
                .get(app.url(&format!("/v1/data-protection/exports?request_ref=CRM-DP-5&format={format}")))
                .bearer_auth(&app.admin_key);
            async move { request.send().await.unwrap() }
        };
        let response = export("json").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let payment = &body["payments"][0];
        assert_eq!(payment["payment"]["id"], json!(id));
        assert_eq!(payment["payment"]["description"], "Parking permit for Ottoline Quillfeather");
        assert!(payment["events"].as_array().unwrap().len() >= 2, "the status history");
        assert_eq!(payment["refunds"][0]["reason"], "Ottoline moved house");
        assert_eq!(payment["notifications"][0]["type"], "payment.succeeded", "delivery metadata");
        let text = body.to_string();
        for secret in [app.admin_key.as_str(), app.crm_key.as_str(), crate::helpers::WEBHOOK_SECRET] {
            assert!(!text.contains(secret));
        }
        let csv = export("csv").await.text().await.unwrap();
        assert!(csv.starts_with("record,record_id,payment_id,field,value\r\n"));
        assert!(csv.contains("payment,") && csv.contains("refund,") && csv.contains("status_event,"));
        assert!(csv.contains("Ottoline moved house"));

        let erased = app.client.post(app.url("/v1/data-protection/erasures"))
            .bearer_auth(&app.admin_key).json(&json!({"request_ref": "CRM-DP-5"})).send().await.unwrap();
        assert_eq!(erased.status(), 200);
        let after: Value = export("json").await.json().await.unwrap();
        let text = after.to_string();
        for value in PERSONAL {
            assert!(!text.contains(value), "{value} in {text}");
        }
        let payment = &after["payments"][0];
        assert_eq!((payment["payment"]["amount"].clone(), payment["payment"]["refunded_amount"].clone(),
                    payment["payment"]["status"].clone(), payment["refunds"][0]["amount"].clone()),
                   (json!(2500), json!(500), json!("succeeded"), json!(500)));
        assert_eq!(payment["payment"]["request_ref"], "CRM-DP-5");
        let exports = app.services.store.list_audit(None, None, 1000).await.unwrap()
            .into_iter().filter(|e| e.action == "data_protection.exported").count();
        assert_eq!(exports, 3);
    }
}

/// `counterfoil purge --dry-run` reports without changing; without it, it changes and audits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_command_sweeps_once() {
    let clock = ManualClock::at(Utc::now() - chrono::Duration::days(100));
    let app: TestApp =
        TestApp::spawn_with_clock(Backend::Sqlite, |_| {}, clock.clone() as Arc<_>).await;
    paid_with_refund(&app, "CRM-DP-6").await;
    let (code, out) = app.command(&["purge", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            dry["dry_run"].clone(),
            dry["payments_pseudonymised"].clone()
        ),
        (json!(true), json!(1))
    );
    assert!(!personal_data_held(&app).await.is_empty());
    let (code, out) = app.command(&["purge"]);
    assert_eq!(code, 0, "{out}");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["payments_pseudonymised"], 1);
    assert_eq!(personal_data_held(&app).await, vec![]);
}

each_backend! {
    async fn one_server_at_a_time_holds_the_sweep(backend) {
        let app = TestApp::spawn(backend).await;
        let store = &app.services.store;
        let t0 = utc("2026-06-01T09:00:00Z");
        let hour = chrono::Duration::hours(1);
        assert!(store.try_lease_job("retention_sweep", "server-a", t0, t0 + hour).await.unwrap());
        // Another server is refused while the lease runs; the holder may renew it.
        assert!(!store.try_lease_job("retention_sweep", "server-b", t0 + chrono::Duration::minutes(30), t0 + hour * 2).await.unwrap());
        assert!(store.try_lease_job("retention_sweep", "server-a", t0 + chrono::Duration::minutes(59), t0 + hour * 2).await.unwrap());
        // Once it lapses (a crashed holder), another server takes over.
        assert!(store.try_lease_job("retention_sweep", "server-b", t0 + hour * 2 + chrono::Duration::seconds(1), t0 + hour * 3).await.unwrap());
        assert!(!store.try_lease_job("retention_sweep", "server-a", t0 + hour * 2 + chrono::Duration::seconds(2), t0 + hour * 3).await.unwrap());
    }
}
