//! The audit trail as a use case: record who did what (reads of personal data, refusals), and
//! verify the hash chain end to end.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::{Clock, ServiceError};
use crate::domain::audit::{AuditQuery, ChainBreak, ChainVerifier};
use crate::domain::Actor;
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

    /// What an `audit.verified` entry records of it.
    pub fn detail(&self) -> Value {
        serde_json::json!({"entries": self.entries, "intact": self.intact(),
            "head_seq": self.head_seq, "head_hash": self.head_hash,
            "broken_seq": self.broken_seq})
    }
}

const PAGE: u32 = 1000;

/// The most entries one page of `GET /v1/audit` holds (and its default).
pub const LIST_PAGE: u32 = 1000;

/// One page of the audit trail, oldest first; `next_cursor` names the page after it.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// A cursor is the last row id of a page, written in letters (no digits for a card-number guard
/// to trip over in a URL).
fn encode_cursor(id: i64) -> String {
    crate::domain::refs::in_letters(&id.to_be_bytes())
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let hex: String = cursor
        .chars()
        .map(|c| {
            ('a'..='p')
                .contains(&c)
                .then(|| char::from_digit(c as u32 - 'a' as u32, 16))
        })
        .collect::<Option<Option<String>>>()??;
    let bytes: [u8; 8] = hex::decode(hex).ok()?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

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
        actor: &Actor,
        action: &str,
        subject: &str,
        detail: Value,
    ) -> Result<(), ServiceError> {
        self.store
            .append_audit(&AuditEntry {
                at: self.clock.now(),
                actor_key_id: actor.id(),
                actor_label: actor.label(),
                action: action.to_owned(),
                subject: subject.to_owned(),
                detail,
            })
            .await?;
        Ok(())
    }

    /// A page of the trail in [from, to): the first, or the one after `cursor`. `None` for a
    /// cursor this service did not write.
    pub async fn list(
        &self,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Option<AuditPage>, ServiceError> {
        let after = match cursor {
            Some(text) => match decode_cursor(text) {
                Some(id) => Some(id),
                None => return Ok(None),
            },
            None => None,
        };
        let limit = limit.clamp(1, LIST_PAGE);
        let mut rows = self.store.audit_page(from, to, after, limit + 1).await?;
        let next_cursor = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            encode_cursor(rows.last().expect("limit is at least 1").0)
        });
        Ok(Some(AuditPage {
            items: rows.into_iter().map(|(_, entry)| entry).collect(),
            next_cursor,
        }))
    }

    /// Up to `limit` entries the query matches, newest first, with the cursor (a row id) of the
    /// page after.
    pub async fn search(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), ServiceError> {
        let limit = query.limit.clamp(1, LIST_PAGE);
        let ask = AuditQuery {
            limit: limit + 1,
            ..query.clone()
        };
        let mut rows = self.store.audit_search(&ask).await?;
        let next = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().expect("limit is at least 1").0
        });
        Ok((rows.into_iter().map(|(_, e)| e).collect(), next))
    }

    /// Verifies the chain and records the result (`audit.verified`: entries, intact, head), so
    /// the trail says when it was last checked and what its head was.
    pub async fn verify_and_record(&self, actor: &Actor) -> Result<Verification, ServiceError> {
        let found = self.verify().await?;
        self.record(actor, "audit.verified", "audit", found.detail())
            .await?;
        Ok(found)
    }

    /// The last recorded verification, if any.
    pub async fn last_verification(&self) -> Result<Option<AuditEntry>, ServiceError> {
        let query = AuditQuery {
            action: Some("audit.verified".into()),
            limit: 1,
            ..AuditQuery::default()
        };
        Ok(self.store.audit_search(&query).await?.pop().map(|(_, e)| e))
    }

    /// Where the chain ends now.
    pub async fn head(&self) -> Result<crate::store::AuditHead, ServiceError> {
        Ok(self.store.audit_head().await?)
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
        let broken_seq = broken.as_ref().map(ChainBreak::seq);
        let mut broken = broken.map(|b| b.to_string());
        if broken.is_none() && head.unchained_since_start > 0 {
            broken = Some(format!(
                "{} entries were written outside the chain after it began (its triggers were bypassed)",
                head.unchained_since_start
            ));
        }
        Ok(Verification {
            entries: verifier.checked(),
            unchained: head.unchained,
            head_seq: head.last_seq,
            head_hash: head.last_hash,
            broken_seq,
            broken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_hold_no_digits() {
        for id in [1, 42, 1_000_000_007, i64::MAX] {
            let cursor = encode_cursor(id);
            assert!(!cursor.bytes().any(|b| b.is_ascii_digit()), "{cursor}");
            assert_eq!(decode_cursor(&cursor), Some(id));
        }
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor("abc"), None);
    }
}
