//! CRM notifications: deliver the outbox, signed per Standard Webhooks, retrying on a schedule
//! (honouring Retry-After) until a 2xx or the last attempt. Rows are leased first (committed), so
//! several servers deliver side by side and no transaction is open during a delivery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tracing::Instrument;

use super::{Clock, ServiceError};
use crate::domain::notification::NotificationStatus;
use crate::domain::standard_webhooks;
use crate::domain::Actor;
use crate::metrics::Metrics;
use crate::outbound::{OutboundClient, OutboundError};
use crate::store::{DeliveryResult, Notification, Store};
use crate::views::PaymentView;
use crate::views::RefundView;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Where notifications go when a service has no URL of its own.
    pub default_url: Option<String>,
    /// Service code → its CRM URL.
    pub service_urls: BTreeMap<String, String>,
    /// HMAC keys of the `whsec_` secrets (two while rotating).
    pub keys: Vec<Vec<u8>>,
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub batch_size: u32,
    pub lease: Duration,
}

/// What one worker round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundSummary {
    pub delivered: u32,
    pub retrying: u32,
    pub dead: u32,
}

/// The notification body: `{type, timestamp, data}` with the public Payment as `data`.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: T,
}

/// A notification as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub payment_id: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

use crate::views::ts;

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id.clone(),
            event_type: n.event_type.clone(),
            payment_id: n.payment_id.to_string(),
            status: n.status.as_str().to_owned(),
            attempts: n.attempts,
            created_at: ts(n.created_at),
            next_attempt_at: (n.status == NotificationStatus::Pending)
                .then(|| ts(n.next_attempt_at)),
            delivered_at: n.delivered_at.map(ts),
            last_error: n.last_error.clone(),
        }
    }
}

pub struct NotificationService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    http: OutboundClient,
    settings: DeliverySettings,
    metrics: Arc<Metrics>,
    /// Notifications this server has leased and not yet recorded, to release on a hard stop.
    in_flight: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How an attempt went, before it is recorded.
