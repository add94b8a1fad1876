//! `TestApp`: the real application on a random port, with a fresh database of either backend and
//! the built-in simulator, plus typed helpers for the API and the simulator's control endpoints.

use std::sync::Arc;

use counterfoil::config::{
    AccountSettings, RateLimitSettings, SecretSource, ServiceSettings, Settings,
};
use counterfoil::domain::api_key::Role;
use counterfoil::service::{AppServices, Clock, SystemClock};
use counterfoil::startup::Application;
use reqwest::Response;
use serde_json::{json, Value};
use sqlx::Row;

use counterfoil::providers::govuk_pay::sign_webhook;

use crate::support::{logs, postgres};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub services: AppServices,
    pub db_url: String,
    pub crm_key: String,
    pub finance_key: String,
    pub admin_key: String,
    _dir: tempfile::TempDir,
}

/// A clock that stands still until the test moves it.
pub struct ManualClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        use chrono::SubsecRound;
        Arc::new(Self(std::sync::Mutex::new(
            chrono::Utc::now().trunc_subsecs(6),
        )))
    }

    pub fn at(at: chrono::DateTime<chrono::Utc>) -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(at)))
    }

    pub fn now_for_test(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }

    pub fn set(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.0.lock().unwrap() = at;
    }

    pub fn advance(&self, by: std::time::Duration) {
        *self.0.lock().unwrap() += chrono::Duration::from_std(by).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
}

/// A port nothing listens on, for a provider or a CRM that is down: bound for the whole run, never
/// listening, so connecting is refused and no test alongside can be given it (as one let go can).
pub fn closed_port() -> u16 {
    static CLOSED: std::sync::OnceLock<(tokio::net::TcpSocket, u16)> = std::sync::OnceLock::new();
    CLOSED
        .get_or_init(|| {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let port = socket.local_addr().unwrap().port();
            (socket, port)
        })
        .1
}

/// Who the audit trail says set a test up.
pub const TESTER: counterfoil::domain::Actor = counterfoil::domain::Actor::CommandLine("test");

