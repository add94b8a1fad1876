//! The SQL of [`AuditStore`](crate::store::AuditStore).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;

use super::*;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

pub(super) fn audit_from_row(row: &impl ReadRow) -> Result<AuditEntry, StoreError> {
    let detail: String = row.col("detail")?;
    Ok(AuditEntry {
        at: row.col("at")?,
        actor_key_id: row.col("actor_key_id")?,
        actor_label: row.col("actor_label")?,
        action: row.col("action")?,
        subject: row.col("subject")?,
        detail: serde_json::from_str(&detail)
            .map_err(|_| StoreError::Corrupt("audit_log.detail".into()))?,
    })
}

impl<B: Backend> SqlStore<B> {
    /// The chain's end, locked until the transaction ends: writers queue here, so two entries
    /// never claim the same place. Returns the next entry's place and what it points back to.
    pub(super) async fn lock_audit_head(
        tx: &mut Transaction<'static, B>,
    ) -> Result<(i64, String), StoreError> {
        let head = statement::<B>(&format!(
            "SELECT last_seq, last_hash FROM audit_head WHERE id = 1{}",
            B::FOR_UPDATE
        ))
        .fetch_one(&mut *tx)
        .await?;
        let last_seq: i64 = head.col("last_seq")?;
        Ok((last_seq + 1, head.col("last_hash")?))
    }

