//! The hash-chained audit trail: appended in chain order, read in pages.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

/// One entry of the append-only audit trail: who did what to what, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor_key_id: String,
    pub actor_label: String,
    pub action: String,
    pub subject: String,
    /// Amounts, references and counts only; never personal data.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// The entry as the audit trail keeps it: any card number in any of its text is replaced, so
    /// the entry is still written (the trail must not lose an action) but never holds one.
    pub fn without_card_numbers(&self) -> AuditEntry {
        use crate::domain::card_guard::{redact, redact_json};
        AuditEntry {
            at: self.at,
            actor_key_id: redact(&self.actor_key_id).into_owned(),
            actor_label: redact(&self.actor_label).into_owned(),
            action: redact(&self.action).into_owned(),
            subject: redact(&self.subject).into_owned(),
            detail: redact_json(self.detail.clone()),
        }
    }
}

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
