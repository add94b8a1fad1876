//! Rate limits: per client address on the API, per API key once authenticated, per provider
//! account on verified webhooks and, for webhooks that fail (bad signature, unreadable, too slow),
//! per sending address. Token buckets (GCRA) held in this process; with several replicas each
//! enforces its own share, so a limit is per replica. Also the cap on webhook bodies read at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::problem::ApiError;
use crate::config::RateLimitSettings;
use crate::edge::client_address;
use crate::metrics::Metrics;

/// Beyond this many remembered callers, idle ones are forgotten.
const MAX_TRACKED: usize = 100_000;

struct Limit {
    name: &'static str,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Limit {
    /// A limit of `per_minute` requests with a burst of a sixth of it (0: no limit).
    fn per_minute(name: &'static str, per_minute: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new((per_minute / 6).max(1)).expect("at least one");
        Some(Self {
            name,
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
        })
    }

    /// Takes one from `key`'s allowance; how long to wait when none is left.
    fn take(&self, key: &str) -> Result<(), Duration> {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn check(&self, key: &str, metrics: &Metrics) -> Result<(), ApiError> {
        self.take(key).map_err(|wait| {
            metrics.rate_limited(self.name);
            tracing::info!(limit = self.name, "request refused: rate limit");
            ApiError::rate_limited(wait.as_secs() + 1)
        })
    }
}

/// The configured limits. One per application, shared by its HTTP workers.
pub struct RateLimits {
    per_key: Option<Limit>,
    per_ip: Option<Limit>,
    per_webhook_account: Option<Limit>,
    /// Failed webhooks, charged to the sending address (the per-address allowance).
    per_webhook_sender: Option<Limit>,
    /// Senders whose failure allowance is spent, until when.
    blocked_senders: Mutex<HashMap<IpAddr, Instant>>,
    /// Webhook bodies being read right now; when none is left, the next is answered 503.
    webhook_bodies: tokio::sync::Semaphore,
    /// How long a webhook's body may take to arrive.
    pub webhook_body_deadline: Duration,
    trusted_proxies: usize,
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, server: &crate::config::ServerSettings) -> Self {
        Self {
            per_key: Limit::per_minute("key", settings.per_key_per_minute),
            per_ip: Limit::per_minute("ip", settings.per_ip_per_minute),
            per_webhook_account: Limit::per_minute(
                "webhook_account",
                settings.per_webhook_account_per_minute,
            ),
            per_webhook_sender: Limit::per_minute("webhook_sender", settings.per_ip_per_minute),
            blocked_senders: Mutex::default(),
            webhook_bodies: tokio::sync::Semaphore::new(server.webhook_bodies_at_once),
            webhook_body_deadline: Duration::from_secs(server.webhook_body_deadline_seconds),
            trusted_proxies: server.trusted_proxy_count(),
        }
    }

    /// A place to read one webhook body, or 503 when `server.webhook_bodies_at_once` are being
    /// read.
    pub fn webhook_body_slot(
        &self,
        metrics: &Metrics,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.webhook_bodies.try_acquire().map_err(|_| {
            metrics.rate_limited("webhook_bodies");
            tracing::warn!("webhook refused: too many bodies being read at once");
            let mut busy = ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many webhooks are being received at once",
            )
            .detail("Nothing was done. Retry shortly.");
            busy.retry_after = Some(1);
            busy
        })
    }

    /// Refuses a sender whose failure allowance is spent, before its body is read.
    pub fn check_webhook_sender(&self, ip: IpAddr, metrics: &Metrics) -> Result<(), ApiError> {
        let mut blocked = self
            .blocked_senders
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match blocked.get(&ip) {
            Some(until) if *until > now => {
                metrics.rate_limited("webhook_sender");
                tracing::info!("webhook refused: its sender's failures are over the allowance");
                Err(ApiError::rate_limited((*until - now).as_secs() + 1))
            }
            Some(_) => {
                blocked.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Charges a failed webhook to its sender; once its allowance is spent, the sender is refused
    /// until it has recovered. A provider's own good webhooks are never charged.
    pub fn charge_webhook_failure(&self, ip: IpAddr) {
        let Some(limit) = &self.per_webhook_sender else {
            return;
        };
        if let Err(wait) = limit.take(&ip.to_string()) {
            let mut blocked = self
                .blocked_senders
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if blocked.len() > MAX_TRACKED {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(ip, Instant::now() + wait);
        }
    }

    /// The client's address: the peer, or (behind trusted proxies) the address the outermost of
    /// them saw (see [`client_address`]).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers()
                .get_all("x-forwarded-for")
                .map(|v| v.as_bytes()),
            self.trusted_proxies,
        )
    }

    pub fn check_ip(&self, ip: IpAddr, metrics: &Metrics) -> Result<(), ApiError> {
        match &self.per_ip {
            Some(limit) => limit.check(&ip.to_string(), metrics),
            None => Ok(()),
        }
    }

    pub fn check_key(&self, key_id: &str, metrics: &Metrics) -> Result<(), ApiError> {
        match &self.per_key {
            Some(limit) => limit.check(key_id, metrics),
            None => Ok(()),
        }
    }

    pub fn check_webhook_account(&self, account: &str, metrics: &Metrics) -> Result<(), ApiError> {
        match &self.per_webhook_account {
            Some(limit) => limit.check(account, metrics),
            None => Ok(()),
        }
    }
}
