//! Settings: a TOML file plus `COUNTERFOIL_*` (and `DATABASE_URL`) environment overrides, with
//! defaults that run the whole service on SQLite and the built-in GOV.UK Pay simulator.

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The base URL that points an account at the built-in simulator.
pub const SIMULATOR_BASE_URL: &str = "simulator";

mod accounts;
mod console;
mod database;
mod income;
mod jobs;
mod notifications;
mod secrets;
mod server;
mod services;
mod telemetry;

pub use accounts::*;
pub use console::*;
pub use database::*;
pub use income::*;
pub use jobs::*;
pub use notifications::*;
pub use secrets::*;
pub use server::*;
pub use services::*;
pub use telemetry::*;

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
    #[serde(default)]
    pub console: ConsoleSettings,
    #[serde(default)]
    pub income: IncomeSettings,
    /// Provider accounts by name. When none is configured, one `sandbox` account on the simulator.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountSettings>,
    /// Council services by code. When none is configured, one `demo` service on `sandbox`.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSettings>,
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
            console: ConsoleSettings::default(),
            income: IncomeSettings::default(),
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
                    kind: crate::domain::ProviderKind::GovukPay,
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
                    kind: crate::domain::ProviderKind::Stripe,
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
                    two_person_threshold_pence: None,
                    posting: None,
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
                    two_person_threshold_pence: None,
                    posting: None,
                },
            );
        }
        self
    }

    /// Cross-field checks that serde cannot make, section by section. Each message names the key.
    pub fn validate(self) -> Result<Self, ConfigError> {
        let production = self.environment == Environment::Production;
        self.server.validate(production)?;
        self.database.validate()?;
        self.telemetry.validate()?;
        self.retention.validate()?;
        self.poller.validate()?;
        if self.accounts.is_empty() {
            return Err(problem(
                "accounts",
                "at least one provider account is needed",
            ));
        }
        for (name, account) in &self.accounts {
            account.validate(name, production, self.server.tls.is_some())?;
        }
        let crm_urls = self
            .services
            .iter()
            .map(|(code, s)| (format!("services.{code}.crm_url"), &s.crm_url));
        self.notifications.validate(production, crm_urls)?;
        self.reconciliation.validate(&self.accounts)?;
        if self.services.is_empty() {
            return Err(problem("services", "at least one service is needed"));
        }
        for (code, service) in &self.services {
            service.validate(code, &self.accounts)?;
        }
        self.console.validate(production)?;
        self.income
            .validate(&self.services, &self.accounts, production)?;
        // Last, so that a more particular problem is named first.
        if production {
            self.database.validate_for_production()?;
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

/// A problem with the key `key`.
pub(super) fn problem(key: impl Into<String>, msg: &str) -> ConfigError {
    ConfigError(format!("{}: {msg}", key.into()))
}

/// An absolute https URL (http too outside production).
pub(super) fn is_web_url(text: &str, production: bool) -> bool {
    matches!(url::Url::parse(text), Ok(u) if u.scheme() == "https" || (!production && u.scheme() == "http"))
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
            "[accounts.sandbox]\napi_key = 918273645546372818\n",
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
                 fund_code = \"F1\"\ncost_centre = \"C1\"\n\
                 [console]\nenabled = false\n"
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
    fn the_councils_role_mapping_replaces_any_other() {
        let settings = from_toml(
            r#"
            [console.oidc]
            issuer = "https://login.microsoftonline.com/1f2e3d4c/v2.0"
            client_secret = { value = "s" }
            [console.oidc.roles]
            "Payments.Refunder" = ["refunder"]
            "#,
        )
        .unwrap();
        let mapping = settings.console.oidc.role_mapping();
        assert_eq!(mapping.keys().collect::<Vec<_>>(), ["Payments.Refunder"]);
        for unmapped in ["admin", "refunder", "viewer", "dpo", "refund_approver"] {
            assert!(!mapping.contains_key(unmapped), "{unmapped} grants nothing");
        }
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
        let text = include_str!("../../deploy/counterfoil.example.toml");
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
