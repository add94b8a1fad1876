//! Payments: creation under an idempotency key, their status changes and timeline, and reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::{Payment, PaymentEvent, PaymentId, PaymentStatus, TransitionSource};

/// A status change to apply if the payment is still in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub payment_id: PaymentId,
    pub from: PaymentStatus,
    pub to: PaymentStatus,
    pub at: DateTime<Utc>,
    pub source: TransitionSource,
    pub failure_code: Option<String>,
}

pub use crate::domain::queries::PaymentQuery;

#[async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    /// Every payment made for a service request, oldest first.
    async fn payment_ids_for_request(&self, request_ref: &str) -> Result<Vec<String>, StoreError>;

    /// Claims the idempotency key and, only if the claim is new, writes the new payment row and
    /// its first timeline event, all in one transaction.
    async fn claim_and_insert_payment(
        &self,
        claim: &IdempotencyClaim,
        payment: &Payment,
        audit: &AuditEntry,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Records the provider's answer to a create (the payment's new fields and, when its status
    /// changed, a timeline event and, if `notify`, a CRM notification), applies any webhooks that
    /// arrived for it before its provider id was known, and settles the idempotency key, in one
    /// transaction. Returns false when the create had already been settled by someone else.
    async fn settle_payment_create(
        &self,
        payment: &Payment,
        previous_status: PaymentStatus,
        source: TransitionSource,
        notify: bool,
        idempotency: Option<(&IdempotencyClaim, IdempotencySettle)>,
    ) -> Result<bool, StoreError>;

    async fn get_payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError>;

    async fn list_payments(&self, query: &PaymentQuery) -> Result<Vec<Payment>, StoreError>;

    /// Applies a status change, its timeline event and (into a final status) its CRM notification
    /// if the payment is still in `from` (compare-and-set); false when another writer moved it first.
    async fn record_status_change(&self, change: &StatusChange) -> Result<bool, StoreError>;

    /// Our payment with this provider id at this account, if any.
    async fn find_payment_by_provider_id(
        &self,
        account: &str,
        provider_payment_id: &str,
    ) -> Result<Option<Payment>, StoreError>;

    /// Notes that the provider was just asked about this payment.
    async fn mark_refreshed(&self, id: &PaymentId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The payment's status timeline, oldest first.
    async fn payment_events(&self, id: &PaymentId) -> Result<Vec<PaymentEvent>, StoreError>;
}
