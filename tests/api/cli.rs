//! The `counterfoil` command: key management, migrations, and configuration errors that name the
//! offending key.

use std::process::Command;

fn counterfoil(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_counterfoil"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("COUNTERFOIL_CONFIG")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("cli.db").display()),
        )
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = counterfoil(dir.path(), &["migrate"]);
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));

    let created = counterfoil(
        dir.path(),
        &[
            "keys",
            "create",
            "--role",
            "crm",
            "--label",
            "My Account portal",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let token = text(&created.stdout).trim().to_owned();
    assert!(
        token.starts_with("cf_") && token.len() == 3 + 12 + 1 + 40,
        "{token}"
    );
    let id = &token[3..15];

    let listed = text(&counterfoil(dir.path(), &["keys", "list"]).stdout);
    assert!(listed.contains(id) && listed.contains("crm") && listed.contains("My Account portal"));
    assert!(
        !listed.contains(&token[16..]),
        "the list never shows the key"
    );

    let revoked = counterfoil(dir.path(), &["keys", "revoke", id]);
    assert!(revoked.status.success());
    let again = counterfoil(dir.path(), &["keys", "revoke", id]);
    assert!(
        !again.status.success(),
        "revoking twice says there was nothing to revoke"
    );

    let bad_role = counterfoil(
        dir.path(),
        &["keys", "create", "--role", "root", "--label", "x"],
    );
    assert!(!bad_role.status.success());
}

#[test]
fn a_bad_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("counterfoil.toml");
    std::fs::write(&config, "[server]\nbind = \"not-an-address\"\n").unwrap();
    let out = counterfoil(
        dir.path(),
        &["--config", config.to_str().unwrap(), "migrate"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("server.bind"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(&config, "[database]\nmax_connections = \"many\"\n").unwrap();
    let out = counterfoil(
        dir.path(),
        &["--config", config.to_str().unwrap(), "migrate"],
    );
    assert!(
        text(&out.stderr).contains("max_connections"),
        "{}",
        text(&out.stderr)
    );

    let out = counterfoil(dir.path(), &["--config", "/no/such/file.toml", "migrate"]);
    assert!(text(&out.stderr).contains("/no/such/file.toml"));
}

#[test]
fn the_simulator_refuses_to_run_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_counterfoil"))
        .arg("serve")
        .current_dir(dir.path())
        .env("COUNTERFOIL_ENVIRONMENT", "production")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("p.db").display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("simulator") && stderr.contains("production"),
        "{stderr}"
    );
}

#[test]
fn reconcile_runs_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = counterfoil(
        dir.path(),
        &[
            "reconcile",
            "--account",
            "sandbox",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, text(&out.stderr));
    let run: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["status"], "completed");
    assert_eq!(run["requested_by"], "cli");

    let bad = counterfoil(
        dir.path(),
        &["reconcile", "--account", "nope", "--from", "x", "--to", "y"],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--account"),
        "{}",
        text(&bad.stderr)
    );
}

/// `counterfoil healthcheck` is what a container HEALTHCHECK runs (the image has no shell or curl).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_answers_for_the_server_on_this_host() {
    use crate::support::process::{write_config, ServerProcess};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("h.db").display()),
    );
    let mut server = ServerProcess::start(&config).await;
    let bind = server.address.trim_start_matches("http://").to_owned();
    let check = |bind: &str| {
        Command::new(env!("CARGO_BIN_EXE_counterfoil"))
            .arg("--config")
            .arg(&config)
            .arg("healthcheck")
            .env("COUNTERFOIL_SERVER__BIND", bind)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    assert!(check(&bind).status.success());
    // An unspecified address (a container's 0.0.0.0) is asked on loopback.
    let port = bind.rsplit(':').next().unwrap();
    assert!(check(&format!("0.0.0.0:{port}")).status.success());
    server.kill();
    let down = check(&bind);
    assert_eq!(down.status.code(), Some(1));
    assert!(text(&down.stderr).contains("no healthy answer"));
}

/// The configuration shipped in deploy/k8s is one Counterfoil accepts in production, given the
/// Secret's variables: a typo there would otherwise surface only in a cluster.
#[test]
fn the_kubernetes_configuration_is_accepted() {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/k8s/configmap.yaml"
    ))
    .unwrap();
    let toml: String = manifest
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("counterfoil.toml: |"))
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(toml.contains("environment = \"production\""));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("counterfoil.toml");
    std::fs::write(&config, toml).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = closed.local_addr().unwrap().to_string();
    drop(closed);
    let run = |with_secrets: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_counterfoil"));
        command
            .arg("--config")
            .arg(&config)
            .arg("healthcheck")
            .env("COUNTERFOIL_SERVER__ADMIN_BIND", &admin)
            .env_remove("COUNTERFOIL_CONFIG")
            .env_remove("DATABASE_URL")
            .env_remove("GOVUK_PAY_API_KEY")
            .env_remove("CONSOLE_SESSION_KEY");
        if with_secrets {
            command
                .env(
                    "DATABASE_URL",
                    "postgres://counterfoil@127.0.0.1:1/counterfoil",
                )
                .env("GOVUK_PAY_API_KEY", "api_live_example")
                .env("GOVUK_PAY_WEBHOOK_SECRET", "webhook_secret_example")
                .env(
                    "CRM_WEBHOOK_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                )
                .env("CONSOLE_SESSION_KEY", "k".repeat(64))
                .env("CONSOLE_OIDC_CLIENT_SECRET", "console-client-secret");
        }
        command.output().unwrap()
    };
    // Accepted: it gets as far as asking for a server that is not there (exit 1, not 2).
    let accepted = run(true);
    assert_eq!(
        accepted.status.code(),
        Some(1),
        "{}",
        text(&accepted.stderr)
    );
    assert!(text(&accepted.stderr).contains("no healthy answer"));
    // Without the Secret's variables it stops, naming what is missing.
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("GOVUK_PAY_API_KEY"),
        "{}",
        text(&refused.stderr)
    );
}

/// `counterfoil sign-out --subject S` ends every console session of that person at once.
#[tokio::test]
async fn a_person_is_signed_out_everywhere_from_the_command_line() {
    use counterfoil::domain::staff::{StaffMember, StaffRole};
    use counterfoil::service::staff_sessions::StaffSessionService;
    let dir = tempfile::tempdir().unwrap();
    assert!(counterfoil(dir.path(), &["migrate"]).status.success());
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let store = counterfoil::store::connect(&url, 1).await.unwrap();
    let sessions = StaffSessionService::new(
        store,
        std::sync::Arc::new(counterfoil::service::SystemClock),
    );
    let leaver = StaffMember {
        subject: "leaver".into(),
        name: "Lee Leaver".into(),
        roles: [StaffRole::Refunder].into_iter().collect(),
    };
    let now = chrono::Utc::now();
    let day = chrono::Duration::hours(24);
    sessions.begin(&leaver, "desk", now).await.unwrap();
    sessions.begin(&leaver, "laptop", now).await.unwrap();
    let out = counterfoil(dir.path(), &["sign-out", "--subject", "leaver"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "2 console session(s) ended");
    assert!(!sessions.check("desk", day, day).await.unwrap());
    assert!(!sessions.check("laptop", day, day).await.unwrap());
}
