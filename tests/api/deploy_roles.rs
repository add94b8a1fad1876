//! The shipped Kubernetes manifests run the service as an application role that cannot change
//! the audit trail: the migration Job connects as the schema's owner (from a Secret of its own)
//! and, with `migrate --grant-to`, gives the role the Deployment connects as only what the service
//! needs. Proved on PostgreSQL with the role names the manifests use.

/// The user name in a `postgres://user:password@…` URL.
fn url_user(url: &str) -> &str {
    url.split("://").nth(1).unwrap().split(':').next().unwrap()
}

/// `DATABASE_URL` of the Secret named `name` in the example Secrets.
fn secret_url<'a>(secrets: &'a str, name: &str) -> &'a str {
    let doc = secrets
        .split("\n---\n")
        .find(|d| d.contains(&format!("name: {name}\n")))
        .unwrap_or_else(|| panic!("no Secret {name}"));
    doc.lines()
        .find_map(|l| l.trim().strip_prefix("DATABASE_URL: "))
        .unwrap()
        .trim_matches('"')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_of_the_shipped_manifests_cannot_delete_an_audit_entry() {
    use sqlx::{Connection, PgConnection};
    let job = include_str!("../../deploy/k8s/migration-job.yaml");
    let deployment = include_str!("../../deploy/k8s/deployment.yaml");
    let secrets = include_str!("../../deploy/k8s/secret.example.yaml");

    // What the manifests say: the Job grants to a role, and the Deployment connects as it.
    let args = job
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: "))
        .unwrap();
    let granted = args
        .split("\"--grant-to\", \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        job.contains("name: counterfoil-migration-secrets"),
        "the Job's URL from its own Secret"
    );
    assert!(
        !deployment.contains("counterfoil-migration-secrets"),
        "the Deployment never mounts it"
    );
    assert!(deployment.contains("name: counterfoil-secrets"));
    let app_user = url_user(secret_url(secrets, "counterfoil-secrets"));
    let owner_user = url_user(secret_url(secrets, "counterfoil-migration-secrets"));
    assert_eq!(
        app_user, granted,
        "the Deployment connects as the role the Job grants to"
    );
    assert_ne!(app_user, owner_user, "two roles");

    // Done as the Job does it, with those names (made unique for this database server).
    let owner_url = crate::support::postgres::fresh_database().await;
    let role = format!("{granted}_{}_{}", std::process::id(), rand::random::<u32>());
    let mut owner = PgConnection::connect(&owner_url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN PASSWORD '{role}'"))
        .execute(&mut owner)
        .await
        .unwrap();
    let store = counterfoil::store::connect(&owner_url, 2).await.unwrap();
    store.migrate().await.unwrap();
    store.grant_application_role(&role).await.unwrap();
    assert!(store
        .grant_application_role("x; DROP TABLE audit_log")
        .await
        .is_err());

    let mut app_url = url::Url::parse(&owner_url).unwrap();
    app_url.set_username(&role).unwrap();
    app_url.set_password(Some(&role)).unwrap();
    let as_app = counterfoil::store::connect(app_url.as_str(), 2)
        .await
        .unwrap();
    as_app
        .append_audit(&counterfoil::store::AuditEntry {
            at: chrono::Utc::now(),
            actor_key_id: "system".into(),
            actor_label: "test".into(),
            action: "test.appended".into(),
            subject: "-".into(),
            detail: serde_json::json!({}),
        })
        .await
        .expect("the application role appends to the trail");
    let mut app = PgConnection::connect(app_url.as_str()).await.unwrap();
    for forbidden in [
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
        "UPDATE audit_log SET action = 'edited'",
        "TRUNCATE audit_log",
        "DELETE FROM audit_head",
    ] {
        assert!(
            sqlx::raw_sql(forbidden).execute(&mut app).await.is_err(),
            "the application role could: {forbidden}"
        );
    }
    drop(app);
    drop(as_app);
    let _ = sqlx::raw_sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .execute(&mut owner)
        .await;
}
