//! The one store implementation, over any [`Backend`]: the SQL both databases share (SQLite and
//! PostgreSQL both accept `$N` placeholders, `ON CONFLICT` and row-value comparisons).

mod api_keys;
mod approvals;
mod attention;
mod audit;
mod create_at_once;
mod finance;
mod idempotency;
mod income;
mod leases;
mod notifications;
mod operations;
mod payments;
mod payouts;
mod privacy;
mod provider_events;
mod reconciliation_runs;
mod refunds;
mod register;
mod sessions;
mod webhook_batch;

use sqlx::Pool;

use attention::resolution_from_row;
use reconciliation_runs::{discrepancy_from_row, run_from_row, DISCREPANCY_SELECT};

use crate::store::backend::{Backend, Column, ReadRow};
use crate::store::guard::Builder;
use crate::store::{ColumnInfo, StoreError};

/// The store on one SQL database.
pub struct SqlStore<B: Backend> {
    pool: Pool<B>,
}

impl<B: Backend> SqlStore<B> {
    pub(super) fn new(pool: Pool<B>) -> Self {
        Self { pool }
    }
}

impl ColumnInfo {
    pub(super) fn from_row(row: &impl ReadRow) -> Result<Self, StoreError> {
        Ok(ColumnInfo {
            table: row.col("table_name")?,
            column: row.col("column_name")?,
            is_text: row.col("is_text")?,
        })
    }
}

/// Appends `(id1, id2, …)` with each id bound.
pub(super) fn push_ids<B: Backend>(sql: &mut Builder<B>, ids: &[String]) {
    sql.push("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push_bind(id.clone());
    }
    sql.push(")");
}

/// The first column of each row.
pub(super) fn first_column<T>(rows: Vec<impl ReadRow>) -> Result<Vec<T>, StoreError>
where
    T: Column,
{
    rows.iter().map(|row| Ok(row.col_at(0)?)).collect()
}
