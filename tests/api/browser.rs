//! The staff console in real Chromium: runs tests/browser/console_journeys.py and the casework and
//! income journeys it calls (Playwright driving Debian's chromium, oidc-provider-mock as the
//! identity provider, axe-core on every page).
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium` and `chromium-driver`; installed here when running
//! as root with apt-get, as `.ci/run` does) and python3 with venv; the Python tools are installed
//! into `target/browser-venv` from tests/browser/requirements.txt. Screenshots of every page go to
//! `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: could not start: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Debian's Chromium, installed when this is a Debian machine and we are root; otherwise the test
/// stops and says exactly what to install.
fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    let apt = Path::new("/usr/bin/apt-get").exists();
    if apt && is_root() {
        run(
            Command::new("apt-get").args(["update", "-qq"]),
            "apt-get update",
        );
        run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install chromium chromium-driver",
        );
        return;
    }
    panic!(
        "the console's browser tests need Debian's Chromium at {CHROMIUM}: \
         run `sudo apt-get install chromium chromium-driver` (or `.ci/run` as root, which installs it)"
    );
}

/// The Python tools in target/browser-venv, reinstalled when requirements.txt changes.
fn ensure_venv(project: &Path) -> PathBuf {
    let venv = project.join("target/browser-venv");
    let requirements = project.join("tests/browser/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/browser/requirements.txt");
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return venv;
    }
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv target/browser-venv (on Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install -r tests/browser/requirements.txt",
    );
    std::fs::write(&stamp, wanted).expect("write the virtualenv's stamp");
    venv
}

#[test]
fn console_journeys_in_real_chromium_by_keyboard_with_axe_on_every_page() {
    let project = project();
    ensure_chromium();
    let venv = ensure_venv(&project);
    let screenshots = project.join("target/console-screenshots");
    // Last run's pictures must not stand in for this run's.
    let _ = std::fs::remove_dir_all(&screenshots);
    let output = Command::new(venv.join("bin/python"))
        .arg(project.join("tests/browser/console_journeys.py"))
        .arg(env!("CARGO_BIN_EXE_counterfoil"))
        .arg(&screenshots)
        // Playwright drives Debian's Chromium; it must never try to fetch a browser of its own.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("start the browser journeys");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the console's browser journeys failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!("{stdout}");
    assert!(
        stdout.contains("checked") && stdout.contains("pages with axe-core"),
        "the journeys did not report their axe-core checks:\n{stdout}"
    );
    for page in [
        "dashboard",
        "payments",
        "payment",
        "payment-refund-error",
        "takings",
        "takings-day",
        "approvals",
        "forbidden",
        "no-access",
        "payments-found",
        "payments-error",
        "timed-out",
        "accessibility",
        "reconciliation",
        "reconciliation-run",
        "attention",
        "attention-viewer",
        "attention-settled",
        "resolve-error",
        "dashboard-attention",
        "data-protection",
        "subject",
        "erase-confirm",
        "subject-erased",
        "audit-trail",
        "access",
        "key-created",
        "revoke-key",
        "casework-forbidden",
        "income",
        "income-batch",
        "income-batch-imported",
        "income-months",
        "income-lock-confirm",
        "income-months-locked",
        "payouts",
        "payout",
        "income-viewer",
    ] {
        assert!(
            screenshots.join(format!("{page}.png")).exists(),
            "no screenshot of {page} in target/console-screenshots"
        );
    }
}
