//! Runs as people follow them in the console: started for an account and a London day and left
//! to run, listed newest first with what each found, and a run's discrepancies a page at a time.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::{ReconciliationService, ServiceError};
use crate::domain::ledger::london_days;
use crate::domain::reconciliation::{Discrepancy, ReconciliationRun, RunTally};
use crate::domain::Actor;

impl ReconciliationService {
    /// Starts a run of `account` for the London day `day` and returns its id at once; the run
    /// goes on in the background (its page shows its progress) and records how it ended.
    pub async fn start(
        self: &Arc<Self>,
        actor: &Actor,
        account: &str,
        day: NaiveDate,
    ) -> Result<String, ServiceError> {
        self.providers.get(account)?;
        let (from, to) = london_days(day, day);
        let run = self.begin(actor, account, from, to).await?;
        let id = run.id.clone();
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut run = run;
            if let Err(e) = service.carry_out(&mut run).await {
                tracing::error!(run = %run.id, error = %e, "reconciliation run could not be recorded");
            }
        });
        Ok(id)
    }

    /// Up to `limit` runs started before `before`, newest first, each with what it found.
    pub async fn runs(
        &self,
        before: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<(ReconciliationRun, RunTally)>, ServiceError> {
        Ok(self.store.reconciliation_runs_page(before, limit).await?)
    }

    /// One run and what it found.
    pub async fn summary(
        &self,
        id: &str,
    ) -> Result<Option<(ReconciliationRun, RunTally)>, ServiceError> {
        Ok(self.store.reconciliation_run(id).await?)
    }

    /// Up to `limit` of a run's discrepancies after number `after`, in the order found.
    pub async fn discrepancies(
        &self,
        run_id: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Discrepancy>, ServiceError> {
        Ok(self.store.discrepancies_page(run_id, after, limit).await?)
    }

    /// The configured provider accounts a run can be started for.
    pub fn accounts(&self) -> Vec<String> {
        self.providers.accounts()
    }

    /// Progress is for people to watch: a failure to note it is logged, never the run's end.
    pub(super) async fn note_progress(&self, run_id: &str, payments: usize, refunds: usize) {
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        if let Err(e) = self
            .store
            .note_reconciliation_progress(run_id, count(payments), count(refunds))
            .await
        {
            tracing::warn!(run = run_id, error = %e, "could not note reconciliation progress");
        }
    }
}