    pub(super) async fn insert_audit_tx(
        tx: &mut Transaction<'static, B>,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (seq, prev_hash) = Self::lock_audit_head(tx).await?;
        let link = ChainLink::after(entry, seq, prev_hash);
        link.bind(statement::<B>(
            "INSERT INTO audit_log (at, actor_key_id, actor_label, action, subject, detail, seq, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ))
        .execute(&mut *tx)
        .await?;
        statement::<B>("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
            .bind(link.seq)
            .bind(&link.hash)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// An audit entry as the chain keeps it in a given place: card numbers replaced (the audit
/// writer's own guard: the entry is kept, the number not), its time to the microsecond, its
/// detail as text, and its hash over all of it and the entry before.
pub(super) struct ChainLink {
    pub(super) entry: AuditEntry,
    pub(super) seq: i64,
    pub(super) prev_hash: String,
    pub(super) at: DateTime<Utc>,
    pub(super) detail: String,
    pub(super) hash: String,
}

impl ChainLink {
    pub(super) fn after(entry: &AuditEntry, seq: i64, prev_hash: String) -> ChainLink {
        use crate::domain::audit::{chain_time, entry_hash, ChainedFields};
        let entry = entry.without_card_numbers();
        let at = chain_time(entry.at);
        let detail = entry.detail.to_string();
        let hash = entry_hash(&ChainedFields {
            seq,
            prev_hash: &prev_hash,
            at,
            actor_key_id: &entry.actor_key_id,
            actor_label: &entry.actor_label,
            action: &entry.action,
            subject: &entry.subject,
            detail: &detail,
        });
        ChainLink {
            entry,
            seq,
            prev_hash,
            at,
            detail,
            hash,
        }
    }

    /// Binds the nine stored columns, in the order `at, actor_key_id, actor_label, action,
    /// subject, detail, seq, prev_hash, hash`.
    pub(super) fn bind<'q, B: Backend>(
        &self,
        query: crate::store::guard::Statement<'q, 'q, B>,
    ) -> crate::store::guard::Statement<'q, 'q, B> {
        query
            .bind(self.at)
            .bind(&self.entry.actor_key_id)
            .bind(&self.entry.actor_label)
            .bind(&self.entry.action)
            .bind(&self.entry.subject)
            .bind(&self.detail)
            .bind(self.seq)
            .bind(&self.prev_hash)
            .bind(&self.hash)
    }
}

#[async_trait]
impl<B: Backend> AuditStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store append_audit", otel.kind = "client", db.system = B::SYSTEM))]
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        if B::WRITES_IN_WITH {
            // One statement committed on its own (PostgreSQL): the head is held for one round
            // trip and the commit, not five. The audit writer's own card-number guard first.
            let entry = entry.without_card_numbers();
            let appended: i64 = super::create_at_once::bind_audit_entry(
                statement::<B>(&super::create_at_once::APPEND_AUDIT_STATEMENT),
                &entry,
            )
            .fetch_one(&self.pool)
            .await?
            .col("appended")?;
            return match appended {
                1 => Ok(()),
                _ => Err(StoreError::Corrupt("audit_head".into())),
            };
        }
        let mut tx = B::begin_write(&self.pool).await?;
        Self::insert_audit_tx(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store audit_chain_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_chain_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::domain::audit::StoredEntry>, StoreError> {
        statement::<B>(
            "SELECT seq, prev_hash, hash, at, actor_key_id, actor_label, action, subject, detail \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(crate::domain::audit::StoredEntry {
                seq: row.col("seq")?,
                prev_hash: row.col::<Option<String>>("prev_hash")?.unwrap_or_default(),
                hash: row.col::<Option<String>>("hash")?.unwrap_or_default(),
                at: row.col("at")?,
                actor_key_id: row.col("actor_key_id")?,
                actor_label: row.col("actor_label")?,
                action: row.col("action")?,
                subject: row.col("subject")?,
                detail: row.col("detail")?,
            })
        })
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store audit_head", otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let head = statement::<B>("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let unchained: i64 = statement::<B>("SELECT COUNT(*) FROM audit_log WHERE seq IS NULL")
            .fetch_one(&self.pool)
            .await?
            .col_at(0)?;
        let unchained_since_start: i64 = statement::<B>(
            "SELECT COUNT(*) FROM audit_log WHERE seq IS NULL \
             AND id > (SELECT MIN(id) FROM audit_log WHERE seq IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await?
        .col_at(0)?;
        Ok(AuditHead {
            last_seq: head.col("last_seq")?,
            last_hash: head.col("last_hash")?,
            unchained,
            unchained_since_start,
        })
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store audit_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_page(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let mut sql = Builder::<B>::new(
            "SELECT id, at, actor_key_id, actor_label, action, subject, detail FROM audit_log WHERE 1 = 1",
        );
        if let Some(after) = after {
            sql.push(" AND id > ").push_bind(after);
        }
        if let Some(from) = from {
            sql.push(" AND at >= ").push_bind(from);
        }
        if let Some(to) = to {
            sql.push(" AND at < ").push_bind(to);
        }
        sql.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.col("id")?, audit_from_row(row)?)))
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store audit_search", otel.kind = "client", db.system = B::SYSTEM))]
    async fn audit_search(
        &self,
        query: &crate::domain::audit::AuditQuery,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let mut sql = Builder::<B>::new(
            "SELECT id, at, actor_key_id, actor_label, action, subject, detail FROM audit_log WHERE 1 = 1",
        );
        if let Some(who) = &query.who {
            // An id exactly, or the start of a name: both read an index.
            let prefix = format!("{}%", like_literal(&who.to_lowercase()));
            sql.push(" AND (actor_key_id = ")
                .push_bind(who.clone())
                .push(" OR LOWER(actor_label) LIKE ")
                .push_bind(prefix)
                .push(" ESCAPE '\\')");
        }
        if let Some(action) = &query.action {
            if action.ends_with('.') {
                let prefix = format!("{}%", like_literal(action));
                sql.push(" AND action LIKE ")
                    .push_bind(prefix)
                    .push(" ESCAPE '\\'");
            } else {
                sql.push(" AND action = ").push_bind(action.clone());
            }
        }
        if let Some(subject) = &query.subject {
            sql.push(" AND subject = ").push_bind(subject.clone());
        }
        if let Some(from) = query.from {
            sql.push(" AND at >= ").push_bind(from);
        }
        if let Some(to) = query.to {
            sql.push(" AND at < ").push_bind(to);
        }
        if let Some(before) = query.before {
            sql.push(" AND id < ").push_bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.col("id")?, audit_from_row(row)?)))
            .collect()
    }
}

/// `text` matched literally inside a LIKE pattern with `ESCAPE '\'`.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
