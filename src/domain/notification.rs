//! A CRM notification in the outbox, and how one attempt to deliver it ended.

use chrono::{DateTime, Utc};

use super::PaymentId;

super::named::named_enum! {
    /// Where a notification stands: waiting for (another) attempt, delivered, or given up on.
    pub enum NotificationStatus { Pending = "pending", Delivered = "delivered", Dead = "dead" }
}

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
    pub status: NotificationStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
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
