//! Settings: a TOML file plus `COUNTERFOIL_*` (and `DATABASE_URL`) environment overrides, with
//! defaults that run the whole service on SQLite and the built-in GOV.UK Pay simulator.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::ServiceCode;

/// The base URL that points an account at the built-in simulator.
pub const SIMULATOR_BASE_URL: &str = "simulator";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

/// Everything the service reads at start-up. Every key is documented in `deploy/counterfoil.example.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub payments: PaymentSettings,
    #[serde(default)]
    pub poller: PollerSettings,
    #[serde(default)]
    pub notifications: NotificationSettings,
    #[serde(default)]
    pub reconciliation: ReconciliationSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    /// Provider accounts by name. When none is configured, one `sandbox` account on the simulator.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountSettings>,
    /// Council services by code. When none is configured, one `demo` service on `sandbox`.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// How the outside world reaches this service (used for simulator links). Defaults to
    /// `http://{bind}`.
    pub public_url: Option<String>,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// On SIGTERM/SIGINT, how long in-flight requests and deliveries get to finish.
    pub shutdown_deadline_seconds: u64,
    /// A second address for `/metrics` (with `/healthz` and `/readyz`), kept off the public
    /// port. Without it, `/metrics` is served on `bind`.
    pub admin_bind: Option<String>,
    /// Serve HTTPS on `bind` from these PEM files; without it, TLS ends at the ingress.
    pub tls: Option<TlsSettings>,
    /// How many proxies in front of Counterfoil append the address they saw to
    /// `X-Forwarded-For`: the client (for per-address limits) is the entry the outermost of them
    /// added. 0: the header is ignored and the client is the peer.
    pub trusted_proxies: usize,
    /// Older name for `trusted_proxies = 1`.
    pub trust_forwarded_for: bool,
    /// How long a webhook's body may take to arrive before it is cut off (408).
    pub webhook_body_deadline_seconds: u64,
    /// How many webhook bodies are read at once; beyond it, 503 with Retry-After.
    pub webhook_bodies_at_once: usize,
}

impl ServerSettings {
    /// How many proxies' `X-Forwarded-For` entries are trusted.
    pub fn trusted_proxy_count(&self) -> usize {
        match (self.trusted_proxies, self.trust_forwarded_for) {
            (0, true) => 1,
            (n, _) => n,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// How long personal data and payment records are kept (the councils' privacy notices).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Run the retention sweep in this process (one server at a time holds its lease).
    pub sweep: bool,
    /// Days after a payment is final before its personal fields (email, description, metadata
    /// values, return URL, refund reasons) are pseudonymised.
    pub personal_data_days: u32,
    /// Whole years after the end of a payment's financial year (31 March) before its record is
    /// removed, keeping only daily totals per service and fund.
    pub keep_years_after_financial_year: u32,
    /// How often the sweep runs.
    pub sweep_interval_seconds: u64,
    /// Payments handled per transaction.
    pub batch_size: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            sweep: true,
            personal_data_days: 90,
            keep_years_after_financial_year: 6,
            sweep_interval_seconds: 3_600,
            batch_size: 500,
        }
    }
}

/// Traces: exported over OTLP/HTTP (protobuf) when an endpoint is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// e.g. `http://otel-collector:4318/v1/traces`; none means no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` on every span.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "counterfoil".into(),
        }
    }
}

/// Requests per minute allowed before 429 (0 turns a limit off). Each limit is a token bucket
/// that allows a burst of a sixth of its minute's worth (at least 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Per API key, across the whole API.
    pub per_key_per_minute: u32,
    /// Per client address, across the whole API (webhooks excepted).
    pub per_ip_per_minute: u32,
    /// Per provider account, on its webhook endpoint.
    pub per_webhook_account_per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_key_per_minute: 600,
            per_ip_per_minute: 1_200,
            per_webhook_account_per_minute: 6_000,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            workers: None,
            shutdown_deadline_seconds: 30,
            admin_bind: None,
            tls: None,
            trusted_proxies: 0,
            trust_forwarded_for: false,
            webhook_body_deadline_seconds: 10,
            webhook_bodies_at_once: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` for production, `sqlite://path` for the embedded default.
    pub url: String,
    pub max_connections: u32,
    /// Apply pending migrations at start-up (`counterfoil migrate` does it on demand).
    pub migrate_on_start: bool,
    /// SQLite in production only when this says so: one file on one machine, with no replicas
    /// and no separate migration role (see deploy/postgres/grants.sql).
    pub allow_sqlite_in_production: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/counterfoil.db".into(),
            max_connections: 10,
            migrate_on_start: true,
            allow_sqlite_in_production: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSettings {
    /// A GET of a payment that is not final asks the provider again at most this often.
    pub refresh_interval_seconds: u64,
    /// Turn the on-read refresh off entirely (webhooks and polling then carry all news).
    pub refresh_on_read: bool,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            refresh_interval_seconds: 2,
            refresh_on_read: true,
        }
    }
}

