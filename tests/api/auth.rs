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
        assert!(app.services.keys.revoke(id).await.unwrap());
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
