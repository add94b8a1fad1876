//! The audit trail's hash chain: each entry carries the SHA-256 of the entry before it, so an
//! entry changed, removed or inserted afterwards breaks every link after it.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::refs::in_letters;

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
        use super::card_guard::{redact, redact_json};
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

/// What the first entry of the chain points back to.
pub const GENESIS: &str = "genesis";

/// The fields an entry's hash covers, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedFields<'a> {
    pub seq: i64,
    pub prev_hash: &'a str,
    pub at: DateTime<Utc>,
    pub actor_key_id: &'a str,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    /// The detail's JSON text as stored.
    pub detail: &'a str,
}

/// Times are chained to the microsecond (what both databases keep).
pub fn chain_time(at: DateTime<Utc>) -> DateTime<Utc> {
    let micros = at.timestamp_micros();
    DateTime::from_timestamp_micros(micros).expect("a representable time")
}

/// An entry's time as its hash reads it: RFC 3339, UTC, to the microsecond.
pub fn chained_time_text(at: DateTime<Utc>) -> String {
    chain_time(at).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The entry's hash: SHA-256 over every field, each length-prefixed (so no two different entries
/// serialise alike), written in letters like every digest we store. A payment create on
/// PostgreSQL computes the same in SQL, in the statement that appends it
/// (`store/sql/create_at_once.rs`); `audit verify` recomputes every stored hash here.
pub fn entry_hash(fields: &ChainedFields<'_>) -> String {
    let at = chained_time_text(fields.at);
    let seq = fields.seq.to_string();
    let mut hasher = Sha256::new();
    for part in [
        fields.prev_hash,
        &seq,
        &at,
        fields.actor_key_id,
        fields.actor_label,
        fields.action,
        fields.subject,
        fields.detail,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    in_letters(&hasher.finalize())
}

/// One stored entry as `audit verify` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub actor_key_id: String,
    pub actor_label: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's content does not match its own hash: it was edited.
    Altered { seq: i64 },
    /// The entry does not point at the hash of the one before it: something before it was
    /// removed, inserted or reordered.
    Unlinked { seq: i64 },
    /// A sequence number is missing: an entry was deleted.
    Missing { seq: i64 },
}

impl ChainBreak {
    pub fn seq(&self) -> i64 {
        match self {
            Self::Altered { seq } | Self::Unlinked { seq } | Self::Missing { seq } => *seq,
        }
    }
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered { seq } => write!(f, "entry {seq} was altered (its hash does not match its content)"),
            Self::Unlinked { seq } => write!(f, "entry {seq} does not follow the entry before it (an entry before it was removed, inserted or changed)"),
            Self::Missing { seq } => write!(f, "entry {seq} is missing"),
        }
    }
}

/// Checks a chain entry by entry, in `seq` order from its start (entries may come in pages).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_prev: String,
    expected_seq: i64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_prev: GENESIS.to_owned(),
            expected_seq: 1,
        }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, entry: &StoredEntry) -> Result<(), ChainBreak> {
        if entry.seq != self.expected_seq {
            return Err(ChainBreak::Missing {
                seq: self.expected_seq,
            });
        }
        let recomputed = entry_hash(&ChainedFields {
            seq: entry.seq,
            prev_hash: &entry.prev_hash,
            at: entry.at,
            actor_key_id: &entry.actor_key_id,
            actor_label: &entry.actor_label,
            action: &entry.action,
            subject: &entry.subject,
            detail: &entry.detail,
        });
        if recomputed != entry.hash {
            return Err(ChainBreak::Altered { seq: entry.seq });
        }
        if entry.prev_hash != self.expected_prev {
            return Err(ChainBreak::Unlinked { seq: entry.seq });
        }
        self.expected_prev = entry.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }

    /// How many entries have been checked.
    pub fn checked(&self) -> i64 {
        self.expected_seq - 1
    }

    /// After the last entry: the chain must end where its writers recorded its end (else its
    /// tail was cut off).
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<(), ChainBreak> {
        if self.checked() < head_seq {
            return Err(ChainBreak::Missing {
                seq: self.expected_seq,
            });
        }
        if self.checked() > head_seq || (head_seq > 0 && self.expected_prev != head_hash) {
            return Err(ChainBreak::Unlinked {
                seq: self.checked(),
            });
        }
        Ok(())
    }
}

