//! Rate limits: per client address on the API, per API key once authenticated, and per provider
//! account on webhooks. Token buckets (GCRA) held in this process; with several replicas each
//! enforces its own share, so a limit is per replica.

use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::dev::ServiceRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::problem::ApiError;
use crate::config::RateLimitSettings;
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

    fn check(&self, key: &str, metrics: &Metrics) -> Result<(), ApiError> {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                metrics.rate_limited(self.name);
                tracing::info!(limit = self.name, "request refused: rate limit");
                Err(ApiError::rate_limited(wait.as_secs() + 1))
            }
        }
    }
}

/// The configured limits. One per application, shared by its HTTP workers.
pub struct RateLimits {
    per_key: Option<Limit>,
    per_ip: Option<Limit>,
    per_webhook_account: Option<Limit>,
    trust_forwarded_for: bool,
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, trust_forwarded_for: bool) -> Self {
        Self {
            per_key: Limit::per_minute("key", settings.per_key_per_minute),
            per_ip: Limit::per_minute("ip", settings.per_ip_per_minute),
            per_webhook_account: Limit::per_minute(
                "webhook_account",
                settings.per_webhook_account_per_minute,
            ),
            trust_forwarded_for,
        }
    }

    /// The client's address: the peer, or (behind a trusted proxy) the nearest
    /// `X-Forwarded-For` entry that proxy added.
    pub fn client_ip(&self, req: &ServiceRequest) -> Option<IpAddr> {
        let forwarded = self
            .trust_forwarded_for
            .then(|| req.headers().get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))
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
