//! Provider webhooks applied once each, and the outbox of CRM notifications they and other changes leave.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::{EventOutcome, PaymentId, ProviderEvent};

/// A CRM notification in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Stable across attempts: the `webhook-id` the CRM deduplicates on.
    pub id: String,
    pub event_type: String,
    pub payment_id: PaymentId,
    /// For `refund.*` notifications, the refund.
    pub refund_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A verified provider event for an account, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    pub account: String,
    pub event: ProviderEvent,
    pub received_at: DateTime<Utc>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryResult {
    Delivered {
        at: DateTime<Utc>,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        next_attempt_at: DateTime<Utc>,
        error: String,
    },
    /// Failed for the last time.
    Dead {
        error: String,
    },
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// The CRM notifications about a payment (delivery metadata), oldest first.
    async fn notifications_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Applies a verified provider event in one transaction: the receipt (unique per account and
    /// message id, so duplicates have no second effect), the state machine's decision, the timeline
    /// event and the CRM notification. An event for an unknown payment is kept as an orphan.
    async fn apply_provider_event(
        &self,
        account: &str,
        event: &ProviderEvent,
        received_at: DateTime<Utc>,
    ) -> Result<EventOutcome, StoreError>;

    /// Applies several provider events in one transaction, each exactly as
    /// [`apply_provider_event`](Self::apply_provider_event) would (a duplicate within the batch is
    /// a duplicate), answering in the batch's order. All or none: on an error nothing is written.
    async fn apply_provider_events(
        &self,
        batch: &[ReceivedEvent],
    ) -> Result<Vec<EventOutcome>, StoreError>;

    /// Leases up to `limit` pending notifications that are due, skipping those another server holds;
    /// the lease is committed before this returns, so no transaction spans the HTTP calls.
    async fn lease_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Records a delivery attempt and lets go of the lease.
    async fn record_delivery(&self, id: &str, result: &DeliveryResult) -> Result<(), StoreError>;

    /// Lets go of leases without an attempt (a server shutting down), so others may deliver now.
    async fn release_notification_leases(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Notifications, newest first, optionally only those with `status`.
    async fn list_notifications(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Makes a notification pending and due now, with a fresh set of attempts; false if unknown
    /// or already delivered.
    async fn retry_notification(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
}
