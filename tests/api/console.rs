//! The staff console's handlers over HTTP, as a browser uses them (cookies, forms, redirects),
//! signed in through the built-in test identity provider: roles, CSRF, sessions and their
//! timeouts, the console/API separation, the two-person rule and the CSV of payments.

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

use crate::helpers::{payment_body, ManualClock, TestApp};

/// A browser: keeps cookies, does not follow redirects (tests look at each).
pub(crate) fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn location(response: &Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs in as one of the test identity provider's people; returns the browser.
pub(crate) async fn signed_in(app: &TestApp, subject: &str) -> Client {
    let browser = browser();
    let back = through_identity_provider(&browser, app, "/console/sign-in/start", subject).await;
    assert_eq!(location(&back), "/console");
    browser
}

/// From a sign-in start (`start`, a console path) through the test identity provider as
/// `subject`: the callback's answer (where the console sends the person next).
pub(crate) async fn through_identity_provider(
    browser: &Client,
    app: &TestApp,
    start: &str,
    subject: &str,
) -> Response {
    let start = browser.get(app.url(start)).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = location(&start);
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let query = authorize.split_once('?').unwrap().1;
    let chosen = browser
        .post(app.url("/sandbox/identity/authorize"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("{query}&subject={subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    let back = browser.get(location(&chosen)).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    back
}

/// A page's status and HTML.
pub(crate) async fn page(browser: &Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = browser.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn post_form(
    browser: &Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> Response {
    browser.post(app.url(path)).form(form).send().await.unwrap()
}

/// A payment of £25.00 that succeeded; its id.
pub(crate) async fn paid(app: &TestApp, request_ref: &str) -> String {
    let created = app
        .create_payment(
            &uuid::Uuid::new_v4().to_string(),
            &payment_body(request_ref),
        )
        .await;
    let p: Value = created.json().await.unwrap();
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    let id = p["id"].as_str().unwrap().to_owned();
    app.wait_for_status(&id, "succeeded").await;
    id
}

pub(crate) async fn refund_form(
    browser: &Client,
    app: &TestApp,
    payment: &str,
    amount: &str,
) -> (Response, String) {
    let (_, html) = page(browser, app, &format!("/console/payments/{payment}")).await;
    let csrf = hidden(&html, "csrf_token");
    let token = hidden(&html, "form_token");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("form_token", token.as_str()),
        ("amount", amount),
        ("reason", "Permit cancelled"),
    ];
    let path = format!("/console/payments/{payment}/refunds");
    (post_form(browser, app, &path, &form).await, token)
}

pub(crate) async fn refunds_of(app: &TestApp, payment: &str) -> Vec<Value> {
    let response = app
        .get(&format!("/v1/payments/{payment}/refunds"), &app.finance_key)
        .await;
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

both_stores! {
    async fn a_person_signs_in_with_their_roles_and_the_audit_trail_names_them(app) {
        let (status, _) = page(&browser(), &app, "/console").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "not signed in: sent to sign in");
        let browser = signed_in(&app, "test-refunder").await;
        let (status, html) = page(&browser, &app, "/console").await;
        assert_eq!(status, 200);
        assert!(html.contains("Fiona Finance") && html.contains("Refunder"), "{html}");
        let trail = app.services.audit.list(None, None, None, 100).await.unwrap().unwrap();
        let entry = trail.items.iter().find(|e| e.action == "console.signed_in").expect("sign-in audited");
        assert_eq!(entry.actor_key_id, "staff:test-refunder");
        assert_eq!(entry.actor_label, "Fiona Finance (refunder)");
        // The DPO sees payments but not takings.
        let dpo = signed_in(&app, "test-dpo").await;
        assert_eq!(page(&dpo, &app, "/console/payments").await.0, 200);
        assert_eq!(page(&dpo, &app, "/console/takings").await.0, 403);
    }

    async fn a_viewer_is_refused_a_refund_and_a_form_without_the_sessions_token_changes_nothing(app) {
        let payment = paid(&app, "CRM-CON-1").await;
        let viewer = signed_in(&app, "test-viewer").await;
        let (_, html) = page(&viewer, &app, &format!("/console/payments/{payment}")).await;
        assert!(!html.contains("Refund this payment"), "no refund form for a viewer");
        let csrf = hidden(&html, "csrf_token");
        let form = [("csrf_token", csrf.as_str()), ("form_token", "abc"), ("amount", "5"), ("reason", "x")];
        let refused = post_form(&viewer, &app, &format!("/console/payments/{payment}/refunds"), &form).await;
        assert_eq!(refused.status(), 403);

        let refunder = signed_in(&app, "test-refunder").await;
        let (_, html) = page(&refunder, &app, &format!("/console/payments/{payment}")).await;
        let token = hidden(&html, "form_token");
        let forged = [("csrf_token", "not-the-token"), ("form_token", token.as_str()), ("amount", "5"), ("reason", "x")];
        let refused = post_form(&refunder, &app, &format!("/console/payments/{payment}/refunds"), &forged).await;
        assert_eq!(refused.status(), 403);
        assert!(refused.text().await.unwrap().contains("This form has expired"));
        assert!(refunds_of(&app, &payment).await.is_empty(), "nothing was refunded");
    }

    async fn console_routes_ignore_api_keys_and_the_api_ignores_the_console_cookie(app) {
        let with_key = app.client.get(app.url("/console/payments")).bearer_auth(&app.admin_key).send().await.unwrap();
        assert_eq!(with_key.status(), StatusCode::SEE_OTHER);
        assert!(location(&with_key).starts_with("/console/sign-in"));
        let browser = signed_in(&app, "test-admin").await;
        let start = browser.get(app.url("/console")).send().await.unwrap();
        let cookie = start.headers().get_all("set-cookie").iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("counterfoil-console="))
            .expect("the session cookie is re-issued");
        let api = app.client.get(app.url("/v1/payments")).header("Cookie", &cookie).send().await.unwrap();
        assert_eq!(api.status(), 401, "the API wants a key, never the console's cookie");
    }

    async fn sign_out_ends_the_session(app) {
        let browser = signed_in(&app, "test-viewer").await;
        let (_, html) = page(&browser, &app, "/console").await;
        let csrf = hidden(&html, "csrf_token");
        let out = post_form(&browser, &app, "/console/sign-out", &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&out), "/console/sign-in?reason=signed_out");
        let (status, _) = page(&browser, &app, "/console").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    async fn payments_are_found_by_crm_reference_and_downloaded_with_uk_times(app) {
        let payment = paid(&app, "CRM-CSV-1").await;
        let _other = paid(&app, "CRM-CSV-2").await;
        let browser = signed_in(&app, "test-viewer").await;
        let (status, html) = page(&browser, &app, "/console/payments?reference=CRM-CSV-1").await;
        assert_eq!(status, 200);
        assert!(html.contains(&payment) && !html.contains("CRM-CSV-2"), "{html}");
        let (status, html) = page(&browser, &app, "/console/payments?amount=twelve").await;
        assert_eq!(status, 422);
        assert!(html.contains("href=\"#amount\""), "the error summary links to the field");
        let csv = browser.get(app.url("/console/payments.csv?reference=CRM-CSV-1")).send().await.unwrap();
        assert_eq!(csv.status(), 200);
        let text = csv.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert!(headers.iter().any(|h| h == "created_uk_time (Europe/London)"));
        let rows: Vec<_> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][0], payment.as_str());
        assert_eq!(&rows[0][4], "25.00");
    }

    async fn a_card_number_typed_into_the_console_is_refused_kept_nowhere_and_never_repeated(app) {
        let payment = paid(&app, "CRM-CARD-1").await;
        let pan = crate::helpers::fresh_test_pan();
        let spaced: String = pan.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ");
        let browser = signed_in(&app, "test-refunder").await;

        // In the refund reason: refused with the field named, the reason not put back.
        let (_, html) = page(&browser, &app, &format!("/console/payments/{payment}")).await;
        let form = [
            ("csrf_token", hidden(&html, "csrf_token")),
            ("form_token", hidden(&html, "form_token")),
            ("amount", "5.00".to_owned()),
            ("reason", format!("Card {spaced} charged twice")),
        ];
        let response = browser
            .post(app.url(&format!("/console/payments/{payment}/refunds")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
        let html = response.text().await.unwrap();
        assert!(html.contains("Do not enter card numbers") && html.contains("href=\"#reason\""), "{html}");
        assert!(!html.contains(&spaced) && !html.contains(&pan), "the page repeats the card number");
        assert!(refunds_of(&app, &payment).await.is_empty(), "nothing was refunded");

        // In a search: refused, and neither the page nor its links repeat it.
        let (status, html) = page(&browser, &app, &format!("/console/payments?reference={pan}")).await;
        assert_eq!(status, 422);
        assert!(html.contains("Do not enter card numbers"), "{html}");
        assert!(!html.contains(&pan), "the page repeats the card number");
        let csv = browser.get(app.url(&format!("/console/payments.csv?provider_reference={pan}"))).send().await.unwrap();
        assert_eq!(csv.status(), 404, "no download of a search by card number");

        for needle in [pan.clone(), spaced.clone(), pan[3..13].to_owned()] {
            assert!(app.columns_containing(&needle).await.is_empty(), "stored: {needle}");
        }
    }
}

each_backend! {
    async fn a_refund_over_the_threshold_waits_for_a_second_person(backend) {
        let app = TestApp::spawn_with(backend, |s| {
            s.services.get_mut("demo").unwrap().two_person_threshold_pence = Some(1000);
        })
        .await;
        let payment = paid(&app, "CRM-TWO-1").await;
        let supervisor = signed_in(&app, "test-supervisor").await;

        // £5 is under the £10 threshold: sent at once; the same form again refunds nothing more.
        let (small, token) = refund_form(&supervisor, &app, &payment, "5.00").await;
        assert_eq!(small.status(), StatusCode::SEE_OTHER);
        assert!(location(&small).contains("done=sent"));
        assert_eq!(refunds_of(&app, &payment).await.len(), 1);
        let (_, html) = page(&supervisor, &app, &format!("/console/payments/{payment}")).await;
        let csrf = hidden(&html, "csrf_token");
        let again = [("csrf_token", csrf.as_str()), ("form_token", token.as_str()), ("amount", "5.00"), ("reason", "Permit cancelled")];
        let repeat = post_form(&supervisor, &app, &format!("/console/payments/{payment}/refunds"), &again).await;
        assert!(location(&repeat).contains("done=again"));
        assert_eq!(refunds_of(&app, &payment).await.len(), 1, "a double submit refunds once");

        // £15 is over it: it waits, and neither the provider nor the API sees a refund yet.
        let (large, _) = refund_form(&supervisor, &app, &payment, "15").await;
        assert!(location(&large).contains("done=waiting"));
        assert_eq!(refunds_of(&app, &payment).await.len(), 1);
        // More than is left once the waiting one is counted: refused, with the field named.
        let (too_much, _) = refund_form(&supervisor, &app, &payment, "6").await;
        assert_eq!(too_much.status(), 422);
        assert!(too_much.text().await.unwrap().contains("£5.00"));

        // The requester cannot approve their own.
        let (_, queue) = page(&supervisor, &app, "/console/approvals").await;
        let action = queue.split("action=\"").skip(1).map(|r| r.split('"').next().unwrap()).find(|a| a.ends_with("/approve")).unwrap().to_owned();
        let csrf = hidden(&queue, "csrf_token");
        let own = post_form(&supervisor, &app, &action, &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(own.status(), 403);
        assert!(own.text().await.unwrap().contains("cannot approve your own"));
        // A viewer cannot approve at all.
        let viewer = signed_in(&app, "test-viewer").await;
        let (_, html) = page(&viewer, &app, "/console").await;
        let viewer_csrf = hidden(&html, "csrf_token");
        let refused = post_form(&viewer, &app, &action, &[("csrf_token", viewer_csrf.as_str())]).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(refunds_of(&app, &payment).await.len(), 1);

        // A second person approves: now the refund is sent, and it is theirs in the audit trail.
        let approver = signed_in(&app, "test-approver").await;
        let (_, queue) = page(&approver, &app, "/console/approvals").await;
        let csrf = hidden(&queue, "csrf_token");
        let approved = post_form(&approver, &app, &action, &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(approved.status(), StatusCode::SEE_OTHER, "approving redirects: a reload decides nothing");
        assert_eq!(location(&approved), "/console/approvals?done=approved#main");
        let refunds = refunds_of(&app, &payment).await;
        assert_eq!(refunds.len(), 2);
        assert!(refunds.iter().any(|r| r["amount"] == 1500));
        let twice = post_form(&approver, &app, &action, &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(twice.status(), 409, "approved once only");
        let trail = app.services.audit.list(None, None, None, 100).await.unwrap().unwrap();
        let approval = trail.items.iter().find(|e| e.action == "refund.approved").unwrap();
        assert_eq!(approval.actor_key_id, "staff:test-approver");
    }

    async fn an_idle_session_times_out(backend) {
        let clock = ManualClock::new();
        let app = TestApp::spawn_with_clock(backend, |_| {}, clock.clone()).await;
        let browser = signed_in(&app, "test-viewer").await;
        assert_eq!(page(&browser, &app, "/console").await.0, 200);
        clock.advance(std::time::Duration::from_secs(29 * 60));
        assert_eq!(page(&browser, &app, "/console").await.0, 200, "activity keeps it alive");
        clock.advance(std::time::Duration::from_secs(31 * 60));
        let timed_out = browser.get(app.url("/console")).send().await.unwrap();
        assert_eq!(timed_out.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&timed_out), "/console/sign-in?reason=timeout");
        let (_, html) = page(&browser, &app, "/console/sign-in?reason=timeout").await;
        assert!(html.contains("You have been signed out"));
    }
}

/// What `actor` did, oldest first, as the audit trail says (without the pages they read).
pub(crate) async fn actions_of(app: &TestApp, actor: &str) -> Vec<String> {
    let trail = app
        .services
        .audit
        .list(None, None, None, 500)
        .await
        .unwrap()
        .unwrap();
    trail
        .items
        .iter()
        .filter(|e| e.actor_key_id == actor && e.action != "console.viewed")
        .map(|e| e.action.clone())
        .collect()
}
