//! What needs a person: the queue read across the tables that hold each kind of trouble, and what
//! a person said when they marked an item as dealt with.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::attention::{AttentionCounts, AttentionItem, AttentionKind, AttentionQuery};
use crate::domain::resolution::Resolution;

#[async_trait]
pub trait AttentionStore: Send + Sync + 'static {
    /// Items still waiting for a person (not healed, not resolved), newest first.
    async fn attention_page(
        &self,
        query: &AttentionQuery,
    ) -> Result<Vec<AttentionItem>, StoreError>;

    /// How many items of each kind wait, each counted up to [`AttentionCounts::COUNTED_UP_TO`].
    async fn attention_counts(
        &self,
        stuck_before: DateTime<Utc>,
    ) -> Result<AttentionCounts, StoreError>;

    /// Records a person's resolution of an item with its audit entry, in one transaction; false
    /// (and nothing written) if the item was already resolved.
    async fn resolve_attention(
        &self,
        kind: AttentionKind,
        item_id: &str,
        resolution: &Resolution,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}
