//! Console sessions a council can end: sign-out ends the session on the server (a copied cookie
//! signs nobody in), a change of roles ends the person's other sessions, an administrator can end
//! them all; and every page of personal data a person reads is in the audit trail.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, StatusCode};

use crate::console::{
    hidden, location, page, paid, post_form, signed_in, through_identity_provider,
};
use crate::helpers::{ManualClock, TestApp};

/// A second browser holding a copy of `from`'s cookies for the console.
fn copied_browser(app: &TestApp, cookie: &str) -> Client {
    let jar = Arc::new(Jar::default());
    let url = app.url("/console").parse().unwrap();
    for pair in cookie.split("; ") {
        jar.add_cookie_str(&format!("{pair}; Path=/console"), &url);
    }
    Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with a cookie jar the test can read; the browser and its console cookie.
async fn signed_in_with_cookie(app: &TestApp, subject: &str) -> (Client, String) {
    let jar = Arc::new(Jar::default());
    let browser = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let back = through_identity_provider(&browser, app, "/console/sign-in/start", subject).await;
    assert_eq!(location(&back), "/console");
    let url = app.url("/console").parse().unwrap();
    let cookie = jar.cookies(&url).unwrap().to_str().unwrap().to_owned();
    (browser, cookie)
}

each_backend! {
    async fn roles_are_read_again_from_the_identity_provider_every_hour(backend) {
        let clock = ManualClock::new();
        let app = TestApp::spawn_with_clock(backend, |_| {}, clock.clone()).await;
        let browser = signed_in(&app, "test-viewer").await;
        // Busy for an hour (never idle for 30 minutes).
        for _ in 0..3 {
            clock.advance(std::time::Duration::from_secs(20 * 60));
            assert_eq!(page(&browser, &app, "/console").await.0, 200);
        }
        clock.advance(std::time::Duration::from_secs(60));
        let again = browser.get(app.url("/console/payments?status=succeeded")).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&again), "/console/sign-in/start?return_to=%2Fconsole%2Fpayments%3Fstatus%3Dsucceeded");
        // Through the identity provider again (roles read afresh), then back where they were.
        let back = through_identity_provider(&browser, &app, &location(&again), "test-viewer").await;
        assert_eq!(location(&back), "/console/payments?status=succeeded");
        assert_eq!(page(&browser, &app, "/console/payments?status=succeeded").await.0, 200);
        // Only our own pages: another site is never a place to return to.
        let outside = crate::console::browser();
        let start = "/console/sign-in/start?return_to=%2F%2Fevil.example%2F";
        let back = through_identity_provider(&outside, &app, start, "test-viewer").await;
        assert_eq!(location(&back), "/console");
    }

    async fn after_sign_out_a_copied_cookie_signs_nobody_in(backend) {
        let app = TestApp::spawn(backend).await;
        let (browser, cookie) = signed_in_with_cookie(&app, "test-viewer").await;
        let thief = copied_browser(&app, &cookie);
        assert_eq!(page(&thief, &app, "/console").await.0, 200, "the copy works while the session lives");
        let (_, html) = page(&browser, &app, "/console").await;
        let csrf = hidden(&html, "csrf_token");
        let out = post_form(&browser, &app, "/console/sign-out", &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let refused = thief.get(app.url("/console/payments")).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::SEE_OTHER, "the copied cookie is refused");
        assert!(location(&refused).starts_with("/console/sign-in"));
    }

    async fn an_administrator_or_a_change_of_roles_ends_sessions(backend) {
        let app = TestApp::spawn(backend).await;
        let (_, cookie) = signed_in_with_cookie(&app, "test-refunder").await;
        let other = copied_browser(&app, &cookie);
        assert_eq!(page(&other, &app, "/console").await.0, 200);
        let ended = app
            .services
            .staff_sessions
            .revoke_all("staff:test-refunder", &counterfoil::domain::Actor::CommandLine("test"))
            .await
            .unwrap();
        assert_eq!(ended, 1);
        assert_eq!(other.get(app.url("/console")).send().await.unwrap().status(), StatusCode::SEE_OTHER);

        // Roles changed at the identity provider: signing in with the new ones ends the old session.
        use counterfoil::domain::staff::{StaffMember, StaffRole};
        let sessions = &app.services.staff_sessions;
        let member = |roles: &[StaffRole]| StaffMember {
            subject: "someone".into(),
            name: "Someone".into(),
            roles: roles.iter().copied().collect(),
        };
        let now = chrono::Utc::now();
        let day = chrono::Duration::hours(24);
        sessions.begin(&member(&[StaffRole::Admin]), "old-token", now).await.unwrap();
        sessions.begin(&member(&[StaffRole::Admin]), "same-roles", now).await.unwrap();
        assert!(sessions.check("old-token", day, day).await.unwrap());
        sessions.begin(&member(&[StaffRole::Viewer]), "new-token", now).await.unwrap();
        assert!(!sessions.check("old-token", day, day).await.unwrap(), "the admin session ended");
        assert!(!sessions.check("same-roles", day, day).await.unwrap());
        assert!(sessions.check("new-token", day, day).await.unwrap());
        // Sessions long over are removed as new ones begin.
        let later = now + chrono::Duration::days(8);
        sessions.begin(&member(&[StaffRole::Viewer]), "next-week", later).await.unwrap();
        let pool = app.raw().await;
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert_eq!(kept, 1, "only next week's session is kept");
    }

    async fn every_page_of_personal_data_a_person_reads_is_audited(backend) {
        let app = TestApp::spawn(backend).await;
        let payment = paid(&app, "CRM-READ-1").await;
        let browser = signed_in(&app, "test-supervisor").await;
        for path in [
            format!("/console/payments/{payment}"),
            "/console/payments?reference=CRM-READ-1".to_owned(),
            "/console/refunds?requested_by=fiona".to_owned(),
            "/console/takings".to_owned(),
        ] {
            assert_eq!(page(&browser, &app, &path).await.0, 200, "{path}");
        }
        let trail = app.services.audit.list(None, None, None, 200).await.unwrap().unwrap();
        let reads: Vec<_> = trail
            .items
            .iter()
            .filter(|e| e.action == "console.viewed" && e.actor_key_id == "staff:test-supervisor")
            .collect();
        assert!(reads.iter().any(|e| e.subject == payment), "the payment page, by its id");
        let search = reads
            .iter()
            .find(|e| e.detail["route"] == "/console/payments")
            .expect("the search");
        assert_eq!(search.detail["filters"], serde_json::json!(["reference"]));
        assert!(!search.detail.to_string().contains("CRM-READ-1"), "names of filters, never values");
        assert!(reads.iter().any(|e| e.detail["route"] == "/console/refunds"));
        assert!(reads.iter().any(|e| e.detail["route"] == "/console/takings"));
    }
}
