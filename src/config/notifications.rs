//! The `[notifications]` section: signed CRM notifications and their delivery.

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::*;

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

impl NotificationSettings {
    /// `crm_urls`: every CRM URL a service names, by its key.
    pub(super) fn validate<'a>(
        &'a self,
        production: bool,
        crm_urls: impl Iterator<Item = (String, &'a Option<String>)>,
    ) -> Result<(), ConfigError> {
        let mut wants_delivery = false;
        let all = std::iter::once(("notifications.default_url".to_string(), &self.default_url))
            .chain(crm_urls);
        for (key, url) in all {
            if let Some(url) = url {
                wants_delivery = true;
                if !is_web_url(url, production) {
                    return Err(problem(
                        key,
                        "must be an https URL (http only outside production)",
                    ));
                }
            }
        }
        if self.secrets.len() > 2 {
            return Err(problem(
                "notifications.secrets",
                "at most two secrets (the current one and, while rotating, the next)",
            ));
        }
        for (i, source) in self.secrets.iter().enumerate() {
            let key = format!("notifications.secrets[{i}]");
            let secret = source.validate(&key, production)?;
            if let Err(why) = crate::domain::standard_webhooks::secret_key(secret.expose_secret()) {
                return Err(problem(key, &why.to_string()));
            }
        }
        if wants_delivery && self.secrets.is_empty() {
            return Err(problem(
                "notifications.secrets",
                "a CRM URL is configured, so a whsec_ signing secret is needed",
            ));
        }
        if self.timeout_seconds == 0
            || self.batch_size == 0
            || self.poll_interval_ms == 0
            || self.lease_seconds <= self.timeout_seconds
        {
            return Err(problem(
                "notifications",
                "timeout, batch size and poll interval must be above zero, and lease_seconds above timeout_seconds",
            ));
        }
        Ok(())
    }
}