/// The mop-up poller: asks the provider about payments that are still not final well after the
/// payer's window, in case their webhook was lost, and resolves lost creates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollerSettings {
    pub enabled: bool,
    pub interval_seconds: u64,
    /// GOV.UK Pay gives the payer 90 minutes; poll only payments older than this.
    pub min_age_minutes: u64,
    pub batch_size: u32,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 900,
            min_age_minutes: 95,
            batch_size: 100,
        }
    }
}

/// The nightly reconciliation: each listed account, for the previous Europe/London day.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconciliationSettings {
    /// Provider accounts to reconcile every night (none by default).
    pub nightly_accounts: Vec<String>,
    /// The London hour (0-23) at which to reconcile the day before; late enough for the
    /// provider's search to have caught up.
    pub nightly_hour: u32,
}

impl Default for ReconciliationSettings {
    fn default() -> Self {
        Self {
            nightly_accounts: Vec::new(),
            nightly_hour: 2,
        }
    }
}

/// Signed notifications to the CRM (Standard Webhooks), delivered from the outbox with retries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Run the delivery worker in this process.
    pub worker: bool,
    /// Where notifications go when a service names no `crm_url` of its own.
    pub default_url: Option<String>,
    /// `whsec_…` signing secrets: one, or two while rotating (each signs every message).
    pub secrets: Vec<SecretSource>,
    /// How long the CRM has to answer one delivery.
    pub timeout_seconds: u64,
    /// Waits between attempts (jittered by up to 10%); after the last, the notification is dead.
    pub retry_schedule_seconds: Vec<u64>,
    /// How often an idle worker looks for due notifications.
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    /// How long a leased notification is left to the server that leased it (more than the timeout).
    pub lease_seconds: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            worker: true,
            default_url: None,
            secrets: Vec::new(),
            timeout_seconds: 15,
            retry_schedule_seconds: vec![5, 300, 1_800, 7_200, 18_000, 36_000, 36_000],
            poll_interval_ms: 1_000,
            batch_size: 50,
            lease_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    GovukPay,
    Stripe,
}

impl AccountKind {
    /// The provider an account of this kind talks to.
    pub fn provider(self) -> crate::domain::ProviderKind {
        match self {
            Self::GovukPay => crate::domain::ProviderKind::GovukPay,
            Self::Stripe => crate::domain::ProviderKind::Stripe,
        }
    }

