//! The hash-chained audit trail: appended in chain order, read in pages.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

pub use crate::domain::audit::AuditEntry;

/// The audit chain's end, and how many entries predate the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub last_seq: i64,
    pub last_hash: String,
    /// Entries outside the chain.
    pub unchained: i64,
    /// Of those, the ones written after the chain began: none can be, unless its triggers were
    /// removed.
    pub unchained_since_start: i64,
}

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` chained audit entries after `after_seq`, in chain order.
    async fn audit_chain_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::domain::audit::StoredEntry>, StoreError>;

    /// Where the chain ends (as recorded by its writers).
    async fn audit_head(&self) -> Result<AuditHead, StoreError>;

    /// Audit entries in [from, to), oldest first, each with its row id; only those after the
    /// row id `after` when given (the next page).
    async fn audit_page(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError>;

    /// Up to `limit` entries the query matches, newest first, each with its row id.
    async fn audit_search(
        &self,
        query: &crate::domain::audit::AuditQuery,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError>;

    /// The first `limit` audit entries in [from, to), oldest first.
    async fn list_audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let page = self.audit_page(from, to, None, limit).await?;
        Ok(page.into_iter().map(|(_, entry)| entry).collect())
    }
}
