//! The audit trail as a use case: record who did what (reads of personal data, refusals), and
//! verify the hash chain end to end.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::{Clock, Principal, ServiceError};
use crate::domain::audit::{ChainBreak, ChainVerifier};
use crate::store::{AuditEntry, Store};

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Entries checked in the chain.
    pub entries: i64,
    /// Entries written before the chain existed (migration 0007): kept, not verifiable.
    pub unchained: i64,
    pub head_seq: i64,
    /// Record this somewhere else now and then: a later verify proves nothing before it changed.
    pub head_hash: String,
    /// The first broken entry, if any.
    pub broken: Option<String>,
    pub broken_seq: Option<i64>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

const PAGE: u32 = 1000;

pub struct AuditService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Appends an entry for `principal`. `detail` holds ids, counts and routes, never personal data.
    pub async fn record(
        &self,
        principal: &Principal,
        action: &str,
        subject: &str,
        detail: Value,
    ) -> Result<(), ServiceError> {
        self.store
            .append_audit(&AuditEntry {
                at: self.clock.now(),
                actor_key_id: principal.key_id.clone(),
                actor_label: principal.label.clone(),
                action: action.to_owned(),
                subject: subject.to_owned(),
                detail,
            })
            .await?;
        Ok(())
    }

    /// Re-computes every entry's hash and link, in pages, and checks the chain ends where its
    /// writers recorded.
    pub async fn verify(&self) -> Result<Verification, ServiceError> {
        let head = self.store.audit_head().await?;
        let mut verifier = ChainVerifier::default();
        let mut broken: Option<ChainBreak> = None;
        let mut after = 0;
        'pages: loop {
            let page = self.store.audit_chain_page(after, PAGE).await?;
            for entry in &page {
                if let Err(found) = verifier.check(entry) {
                    broken = Some(found);
                    break 'pages;
                }
                after = entry.seq;
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        if broken.is_none() {
            broken = verifier.finish(head.last_seq, &head.last_hash).err();
        }
        Ok(Verification {
            entries: verifier.checked(),
            unchained: head.unchained,
            head_seq: head.last_seq,
            head_hash: head.last_hash,
            broken_seq: broken.as_ref().map(ChainBreak::seq),
            broken: broken.map(|b| b.to_string()),
        })
    }
}
