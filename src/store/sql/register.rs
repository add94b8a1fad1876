//! The SQL of the refunds register: refunds sent to the provider and refunds waiting for or
//! declined by a second person, read as one list.

use sqlx::Pool;

use super::*;
use crate::domain::refund::{RefundRecord, RefundState};
use crate::domain::PaymentId;
use crate::store::backend::{Backend, ReadRow};
use crate::store::{parse_column, RegisterQuery};

/// A refund sent to the provider, in the register's shape. A refund sent on an approval was asked
/// for when the approval was (`refunds.requested_at` keeps that, so the newest come from an index).
const SENT: &str = "SELECT r.id AS id, r.payment_id AS payment_id, p.service AS service, \
      p.request_ref AS request_ref, r.amount AS amount, r.status AS state, r.reason AS reason, \
      r.requested_by AS requested_by, r.requested_by_label AS requested_by_label, \
      r.requested_at AS requested_at, \
      r.approved_by_label AS decided_by_label, r.approved_at AS decided_at, \
      CAST(NULL AS TEXT) AS decline_reason, r.failure_code AS failure, r.created_at AS sent_at, \
      r.finished_at AS finished_at \
    FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE 1 = 1";

/// A refund waiting for, or declined by, a second person, in the same shape (each branch is a
/// query of its own, so its NULLs are typed: SQLite reads a cast of NULL as NULL).
const UNSENT: &str = "SELECT a.id, a.payment_id, p.service, p.request_ref, a.amount, \
      a.status, a.reason, a.requested_by, a.requested_by_label, a.requested_at, \
      a.decided_by_label, a.decided_at, a.decline_reason, a.last_failure, \
      CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ) \
    FROM refund_approvals a JOIN payments p ON p.id = a.payment_id \
    WHERE a.status IN ('waiting', 'declined')";

/// The register's newest `limit` rows matching `query`. Each kind of row is filtered, ordered and
/// cut to one page on its own table's index (newest asked for first, by state when one is
/// asked for) before the two pages are merged, so a page costs the same however many refunds
/// there are.
pub(super) async fn refund_register<B: Backend>(
    pool: &Pool<B>,
    query: &RegisterQuery,
) -> Result<Vec<RefundRecord>, StoreError> {
    let mut sql = Builder::<B>::new("SELECT * FROM (SELECT * FROM (");
    sql.push(SENT);
    branch_filters(&mut sql, query, "r", "r.approved_by_label");
    sql.push(") AS sent UNION ALL SELECT * FROM (");
    sql.push(UNSENT);
    branch_filters(&mut sql, query, "a", "a.decided_by_label");
    sql.push(") AS unsent) AS register ORDER BY requested_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(query.limit));
    sql.build()
        .fetch_all(pool)
        .await?
        .iter()
        .map(record_from_row)
        .collect()
}

/// One branch's filters, order and page, on its own table's columns (`table` is its alias).
fn branch_filters<B: Backend>(
    sql: &mut Builder<B>,
    query: &RegisterQuery,
    table: &str,
    decided_by: &str,
) {
    if let Some(id) = &query.payment_id {
        sql.push(format!(" AND {table}.payment_id = "))
            .push_bind(id.to_string());
    }
    if let Some(state) = query.state {
        sql.push(format!(" AND {table}.status = "))
            .push_bind(state.as_str());
    }
    if let Some(service) = &query.service {
        sql.push(" AND p.service = ").push_bind(service.clone());
    }
    let requested_by = format!("{table}.requested_by_label");
    for (column, name) in [
        (requested_by.as_str(), &query.requested_by),
        (decided_by, &query.decided_by),
    ] {
        if let Some(name) = name {
            let pattern = format!("%{}%", name.to_lowercase().replace(['%', '_'], ""));
            sql.push(format!(" AND LOWER({column}) LIKE "))
                .push_bind(pattern);
        }
    }
    let at = format!("{table}.requested_at");
    if let Some(from) = query.requested_from {
        sql.push(format!(" AND {at} >= ")).push_bind(from);
    }
    if let Some(to) = query.requested_to {
        sql.push(format!(" AND {at} < ")).push_bind(to);
    }
    if let Some((before_at, id)) = &query.before {
        sql.push(format!(" AND ({at}, {table}.id) < ("))
            .push_bind(*before_at)
            .push(", ")
            .push_bind(id.clone())
            .push(")");
    }
    sql.push(format!(" ORDER BY {at} DESC, {table}.id DESC LIMIT "))
        .push_bind(i64::from(query.limit));
}

fn record_from_row(row: &impl ReadRow) -> Result<RefundRecord, StoreError> {
    let payment_id: String = row.col("payment_id")?;
    Ok(RefundRecord {
        id: row.col("id")?,
        payment_id: PaymentId::parse(&payment_id)
            .map_err(|_| StoreError::Corrupt("register.payment_id".into()))?,
        service: row.col("service")?,
        request_ref: row.col("request_ref")?,
        amount: row.col("amount")?,
        state: parse_column::<RefundState>(&row.col::<String>("state")?, "register.state")?,
        reason: row.col("reason")?,
        requested_by: row.col("requested_by")?,
        requested_by_label: row.col("requested_by_label")?,
        requested_at: row.col("requested_at")?,
        decided_by_label: row.col("decided_by_label")?,
        decided_at: row.col("decided_at")?,
        decline_reason: row.col("decline_reason")?,
        failure: row.col("failure")?,
        sent_at: row.col("sent_at")?,
        finished_at: row.col("finished_at")?,
    })
}
