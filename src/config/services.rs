//! The `[services.<code>]` sections (council services and their finance codes) and `[payments]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::ServiceCode;

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
    /// Console refunds above this many pence wait for a second person (else
    /// `console.two_person_threshold_pence`).
    #[serde(default)]
    pub two_person_threshold_pence: Option<i64>,
    /// How the service's takings are coded in the income system (`[income]`).
    #[serde(default)]
    pub posting: Option<PostingSettings>,
}

impl ServiceSettings {
    pub(super) fn validate(
        &self,
        code: &str,
        accounts: &BTreeMap<String, AccountSettings>,
    ) -> Result<(), ConfigError> {
        let key = format!("services.{code}");
        if ServiceCode::parse(code).is_err() {
            return Err(problem(
                key,
                "service codes are 1 to 64 of lowercase letters, digits, _ and -",
            ));
        }
        if !accounts.contains_key(&self.account) {
            let known: Vec<_> = accounts.keys().cloned().collect();
            return Err(problem(
                format!("{key}.account"),
                &format!(
                    "no provider account of that name (configured: {})",
                    known.join(", ")
                ),
            ));
        }
        if self.two_person_threshold_pence.is_some_and(|t| t < 0) {
            return Err(problem(
                format!("{key}.two_person_threshold_pence"),
                "must not be negative",
            ));
        }
        for (field, value) in [
            ("name", &self.name),
            ("fund_code", &self.fund_code),
            ("cost_centre", &self.cost_centre),
        ] {
            if value.trim().is_empty() {
                return Err(problem(format!("{key}.{field}"), "must not be empty"));
            }
        }
        Ok(())
    }
}
