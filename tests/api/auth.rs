//! API keys: 401 for missing, malformed, unknown or revoked keys; 403 for the wrong role.

use serde_json::Value;

use crate::helpers::payment_body;

both_stores! {
    async fn missing_unknown_and_revoked_keys_are_401(app) {
        let path = "/v1/payments";
        let no_key = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(no_key.status(), 401);
        assert_eq!(no_key.headers()["www-authenticate"], "Bearer");
        let problem: Value = no_key.json().await.unwrap();
        assert_eq!(problem["code"], "unauthorized");

        assert_eq!(app.get(path, "not-a-key").await.status(), 401);
        // Right shape, right id, wrong secret.
        let forged = format!("{}{}", &app.crm_key[..app.crm_key.len() - 4], "AAAA");
        assert_eq!(app.get(path, &forged).await.status(), 401);
        let unknown = format!("cf_{}_{}", "Z".repeat(12), "Z".repeat(40));
        assert_eq!(app.get(path, &unknown).await.status(), 401);

        assert_eq!(app.get(path, &app.crm_key).await.status(), 200);
        let id = &app.crm_key[3..15];
        assert!(app.services.keys.revoke(&counterfoil::domain::Actor::CommandLine("test"), id).await.unwrap());
        assert_eq!(app.get(path, &app.crm_key).await.status(), 401);
        let refused = app.create_payment("after-revoke", &payment_body("CRM-4001")).await;
        assert_eq!(refused.status(), 401);
        assert_eq!(app.count_rows("payments").await, 0);
    }

    async fn finance_keys_may_read_but_not_create_or_cancel(app) {
        let created = app.new_payment("CRM-4002").await;
        let id = created["id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/v1/payments/{id}"), &app.finance_key).await.status(), 200);
        let create = app
            .client
            .post(app.url("/v1/payments"))
            .bearer_auth(&app.finance_key)
            .header("Idempotency-Key", "fin")
            .json(&payment_body("CRM-4003"))
            .send()
            .await
            .unwrap();
        assert_eq!(create.status(), 403);
        assert_eq!(create.json::<Value>().await.unwrap()["code"], "forbidden");
        assert_eq!(app.post(&format!("/v1/payments/{id}/cancel"), &app.finance_key).await.status(), 403);
        // Admin may do everything.
        assert_eq!(app.post(&format!("/v1/payments/{id}/cancel"), &app.admin_key).await.status(), 200);
    }

    async fn keys_are_stored_only_as_hashes(app) {
        let secret_part = &app.crm_key[16..];
        assert!(app.columns_containing(secret_part).await.is_empty());
        let keys = app.services.keys.list().await.unwrap();
        assert!(keys.iter().all(|k| k.token_sha256.len() == 64));
    }
}

/// A key can be made to expire: refused from then on, like a revoked one.
#[tokio::test]
async fn an_expired_key_is_refused() {
    use crate::helpers::{Backend, ManualClock, TestApp};
    let clock = ManualClock::new();
    let app = TestApp::spawn_with_clock(Backend::Sqlite, |_| {}, clock.clone()).await;
    let in_a_day = clock.now_for_test() + chrono::Duration::days(1);
    let (record, token) = app
        .services
        .keys
        .create_expiring(
            &counterfoil::domain::Actor::CommandLine("test"),
            counterfoil::domain::api_key::Role::Finance,
            "contractor",
            Some(in_a_day),
        )
        .await
        .unwrap();
    assert_eq!(record.expires_at, Some(in_a_day));
    assert_eq!(app.get("/v1/payments", &token).await.status(), 200);
    clock.advance(std::time::Duration::from_secs(24 * 3600));
    let refused = app.get("/v1/payments", &token).await;
    assert_eq!(refused.status(), 401);
    // An expiry in the past is refused at creation.
    assert!(app
        .services
        .keys
        .create_expiring(
            &counterfoil::domain::Actor::CommandLine("test"),
            counterfoil::domain::api_key::Role::Crm,
            "late",
            Some(in_a_day - chrono::Duration::days(2))
        )
        .await
        .is_err());
}

/// A key in a URL is refused even alongside a good Authorization header, and never logged.
#[tokio::test]
async fn a_key_in_the_query_string_is_refused() {
    use crate::helpers::{Backend, TestApp};
    use crate::support::logs;
    let app = TestApp::spawn(Backend::Sqlite).await;
    for query in [
        format!("api_key={}", app.crm_key),
        format!("request_ref={}", app.crm_key),
        "access_token=anything".to_owned(),
        "Key=anything".to_owned(),
    ] {
        let response = app
            .get(&format!("/v1/payments?{query}"), &app.crm_key)
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "api_key_in_url");
    }
    assert_eq!(
        app.get("/v1/payments?request_ref=SR-1", &app.crm_key)
            .await
            .status(),
        200
    );
    assert!(!logs::captured().contains(&app.crm_key[16..]));
}

/// `keys list` shows when each key was last used (and its expiry), never the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_list_shows_last_use() {
    use crate::helpers::{Backend, TestApp};
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(
        app.get("/v1/payments", &app.finance_key).await.status(),
        200
    );
    let (code, listing) = app.command(&["keys", "list"]);
    assert_eq!(code, 0);
    assert!(listing.lines().next().unwrap().contains("last used"));
    let line = |key: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(&key[3..15]))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let today = chrono::Utc::now().date_naive().to_string();
    // id, role, created, last used, expires, revoked, label
    assert!(line(&app.finance_key)[3].starts_with(&today), "{listing}");
    assert_eq!(line(&app.admin_key)[3], "-", "{listing}");
    assert!(!listing.contains(&app.finance_key[16..]));
}
