//! Reconciliation in the console over HTTP: a run started from its page for an account and a
//! London day, followed to its end, its differences paged beside what the provider holds, their
//! CSV, one resolved from the run's page; a viewer reads and may start nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::console::{hidden, location, page, post_form, signed_in};
use crate::helpers::TestApp;

const SIM_KEY: &str = "api_test_counterfoil_simulator_key";

/// The run page once the run has finished.
async fn finished(browser: &reqwest::Client, app: &TestApp, path: &str) -> String {
    for _ in 0..300 {
        let (status, html) = page(browser, app, path).await;
        assert_eq!(status, 200);
        if !html.contains("tag-running") {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the run did not finish in 30 s");
}

each_backend! {
    async fn a_run_started_from_its_page_shows_its_differences_paged_and_one_is_resolved_there(backend) {
        let app = TestApp::spawn(backend).await;
        // 53 payments taken at the counter: only the provider has them.
        for n in 0..53 {
            let made = app.client.post(app.url("/sandbox/govuk-pay/v1/payments")).bearer_auth(SIM_KEY)
                .json(&json!({"amount": 700 + n, "reference": format!("COUNTER-{n:02}"), "description": "Paid at the counter",
                              "return_url": "https://council.example.gov.uk/x"}))
                .send().await.unwrap();
            assert_eq!(made.status(), 201);
        }
        let today = counterfoil::domain::ledger::london_day(chrono::Utc::now());
        let (d, m, y) = (today.format("%-d").to_string(), today.format("%-m").to_string(), today.format("%Y").to_string());

        let vera = signed_in(&app, "test-viewer").await;
        let (status, list) = page(&vera, &app, "/console/reconciliation").await;
        assert_eq!(status, 200);
        assert!(list.contains("No runs yet") && !list.contains("Start reconciliation"), "a viewer is offered no start");
        let csrf = hidden(&list, "csrf_token");
        let tried = post_form(&vera, &app, "/console/reconciliation",
            &[("csrf_token", csrf.as_str()), ("account", "sandbox"), ("day-day", &d), ("day-month", &m), ("day-year", &y)]).await;
        assert_eq!(tried.status(), StatusCode::FORBIDDEN);

        let fiona = signed_in(&app, "test-refunder").await;
        let (_, list) = page(&fiona, &app, "/console/reconciliation").await;
        let csrf = hidden(&list, "csrf_token");
        let next_year = (today.format("%Y").to_string().parse::<i32>().unwrap() + 1).to_string();
        let future = post_form(&fiona, &app, "/console/reconciliation",
            &[("csrf_token", csrf.as_str()), ("account", "sandbox"), ("day-day", &d), ("day-month", &m), ("day-year", &next_year)]).await;
        assert_eq!(future.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(future.text().await.unwrap().contains("The day must be today or in the past"));
        let nowhere = post_form(&fiona, &app, "/console/reconciliation",
            &[("csrf_token", csrf.as_str()), ("account", "elsewhere"), ("day-day", &d), ("day-month", &m), ("day-year", &y)]).await;
        assert_eq!(nowhere.status(), StatusCode::UNPROCESSABLE_ENTITY);

        let started = post_form(&fiona, &app, "/console/reconciliation",
            &[("csrf_token", csrf.as_str()), ("account", "sandbox"), ("day-day", &d), ("day-month", &m), ("day-year", &y)]).await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let run_page = location(&started).replace("#main", "");
        assert!(run_page.starts_with("/console/reconciliation/rec_") && run_page.ends_with("?done=started"), "{run_page}");
        let run_path = run_page.split('?').next().unwrap().to_owned();
        let run_id = run_path.rsplit('/').next().unwrap().to_owned();
        let html = finished(&fiona, &app, &run_path).await;
        assert!(html.contains("Finished") && html.contains("53 payments and 0 refunds"), "{html}");
        assert!(html.contains("53: 0 healed by the run, 0 resolved by a person, 53 need a person"), "{html}");
        assert_eq!(html.matches("Only the provider has it").count(), 50, "50 a page");
        assert!(html.contains("Fiona Finance"));
        let next = html.split("rel=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap()
            .split('"').next().unwrap().replace("&amp;", "&").replace("&#x2f;", "/");
        let (_, second) = page(&fiona, &app, &next).await;
        assert_eq!(second.matches("Only the provider has it").count(), 3);

        let csv = fiona.get(app.url(&format!("{run_path}/discrepancies.csv"))).send().await.unwrap();
        assert_eq!(csv.status(), 200);
        let csv = csv.text().await.unwrap();
        assert!(csv.starts_with('\u{feff}'), "a byte-order mark for spreadsheets");
        assert_eq!(csv.lines().count(), 54, "a header and every difference");

        // Resolved from the run's page, back to the run's page.
        let resolve = html.split('"').find(|p| p.contains("/resolve?back=")).unwrap().replace("&amp;", "&").replace("&#x2f;", "/");
        let (status, confirm) = page(&fiona, &app, &resolve).await;
        assert_eq!(status, 200);
        assert!(confirm.contains("Cancel, go back to the run"));
        let post_to = resolve.split('?').next().unwrap();
        let done = post_form(&fiona, &app, post_to,
            &[("csrf_token", csrf.as_str()), ("note", "Counter takings, banked separately"), ("back", run_id.as_str())]).await;
        assert_eq!(location(&done), format!("{run_path}?done=resolved#main"));
        let (_, html) = page(&fiona, &app, &run_path).await;
        assert!(html.contains("Resolved by Fiona Finance (refunder): Counter takings, banked separately"));
        assert!(html.contains("53: 0 healed by the run, 1 resolved by a person, 52 need a person"));
        let (_, list) = page(&vera, &app, "/console/reconciliation").await;
        assert!(list.contains(&run_id) && list.contains("Fiona Finance (refunder)"), "{list}");

        let by_fiona = crate::console::actions_of(&app, "staff:test-refunder").await;
        assert_eq!(by_fiona, ["console.signed_in", "reconciliation.run", "attention.resolved"]);
    }
}
