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
