//! Refunds that tell the truth: who asked and who approved or declined (and why) on the payment
//! page, the register, the dashboard, the API and the audit trail; the two-person rule counted over
//! what one person refunds alone; approvals and their refunds as one outcome; API keys under the
//! same rule or switched off.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::console::{hidden, location, page, paid, post_form, refund_form, refunds_of, signed_in};
use crate::helpers::TestApp;

/// A payment's refund amounts as the API lists them, sorted.
async fn amounts(app: &TestApp, payment: &str) -> Vec<i64> {
    let mut all: Vec<i64> = refunds_of(app, payment)
        .await
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    all.sort();
    all
}

/// The approve button's action for the one waiting refund.
async fn waiting_action(browser: &reqwest::Client, app: &TestApp, ends: &str) -> String {
    let (_, queue) = page(browser, app, "/console/approvals").await;
    let marker = if ends == "/approve" {
        "action=\""
    } else {
        "href=\""
    };
    queue
        .split(marker)
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
        .find(|a| a.starts_with("/console/approvals/apr_") && a.ends_with(ends))
        .unwrap_or_else(|| panic!("no {ends} in the queue"))
        .to_owned()
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    let trail = app
        .services
        .audit
        .list(None, None, None, 200)
        .await
        .unwrap()
        .unwrap();
    trail
        .items
        .iter()
        .map(|e| (e.action.clone(), e.actor_key_id.clone()))
        .collect()
}

fn small_threshold(s: &mut counterfoil::config::Settings) {
    s.services
        .get_mut("demo")
        .unwrap()
        .two_person_threshold_pence = Some(1000);
}

