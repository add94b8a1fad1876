//! The audit trail: append-only in the database itself, and tamper-evident through its hash chain.

use counterfoil::domain::api_key::Role;

use crate::helpers::{payment_body, Backend, TestApp, TESTER};

/// What it takes to change the audit trail behind the application's back: disable the triggers
/// (PostgreSQL) or drop them (SQLite), as only a database owner can.
async fn without_triggers(app: &TestApp, backend: Backend, sql: &str) {
    match backend {
        Backend::Postgres => {
            app.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .await;
            app.execute(sql).await;
            app.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
                .await;
        }
        Backend::Sqlite => {
            app.execute("DROP TRIGGER audit_log_no_update").await;
            app.execute("DROP TRIGGER audit_log_no_delete").await;
            app.execute(sql).await;
        }
    }
}

each_backend! {
    async fn the_database_refuses_to_edit_or_delete_audit_entries(backend) {
        let app = TestApp::spawn(backend).await;
        // Three keys were made for the test: three entries.
        assert_eq!(app.count_rows("audit_log").await, 3);
        for sql in [
            "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = 2",
            "DELETE FROM audit_log WHERE seq = 3",
            "DELETE FROM audit_log",
            "DELETE FROM audit_head",
        ] {
            let refused = app.try_execute(sql).await.expect_err(sql);
            assert!(refused.contains("append-only"), "{sql}: {refused}");
        }
        if backend == Backend::Postgres {
            assert!(app.try_execute("TRUNCATE audit_log").await.unwrap_err().contains("append-only"));
        }
        assert_eq!(app.count_rows("audit_log").await, 3);
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("3 chained entries checked") && out.contains("intact"), "{out}");
    }

    async fn an_entry_altered_behind_the_triggers_is_named_by_audit_verify(backend) {
        let app = TestApp::spawn(backend).await;
        without_triggers(&app, backend, "UPDATE audit_log SET actor_label = 'someone else' WHERE seq = 2").await;
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("BROKEN: entry 2 was altered"), "{out}");
    }

    async fn an_entry_removed_behind_the_triggers_is_found(backend) {
        let app = TestApp::spawn(backend).await;
        without_triggers(&app, backend, "DELETE FROM audit_log WHERE seq = 2").await;
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("BROKEN: entry 2 is missing"), "{out}");
        // Cutting off the newest entry is found too: the chain no longer ends at its recorded head.
        let app = TestApp::spawn(backend).await;
        without_triggers(&app, backend, "DELETE FROM audit_log WHERE seq = 3").await;
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("BROKEN: entry 3 is missing"), "{out}");
    }
}

each_backend! {
    async fn a_payments_entry_is_chained_with_the_hash_audit_verify_computes(backend) {
        // On PostgreSQL a create's one statement hashes its audit entry in SQL, and so does every
        // other entry's append (the keys' creation here, the portal's named beyond ASCII);
        // `audit verify` hashes them again in Rust. They must agree to the byte.
        let app = TestApp::spawn(backend).await;
        let key = app
            .services
            .keys
            .create(&TESTER, Role::Crm, "Café portal – £ “main”")
            .await
            .unwrap()
            .1;
        for n in 0..3 {
            for _attempt in 0..2 {
                let response = app
                    .client
                    .post(app.url("/v1/payments"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", format!("chain-{n}"))
                    .json(&payment_body(&format!("CRM-CHAIN-{n}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        }
        // Three keys for the test, the portal's, three creates; the replays add nothing.
        let (code, out) = app.command(&["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("7 chained entries checked") && out.contains("intact"), "{out}");
    }
}

fn key_id(token: &str) -> &str {
    &token[3..15]
}

/// (method, route, status) of every audit entry `key` caused with `action`.
async fn audited(app: &TestApp, key: &str, action: &str) -> Vec<(String, String, u64)> {
    app.services
        .store
        .list_audit(None, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor_key_id == key_id(key) && e.action == action)
        .map(|e| {
            (
                e.detail["method"].as_str().unwrap_or_default().to_owned(),
                e.detail["route"].as_str().unwrap_or_default().to_owned(),
                e.detail["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Walks the route table: whatever an admin key does on any API route is in the audit trail,
/// found by method and route pattern, whether it succeeded or not.
#[tokio::test]
async fn every_route_a_finance_or_admin_key_uses_is_audited() {
    use counterfoil::http::API_ROUTES;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let payment = app.new_payment("CRM-AUDIT-WALK").await;
    let id = payment["id"].as_str().unwrap();
    let mut walked = 0;
    for (method, route) in API_ROUTES {
        if route.starts_with("/webhooks/") {
            // Called by providers with a signature, not by a key.
            continue;
        }
        let path = format!("/v1{}", route.replace("{id}", id));
        let request = match *method {
            "get" => app.client.get(app.url(&path)),
            "post" => app
                .client
                .post(app.url(&path))
                .header("Idempotency-Key", format!("walk-{walked}"))
                .json(&serde_json::json!({})),
            other => panic!("a {other} route: teach this test to call it"),
        };
        let response = request.bearer_auth(&app.admin_key).send().await.unwrap();
        let status = u64::from(response.status().as_u16());
        let pattern = format!("/v1{route}");
        assert!(
            audited(&app, &app.admin_key, "api.access")
                .await
                .contains(&(method.to_uppercase(), pattern.clone(), status)),
            "{method} {pattern} ({status}) by an admin key left no audit entry"
        );
        walked += 1;
    }
    assert!(walked >= 14, "the route table was walked");

    // Finance reads are recorded the same way; the CRM's own reads are not (it is the system the
    // data came from), but its creates are, as business events.
    assert_eq!(
        app.get(&format!("/v1/payments/{id}"), &app.finance_key)
            .await
            .status(),
        200
    );
    assert!(audited(&app, &app.finance_key, "api.access")
        .await
        .contains(&("GET".into(), "/v1/payments/{id}".into(), 200)));
    assert!(audited(&app, &app.crm_key, "api.access").await.is_empty());
    let created: Vec<_> = app
        .services
        .store
        .list_audit(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "payment.created" && e.subject == id)
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor_key_id, key_id(&app.crm_key));
}

/// A refusal for want of a role is recorded whoever was refused.
#[tokio::test]
async fn a_denied_request_is_audited() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.get("/v1/audit", &app.finance_key).await.status(), 403);
    assert_eq!(
        app.get("/v1/ledger?from=2026-01-01&to=2026-01-02", &app.crm_key)
            .await
            .status(),
        403
    );
    assert_eq!(
        audited(&app, &app.finance_key, "access.denied").await,
        vec![("GET".into(), "/v1/audit".into(), 403)]
    );
    assert_eq!(
        audited(&app, &app.crm_key, "access.denied").await,
        vec![("GET".into(), "/v1/ledger".into(), 403)]
    );
}
