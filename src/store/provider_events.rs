//! Provider webhooks applied once each: the receipt, the state machine's decision, the timeline
//! and the CRM notification they cause, in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::{EventOutcome, ProviderEvent};

/// A verified provider event for an account, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    pub account: String,
    pub event: ProviderEvent,
    pub received_at: DateTime<Utc>,
}

#[async_trait]
pub trait ProviderEventStore: Send + Sync + 'static {
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
}
