//! Keys and access over HTTP, for administrators: a key made and shown once, used, then revoked
//! and refused; a person's console session ended from the page; recent sign-ins with roles; and
//! nobody else may see or do any of it.

use reqwest::StatusCode;

use crate::console::{hidden, location, page, post_form, signed_in};
use crate::helpers::{payment_body, TestApp};

each_backend! {
    async fn a_key_is_made_shown_once_used_and_revoked_and_a_session_ended_in_the_admins_name(backend) {
        let app = TestApp::spawn(backend).await;
        let vera = signed_in(&app, "test-viewer").await;
        let ada = signed_in(&app, "test-admin").await;
        let (status, access) = page(&ada, &app, "/console/access").await;
        assert_eq!(status, 200);
        assert!(access.contains("Vera Viewer (viewer)"), "recent sign-ins say who, with which roles");
        let csrf = hidden(&access, "csrf_token");

        let missing = post_form(&ada, &app, "/console/access/keys", &[("csrf_token", csrf.as_str()), ("label", " ")]).await;
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = missing.text().await.unwrap();
        assert!(html.contains("Enter what the key is for") && html.contains("Select what the key may do"));
        let past = post_form(&ada, &app, "/console/access/keys", &[("csrf_token", csrf.as_str()), ("label", "Old"), ("role", "crm"),
            ("expires-day", "1"), ("expires-month", "1"), ("expires-year", "2020")]).await;
        assert_eq!(past.status(), StatusCode::UNPROCESSABLE_ENTITY);

        let made = post_form(&ada, &app, "/console/access/keys",
            &[("csrf_token", csrf.as_str()), ("label", "Portal, second site"), ("role", "crm")]).await;
        assert_eq!(made.status(), 200);
        assert_eq!(made.headers()["cache-control"], "no-store", "never kept by the browser");
        let shown = made.text().await.unwrap();
        let token = hidden(&shown.replace("readonly value=", "name=\"key\" value="), "key");
        assert!(token.starts_with("cf_"), "{shown}");
        let (_, access) = page(&ada, &app, "/console/access").await;
        assert!(access.contains("Portal, second site") && !access.contains(&token), "shown once, never again");

        let used = app.client.post(app.url("/v1/payments")).bearer_auth(&token)
            .header("Idempotency-Key", "made-in-console").json(&payment_body("CRM-KEY-1")).send().await.unwrap();
        assert_eq!(used.status(), 201, "the key works");
        let (_, access) = page(&ada, &app, "/console/access").await;
        let key_id = token.split('_').nth(1).unwrap().to_owned();
        let row = access.split("<tr>").find(|r| r.contains("Portal, second site")).unwrap();
        assert!(!row.contains("<td>Never</td><td>Active"), "its last use is shown: {row}");

        let (status, confirm) = page(&ada, &app, &format!("/console/access/keys/{key_id}/revoke")).await;
        assert_eq!(status, 200);
        assert!(confirm.contains("Anything still using it will be refused at once"));
        let revoked = post_form(&ada, &app, &format!("/console/access/keys/{key_id}/revoke"), &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(location(&revoked), "/console/access?done=revoked#keys");
        let refused = app.client.get(app.url("/v1/payments")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(refused.status(), 401, "revoked: refused");

        // Vera's session, ended by Ada: her next request goes back to sign in.
        let (_, access) = page(&ada, &app, "/console/access").await;
        let vera_row = access.split("<tr>").find(|r| r.contains("staff:test-viewer") && r.contains("End session")).unwrap();
        let handle = hidden(vera_row, "handle");
        let ended = post_form(&ada, &app, "/console/access/sessions/end", &[("csrf_token", csrf.as_str()), ("handle", handle.as_str())]).await;
        assert_eq!(location(&ended), "/console/access?done=session_ended#sessions");
        let after = vera.get(app.url("/console/payments")).send().await.unwrap();
        assert_eq!(after.status(), StatusCode::SEE_OTHER);
        assert!(location(&after).starts_with("/console/sign-in"), "{}", location(&after));

        let by_ada = crate::console::actions_of(&app, "staff:test-admin").await;
        assert_eq!(by_ada, ["console.signed_in", "key.created", "key.revoked", "console.session_revoked"]);
    }

    async fn nobody_but_an_administrator_may_see_or_change_keys_and_access(backend) {
        let app = TestApp::spawn(backend).await;
        let keys_before = app.services.keys.list().await.unwrap().len();
        for who in ["test-viewer", "test-refunder", "test-approver", "test-dpo"] {
            let browser = signed_in(&app, who).await;
            let (status, _) = page(&browser, &app, "/console/access").await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
            let (_, home) = page(&browser, &app, "/console").await;
            assert!(!home.contains("href=\"/console/access\""), "{who} is not offered it");
            let csrf = hidden(&home, "csrf_token");
            let key_id = app.services.keys.list().await.unwrap()[0].id.clone();
            for path in ["/console/access/keys".to_owned(), format!("/console/access/keys/{key_id}/revoke"), "/console/access/sessions/end".to_owned()] {
                let tried = post_form(&browser, &app, &path, &[("csrf_token", csrf.as_str()), ("label", "x"), ("role", "admin"), ("handle", "x")]).await;
                assert_eq!(tried.status(), StatusCode::FORBIDDEN, "{who} {path}");
            }
        }
        let keys = app.services.keys.list().await.unwrap();
        assert_eq!(keys.len(), keys_before, "no key was made");
        assert!(keys.iter().all(|k| k.revoked_at.is_none()), "none was revoked");
    }
}
