//! The SQL of [`AttentionStore`](crate::store::AttentionStore): one branch per kind of trouble,
//! each reading its own table newest first (its partial index), merged and paged by keyset.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::attention::{AttentionCounts, AttentionItem, AttentionKind, AttentionQuery};
use crate::domain::resolution::Resolution;
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

/// Where one kind's items live: what it yields for each of [`COLUMNS`] (each branch is a
/// subquery of its own, so a NULL is typed where PostgreSQL cannot infer it), and the table,
/// joins and condition that make an item of that kind.
struct Branch {
    kind: AttentionKind,
    at: &'static str,
    id: &'static str,
    /// In the order of [`COLUMNS`].
    columns: [&'static str; 11],
    from: &'static str,
    /// The same items without the joins that only name a payment's service and reference: what
    /// the counts read (a failed refund's or a notification's payment always exists).
    count_from: &'static str,
    /// The stuck-payment branch compares `created_at` with the query's `stuck_before`.
    stuck: bool,
}

/// What every branch yields after its kind, id and time.
const COLUMNS: [&str; 11] = [
    "payment_id",
    "service",
    "request_ref",
    "amount",
    "state",
    "tried_at",
    "attempts",
    "detail",
    "ours",
    "theirs",
    "run_id",
];

const BRANCHES: [Branch; 6] = [
    Branch {
        kind: AttentionKind::StuckPayment,
        at: "p.created_at",
        id: "p.id",
        columns: [
            "p.id",
            "p.service",
            "p.request_ref",
            "p.amount",
            "p.status",
            "p.refreshed_at",
            "CAST(NULL AS INTEGER)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
        ],
        from: "payments p WHERE p.status IN ('created', 'in_progress') \
            AND p.create_outcome = 'confirmed'",
        count_from: "payments p WHERE p.status IN ('created', 'in_progress') \
            AND p.create_outcome = 'confirmed'",
        stuck: true,
    },
    Branch {
        kind: AttentionKind::UnknownCreate,
        at: "p.created_at",
        id: "p.id",
        columns: [
            "p.id",
            "p.service",
            "p.request_ref",
            "p.amount",
            "p.status",
            "p.refreshed_at",
            "CAST(NULL AS INTEGER)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
        ],
        from: "payments p WHERE p.create_outcome = 'unknown'",
        count_from: "payments p WHERE p.create_outcome = 'unknown'",
        stuck: false,
    },
    Branch {
        kind: AttentionKind::DeadNotification,
        at: "o.created_at",
        id: "o.id",
        columns: [
            "o.payment_id",
            "p.service",
            "p.request_ref",
            "CAST(NULL AS BIGINT)",
            "o.event_type",
            "CAST(NULL AS TIMESTAMPTZ)",
            "o.attempts",
            "o.last_error",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
        ],
        from: "outbox o JOIN payments p ON p.id = o.payment_id WHERE o.status = 'dead'",
        count_from: "outbox o WHERE o.status = 'dead'",
        stuck: false,
    },
    Branch {
        kind: AttentionKind::Discrepancy,
        at: "r.started_at",
        id: "CAST(d.id AS TEXT)",
        columns: [
            "d.payment_id",
            "p.service",
            "p.request_ref",
            "p.amount",
            "d.kind",
            "CAST(NULL AS TIMESTAMPTZ)",
            "CAST(NULL AS INTEGER)",
            "d.note",
            "d.ours",
            "d.theirs",
            "d.run_id",
        ],
        from: "reconciliation_discrepancies d JOIN reconciliation_runs r ON r.id = d.run_id \
            LEFT JOIN payments p ON p.id = d.payment_id WHERE d.healed = FALSE",
        count_from: "reconciliation_discrepancies d JOIN reconciliation_runs r ON r.id = d.run_id \
            WHERE d.healed = FALSE",
        stuck: false,
    },
    Branch {
        kind: AttentionKind::FailedRefund,
        at: "f.updated_at",
        id: "f.id",
        columns: [
            "f.payment_id",
            "p.service",
            "p.request_ref",
            "f.amount",
            "f.status",
            "CAST(NULL AS TIMESTAMPTZ)",
            "CAST(NULL AS INTEGER)",
            "f.failure_code",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
        ],
        from: "refunds f JOIN payments p ON p.id = f.payment_id WHERE f.status = 'failed'",
        count_from: "refunds f WHERE f.status = 'failed'",
        stuck: false,
    },
    Branch {
        kind: AttentionKind::RefusedBatch,
        at: "b.built_at",
        id: "b.id",
        columns: [
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "b.reference",
            "b.control_total",
            "b.status",
            "CAST(NULL AS TIMESTAMPTZ)",
            "b.attempts",
            "b.last_error",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
            "CAST(NULL AS TEXT)",
        ],
        from: "income_batches b WHERE b.status = 'failed'",
        count_from: "income_batches b WHERE b.status = 'failed'",
        stuck: false,
    },
];

impl Branch {
    /// `FROM … WHERE …` of the waiting items of this kind that match the query's filters.
    fn push_waiting<B: Backend>(&self, sql: &mut Builder<B>, query: &AttentionQuery) {
        self.push_waiting_from(sql, query, self.from);
    }

