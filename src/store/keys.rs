//! API keys (stored hashed) and the idempotency keys that make repeated writes safe.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::api_key::Role;
use crate::domain::IdempotencyKey;

/// An API key as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub role: Role,
    pub label: String,
    pub token_sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// After this the key is refused, as if revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

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
pub trait KeyStore: Send + Sync + 'static {
    /// Deletes idempotency keys whose replay window ended before `now`. How many.
    async fn purge_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes a key; false when there is no such key or it was already revoked.
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Records that a key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}
