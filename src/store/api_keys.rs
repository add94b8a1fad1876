//! API keys, stored hashed: made, found, listed, revoked, and when each was last used.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

pub use crate::domain::api_key::ApiKeyRecord;

#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes a key; false when there is no such key or it was already revoked.
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Records that a key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}
