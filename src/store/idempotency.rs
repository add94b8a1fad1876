//! Idempotency keys: what makes a repeated write safe (claimed with the write it guards, settled
//! with its answer, replayed, and forgotten when the replay window ends).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::IdempotencyKey;

/// The caller's claim on an `Idempotency-Key` for one request.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub principal: String,
    pub key: IdempotencyKey,
    pub route: String,
    pub fingerprint: String,
    pub now: DateTime<Utc>,
    /// How long an in-flight claim blocks others before it is presumed crashed.
    pub lease_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// The key is ours and the new payment row is written: go ahead and call the provider.
    Claimed,
    /// The same request was completed before: send back exactly this.
    Replay { status: u16, body: String },
    /// The same key is being worked on right now.
    InFlight,
    /// The key was used before with a different request.
    KeyReused,
    /// The key belongs to a resource (payment or refund) whose create did not complete cleanly:
    /// answer from its row.
    Linked { resource_id: String },
}

/// How to leave the idempotency key once the provider has answered a create.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencySettle {
    /// Replay this response to every repeat of the request.
    Completed { status: u16, body: String },
    /// Answer repeats from the payment row (its create is unresolved or was refused).
    Linked,
    /// Forget the key: nothing reached the provider, so a repeat may try again.
    Release,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Deletes idempotency keys whose replay window ended before `now`. How many.
    async fn purge_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
