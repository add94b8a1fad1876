//! The finance ledger: London days either side of the clocks changing, the CSV equal to the JSON
//! when read back by a standard parser, formula-looking text neutralised, daily totals.

use serde_json::{json, Value};

use crate::helpers::{payment_body, TestApp};

/// A paid payment whose success is moved to `finished_at` (UTC), with `description`.
async fn paid_at(app: &TestApp, request_ref: &str, description: &str, finished_at: &str) -> String {
    let mut body = payment_body(request_ref);
    body["description"] = json!(description);
    let response = app
        .create_payment(&uuid::Uuid::new_v4().to_string(), &body)
        .await;
    assert_eq!(response.status(), 201);
    let p: Value = response.json().await.unwrap();
    let id = p["id"].as_str().unwrap().to_owned();
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    app.wait_for_status(&id, "succeeded").await;
    app.execute(&format!(
        "UPDATE payments SET finished_at = '{finished_at}' WHERE id = '{id}'"
    ))
    .await;
    id
}

async fn ledger(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(&format!("/v1/ledger?{query}"), &app.finance_key)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn ids(ledger: &Value) -> Vec<String> {
    ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["payment_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A webhook retried into the next day still puts the payment on the day it was made.
macro_rules! late_webhook {
    ($name:ident, $backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use crate::helpers::{govuk_message, ManualClock, WEBHOOK_SECRET};
            let clock = ManualClock::new();
            let app = TestApp::spawn_with_clock(
                $backend,
                |s| s.payments.refresh_on_read = false,
                clock.clone(),
            )
            .await;
            let p = app.new_payment("LATE-1").await;
            let made =
                counterfoil::service::Clock::now(clock.as_ref()) + chrono::Duration::seconds(30);
            clock.advance(std::time::Duration::from_secs(2 * 24 * 3600));
            let mut message = govuk_message(
                "late-1",
                p["provider_payment_id"].as_str().unwrap(),
                "card_payment_succeeded",
                "success",
                None,
            );
            message["created_date"] =
                json!(made.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let response = app
                .send_webhook("sandbox", &message.to_string(), Some(WEBHOOK_SECRET))
                .await;
            assert_eq!(response.status(), 200);
            let day = counterfoil::domain::ledger::london_day(made);
            let entries = ledger(&app, &format!("from={day}&to={day}")).await;
            assert_eq!(
                ids(&entries),
                vec![p["id"].as_str().unwrap().to_owned()],
                "on the day it was made, not two days later"
            );
        }
    };
}
late_webhook!(
    a_late_webhook_keeps_the_day_the_payment_was_made_on_sqlite,
    crate::helpers::Backend::Sqlite
);
late_webhook!(
    a_late_webhook_keeps_the_day_the_payment_was_made_on_postgres,
    crate::helpers::Backend::Postgres
);

/// A payment whose webhook was lost and whose outcome the poller learns two days later counts
/// for the day the provider took the money (its capture time), not the day Counterfoil heard.
macro_rules! late_poll {
    ($name:ident, $backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use crate::helpers::ManualClock;
            use counterfoil::service::payments::PollSettings;
            let clock = ManualClock::new();
            let app = TestApp::spawn_with_clock(
                $backend,
                |s| s.payments.refresh_on_read = false,
                clock.clone(),
            )
            .await;
            app.simulator_webhooks(json!({"mode": "drop"})).await;
            let p = app.new_payment("LATE-POLL-1").await;
            let id = p["id"].as_str().unwrap();
            app.press(p["next_url"].as_str().unwrap(), "pay").await;
            let paid = chrono::Utc::now();
            clock.advance(std::time::Duration::from_secs(2 * 24 * 3600));
            let every_payment = PollSettings {
                min_age: std::time::Duration::ZERO,
                lease: std::time::Duration::from_secs(60),
                batch_size: 10,
            };
            app.services.payments.poll_once(&every_payment).await.unwrap();
            let read = app.get_payment(id).await;
            assert_eq!(read["status"], "succeeded");
            let finished: chrono::DateTime<chrono::Utc> =
                read["finished_at"].as_str().unwrap().parse().unwrap();
            assert!(
                (paid - finished).num_seconds().abs() < 60,
                "dated by the provider's capture ({finished}), not two days later"
            );
            let day = counterfoil::domain::ledger::london_day(finished);
            let entries = ledger(&app, &format!("from={day}&to={day}")).await;
            assert_eq!(ids(&entries), vec![id.to_owned()]);
        }
    };
}
late_poll!(
    a_payment_learnt_late_by_the_poller_keeps_the_day_it_was_paid_on_sqlite,
    crate::helpers::Backend::Sqlite
);
late_poll!(
    a_payment_learnt_late_by_the_poller_keeps_the_day_it_was_paid_on_postgres,
    crate::helpers::Backend::Postgres
);

both_stores! {
    async fn payments_land_on_their_london_day_in_summer_and_winter(app) {
        let summer_evening = paid_at(&app, "L-1", "Summer evening", "2026-07-01T22:30:00.000000Z").await;
        let summer_night = paid_at(&app, "L-2", "Summer night", "2026-07-01T23:30:00.000000Z").await;
        let winter_night = paid_at(&app, "L-3", "Winter night", "2026-01-15T23:30:00.000000Z").await;

        let first = ledger(&app, "from=2026-07-01&to=2026-07-01").await;
        assert_eq!(ids(&first), vec![summer_evening.clone()], "22:30 UTC is 23:30 in London: still the 1st");
        assert_eq!(first["items"][0]["date"], "2026-07-01");
        let second = ledger(&app, "from=2026-07-02&to=2026-07-02").await;
        assert_eq!(ids(&second), vec![summer_night], "23:30 UTC in summer is the next London day");
        assert_eq!(second["items"][0]["date"], "2026-07-02");
        let winter = ledger(&app, "from=2026-01-15&to=2026-01-15").await;
        assert_eq!(ids(&winter), vec![winter_night], "in winter London is on UTC");
        let january = ledger(&app, "from=2026-01-16&to=2026-01-31").await;
        assert!(ids(&january).is_empty());
        assert_eq!(ledger(&app, "from=2026-01-01&to=2026-12-31").await["items"].as_array().unwrap().len(), 3);
        assert_eq!(first["items"][0]["fund_code"], "DEMO");
        assert_eq!(first["items"][0]["cost_centre"], "CC000");
        assert_eq!(first["items"][0]["amount_pounds"], "25.00");
    }

    async fn the_csv_read_back_equals_the_json_and_formulas_are_neutralised(app) {
        let day = "2026-03-29";
        let descriptions = ["=1+2 fee", "-5 discount", "@risk assessment", "+44 phone fee", "Plain, with a comma"];
        let mut payments = Vec::new();
        for (n, description) in descriptions.iter().enumerate() {
            payments.push(paid_at(&app, &format!("F-{n}"), description, &format!("{day}T0{n}:10:00.000000Z")).await);
        }
        // A refund is a negative line.
        let response = app.client.post(app.url(&format!("/v1/payments/{}/refunds", payments[4])))
            .bearer_auth(&app.finance_key).header("Idempotency-Key", "ledger-refund")
            .json(&json!({"amount": 500, "reason": "Part refund"})).send().await.unwrap();
        assert_eq!(response.status(), 201);
        app.execute(&format!("UPDATE refunds SET finished_at = '{day}T09:00:00.000000Z'")).await;

        let json = ledger(&app, &format!("from={day}&to={day}")).await;
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), 6);
        assert_eq!(items[5]["type"], "refund");
        assert_eq!(items[5]["amount_pence"], -500);
        assert_eq!(items[5]["amount_pounds"], "-5.00");

        let csv = app.get(&format!("/v1/ledger?from={day}&to={day}&format=csv"), &app.finance_key).await;
        assert_eq!(csv.status(), 200);
        assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = csv.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), items.len());
        for (row, item) in rows.iter().zip(items) {
            for (column, cell) in header.iter().zip(row.iter()) {
                let expected = match &item[column.as_str()] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let is_text = ["request_ref", "description", "fund_code", "cost_centre", "provider_reference"].contains(&column.as_str());
                if is_text && expected.starts_with(['=', '+', '-', '@']) {
                    assert_eq!(cell, format!("'{expected}"), "{column} is neutralised");
                } else {
                    assert_eq!(cell, expected, "{column}");
                }
            }
        }
        assert!(text.contains("'=1+2 fee") && text.contains("\"Plain, with a comma\""));

        let summary: Value = app.get(&format!("/v1/ledger/summary?from={day}&to={day}"), &app.finance_key)
            .await.json().await.unwrap();
        assert_eq!(summary["items"], json!([{
            "date": day, "service": "demo", "fund_code": "DEMO",
            "payments": 5, "gross_pence": 12500, "refunds": 1, "refunds_pence": 500, "net_pence": 12000
        }]));
    }

    async fn every_finance_route_refuses_crm_keys_and_exports_are_audited(app) {
        let id = "pay_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
        let routes = [
            ("POST", format!("/v1/payments/{id}/refunds")),
            ("GET", format!("/v1/payments/{id}/refunds")),
            ("GET", "/v1/ledger?from=2026-01-01&to=2026-01-01".to_owned()),
            ("GET", "/v1/ledger/summary?from=2026-01-01&to=2026-01-01".to_owned()),
            ("POST", "/v1/reconciliations".to_owned()),
            ("GET", "/v1/reconciliations/rec_x".to_owned()),
            ("GET", "/v1/audit".to_owned()),
            ("GET", "/v1/notifications".to_owned()),
            ("POST", "/v1/notifications/evt_x/retry".to_owned()),
        ];
        for (method, path) in &routes {
            let request = if *method == "POST" { app.client.post(app.url(path)) } else { app.client.get(app.url(path)) };
            let response = request.bearer_auth(&app.crm_key).header("Idempotency-Key", "k")
                .header("Content-Type", "application/json").body("{}").send().await.unwrap();
            assert_eq!(response.status(), 403, "{method} {path}");
        }
        ledger(&app, "from=2026-01-01&to=2026-01-31&format=json").await;
        let audit: Value = app.get("/v1/audit", &app.admin_key).await.json().await.unwrap();
        let exports: Vec<_> = audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "ledger.exported").collect();
        assert_eq!(exports.len(), 1);
        assert_eq!(exports[0]["detail"]["from"], "2026-01-01");
        assert_eq!(exports[0]["actor"]["label"], "test");
    }

    async fn ledger_parameters_and_roles(app) {
        assert_eq!(app.get("/v1/ledger?from=2026-01-01&to=2026-01-02", &app.crm_key).await.status(), 403);
        assert_eq!(app.get("/v1/ledger/summary?from=2026-01-01&to=2026-01-02", &app.crm_key).await.status(), 403);
        let bad = app.get("/v1/ledger?from=01/01/2026&to=2025-12-31&format=xlsx&service=nope&page=2", &app.finance_key).await;
        assert_eq!(bad.status(), 422);
        let problem: Value = bad.json().await.unwrap();
        let fields: Vec<_> = problem["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
        assert_eq!(fields, vec![json!("format"), json!("from"), json!("page"), json!("service")]);
        let missing = app.get("/v1/ledger", &app.finance_key).await;
        assert_eq!(missing.status(), 422);
        let backwards = app.get("/v1/ledger?from=2026-02-01&to=2026-01-01", &app.finance_key).await;
        assert_eq!(backwards.json::<Value>().await.unwrap()["errors"][0]["field"], "to");
    }

    async fn daily_totals_add_up_the_ledgers_lines_per_london_day_across_the_clocks_changing(app) {
        // Either side of London's midnights on the day the clocks go back (25 October 2026,
        // 25 hours long), and a day past the first month of a 40-day period.
        let times = [
            "2026-10-01T00:00:00.000000Z",
            "2026-10-24T22:59:59.999999Z",
            "2026-10-24T23:00:00.000000Z",
            "2026-10-25T23:59:59.999999Z",
            "2026-10-26T00:00:00.000000Z",
            "2026-10-31T23:59:59.999999Z",
            "2026-11-01T00:00:00.000000Z",
            "2026-11-09T23:59:59.999999Z",
        ];
        let mut paid = Vec::new();
        for (n, at) in times.iter().enumerate() {
            paid.push(paid_at(&app, &format!("T-{n}"), "Garden waste", at).await);
        }
        for (n, id) in paid.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
            let response = app.client.post(app.url(&format!("/v1/payments/{id}/refunds")))
                .bearer_auth(&app.finance_key).header("Idempotency-Key", format!("totals-{n}"))
                .json(&json!({"amount": 100 * (n as i64 + 1), "reason": "Part refund"})).send().await.unwrap();
            assert_eq!(response.status(), 201);
            // Each refund lands on the day after its payment's.
            app.execute(&format!(
                "UPDATE refunds SET finished_at = '{}' WHERE payment_id = '{id}'",
                times[(n + 1) % times.len()]
            )).await;
        }
        let period = "from=2026-10-01&to=2026-11-09";
        let lines = ledger(&app, period).await;
        let mut expected = std::collections::BTreeMap::<String, [i64; 4]>::new();
        for line in lines["items"].as_array().unwrap() {
            let totals = expected.entry(line["date"].as_str().unwrap().to_owned()).or_default();
            let pence = line["amount_pence"].as_i64().unwrap();
            if pence < 0 { totals[2] += 1; totals[3] -= pence } else { totals[0] += 1; totals[1] += pence }
        }
        assert_eq!(expected.len(), 7, "the lines fall on seven London days: {expected:?}");
        let summary: Value = app.get(&format!("/v1/ledger/summary?{period}"), &app.finance_key)
            .await.json().await.unwrap();
        let got: std::collections::BTreeMap<String, [i64; 4]> = summary["items"].as_array().unwrap().iter()
            .map(|row| (row["date"].as_str().unwrap().to_owned(), ["payments", "gross_pence", "refunds", "refunds_pence"].map(|k| row[k].as_i64().unwrap())))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(got["2026-10-25"], [2, 5000, 0, 0], "both ends of the 25-hour day");
        assert_eq!(got["2026-11-01"], [1, 2500, 0, 0], "the first day past a month's statement");
    }
}