    /// Where this kind of provider sends citizens to pay, when the account names no hosts.
    pub fn default_redirect_hosts(self) -> &'static [&'static str] {
        match self {
            Self::GovukPay => &["card.payments.service.gov.uk"],
            Self::Stripe => &["checkout.stripe.com"],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub kind: AccountKind,
    /// The provider's API base URL, or `simulator` for the built-in one.
    pub base_url: String,
    pub api_key: SecretSource,
    /// One secret, or two while rotating.
    #[serde(default)]
    pub webhook_secrets: Vec<SecretSource>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Stripe only: how long a Checkout Session stays open (30 to 1440 minutes).
    #[serde(default = "default_session_expiry_minutes")]
    pub session_expiry_minutes: u32,
    /// Hosts the provider's payment page may be on; a `next_url` anywhere else is refused.
    /// Default: the provider's own (card.payments.service.gov.uk, checkout.stripe.com), or this
    /// server's host for the built-in simulators.
    #[serde(default)]
    pub redirect_hosts: Vec<String>,
}

fn default_session_expiry_minutes() -> u32 {
    90
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub name: String,
    pub account: String,
    pub fund_code: String,
    pub cost_centre: String,
    /// Where this service's CRM notifications go (else `notifications.default_url`).
    #[serde(default)]
    pub crm_url: Option<String>,
}

/// Where a secret comes from. Secrets are never written inline in production, never printed.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// `{ env = "GOVUK_PAY_API_KEY" }`
    Env(String),
    /// `{ file = "/run/secrets/govuk_pay_api_key" }` (trailing newline trimmed)
    File(PathBuf),
    /// `{ value = "…" }`: development only, refused when `environment = "production"`.
    Value(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Value(_) => f.write_str("value:[redacted]"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        const EXPECTED: &str =
            "a table: { env = \"NAME\" }, { file = \"/path\" } or, in development only, { value = \"...\" }";

        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            // Never echo what was given: it may be the secret itself.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "a secret may not be written as a bare string; use {EXPECTED}"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found: Option<SecretSource> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let source = match key.as_str() {
                        "env" => SecretSource::Env(value),
                        "file" => SecretSource::File(value.into()),
                        "value" => SecretSource::Value(value),
                        _ => return Err(de::Error::custom(format!("expected {EXPECTED}"))),
                    };
                    if found.replace(source).is_some() {
                        return Err(de::Error::custom(format!("give exactly one of {EXPECTED}")));
                    }
                }
                found.ok_or_else(|| de::Error::custom(format!("expected {EXPECTED}")))
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

impl SecretSource {
    /// Reads the secret. Errors name the variable or file, never the content.
    pub fn resolve(&self) -> Result<SecretString, String> {
        let value = match self {
            Self::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            Self::Value(value) => value.clone(),
        };
        if value.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(SecretString::from(value))
    }
}

/// A configuration problem, naming the key it concerns.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads defaults, then the file (if any), then the environment; then checks the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::bare()));
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(
                Env::prefixed("COUNTERFOIL_")
                    .split("__")
                    .ignore(&["config"]),
            )
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            );
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError(describe_figment_error(e)))?;
        settings.with_default_accounts().validate()
    }

    /// Built-in defaults with no accounts or services (so a file's own accounts replace, not extend).
    fn bare() -> Self {
        Self {
            environment: Environment::default(),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            payments: PaymentSettings::default(),
            poller: PollerSettings::default(),
            notifications: NotificationSettings::default(),
            reconciliation: ReconciliationSettings::default(),
            retention: RetentionSettings::default(),
            telemetry: TelemetrySettings::default(),
            rate_limits: RateLimitSettings::default(),
            accounts: BTreeMap::new(),
            services: BTreeMap::new(),
        }
    }

    /// The settings `cargo run` uses with no file: one simulated GOV.UK Pay account and a demo service.
    pub fn development_default() -> Self {
        Self::bare().with_default_accounts()
    }

    fn with_default_accounts(mut self) -> Self {
        if self.accounts.is_empty() && self.services.is_empty() {
            self.accounts.insert(
                "sandbox".into(),
                AccountSettings {
                    kind: AccountKind::GovukPay,
                    base_url: SIMULATOR_BASE_URL.into(),
                    api_key: SecretSource::Value("api_test_counterfoil_simulator_key".into()),
                    webhook_secrets: vec![SecretSource::Value(
                        "webhook_test_counterfoil_simulator_secret".into(),
                    )],
                    connect_timeout_ms: default_connect_timeout_ms(),
                    timeout_ms: default_timeout_ms(),
                    session_expiry_minutes: default_session_expiry_minutes(),
                    redirect_hosts: Vec::new(),
                },
            );
            self.accounts.insert(
                "stripe-sandbox".into(),
                AccountSettings {
                    kind: AccountKind::Stripe,
                    base_url: SIMULATOR_BASE_URL.into(),
                    api_key: SecretSource::Value("sk_test_counterfoil_simulator_key".into()),
                    webhook_secrets: vec![SecretSource::Value(
                        "whsec_counterfoil_simulator_secret".into(),
                    )],
                    connect_timeout_ms: default_connect_timeout_ms(),
                    timeout_ms: default_timeout_ms(),
                    session_expiry_minutes: default_session_expiry_minutes(),
                    redirect_hosts: Vec::new(),
                },
            );
            self.services.insert(
                "demo".into(),
                ServiceSettings {
                    name: "Demo service".into(),
                    account: "sandbox".into(),
                    fund_code: "DEMO".into(),
                    cost_centre: "CC000".into(),
                    crm_url: None,
                },
            );
            self.services.insert(
                "demo-stripe".into(),
                ServiceSettings {
                    name: "Demo service on Stripe".into(),
                    account: "stripe-sandbox".into(),
                    fund_code: "DEMO".into(),
                    cost_centre: "CC001".into(),
                    crm_url: None,
                },
            );
        }
        self
    }

    /// Cross-field checks that serde cannot make. Each message names the key.
    pub fn validate(self) -> Result<Self, ConfigError> {
        let production = self.environment == Environment::Production;
        let err = |key: String, msg: &str| Err(ConfigError(format!("{key}: {msg}")));
        if self.server.webhook_body_deadline_seconds == 0 || self.server.webhook_bodies_at_once == 0
        {
            return err(
                "server.webhook_body_deadline_seconds".into(),
                "the webhook body deadline and webhook_bodies_at_once must be above zero",
            );
        }

        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return err(
                "server.bind".into(),
                "must be an address and port, e.g. 0.0.0.0:8080",
            );
        }
        if let Some(public) = &self.server.public_url {
            match url::Url::parse(public) {
                Ok(u) if u.scheme() == "https" || (!production && u.scheme() == "http") => {}
                _ => return err("server.public_url".into(), "must be an absolute https URL"),
            }
        }
        let db = &self.database.url;
        if !(db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("sqlite:"))
        {
            return err(
                "database.url".into(),
                "must start with postgres:// or sqlite: (e.g. sqlite://data/counterfoil.db)",
            );
        }
        if let Some(admin) = &self.server.admin_bind {
            if admin.parse::<std::net::SocketAddr>().is_err() {
                return err(
                    "server.admin_bind".into(),
                    "must be an address and port, e.g. 0.0.0.0:9090",
                );
            }
        }
        if let Some(tls) = &self.server.tls {
            for (key, path) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
                if !path.is_file() {
                    return err(
                        format!("server.tls.{key}"),
                        &format!("{} is not a readable file", path.display()),
                    );
                }
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            if !matches!(url::Url::parse(endpoint), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
            {
                return err(
                    "telemetry.otlp_endpoint".into(),
                    "must be an http(s) URL, e.g. http://otel-collector:4318/v1/traces",
                );
            }
        }
        if self.retention.personal_data_days == 0 {
            return err(
                "retention.personal_data_days".into(),
                "must be at least 1 (refunds and disputes need the payment's details for a while)",
            );
        }
        if self.retention.sweep_interval_seconds == 0 || self.retention.batch_size == 0 {
            return err(
                "retention.sweep_interval_seconds".into(),
                "interval and batch size must be above zero",
            );
        }
        if self.database.max_connections == 0 {
            return err("database.max_connections".into(), "must be at least 1");
        }
        if self.poller.interval_seconds == 0 || self.poller.batch_size == 0 {
            return err(
                "poller.interval_seconds".into(),
                "interval and batch size must be above zero",
            );
        }
        if self.accounts.is_empty() {
            return err("accounts".into(), "at least one provider account is needed");
        }
        for (name, account) in &self.accounts {
            let key = format!("accounts.{name}");
            if ServiceCode::parse(name).is_err() {
                return err(key, "account names are lowercase letters, digits, _ and -");
            }
            if account.base_url == SIMULATOR_BASE_URL {
                if production {
                    return err(
                        format!("{key}.base_url"),
                        "the built-in simulator may not run when environment = \"production\"",
                    );
                }
                if self.server.tls.is_some() {
                    return err(
                        format!("{key}.base_url"),
                        "the built-in simulator is reached over plain HTTP on loopback; turn server.tls off to use it",
                    );
                }
            } else {
                match url::Url::parse(&account.base_url) {
                    Ok(u) if u.scheme() == "https" || (!production && u.scheme() == "http") => {}
                    _ => {
                        return err(
                            format!("{key}.base_url"),
                            "must be an https URL, or \"simulator\" outside production",
                        )
                    }
                }
            }
            let secrets = std::iter::once(("api_key".to_string(), &account.api_key)).chain(
                account
                    .webhook_secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("webhook_secrets[{i}]"), s)),
            );
            for (field, source) in secrets {
                if production && matches!(source, SecretSource::Value(_)) {
                    return err(
                        format!("{key}.{field}"),
                        "inline secret values are refused in production; use { env = ... } or { file = ... }",
                    );
                }
                if let Err(why) = source.resolve() {
                    return err(format!("{key}.{field}"), &why);
                }
            }
            if account.webhook_secrets.len() > 2 {
                return err(
                    format!("{key}.webhook_secrets"),
                    "at most two secrets (the current one and, while rotating, the next)",
                );
            }
            if account.timeout_ms == 0 || account.connect_timeout_ms == 0 {
                return err(format!("{key}.timeout_ms"), "timeouts must be above zero");
            }
            if !(30..=1440).contains(&account.session_expiry_minutes) {
                return err(
                    format!("{key}.session_expiry_minutes"),
                    "Stripe keeps a Checkout Session open for 30 minutes to 24 hours",
                );
            }
            if let Some(bad) = account
                .redirect_hosts
                .iter()
                .position(|h| h.is_empty() || h.contains('/') || h.contains(':'))
            {
                return err(
                    format!("{key}.redirect_hosts[{bad}]"),
                    "is not a host name (e.g. checkout.stripe.com)",
                );
            }
        }
        let notifications = &self.notifications;
        let crm_urls = std::iter::once((
            "notifications.default_url".to_string(),
            &notifications.default_url,
        ))
        .chain(
            self.services
                .iter()
                .map(|(code, s)| (format!("services.{code}.crm_url"), &s.crm_url)),
        );
        for (key, url) in crm_urls {
            if let Some(url) = url {
                match url::Url::parse(url) {
                    Ok(u) if u.scheme() == "https" || (!production && u.scheme() == "http") => {}
                    _ => return err(key, "must be an https URL (http only outside production)"),
                }
            }
        }
        if notifications.secrets.len() > 2 {
            return err(
                "notifications.secrets".into(),
                "at most two secrets (the current one and, while rotating, the next)",
            );
        }
        for (i, source) in notifications.secrets.iter().enumerate() {
            let key = format!("notifications.secrets[{i}]");
            if production && matches!(source, SecretSource::Value(_)) {
                return err(key, "inline secret values are refused in production; use { env = ... } or { file = ... }");
            }
            let secret = source
                .resolve()
                .map_err(|why| ConfigError(format!("{key}: {why}")))?;
            if let Err(why) = crate::domain::standard_webhooks::secret_key(secret.expose_secret()) {
                return err(key, &why.to_string());
            }
        }
        let wants_delivery = notifications.default_url.is_some()
            || self.services.values().any(|s| s.crm_url.is_some());
        if wants_delivery && notifications.secrets.is_empty() {
            return err(
                "notifications.secrets".into(),
                "a CRM URL is configured, so a whsec_ signing secret is needed",
            );
        }
        if notifications.timeout_seconds == 0
            || notifications.batch_size == 0
            || notifications.poll_interval_ms == 0
            || notifications.lease_seconds <= notifications.timeout_seconds
        {
            return err(
                "notifications".into(),
                "timeout, batch size and poll interval must be above zero, and lease_seconds above timeout_seconds",
            );
        }
        for account in &self.reconciliation.nightly_accounts {
            if !self.accounts.contains_key(account) {
                return err(
                    "reconciliation.nightly_accounts".into(),
                    &format!("no provider account named {account}"),
                );
            }
        }
        if self.reconciliation.nightly_hour > 23 {
            return err(
                "reconciliation.nightly_hour".into(),
                "must be an hour, 0 to 23",
            );
        }
        if self.services.is_empty() {
            return err("services".into(), "at least one service is needed");
        }
        for (code, service) in &self.services {
            let key = format!("services.{code}");
            if ServiceCode::parse(code).is_err() {
                return err(
                    key,
                    "service codes are 1 to 64 of lowercase letters, digits, _ and -",
                );
            }
            if !self.accounts.contains_key(&service.account) {
                let known: Vec<_> = self.accounts.keys().cloned().collect();
                return err(
                    format!("{key}.account"),
                    &format!(
                        "no provider account of that name (configured: {})",
                        known.join(", ")
                    ),
                );
            }
            for (field, value) in [
                ("name", &service.name),
                ("fund_code", &service.fund_code),
                ("cost_centre", &service.cost_centre),
            ] {
                if value.trim().is_empty() {
                    return err(format!("{key}.{field}"), "must not be empty");
                }
            }
        }
        // Last, so that a more particular problem is named first.
        if production
            && self.database.url.starts_with("sqlite:")
            && !self.database.allow_sqlite_in_production
        {
            return err(
                "database.url".into(),
                "production runs on PostgreSQL; SQLite needs database.allow_sqlite_in_production = true",
            );
        }
        Ok(self)
    }

    pub fn uses_simulator(&self) -> bool {
        self.accounts
            .values()
            .any(|a| a.base_url == SIMULATOR_BASE_URL)
    }

    /// The externally visible base URL of this service.
    pub fn public_url(&self, bound: std::net::SocketAddr) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| {
                let scheme = if self.server.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{bound}")
            })
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Each problem by key path, what was wrong and where it came from (file or environment
/// variable), never the value found: it may be a secret written in the wrong place.
fn describe_figment_error(error: figment::Error) -> String {
    use figment::error::{Actual, Kind};
    let type_of = |actual: &Actual| match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "something else",
    };
    error
        .into_iter()
        .map(|e| {
            let what = match &e.kind {
                Kind::Message(message) => message.clone(),
                Kind::InvalidType(actual, expected) => {
                    format!("expected {expected}, found {}", type_of(actual))
                }
                Kind::InvalidValue(_, expected) => format!("expected {expected}"),
                Kind::InvalidLength(n, expected) => format!("{n} items, expected {expected}"),
                Kind::UnknownVariant(_, expected) => {
                    format!("expected one of {}", expected.join(", "))
                }
                Kind::UnknownField(name, _) => format!("unknown key `{name}`"),
                Kind::MissingField(name) => format!("missing key `{name}`"),
                Kind::DuplicateField(name) => format!("`{name}` given twice"),
                _ => "cannot be read".to_owned(),
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            format!("{}: {what}{source}", e.path.join("."))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compares two secrets without leaking timing (used for the simulator's API key check).
pub fn secret_eq(a: &SecretString, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.expose_secret().as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(Settings::bare()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError(describe_figment_error(e)))?;
        settings.with_default_accounts().validate()
    }

    #[test]
    fn a_value_that_cannot_be_read_is_named_by_its_key_never_shown() {
        for toml in [
            "[accounts.sandbox]\napi_key = 918273645546372819\n",
            "[server]\nworkers = \"s3cret-not-a-number\"\n",
            "environment = \"s3cret-not-an-environment\"\n",
            "[accounts.sandbox]\nredirect_hosts = [\"s3cret/x\"]\n",
        ] {
            let message = from_toml(toml).unwrap_err().0;
            assert!(
                !message.contains("s3cret") && !message.contains("9182736"),
                "{message}"
            );
            assert!(
                message.contains('.') || message.contains("environment"),
                "names the key: {message}"
            );
        }
    }

    #[test]
    fn sqlite_in_production_needs_saying_so() {
        let production = |allow: bool| {
            format!(
                "environment = \"production\"\n\
                 [database]\nurl = \"sqlite://x.db\"\nallow_sqlite_in_production = {allow}\n\
                 [accounts.main]\nkind = \"govuk_pay\"\n\
                 base_url = \"https://publicapi.payments.service.gov.uk\"\n\
                 api_key = {{ env = \"PATH\" }}\n\
                 [services.demo]\nname = \"Demo\"\naccount = \"main\"\n\
                 fund_code = \"F1\"\ncost_centre = \"C1\"\n"
            )
        };
        let refused = from_toml(&production(false)).unwrap_err().0;
        assert!(refused.contains("allow_sqlite_in_production"), "{refused}");
        from_toml(&production(true)).expect("said so");
    }

    #[test]
    fn no_file_gives_a_runnable_development_setup() {
        let s = Settings::development_default().validate().unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert!(s.database.url.starts_with("sqlite:"));
        assert!(s.uses_simulator());
        assert_eq!(s.services["demo"].account, "sandbox");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = from_toml("[server]\nbnid = \"x\"").unwrap_err().to_string();
        assert!(e.contains("bnid"), "{e}");
    }

    #[test]
    fn a_service_naming_a_missing_account_is_named() {
        let e = from_toml(
            r#"
            [accounts.main]
            kind = "govuk_pay"
            base_url = "simulator"
            api_key = { value = "k" }
            [services.parking]
            name = "Parking"
            account = "mian"
            fund_code = "F1"
            cost_centre = "C1"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("services.parking.account"), "{e}");
    }

    #[test]
    fn production_refuses_the_simulator_and_inline_secrets() {
        let sim = from_toml("environment = \"production\"")
            .unwrap_err()
            .to_string();
        assert!(sim.contains("accounts.sandbox.base_url"), "{sim}");
        let inline = from_toml(
            r#"
            environment = "production"
            [accounts.main]
            kind = "govuk_pay"
            base_url = "https://publicapi.payments.service.gov.uk"
            api_key = { value = "api_live_x" }
            [services.parking]
            name = "Parking"
            account = "main"
            fund_code = "F1"
            cost_centre = "C1"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(inline.contains("accounts.main.api_key"), "{inline}");
        assert!(!inline.contains("api_live_x"), "{inline}");
    }

    #[test]
    fn a_bare_string_secret_is_refused_without_being_echoed() {
        let e = from_toml(
            r#"
            [accounts.main]
            kind = "govuk_pay"
            base_url = "simulator"
            api_key = "api_live_supersecret"
            [services.parking]
            name = "Parking"
            account = "main"
            fund_code = "F1"
            cost_centre = "C1"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("api_key"), "{e}");
        assert!(!e.contains("supersecret"), "{e}");
    }

    #[test]
    fn the_example_file_names_only_real_settings() {
        let text = include_str!("../deploy/counterfoil.example.toml");
        let parsed: Result<Settings, _> = Figment::from(Serialized::defaults(Settings::bare()))
            .merge(Toml::string(text))
            .extract();
        let settings = parsed.unwrap_or_else(|e| panic!("{}", describe_figment_error(e)));
        assert_eq!(settings.services["parking-permits"].account, "parking");
        assert_eq!(
            settings.notifications.retry_schedule_seconds,
            NotificationSettings::default().retry_schedule_seconds
        );
    }

    #[test]
    fn crm_urls_must_be_https_in_production_and_need_a_secret() {
        let e = from_toml("[notifications]\ndefault_url = \"http://crm.example.gov.uk/events\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("notifications.secrets"),
            "a URL without a secret: {e}"
        );
        let e = from_toml(
            r#"
            environment = "production"
            [notifications]
            default_url = "http://crm.example.gov.uk/events"
            [accounts.main]
            kind = "govuk_pay"
            base_url = "https://publicapi.payments.service.gov.uk"
            api_key = { env = "PATH" }
            [services.parking]
            name = "Parking"
            account = "main"
            fund_code = "F1"
            cost_centre = "C1"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("notifications.default_url"), "{e}");
        let e = from_toml("[notifications]\nsecrets = [{ value = \"not-a-whsec\" }]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("notifications.secrets[0]") && e.contains("whsec_"),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_files_and_missing_env_vars_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "api_test_fromfile\n").unwrap();
        let source = SecretSource::File(file);
        assert_eq!(
            source.resolve().unwrap().expose_secret(),
            "api_test_fromfile"
        );
        let missing = SecretSource::Env("COUNTERFOIL_TEST_SURELY_UNSET".into());
        assert!(missing
            .resolve()
            .unwrap_err()
            .contains("COUNTERFOIL_TEST_SURELY_UNSET"));
        assert_eq!(
            format!("{:?}", SecretSource::Value("s3cret".into())),
            "value:[redacted]"
        );
    }
}
