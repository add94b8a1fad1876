//! The outbox of CRM notifications: leased, delivered, retried, given up on, retried by a person.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::PaymentId;

pub use crate::domain::notification::{DeliveryResult, Notification, NotificationStatus};

#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// The CRM notifications about a payment (delivery metadata), oldest first.
    async fn notifications_for_payment(
        &self,
        payment_id: &PaymentId,
    ) -> Result<Vec<Notification>, StoreError>;

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
    /// or already delivered. The person's retry is audited in the same transaction.
    async fn retry_notification(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}