/// Settings for a test: loopback, short provider timeouts, no refresh throttle, plus an `offline`
/// service whose provider account points at a closed port.
pub fn test_settings(db_url: &str) -> Settings {
    let mut settings = Settings::development_default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = Some(2);
    settings.database.url = db_url.into();
    settings.database.max_connections = 5;
    settings.payments.refresh_interval_seconds = 0;
    // Tests run poller and delivery rounds themselves (`poll_once`, `run_once`), never on a timer.
    settings.poller.enabled = false;
    settings.notifications.worker = false;
    // Tests sweep when they mean to (`data_protection.sweep`).
    settings.retention.sweep = false;
    // Tests build and post batches, and read payouts, when they mean to.
    settings.income.worker = false;
    // Tests fire bursts from one address with one key; the rate-limit tests turn limits on.
    settings.rate_limits = RateLimitSettings::OFF;
    for simulated in ["sandbox", "stripe-sandbox"] {
        let account = settings.accounts.get_mut(simulated).unwrap();
        account.connect_timeout_ms = 1_000;
        account.timeout_ms = 3_000;
    }
    settings.accounts.insert(
        "offline".into(),
        AccountSettings {
            kind: counterfoil::domain::ProviderKind::GovukPay,
            base_url: format!("http://127.0.0.1:{}", closed_port()),
            api_key: SecretSource::Value("api_test_offline".into()),
            webhook_secrets: vec![],
            connect_timeout_ms: 1_000,
            timeout_ms: 1_500,
            session_expiry_minutes: 90,
            redirect_hosts: Vec::new(),
        },
    );
    settings.services.insert(
        "offline".into(),
        ServiceSettings {
            name: "Service whose provider is down".into(),
            account: "offline".into(),
            fund_code: "F0".into(),
            cost_centre: "C0".into(),
            crm_url: None,
            two_person_threshold_pence: None,
            posting: None,
        },
    );
    settings
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_with_clock(backend, adjust, Arc::new(SystemClock)).await
    }

    /// With a clock the test controls (see [`ManualClock`]).
    pub async fn spawn_with_clock(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
        clock: Arc<dyn Clock>,
    ) -> Self {
        logs::install();
        let dir = tempfile::tempdir().unwrap();
        let db_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
            Backend::Postgres => postgres::fresh_database().await,
        };
        let mut settings = test_settings(&db_url);
        adjust(&mut settings);
        let settings = settings.validate().expect("valid test settings");
        let app = Application::build_with_clock(settings, clock)
            .await
            .expect("the app builds");
        let address = format!("http://{}", app.address());
        let services = app.services();
        tokio::spawn(app.run_until_stopped());
        let key = |role| {
            let services = services.clone();
            async move { services.keys.create(&TESTER, role, "test").await.unwrap().1 }
        };
        Self {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            crm_key: key(Role::Crm).await,
            finance_key: key(Role::Finance).await,
            admin_key: key(Role::Admin).await,
            services,
            db_url,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POST /v1/payments with the CRM key.
    pub async fn create_payment(&self, idempotency_key: &str, body: &Value) -> Response {
        self.client
            .post(self.url("/v1/payments"))
            .bearer_auth(&self.crm_key)
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a payment that must succeed and returns its JSON.
    pub async fn new_payment(&self, request_ref: &str) -> Value {
        let response = self
            .create_payment(
                &uuid::Uuid::new_v4().to_string(),
                &payment_body(request_ref),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_payment(&self, id: &str) -> Value {
        let response = self.get(&format!("/v1/payments/{id}"), &self.crm_key).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
    }

    /// Opens the hosted page (as a browser would) and presses one of its buttons.
    pub async fn press(&self, next_url: &str, button: &str) -> Response {
        let page = self.client.get(next_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let action = html
            .split("action=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .find(|action| action.ends_with(&format!("/{button}")))
            .unwrap_or_else(|| panic!("no {button} button on the page"));
        self.client.post(action).send().await.unwrap()
    }

    pub async fn simulator_faults(&self, faults: Value) {
        let response = self
            .client
            .post(self.url("/sandbox/govuk-pay/_control/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    /// Tells the simulator how to send its webhooks (mode, delay_ms, card_details, email).
    pub async fn simulator_webhooks(&self, control: Value) {
        let response = self
            .client
            .post(self.url("/sandbox/govuk-pay/_control/webhooks"))
            .json(&control)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    /// A simulator's control answer (`path` under the app, no key), as JSON.
    pub async fn control(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every payment the simulator holds.
    pub async fn simulator_payments(&self) -> Vec<Value> {
        let body = self.control("/sandbox/govuk-pay/_control/payments").await;
        body["payments"].as_array().unwrap().clone()
    }

    /// The test database, straight (no Counterfoil code in between).
    pub async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.db_url).await.unwrap()
    }

    /// Rows in a table, read straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let pool = self.raw().await;
        let n = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        n
    }

    /// Every (table, column) holding `needle` in any row, read through the store's own scanner
    /// (the one `pci-scan` uses) over every text column of every table.
    pub async fn columns_containing(&self, needle: &str) -> Vec<(String, String)> {
        let store = &self.services.store;
        let mut hits = Vec::new();
        for column in store
            .describe_schema()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.is_text)
        {
            let mut found = false;
            store
                .scan_text_column(&column, &mut |_, value| {
                    found |= contains_standalone(value, needle)
                })
                .await
                .unwrap();
            if found {
                hits.push((column.table, column.column));
            }
        }
        hits
    }

    /// The whole `/metrics` page.
    pub async fn metrics_page(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one series on `/metrics`, named with its labels exactly as exported
    /// (0 when the series does not exist yet).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_page().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.trim().parse().expect("a number"))
            .unwrap_or(0.0)
    }

    /// POSTs a GOV.UK Pay webhook body to `account`, signed with `secret` (or unsigned).
    pub async fn send_webhook(&self, account: &str, body: &str, secret: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/v1/webhooks/govuk-pay/{account}")))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header("Pay-Signature", sign_webhook(secret, body.as_bytes()));
        }
        request.send().await.unwrap()
    }

    /// The outbox's event types for one payment, oldest first.
    pub async fn outbox_for(&self, payment_id: &str) -> Vec<String> {
        let pool = self.raw().await;
        let rows = sqlx::query(
            "SELECT event_type FROM outbox WHERE payment_id = $1 ORDER BY created_at, id",
        )
        .bind(payment_id)
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Runs a statement straight against the test database (to plant or break things).
    pub async fn execute(&self, sql: &str) {
        self.try_execute(sql).await.unwrap();
    }

    /// Runs `sql` straight on the database; the database's refusal, if it refuses.
    pub async fn try_execute(&self, sql: &str) -> Result<(), String> {
        let pool = self.raw().await;
        let result = sqlx::query(sql).execute(&pool).await;
        pool.close().await;
        result.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Runs `counterfoil <args>` against this app's database; (exit code, stdout).
    pub fn command(&self, args: &[&str]) -> (i32, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_counterfoil"))
            .args(args)
            .env_remove("COUNTERFOIL_CONFIG")
            .env("DATABASE_URL", &self.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The payment's timeline as (from, to, source).
    pub async fn timeline(&self, id: &str) -> Vec<(Value, Value, Value)> {
        let events: Value = self
            .get(&format!("/v1/payments/{id}/events"), &self.crm_key)
            .await
            .json()
            .await
            .unwrap();
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["from"].clone(), e["to"].clone(), e["source"].clone()))
            .collect()
    }

    /// Waits (up to 10 s) until the payment has `status`, reading it as the CRM does.
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        for _ in 0..200 {
            let payment = self.get_payment(id).await;
            if payment["status"] == status {
                return payment;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "payment {id} never became {status}: {}",
            self.get_payment(id).await
        );
    }
}

/// `needle` in `haystack`; a needle of digits must stand alone, not glued to other letters or
/// digits (so a card's last four cannot "match" inside a timestamp, a latency, or a provider's
/// random id such as `ab5123cd…`, which once made the proof fail by chance).
pub fn contains_standalone(haystack: &str, needle: &str) -> bool {
    if !needle.bytes().all(|b| b.is_ascii_digit()) {
        return haystack.contains(needle);
    }
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].bytes().next_back();
        let after = haystack[at + needle.len()..].bytes().next();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    })
}

/// Log text without the numbers every line carries for timing (its leading timestamp, and
/// `elapsed`/`latency` fields), so short digit values such as a card's last four can be searched
/// for without matching a microsecond by chance. Everything a message says is kept.
pub fn without_timing(log: &str) -> String {
    log.lines()
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .filter(|token| {
                    !["elapsed=", "elapsed_secs=", "latency_ms="]
                        .iter()
                        .any(|p| token.starts_with(p))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sandbox account's webhook signing secret in the default settings.
pub const WEBHOOK_SECRET: &str = "webhook_test_counterfoil_simulator_secret";

/// A GOV.UK Pay webhook message (pay-webhooks' shape) for `provider_payment_id`.
pub fn govuk_message(
    message_id: &str,
    provider_payment_id: &str,
    event_type: &str,
    status: &str,
    code: Option<&str>,
) -> Value {
    let mut state = json!({"status": status, "finished": !matches!(status, "created" | "started" | "submitted" | "capturable")});
    if let Some(code) = code {
        state["code"] = json!(code);
    }
    json!({
        "webhook_message_id": message_id,
        "created_date": "2026-11-23T10:36:26.988Z",
        "resource_id": provider_payment_id,
        "api_version": 1,
        "resource_type": "payment",
        "event_type": event_type,
        "resource": {
            "payment_id": provider_payment_id, "amount": 2500, "reference": "CRM-X",
            "description": "Resident parking permit, zone B", "state": state,
            "payment_provider": "sandbox", "created_date": "2026-11-23T10:30:00.000Z",
            "language": "en", "delayed_capture": false, "moto": false
        }
    })
}

/// A valid create body.
pub fn payment_body(request_ref: &str) -> Value {
    json!({
        "request_ref": request_ref,
        "service": "demo",
        "amount": 2500,
        "description": "Resident parking permit, zone B",
        "return_url": "https://myaccount.example.gov.uk/requests/done",
        "email": "resident@example.org",
        "metadata": {"case": "A-1"}
    })
}

/// A random Visa-prefixed, Luhn-valid 16-digit number: a card number no fixture or other test uses.
pub fn fresh_test_pan() -> String {
    fresh_pan(&mut rand::thread_rng(), "4", 16)
}

/// A Luhn-valid number of `len` digits: `prefix`, random digits, then the check digit.
pub fn fresh_pan(rng: &mut impl rand::Rng, prefix: &str, len: usize) -> String {
    let mut digits: Vec<u8> = prefix
        .bytes()
        .map(|b| b - b'0')
        .chain((prefix.len()..len).map(|_| rng.gen_range(0..10)))
        .collect();
    // The check digit: the one of ten that passes Luhn.
    digits[len - 1] = (0..10)
        .find(|&d| {
            digits[len - 1] = d;
            counterfoil::domain::card_guard::luhn_valid(&digits)
        })
        .expect("one check digit fits");
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// Runs the same test body on SQLite and on PostgreSQL, as two tests named `<name>::sqlite` and
/// `<name>::postgres`.
#[macro_export]
macro_rules! both_stores {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await).await
                }
            }
        )*
    };
}

/// Runs a test body given the backend (for tests that spawn their app themselves), as two tests
/// named `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! each_backend {
    ($(async fn $name:ident($backend:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($backend: $crate::helpers::Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::helpers::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}
