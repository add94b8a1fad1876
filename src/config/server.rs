//! The `[server]` and `[rate_limits]` sections: listeners, TLS, proxies, limits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::*;

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

impl RateLimitSettings {
    /// No limits: for the test suite's and the benchmarks' bursts from one address with one key.
    pub const OFF: RateLimitSettings = RateLimitSettings {
        per_key_per_minute: 0,
        per_ip_per_minute: 0,
        per_webhook_account_per_minute: 0,
    };
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

impl ServerSettings {
    pub(super) fn validate(&self, production: bool) -> Result<(), ConfigError> {
        if self.webhook_body_deadline_seconds == 0 || self.webhook_bodies_at_once == 0 {
            return Err(problem(
                "server.webhook_body_deadline_seconds",
                "the webhook body deadline and webhook_bodies_at_once must be above zero",
            ));
        }
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(problem(
                "server.bind",
                "must be an address and port, e.g. 0.0.0.0:8080",
            ));
        }
        if let Some(public) = &self.public_url {
            if !is_web_url(public, production) {
                return Err(problem(
                    "server.public_url",
                    "must be an absolute https URL",
                ));
            }
        }
        if let Some(admin) = &self.admin_bind {
            if admin.parse::<std::net::SocketAddr>().is_err() {
                return Err(problem(
                    "server.admin_bind",
                    "must be an address and port, e.g. 0.0.0.0:9090",
                ));
            }
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
                if !path.is_file() {
                    return Err(problem(
                        format!("server.tls.{key}"),
                        &format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}