each_backend! {
    async fn an_approved_refund_stays_in_the_requesters_name_everywhere(backend) {
        let app = TestApp::spawn_with(backend, small_threshold).await;
        let payment = paid(&app, "CRM-TRUTH-1").await;
        let fiona = signed_in(&app, "test-refunder").await;
        let (waiting, _) = refund_form(&fiona, &app, &payment, "15").await;
        assert!(location(&waiting).contains("done=waiting"));

        // Waiting: the payment page says nothing was refunded, in one Refunds section.
        let (_, html) = page(&fiona, &app, &format!("/console/payments/{payment}")).await;
        assert!(html.contains("£0.00 of £25.00 has been refunded"), "{html}");
        assert!(!html.contains("refunded in full"));
        assert_eq!(html.matches(">Refunds</h").count(), 1, "one heading called Refunds");
        assert!(html.contains("Waiting for approval"));
        // ... and the register and the dashboard show it waiting.
        let (_, register) = page(&fiona, &app, "/console/refunds?state=waiting").await;
        assert!(register.contains("CRM-TRUTH-1") && register.contains("Fiona Finance"));
        let (_, dashboard) = page(&fiona, &app, "/console").await;
        assert!(dashboard.contains("refunds?state=waiting\">1<"), "{dashboard}");

        let arun = signed_in(&app, "test-approver").await;
        let action = waiting_action(&arun, &app, "/approve").await;
        let (_, queue) = page(&arun, &app, "/console/approvals").await;
        let csrf = hidden(&queue, "csrf_token");
        let approved = post_form(&arun, &app, &action, &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(approved.status(), StatusCode::SEE_OTHER);
        let (status, after) = page(&arun, &app, "/console/approvals?done=approved").await;
        assert_eq!(status, 200);
        assert!(after.contains("Refund approved"));

        // The API and the CRM's view: asked for by Fiona, approved by Arun.
        let refunds = refunds_of(&app, &payment).await;
        assert_eq!(refunds.len(), 1);
        let refund = &refunds[0];
        assert_eq!(refund["requested_by_key"], "staff:test-refunder", "{refund}");
        assert!(refund["requested_by"].as_str().unwrap().starts_with("Fiona Finance"));
        assert_eq!(refund["approved_by_key"], "staff:test-approver");
        assert!(refund["approved_by"].as_str().unwrap().starts_with("Arun Approver"));
        assert!(refund["approved_at"].is_string());
        // The audit trail: Fiona asked, Arun approved; nobody else "requested" it.
        let actions = audit_actions(&app).await;
        assert!(actions.contains(&("refund.approval_requested".into(), "staff:test-refunder".into())));
        assert!(actions.contains(&("refund.approved".into(), "staff:test-approver".into())));
        assert!(!actions.iter().any(|(a, who)| a == "refund.requested" && who == "staff:test-approver"), "{actions:?}");
        // The page: both names, the payment partly refunded.
        let (_, html) = page(&fiona, &app, &format!("/console/payments/{payment}")).await;
        assert!(html.contains("Partly refunded"), "the status says so");
        assert!(html.contains("£15.00 of £25.00 has been refunded"));
        let row = html.split("<tr>").skip(1).find(|r| r.contains("£15.00") && r.contains("Refunded")).expect("the refund's row");
        assert!(row.contains("Fiona Finance") && row.contains("Arun Approver"), "{row}");
        let (_, register) = page(&fiona, &app, "/console/refunds?decided_by=arun").await;
        assert!(register.contains("CRM-TRUTH-1"));
        let (_, none) = page(&fiona, &app, "/console/refunds?decided_by=nobody").await;
        assert!(!none.contains("CRM-TRUTH-1"));
        // The register's CSV: a byte-order mark for spreadsheets, and both people on the row.
        let csv = fiona.get(app.url("/console/refunds.csv")).send().await.unwrap().bytes().await.unwrap();
        assert!(csv.starts_with("\u{feff}".as_bytes()), "a byte-order mark");
        let text = String::from_utf8(csv.to_vec()).unwrap();
        let row = text.lines().find(|l| l.contains("CRM-TRUTH-1")).expect("the refund in the CSV");
        assert!(row.contains("Fiona Finance") && row.contains("Arun Approver") && row.contains(",succeeded,"), "{row}");
        let payments_csv = fiona.get(app.url("/console/payments.csv")).send().await.unwrap().bytes().await.unwrap();
        assert!(payments_csv.starts_with("\u{feff}payment_id,".as_bytes()));
    }

    async fn a_refund_split_to_stay_under_the_threshold_still_needs_a_second_person(backend) {
        let app = TestApp::spawn_with(backend, small_threshold).await;
        let payment = paid(&app, "CRM-SPLIT-1").await;
        let fiona = signed_in(&app, "test-refunder").await;
        // £10 limit: £5 and £5 go; a third £5 would make £15 refunded by Fiona alone.
        for _ in 0..2 {
            let (sent, _) = refund_form(&fiona, &app, &payment, "5").await;
            assert!(location(&sent).contains("done=sent"));
        }
        let (third, _) = refund_form(&fiona, &app, &payment, "5").await;
        assert!(location(&third).contains("done=waiting"), "{}", location(&third));
        assert_eq!(amounts(&app, &payment).await, vec![500, 500]);
        // The limit is per person: someone else may refund £5 alone.
        let sam = signed_in(&app, "test-supervisor").await;
        let (other, _) = refund_form(&sam, &app, &payment, "5").await;
        assert!(location(&other).contains("done=sent"));
        // An API key is held to the same rule: £10 of a payment alone, then no more.
        let other_payment = paid(&app, "CRM-SPLIT-2").await;
        let key = &app.finance_key;
        let api = |amount: i64, idem: &'static str| {
            let app = &app;
            let payment = other_payment.clone();
            async move {
                app.client
                    .post(app.url(&format!("/v1/payments/{payment}/refunds")))
                    .bearer_auth(key)
                    .header("Idempotency-Key", idem)
                    .json(&json!({"amount": amount, "reason": "Split"}))
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(api(600, "split-1").await.status(), 201);
        assert_eq!(api(400, "split-2").await.status(), 201);
        let over = api(1, "split-3").await;
        assert_eq!(over.status(), 403);
        let problem: Value = over.json().await.unwrap();
        assert_eq!(problem["code"], "two_person_rule");
        assert_eq!(amounts(&app, &other_payment).await, vec![400, 600]);
        assert_eq!(amounts(&app, &payment).await, vec![500, 500, 500]);
    }

    async fn a_daily_limit_counts_what_one_person_refunds_alone_across_payments(backend) {
        let app = TestApp::spawn_with(backend, |s| s.console.two_person_daily_limit_pence = Some(1000)).await;
        let (first, second) = (paid(&app, "CRM-DAY-1").await, paid(&app, "CRM-DAY-2").await);
        let fiona = signed_in(&app, "test-refunder").await;
        let (sent, _) = refund_form(&fiona, &app, &first, "6").await;
        assert!(location(&sent).contains("done=sent"));
        // £6 more on another payment: £12 alone today, over the £10 daily limit.
        let (waits, _) = refund_form(&fiona, &app, &second, "6").await;
        assert!(location(&waits).contains("done=waiting"), "{}", location(&waits));
        // Someone else's day is their own.
        let sam = signed_in(&app, "test-supervisor").await;
        let (other, _) = refund_form(&sam, &app, &second, "6").await;
        assert!(location(&other).contains("done=sent"));
    }

    async fn requests_sent_together_cannot_spend_more_than_the_payment(backend) {
        let app = TestApp::spawn_with(backend, small_threshold).await;
        let payment = paid(&app, "CRM-RACE-1").await;
        let fiona = signed_in(&app, "test-refunder").await;
        let sam = signed_in(&app, "test-supervisor").await;
        // Two requests of £15 on a £25 payment, both over the limit, sent at once.
        let (a, b) = tokio::join!(
            refund_form(&fiona, &app, &payment, "15"),
            refund_form(&sam, &app, &payment, "15"),
        );
        let outcomes = [a.0.status(), b.0.status()];
        assert!(outcomes.contains(&StatusCode::SEE_OTHER), "{outcomes:?}");
        assert!(outcomes.contains(&StatusCode::UNPROCESSABLE_ENTITY), "one is refused: {outcomes:?}");
        let waiting = app.services.staff_refunds.waiting().await.unwrap();
        assert_eq!(waiting.len(), 1);
    }

    async fn a_decline_needs_a_reason_is_confirmed_and_the_requester_sees_why(backend) {
        let app = TestApp::spawn_with(backend, small_threshold).await;
        let payment = paid(&app, "CRM-DECLINE-1").await;
        let fiona = signed_in(&app, "test-refunder").await;
        refund_form(&fiona, &app, &payment, "20").await;
        let arun = signed_in(&app, "test-approver").await;
        let confirm = waiting_action(&arun, &app, "/decline").await;
        let (status, html) = page(&arun, &app, &confirm).await;
        assert_eq!(status, 200);
        assert!(html.contains("Decline this refund") && html.contains("Fiona Finance"));
        let csrf = hidden(&html, "csrf_token");
        let blank = post_form(&arun, &app, &confirm, &[("csrf_token", csrf.as_str()), ("reason", " ")]).await;
        assert_eq!(blank.status(), 422);
        assert!(blank.text().await.unwrap().contains("Enter why you are declining this refund"));
        assert_eq!(app.services.staff_refunds.waiting().await.unwrap().len(), 1, "still waiting");
        let declined = post_form(&arun, &app, &confirm, &[("csrf_token", csrf.as_str()), ("reason", "Already refunded by cheque")]).await;
        assert_eq!(declined.status(), StatusCode::SEE_OTHER);
        assert!(location(&declined).contains("done=declined"));
        assert!(refunds_of(&app, &payment).await.is_empty(), "nothing refunded");
        // Fiona sees who declined it and why, in her list and on the payment page.
        let (_, mine) = page(&fiona, &app, "/console/approvals").await;
        assert!(mine.contains("Declined by Arun Approver") && mine.contains("Already refunded by cheque"), "{mine}");
        let (_, html) = page(&fiona, &app, &format!("/console/payments/{payment}")).await;
        assert!(html.contains("Declined: Already refunded by cheque"));
        let (_, register) = page(&fiona, &app, "/console/refunds?state=declined").await;
        assert!(register.contains("CRM-DECLINE-1"));
        let actions = audit_actions(&app).await;
        assert!(actions.contains(&("refund.declined".into(), "staff:test-approver".into())));
    }

    async fn an_approval_the_provider_refuses_is_waiting_again_never_approved_with_nothing_sent(backend) {
        let app = TestApp::spawn_with(backend, small_threshold).await;
        let payment = paid(&app, "CRM-REFUSED-1").await;
        let fiona = signed_in(&app, "test-refunder").await;
        refund_form(&fiona, &app, &payment, "15").await;
        app.simulator_faults(json!({"refund_refusals": 1})).await;
        let arun = signed_in(&app, "test-approver").await;
        let action = waiting_action(&arun, &app, "/approve").await;
        let (_, queue) = page(&arun, &app, "/console/approvals").await;
        let csrf = hidden(&queue, "csrf_token");
        let refused = post_form(&arun, &app, &action, &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        assert!(refused.text().await.unwrap().contains("The provider did not make the refund"));
        let waiting = app.services.staff_refunds.waiting().await.unwrap();
        assert_eq!(waiting.len(), 1, "waiting again");
        assert_eq!(waiting[0].last_failure.as_deref(), Some("P0941"));
        assert_eq!(refunds_of(&app, &payment).await[0]["status"], "failed", "the failed attempt is kept");
        let (_, dashboard) = page(&arun, &app, "/console").await;
        assert!(dashboard.contains("refunds?state=failed\">1<"), "{dashboard}");
        // Approved again, it is sent.
        let again = post_form(&arun, &app, &action, &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
        let statuses: Vec<Value> = refunds_of(&app, &payment).await.iter().map(|r| r["status"].clone()).collect();
        assert!(statuses.contains(&json!("succeeded")), "{statuses:?}");
        assert!(app.services.staff_refunds.waiting().await.unwrap().is_empty());
    }

    async fn refunds_by_api_key_can_be_switched_off(backend) {
        let app = TestApp::spawn_with(backend, |s| s.console.api_refunds = Some(false)).await;
        let payment = paid(&app, "CRM-NOAPI-1").await;
        let response = app
            .client
            .post(app.url(&format!("/v1/payments/{payment}/refunds")))
            .bearer_auth(&app.finance_key)
            .header("Idempotency-Key", "off-1")
            .json(&json!({"amount": 100, "reason": "Test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "api_refunds_disabled");
        assert!(refunds_of(&app, &payment).await.is_empty());
    }
}
