//! Built-in stand-ins for payment providers, served over real HTTP inside Counterfoil for
//! development and tests. Never enabled in production.

pub mod delivery;
pub mod govuk_pay;
pub mod identity;
pub mod journal;
pub mod localgov_ims;
pub mod stripe;

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// One provider account a simulator serves.
pub struct SimAccount {
    pub api_key: String,
    /// Counterfoil's webhook endpoint for this account, and its signing secret; none: no webhooks.
    pub webhook: Option<(String, String)>,
}

/// API keys are held by digest; a request's key is looked up the same way.
pub(crate) fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The accounts by their API key's digest: where each one's messages go.
pub(crate) fn accounts_by_key(
    accounts: Vec<SimAccount>,
) -> HashMap<String, Option<(String, String)>> {
    accounts
        .into_iter()
        .map(|a| (digest(&a.api_key), a.webhook))
        .collect()
}

/// Text for the simulators' HTML pages.
pub(crate) fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
