//! The SQL of [`RunStore`](crate::store::RunStore): runs newest first with their tallies, a
//! run's discrepancies by keyset, and a running run's progress.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::reconciliation::{Discrepancy, ReconciliationRun, RunTally};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::statement;
use crate::store::*;

/// A discrepancy with a person's resolution, if any (`FROM … d LEFT JOIN … r`).
pub(super) const DISCREPANCY_SELECT: &str = "SELECT d.id, d.kind, d.payment_id, \
    d.provider_payment_id, d.ours, d.theirs, d.healed, d.note, r.resolved_at, r.resolved_by, \
    r.resolved_by_label, r.note AS resolution_note \
    FROM reconciliation_discrepancies d LEFT JOIN attention_resolutions r \
    ON r.kind = 'discrepancy' AND r.item_id = CAST(d.id AS TEXT)";

/// A run with what it found: counted from its discrepancies (one run's, by their index).
const RUN_WITH_TALLY: &str = "SELECT x.*, \
    (SELECT COUNT(*) FROM reconciliation_discrepancies d WHERE d.run_id = x.id) AS found, \
    (SELECT COUNT(*) FROM reconciliation_discrepancies d WHERE d.run_id = x.id \
       AND d.healed = TRUE) AS healed, \
    (SELECT COUNT(*) FROM reconciliation_discrepancies d JOIN attention_resolutions r \
       ON r.kind = 'discrepancy' AND r.item_id = CAST(d.id AS TEXT) \
       WHERE d.run_id = x.id AND d.healed = FALSE) AS resolved \
    FROM reconciliation_runs x";

pub(super) fn run_from_row(row: &impl ReadRow) -> Result<ReconciliationRun, StoreError> {
    Ok(ReconciliationRun {
        id: row.col("id")?,
        account: row.col("account")?,
        period_from: row.col("period_from")?,
        period_to: row.col("period_to")?,
        requested_by: row.col("requested_by")?,
        requested_by_label: row.col("requested_by_label")?,
        started_at: row.col("started_at")?,
        finished_at: row.col("finished_at")?,
        status: parse_column(&row.col::<String>("status")?, "reconciliation_runs.status")?,
        provider_payments: row.col("provider_payments")?,
        provider_refunds: row.col("provider_refunds")?,
        local_payments: row.col("local_payments")?,
        error: row.col("error")?,
    })
}

pub(super) fn discrepancy_from_row(row: &impl ReadRow) -> Result<Discrepancy, StoreError> {
    Ok(Discrepancy {
        id: row.col("id")?,
        kind: parse_column(
            &row.col::<String>("kind")?,
            "reconciliation_discrepancies.kind",
        )?,
        payment_id: row.col("payment_id")?,
        provider_payment_id: row.col("provider_payment_id")?,
        ours: row.col("ours")?,
        theirs: row.col("theirs")?,
        healed: row.col("healed")?,
        note: row.col("note")?,
        resolution: resolution_from_row(row)?,
    })
}

fn tallied(row: &impl ReadRow) -> Result<(ReconciliationRun, RunTally), StoreError> {
    let tally = RunTally {
        found: row.col("found")?,
        healed: row.col("healed")?,
        resolved: row.col("resolved")?,
    };
    Ok((run_from_row(row)?, tally))
}

#[async_trait]
impl<B: Backend> RunStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store reconciliation_runs_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn reconciliation_runs_page(
        &self,
        before: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<(ReconciliationRun, RunTally)>, StoreError> {
        let mut sql = Builder::<B>::new(RUN_WITH_TALLY);
        if let Some((at, id)) = before {
            sql.push(" WHERE (x.started_at, x.id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY x.started_at DESC, x.id DESC LIMIT ")
            .push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(tallied)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store reconciliation_run", otel.kind = "client", db.system = B::SYSTEM))]
    async fn reconciliation_run(
        &self,
        id: &str,
    ) -> Result<Option<(ReconciliationRun, RunTally)>, StoreError> {
        statement::<B>(&format!("{RUN_WITH_TALLY} WHERE x.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tallied)
            .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store discrepancies_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn discrepancies_page(
        &self,
        run_id: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Discrepancy>, StoreError> {
        statement::<B>(&format!(
            "{DISCREPANCY_SELECT} WHERE d.run_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3"
        ))
        .bind(run_id)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(discrepancy_from_row)
        .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store note_reconciliation_progress", otel.kind = "client", db.system = B::SYSTEM))]
    async fn note_reconciliation_progress(
        &self,
        run_id: &str,
        provider_payments: i32,
        provider_refunds: i32,
    ) -> Result<(), StoreError> {
        statement::<B>(
            "UPDATE reconciliation_runs SET provider_payments = $2, provider_refunds = $3 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(run_id)
        .bind(provider_payments)
        .bind(provider_refunds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
