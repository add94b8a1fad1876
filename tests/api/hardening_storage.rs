//! What a security officer found about stored data, each with the test that failed before its
//! fix: erasure that sticks (refunds and replays written after it), and the PostgreSQL role the
//! service runs as, which can only append to the audit trail.

use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

async fn paid(app: &TestApp, request_ref: &str) -> Value {
    let p = app.new_payment(request_ref).await;
    app.press(p["next_url"].as_str().unwrap(), "pay").await;
    app.wait_for_status(p["id"].as_str().unwrap(), "succeeded")
        .await
}

both_stores! {
    async fn an_erased_request_stays_erased_whatever_arrives_later(app) {
        let p = paid(&app, "CRM-ERASE-LATER").await;
        let id = p["id"].as_str().unwrap();
        let erase = || async {
            let response = app.client.post(app.url("/v1/data-protection/erasures"))
                .bearer_auth(&app.admin_key)
                .json(&json!({"request_ref": "CRM-ERASE-LATER"}))
                .send().await.unwrap();
            assert_eq!(response.status(), 200);
        };
        erase().await;
        // A refund asked for afterwards, its reason naming the citizen.
        let refund = || app.client.post(app.url(&format!("/v1/payments/{id}/refunds")))
            .bearer_auth(&app.finance_key)
            .header("Idempotency-Key", "refund-after-erasure")
            .json(&json!({"amount": 100, "reason": "Asked by Ottoline Quillfeather"}))
            .send();
        assert_eq!(refund().await.unwrap().status(), 201);
        assert!(app.columns_containing("Quillfeather").await.is_empty(), "pseudonymised as it was written");
        let replayed: Value = refund().await.unwrap().json().await.unwrap();
        assert_eq!(replayed["reason"], "[erased]", "a replay reads the row");
        // Repeating the erasure changes nothing and still holds.
        erase().await;
        assert!(app.columns_containing("Quillfeather").await.is_empty());
    }

    async fn a_refund_reason_written_before_erasure_but_kept_in_a_replay_is_caught_by_a_repeat(app) {
        let p = paid(&app, "CRM-ERASE-AGAIN").await;
        let id = p["id"].as_str().unwrap();
        let response = app.client.post(app.url(&format!("/v1/payments/{id}/refunds")))
            .bearer_auth(&app.finance_key)
            .header("Idempotency-Key", "refund-before-erasure")
            .json(&json!({"amount": 100, "reason": "Asked by Wilberforce Tumblesprout"}))
            .send().await.unwrap();
        assert_eq!(response.status(), 201);
        // An erasure that found nothing new to do (as if run before the refund arrived) still
        // reaches every refund and stored answer of the request.
        app.execute(&format!("UPDATE payments SET personal_erased_at = created_at WHERE id = '{id}'")).await;
        let response = app.client.post(app.url("/v1/data-protection/erasures"))
            .bearer_auth(&app.admin_key)
            .json(&json!({"request_ref": "CRM-ERASE-AGAIN"}))
            .send().await.unwrap();
        assert_eq!(response.status(), 200);
        let report: Value = response.json().await.unwrap();
        assert_eq!(report["refunds_pseudonymised"], 1, "{report}");
        assert!(app.columns_containing("Tumblesprout").await.is_empty());
    }

    async fn the_subject_export_holds_every_field_kept(app) {
        let mut body = crate::helpers::payment_body("CRM-EXPORT-ALL");
        body["email"] = json!("ottoline.export@quillfeather.example");
        body["return_url"] = json!("https://myaccount.example.gov.uk/requests/quillfeather-export");
        assert_eq!(app.create_payment("export-all", &body).await.status(), 201);
        for format in ["json", "csv"] {
            let exported = app.get(&format!("/v1/data-protection/exports?request_ref=CRM-EXPORT-ALL&format={format}"), &app.admin_key)
                .await.text().await.unwrap();
            assert!(exported.contains("ottoline.export@quillfeather.example"), "{format}: {exported}");
            assert!(exported.contains("quillfeather-export"), "{format}: the return URL");
        }
    }
}