/// Walks entries in `seq` order from the start of the chain; the first break, if any.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a StoredEntry>) -> Option<ChainBreak> {
    let mut verifier = ChainVerifier::default();
    entries
        .into_iter()
        .find_map(|entry| verifier.check(entry).err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let at = DateTime::from_timestamp(1_790_000_000 + seq, 123_456_000).unwrap();
                let detail = format!("{{\"n\":{seq}}}");
                let hash = entry_hash(&ChainedFields {
                    seq,
                    prev_hash: &prev,
                    at,
                    actor_key_id: "k1",
                    actor_label: "Finance",
                    action: "refund.requested",
                    subject: "pay_x",
                    detail: &detail,
                });
                let entry = StoredEntry {
                    seq,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                    at,
                    actor_key_id: "k1".into(),
                    actor_label: "Finance".into(),
                    action: "refund.requested".into(),
                    subject: "pay_x".into(),
                    detail,
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), None);
        assert_eq!(verify_chain(&[]), None);
    }

    #[test]
    fn an_edit_is_named_by_its_entry() {
        let mut entries = chain(5);
        entries[2].detail = "{\"n\":300}".into();
        assert_eq!(verify_chain(&entries), Some(ChainBreak::Altered { seq: 3 }));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let mut entries = chain(5);
        entries[2].action = "nothing.happened".into();
        let fields = ChainedFields {
            seq: 3,
            prev_hash: &entries[2].prev_hash.clone(),
            at: entries[2].at,
            actor_key_id: "k1",
            actor_label: "Finance",
            action: "nothing.happened",
            subject: "pay_x",
            detail: &entries[2].detail.clone(),
        };
        entries[2].hash = entry_hash(&fields);
        assert_eq!(
            verify_chain(&entries),
            Some(ChainBreak::Unlinked { seq: 4 })
        );
    }

    #[test]
    fn a_cut_off_tail_is_found_against_the_recorded_head() {
        let entries = chain(5);
        let mut verifier = ChainVerifier::default();
        for entry in &entries[..3] {
            verifier.check(entry).unwrap();
        }
        assert_eq!(
            verifier.finish(5, &entries[4].hash),
            Err(ChainBreak::Missing { seq: 4 })
        );
        for entry in &entries[3..] {
            verifier.check(entry).unwrap();
        }
        assert_eq!(verifier.finish(5, &entries[4].hash), Ok(()));
    }

    #[test]
    fn a_deletion_is_found() {
        let mut entries = chain(5);
        entries.remove(1);
        assert_eq!(verify_chain(&entries), Some(ChainBreak::Missing { seq: 2 }));
    }

    #[test]
    fn hashes_hold_no_digits_and_times_are_kept_to_the_microsecond() {
        let entries = chain(1);
        assert!(entries[0].hash.bytes().all(|b| (b'a'..=b'p').contains(&b)));
        let with_nanos = DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap();
        assert_eq!(chain_time(with_nanos).timestamp_subsec_nanos(), 123_456_000);
    }
}

/// Which entries the audit trail's page lists: newest first, every filter optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Who did it: their id exactly (`staff:…`, a key id, `system`), or the start of their name
    /// (any case).
    pub who: Option<String>,
    /// The action, or the start of one (`refund.` for every refund action).
    pub action: Option<String>,
    /// Exactly what it was done to: a payment id, a CRM reference, a run id.
    pub subject: Option<String>,
    /// When: [from, to).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset paging: entries with a smaller row id.
    pub before: Option<i64>,
    pub limit: u32,
}