    /// [`Self::push_waiting`] reading `from` (this branch's `from` or `count_from`).
    fn push_waiting_from<B: Backend>(
        &self,
        sql: &mut Builder<B>,
        query: &AttentionQuery,
        from: &str,
    ) {
        sql.push(format!(
            " FROM {} AND NOT EXISTS (SELECT 1 FROM attention_resolutions ar \
             WHERE ar.kind = '{}' AND ar.item_id = {})",
            from,
            self.kind.as_str(),
            self.id
        ));
        if self.stuck {
            sql.push(format!(" AND {} < ", self.at))
                .push_bind(query.stuck_before);
        }
        if let Some(service) = &query.service {
            sql.push(" AND p.service = ").push_bind(service.to_string());
        }
        if let Some(id) = &query.item_id {
            sql.push(format!(" AND {} = ", self.id))
                .push_bind(id.clone());
        }
        if let Some((at, kind, id)) = &query.before {
            sql.push(format!(
                " AND ({}, '{}', {}) < (",
                self.at,
                self.kind.as_str(),
                self.id
            ))
            .push_bind(*at)
            .push(", ")
            .push_bind(kind.as_str())
            .push(", ")
            .push_bind(id.clone())
            .push(")");
        }
    }

    fn wanted(&self, query: &AttentionQuery) -> bool {
        query.kind.is_none_or(|k| k == self.kind)
    }
}

fn item_from_row(row: &impl ReadRow) -> Result<AttentionItem, StoreError> {
    Ok(AttentionItem {
        kind: parse_column(&row.col::<String>("kind")?, "attention.kind")?,
        item_id: row.col("item_id")?,
        at: row.col("at")?,
        payment_id: row.col("payment_id")?,
        service: row.col("service")?,
        request_ref: row.col("request_ref")?,
        amount: row.col("amount")?,
        state: row.col("state")?,
        tried_at: row.col("tried_at")?,
        attempts: row.col("attempts")?,
        detail: row.col("detail")?,
        ours: row.col("ours")?,
        theirs: row.col("theirs")?,
        run_id: row.col("run_id")?,
    })
}

/// A person's resolution from `resolved_at`, `resolved_by`, `resolved_by_label` and
/// `resolution_note` of a LEFT JOIN to `attention_resolutions` (all NULL: none).
pub(in crate::store::sql) fn resolution_from_row(
    row: &impl ReadRow,
) -> Result<Option<Resolution>, StoreError> {
    let at: Option<DateTime<Utc>> = row.col("resolved_at")?;
    Ok(match at {
        None => None,
        Some(at) => Some(Resolution {
            at,
            by_id: row.col("resolved_by")?,
            by_label: row.col("resolved_by_label")?,
            note: row.col("resolution_note")?,
        }),
    })
}

#[async_trait]
impl<B: Backend> AttentionStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store attention_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn attention_page(
        &self,
        query: &AttentionQuery,
    ) -> Result<Vec<AttentionItem>, StoreError> {
        let mut sql = Builder::<B>::new("");
        let limit = i64::from(query.limit.max(1));
        for (i, branch) in BRANCHES.iter().filter(|b| b.wanted(query)).enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            let columns: Vec<String> = branch
                .columns
                .iter()
                .zip(COLUMNS)
                .map(|(expr, name)| format!("{expr} AS {name}"))
                .collect();
            sql.push(format!(
                "SELECT * FROM (SELECT '{}' AS kind, {} AS item_id, {} AS at, {}",
                branch.kind.as_str(),
                branch.id,
                branch.at,
                columns.join(", ")
            ));
            branch.push_waiting(&mut sql, query);
            sql.push(format!(
                " ORDER BY {} DESC, {} DESC LIMIT ",
                branch.at, branch.id
            ))
            .push_bind(limit)
            .push(format!(") AS {}", branch.kind.as_str()));
        }
        sql.push(" ORDER BY at DESC, kind DESC, item_id DESC LIMIT ")
            .push_bind(limit);
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(item_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store attention_counts", otel.kind = "client", db.system = B::SYSTEM))]
    async fn attention_counts(
        &self,
        stuck_before: DateTime<Utc>,
    ) -> Result<AttentionCounts, StoreError> {
        let query = AttentionQuery {
            kind: None,
            service: None,
            stuck_before,
            before: None,
            item_id: None,
            limit: 1,
        };
        let mut sql = Builder::<B>::new("SELECT ");
        for (i, branch) in BRANCHES.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(SELECT COUNT(*) FROM (SELECT 1 AS one");
            branch.push_waiting_from(&mut sql, &query, branch.count_from);
            sql.push(" LIMIT ")
                .push_bind(AttentionCounts::COUNTED_UP_TO)
                .push(format!(") AS waiting) AS {}", branch.kind.as_str()));
        }
        let row = sql.build().fetch_one(&self.pool).await?;
        let counts = BRANCHES
            .iter()
            .map(|b| Ok((b.kind, row.col::<i64>(b.kind.as_str())?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AttentionCounts(counts))
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store resolve_attention", otel.kind = "client", db.system = B::SYSTEM))]
    async fn resolve_attention(
        &self,
        kind: AttentionKind,
        item_id: &str,
        resolution: &Resolution,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let done = statement::<B>(
            "INSERT INTO attention_resolutions (kind, item_id, resolved_at, resolved_by, \
             resolved_by_label, note) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (kind, item_id) DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(item_id)
        .bind(resolution.at)
        .bind(&resolution.by_id)
        .bind(&resolution.by_label)
        .bind(&resolution.note)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        Self::insert_audit_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}