/// The documented production setup on PostgreSQL: the schema owned by a migration role, the
/// service connected as an application role that can only append to the audit trail. Proved by
/// running the real service as that role, then trying, as it, everything it must not do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_application_role_can_only_append_to_the_audit_trail() {
    use sqlx::{Connection, PgConnection};
    let owner_url = crate::support::postgres::fresh_database().await;
    let owner_store = counterfoil::store::connect(&owner_url, 2).await.unwrap();
    owner_store.migrate().await.unwrap();
    let role = format!("cf_app_{}_{}", std::process::id(), rand::random::<u32>());
    let mut owner = PgConnection::connect(&owner_url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN PASSWORD '{role}'"))
        .execute(&mut owner)
        .await
        .expect("the test role may create roles (CREATEROLE)");
    let grants = include_str!("../../deploy/postgres/grants.sql").replace("counterfoil_app", &role);
    sqlx::raw_sql(&grants)
        .execute(&mut owner)
        .await
        .expect("the grants apply");
    let mut app_url = url::Url::parse(&owner_url).unwrap();
    app_url.set_username(&role).unwrap();
    app_url.set_password(Some(&role)).unwrap();
    let app_url = app_url.to_string();

    // The service runs as the application role, migrations off, and does its work.
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.database.url = app_url.clone();
        s.database.migrate_on_start = false;
    })
    .await;
    let p = paid(&app, "CRM-ROLES").await;
    let refund = app
        .client
        .post(app.url(&format!(
            "/v1/payments/{}/refunds",
            p["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.finance_key)
        .header("Idempotency-Key", "roles-refund")
        .json(&json!({"amount": 100, "reason": "Duplicate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 201);
    assert_eq!(
        app.get("/readyz", "").await.status(),
        200,
        "it can read which migrations ran"
    );
    let verified = app.services.audit.verify().await.unwrap();
    assert!(verified.intact() && verified.entries > 3, "{verified:?}");

    // Everything it must not do, as it.
    let mut as_app = PgConnection::connect(&app_url).await.unwrap();
    for forbidden in [
        "UPDATE audit_log SET action = 'edited'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TABLE audit_log",
        "CREATE TABLE shadow (id int)",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET last_seq = 0, last_hash = 'genesis'",
        // One place forward, but to no entry: checked after the statement (migration 0019).
        "UPDATE audit_head SET last_seq = last_seq + 1, last_hash = 'forged'",
        "INSERT INTO audit_log (at, actor_key_id, actor_label, action, subject) \
         VALUES (now(), 'x', 'x', 'outside.the.chain', '-')",
        "DELETE FROM _sqlx_migrations",
    ] {
        let refused = sqlx::raw_sql(forbidden).execute(&mut as_app).await;
        assert!(refused.is_err(), "the application role could: {forbidden}");
    }
    let verified = app.services.audit.verify().await.unwrap();
    assert!(verified.intact(), "{verified:?}");
    drop(as_app);
    drop(app);
    let _ = sqlx::raw_sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .execute(&mut owner)
        .await;
}

both_stores! {
    async fn a_row_outside_the_chain_is_refused_and_one_slipped_in_fails_verification(app) {
        app.new_payment("CRM-CHAIN").await;
        let outside = "INSERT INTO audit_log (at, actor_key_id, actor_label, action, subject, detail) \
                       VALUES ('2026-11-30T00:00:00Z', 'x', 'x', 'outside.the.chain', '-', '{}')";
        assert!(app.try_execute(outside).await.is_err(), "the database refuses it");
        assert!(app.services.audit.verify().await.unwrap().intact());
        // Slipped in behind the trigger: verify names it.
        let trigger = if app.db_url.starts_with("postgres") {
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_in_chain"
        } else {
            "DROP TRIGGER audit_log_in_chain"
        };
        app.execute(trigger).await;
        app.execute(outside).await;
        let verified = app.services.audit.verify().await.unwrap();
        assert!(!verified.intact(), "{verified:?}");
        assert!(verified.broken.unwrap().contains("outside the chain"));
    }

    async fn the_audit_trail_is_read_in_pages_to_its_end(app) {
        for n in 0..7 {
            app.new_payment(&format!("CRM-PAGE-{n}")).await;
        }
        let everything: Value = app.get("/v1/audit", &app.admin_key).await.json().await.unwrap();
        let total = everything["items"].as_array().unwrap().len();
        assert!(total >= 7, "{everything}");
        assert_eq!(everything["next_cursor"], Value::Null);
        let mut seen = Vec::new();
        let mut path = "/v1/audit?limit=3".to_owned();
        loop {
            let page: Value = app.get(&path, &app.admin_key).await.json().await.unwrap();
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 3);
            seen.extend(items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/audit?limit=3&cursor={cursor}"),
                None => break,
            }
        }
        // The pages hold every entry there was at the start, in order (reading is audited too,
        // so more follow).
        assert_eq!(&seen[..total], &everything["items"].as_array().unwrap()[..]);
        let bad = app.get("/v1/audit?cursor=12345", &app.admin_key).await;
        assert_eq!(bad.status(), 422);
    }
}
