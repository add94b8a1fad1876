//! The `[accounts.<name>]` sections: one provider account each (GOV.UK Pay or Stripe).

use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::{ProviderKind, ServiceCode};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub kind: ProviderKind,
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

pub(super) fn default_session_expiry_minutes() -> u32 {
    90
}

pub(super) fn default_connect_timeout_ms() -> u64 {
    3_000
}

pub(super) fn default_timeout_ms() -> u64 {
    10_000
}

impl AccountSettings {
    pub(super) fn validate(
        &self,
        name: &str,
        production: bool,
        tls: bool,
    ) -> Result<(), ConfigError> {
        let key = format!("accounts.{name}");
        if ServiceCode::parse(name).is_err() {
            return Err(problem(
                key,
                "account names are lowercase letters, digits, _ and -",
            ));
        }
        self.validate_base_url(&key, production, tls)?;
        self.api_key
            .validate(&format!("{key}.api_key"), production)?;
        for (i, secret) in self.webhook_secrets.iter().enumerate() {
            secret.validate(&format!("{key}.webhook_secrets[{i}]"), production)?;
        }
        if self.webhook_secrets.len() > 2 {
            return Err(problem(
                format!("{key}.webhook_secrets"),
                "at most two secrets (the current one and, while rotating, the next)",
            ));
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(problem(
                format!("{key}.timeout_ms"),
                "timeouts must be above zero",
            ));
        }
        if !(30..=1440).contains(&self.session_expiry_minutes) {
            return Err(problem(
                format!("{key}.session_expiry_minutes"),
                "Stripe keeps a Checkout Session open for 30 minutes to 24 hours",
            ));
        }
        if let Some(bad) = self
            .redirect_hosts
            .iter()
            .position(|h| h.is_empty() || h.contains('/') || h.contains(':'))
        {
            return Err(problem(
                format!("{key}.redirect_hosts[{bad}]"),
                "is not a host name (e.g. checkout.stripe.com)",
            ));
        }
        Ok(())
    }

    fn validate_base_url(&self, key: &str, production: bool, tls: bool) -> Result<(), ConfigError> {
        let key = format!("{key}.base_url");
        if self.base_url != SIMULATOR_BASE_URL {
            if !is_web_url(&self.base_url, production) {
                return Err(problem(
                    key,
                    "must be an https URL, or \"simulator\" outside production",
                ));
            }
        } else if production {
            return Err(problem(
                key,
                "the built-in simulator may not run when environment = \"production\"",
            ));
        } else if tls {
            return Err(problem(
                key,
                "the built-in simulator is reached over plain HTTP on loopback; turn server.tls off to use it",
            ));
        }
        Ok(())
    }
}
