//! Counterfoil as separate server processes (the real binary), for tests of several replicas and
//! of crashes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const WEBHOOK_SECRET: &str = "webhook_test_process_secret";

/// A config file for server processes sharing `database_url`, with refresh and polling off so
/// webhooks alone change payments.
pub fn write_config(dir: &Path, database_url: &str) -> PathBuf {
    write_config_with(dir, database_url, "")
}

/// The same, with more TOML appended (e.g. a `[notifications]` table).
pub fn write_config_with(dir: &Path, database_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("counterfoil.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[database]
url = "{database_url}"
max_connections = 4

[payments]
refresh_on_read = false

[poller]
enabled = false

[retention]
sweep = false

[rate_limits]
per_key_per_minute = 0
per_ip_per_minute = 0
per_webhook_account_per_minute = 0

[accounts.sandbox]
kind = "govuk_pay"
base_url = "simulator"
api_key = {{ value = "api_test_process_key" }}
webhook_secrets = [{{ value = "{WEBHOOK_SECRET}" }}]

[services.demo]
name = "Demo"
account = "sandbox"
fund_code = "F1"
cost_centre = "C1"
{extra}
"#
        ),
    )
    .unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct ServerProcess {
    child: Child,
    pub address: String,
}

impl ServerProcess {
    /// Starts `counterfoil serve` and waits until it answers /healthz.
    pub async fn start(config: &Path) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_counterfoil"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("COUNTERFOIL_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("COUNTERFOIL_SERVER__WORKERS", "2")
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the counterfoil binary starts");
        // Owned at once, so it is killed and reaped (Drop) however this ends.
        let mut server = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let health = client
                .get(format!("{}/healthz", server.address))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.kill();
        panic!("counterfoil did not start on {}", server.address);
    }

    /// SIGTERM, then waits up to `within` for the process to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = std::time::Instant::now() + within;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes a CRM key in the database the config names, with the real CLI.
pub fn crm_key(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_counterfoil"))
        .arg("--config")
        .arg(config)
        .args(["keys", "create", "--role", "crm", "--label", "replica test"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