enum Attempt {
    Delivered,
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

impl NotificationService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let http = OutboundClient::new(
            settings.timeout.min(Duration::from_secs(5)),
            settings.timeout,
        )
        .expect("an HTTP client");
        Self {
            store,
            clock,
            http,
            settings,
            metrics,
            in_flight: Default::default(),
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One round: lease a batch of due notifications, deliver them concurrently, record each.
    pub async fn run_once(&self) -> Result<RoundSummary, ServiceError> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.settings.lease).unwrap_or_default();
        let batch = self
            .store
            .lease_due_notifications(now, now + lease, self.settings.batch_size)
            .await?;
        self.in_flight().extend(batch.iter().map(|n| n.id.clone()));
        let results = futures_util::future::join_all(batch.iter().map(|n| self.deliver(n))).await;
        let mut summary = RoundSummary::default();
        for (notification, result) in batch.iter().zip(results) {
            let counted = match &result {
                DeliveryResult::Delivered { .. } => {
                    summary.delivered += 1;
                    "delivered"
                }
                DeliveryResult::Retry { .. } => {
                    summary.retrying += 1;
                    "retry"
                }
                DeliveryResult::Dead { .. } => {
                    summary.dead += 1;
                    "dead"
                }
            };
            self.metrics.notification_attempt(counted);
            self.store
                .record_delivery(&notification.id, &result)
                .await?;
            self.in_flight().remove(&notification.id);
        }
        Ok(summary)
    }

    /// How many notifications one round leases at most.
    pub fn batch_size(&self) -> u32 {
        self.settings.batch_size
    }

    /// Lets go of every lease this server still holds (after a round was cut short), so other
    /// servers can deliver those notifications at once.
    pub async fn release_in_flight(&self) -> Result<usize, ServiceError> {
        let ids: Vec<String> = self.in_flight().drain().collect();
        self.store.release_notification_leases(&ids).await?;
        Ok(ids.len())
    }

    async fn deliver(&self, notification: &Notification) -> DeliveryResult {
        let span = tracing::info_span!(
            "crm delivery",
            otel.kind = "client",
            notification = %notification.id,
            attempt = notification.attempts + 1,
        );
        let attempt = self.attempt(notification).instrument(span).await;
        let now = self.clock.now();
        match attempt {
            Attempt::Delivered => DeliveryResult::Delivered { at: now },
            Attempt::Failed { error, retry_after } => {
                // `attempts` counts those before this one; the schedule has one wait per retry.
                let Some(wait) = self
                    .settings
                    .retry_schedule
                    .get(notification.attempts as usize)
                else {
                    tracing::warn!(id = %notification.id, error = %error, "notification dead after its last attempt");
                    return DeliveryResult::Dead { error };
                };
                let wait = retry_after.unwrap_or_else(|| jittered(*wait));
                tracing::info!(id = %notification.id, error = %error, retry_in_s = wait.as_secs(), "notification will be retried");
                DeliveryResult::Retry {
                    next_attempt_at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                    error,
                }
            }
        }
    }

    async fn attempt(&self, notification: &Notification) -> Attempt {
        let failed = |error: String| Attempt::Failed {
            error,
            retry_after: None,
        };
        let payment = match self.store.get_payment(&notification.payment_id).await {
            Ok(Some(payment)) => payment,
            Ok(None) => return failed("the payment no longer exists".into()),
            Err(e) => return failed(format!("storage: {e}")),
        };
        let Some(url) = self
            .settings
            .service_urls
            .get(&payment.service)
            .or(self.settings.default_url.as_ref())
        else {
            return failed(format!(
                "no CRM URL is configured for service {}",
                payment.service
            ));
        };
        let timestamp = ts(notification.created_at);
        let event_type = &notification.event_type;
        let body = match &notification.refund_id {
            Some(refund_id) => match self.store.get_refund(refund_id).await {
                Ok(Some(refund)) => serde_json::to_string(&Envelope {
                    event_type,
                    timestamp,
                    data: RefundView::from(&refund),
                }),
                Ok(None) => return failed("the refund no longer exists".into()),
                Err(e) => return failed(format!("storage: {e}")),
            },
            None => serde_json::to_string(&Envelope {
                event_type,
                timestamp,
                data: PaymentView::from(&payment),
            }),
        }
        .expect("envelopes serialise");
        let timestamp = self.clock.now().timestamp();
        let signature = standard_webhooks::signature_header(
            &self.settings.keys,
            &notification.id,
            timestamp,
            body.as_bytes(),
        );
        let request = self
            .http
            .request(reqwest::Method::POST, url)
            .header("content-type", "application/json")
            .header("webhook-id", &notification.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        let response = match self.http.send(request).await {
            Ok(response) => Ok(response),
            Err(OutboundError::CardData) => {
                return failed("not sent: it held a card number".into())
            }
            Err(OutboundError::Transport(e)) => Err(e),
        };
        match response {
            Ok(r) if r.status().is_success() => Attempt::Delivered,
            Ok(r) => Attempt::Failed {
                error: format!("HTTP {}", r.status().as_u16()),
                retry_after: retry_after(r.headers()),
            },
            Err(e) if e.is_timeout() => failed("timed out".into()),
            Err(e) if e.is_connect() => failed("could not connect".into()),
            Err(e) => failed(e.without_url().to_string()),
        }
    }

    pub async fn list(&self, status: Option<&str>) -> Result<Vec<NotificationView>, ServiceError> {
        let rows = self.store.list_notifications(status, 100).await?;
        Ok(rows.iter().map(NotificationView::from).collect())
    }

    /// The CRM notifications about one payment (delivery metadata only), oldest first.
    pub async fn for_payment(
        &self,
        payment_id: &crate::domain::PaymentId,
    ) -> Result<Vec<crate::store::Notification>, ServiceError> {
        Ok(self.store.notifications_for_payment(payment_id).await?)
    }

    /// A person's retry: pending again, due now, with the whole schedule ahead of it; audited
    /// under `actor` with the retry itself. False if unknown or already delivered.
    pub async fn retry(&self, actor: &Actor, id: &str) -> Result<bool, ServiceError> {
        let now = self.clock.now();
        let audit = crate::store::AuditEntry {
            at: now,
            actor_key_id: actor.id(),
            actor_label: actor.label(),
            action: "notification.retried".into(),
            subject: id.to_owned(),
            detail: serde_json::json!({}),
        };
        Ok(self.store.retry_notification(id, now, &audit).await?)
    }
}

/// Up to 10% later than scheduled, so a crowd of retries does not arrive at once.
fn jittered(wait: Duration) -> Duration {
    let extra = rand::thread_rng().gen_range(0.0..0.1);
    wait + wait.mul_f64(extra)
}

/// `Retry-After` in seconds (an HTTP date is rare from a CRM and treated as absent), clamped to a day.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.clamp(1, 86_400)))
}
