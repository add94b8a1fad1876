//! A run as the API and CSV show it: times in RFC 3339 UTC, kinds and statuses by name.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::reconciliation::{Discrepancy, ReconciliationRun};

pub(super) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: String,
    pub account: String,
    pub from: String,
    pub to: String,
    pub requested_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub provider_payments: i32,
    pub provider_refunds: i32,
    pub local_payments: i32,
    pub error: Option<String>,
    pub discrepancies: Vec<DiscrepancyView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DiscrepancyView {
    pub kind: String,
    pub payment_id: Option<String>,
    pub provider_payment_id: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    pub healed: bool,
    pub note: String,
}

impl RunView {
    pub fn new(run: &ReconciliationRun, found: &[Discrepancy]) -> Self {
        Self {
            id: run.id.clone(),
            account: run.account.clone(),
            from: ts(run.period_from),
            to: ts(run.period_to),
            requested_by: run.requested_by.clone(),
            started_at: ts(run.started_at),
            finished_at: run.finished_at.map(ts),
            status: run.status.as_str().to_owned(),
            provider_payments: run.provider_payments,
            provider_refunds: run.provider_refunds,
            local_payments: run.local_payments,
            error: run.error.clone(),
            discrepancies: found
                .iter()
                .map(|d| DiscrepancyView {
                    kind: d.kind.as_str().to_owned(),
                    payment_id: d.payment_id.clone(),
                    provider_payment_id: d.provider_payment_id.clone(),
                    ours: d.ours.clone(),
                    theirs: d.theirs.clone(),
                    healed: d.healed,
                    note: d.note.clone(),
                })
                .collect(),
        }
    }

    /// The discrepancies as RFC 4180 CSV, one line each.
    pub fn csv(&self) -> String {
        use crate::domain::ledger::{csv_raw, csv_text};
        let mut out =
            String::from("run_id,kind,payment_id,provider_payment_id,ours,theirs,healed,note\r\n");
        for d in &self.discrepancies {
            let cells = [
                csv_raw(&self.id),
                csv_raw(&d.kind),
                csv_raw(d.payment_id.as_deref().unwrap_or("")),
                csv_text(d.provider_payment_id.as_deref().unwrap_or("")),
                csv_text(d.ours.as_deref().unwrap_or("")),
                csv_text(d.theirs.as_deref().unwrap_or("")),
                csv_raw(if d.healed { "true" } else { "false" }),
                csv_text(&d.note),
            ];
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }
}
