//! What deploy/ promises and the CI machine cannot build (no container daemon): the Dockerfile's
//! shape, read as text; and what production looks like from the outside (JSON log lines).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (op, rest) = l.split_once(' ').unwrap_or((l, ""));
            (op.to_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_image_caches_dependencies_and_runs_unprivileged_with_a_healthcheck() {
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("deploy/Dockerfile")).unwrap();
    let steps = instructions(&dockerfile);
    let position = |op: &str, needle: &str| {
        steps
            .iter()
            .position(|(o, rest)| o == op && rest.contains(needle))
            .unwrap_or_else(|| panic!("no {op} containing {needle:?}"))
    };
    let froms: Vec<_> = steps.iter().filter(|(op, _)| op == "FROM").collect();
    assert!(froms.len() >= 2, "multi-stage");
    let runtime = steps.iter().rposition(|(op, _)| op == "FROM").unwrap();
    // Dependencies are built from the manifests alone, before any source is copied.
    let manifests = position("COPY", "Cargo.lock");
    let deps_build = position("RUN", "cargo build --release --locked");
    let sources = position("COPY", "src");
    assert!(manifests < deps_build && deps_build < sources && sources < runtime);
    // The runtime stage: distroless, non-root, a healthcheck that needs no shell.
    assert!(steps[runtime].1.contains("distroless"));
    let user = &steps[position("USER", "")].1;
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(position("USER", "") > runtime);
    assert!(steps[position("HEALTHCHECK", "")]
        .1
        .contains("\"healthcheck\""));
    // Everything the build reads is copied in, and allowed through the .dockerignore.
    let ignore =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/Dockerfile.dockerignore")).unwrap();
    for input in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "migrations",
        "src",
        "openapi",
    ] {
        assert!(Path::new(ROOT).join(input).exists(), "{input}");
        assert!(
            steps.iter().any(|(op, rest)| op == "COPY"
                && !rest.starts_with("--from")
                && rest
                    .split_whitespace()
                    .any(|w| w.trim_end_matches('/') == input)),
            "{input} is not copied into the build"
        );
        assert!(
            ignore
                .lines()
                .any(|l| l.trim_end_matches('/') == format!("!{input}")),
            "{input} is excluded by the .dockerignore"
        );
    }
}

/// In production, every line the server writes is a JSON object with a level and a message.
#[test]
fn production_logs_are_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("counterfoil.toml");
    std::fs::write(
        &config,
        format!(
            r#"
environment = "production"
[server]
bind = "127.0.0.1:0"
[database]
url = "sqlite://{}"
allow_sqlite_in_production = true
[poller]
enabled = false
[accounts.main]
kind = "govuk_pay"
base_url = "https://127.0.0.1:9"
api_key = {{ env = "TEST_GOVUK_KEY" }}
[services.demo]
name = "Demo"
account = "main"
fund_code = "F1"
cost_centre = "C1"
[console]
enabled = false
"#,
            dir.path().join("p.db").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_counterfoil"))
        .arg("--config")
        .arg(&config)
        .env("TEST_GOVUK_KEY", "api_test_json_logs")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let started = Instant::now();
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let listening = line.contains("counterfoil is listening");
        lines.push(line);
        if listening || started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("counterfoil is listening")),
        "{lines:?}"
    );
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
}

/// The assessor's documents exist, name every retention setting (so a new one cannot be added
/// without saying what it does), and point at the evidence.
#[test]
fn the_compliance_documents_cover_every_retention_setting() {
    let read = |name: &str| {
        std::fs::read_to_string(Path::new(ROOT).join("deploy/compliance").join(name))
            .unwrap_or_else(|_| panic!("deploy/compliance/{name} is missing"))
    };
    let privacy = read("data-protection.md");
    let pci = read("pci-saq-a.md");
    let settings = serde_json::to_value(counterfoil::config::RetentionSettings::default()).unwrap();
    for key in settings.as_object().unwrap().keys() {
        assert!(
            privacy.contains(&format!("retention.{key}")),
            "data-protection.md does not mention retention.{key}"
        );
    }
    for promise in [
        "/v1/data-protection/erasures",
        "/v1/data-protection/exports",
        "audit verify",
    ] {
        assert!(privacy.contains(promise), "{promise}");
    }
    for evidence in [
        "pci-scan",
        "proof::no_card_data_from_any_webhook_is_kept_anywhere",
        "12.8.5",
    ] {
        assert!(pci.contains(evidence), "{evidence}");
    }
}
