//! Takings into the council's income system: each account's London day built into a numbered,
//! frozen batch once the day is over, pushed (LocalGov IMS) or downloaded (a file), and a post
//! whose answer was lost found again before anything is sent twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, Timelike};

use super::{Clock, ServiceError};
use crate::domain::audit::AuditEntry;
use crate::domain::income::document::{checksum, render, BatchHeading, Layout};
use crate::domain::income::{
    batch_reference, open_period, posting_row, ControlTotals, FieldLimits, PostingCodes, PostingRow,
};
use crate::domain::ledger::london_days;
use crate::providers::income_system::{IncomeSystem, IncomeSystemError};
use crate::store::{BatchStatus, IncomeBatch, LockedPeriod, PostRecord, Store, StoreError};

/// What batches are built from: the layout, the codes of each account's services, and from
/// which day.
#[derive(Debug, Clone)]
pub struct IncomePlan {
    pub layout: Layout,
    pub limits: FieldLimits,
    pub starts_on: NaiveDate,
    pub suspense: String,
    /// Account → service code → its codes.
    pub accounts: BTreeMap<String, BTreeMap<String, PostingCodes>>,
    pub retry_interval: Duration,
    /// The London hour after which yesterday is built (late webhooks have had the night).
    pub build_hour: u32,
}

/// Who posted a batch Counterfoil pushed.
pub const WORKER_ID: &str = "counterfoil";
const WORKER_LABEL: &str = "Counterfoil (posted to LocalGov IMS)";

/// The rows `sources` become, numbered from 1, each under its service's codes.
fn rows_of(
    plan: &IncomePlan,
    account: &str,
    services: &BTreeMap<String, PostingCodes>,
    day: NaiveDate,
    sources: &[crate::domain::income::PostingSource],
) -> Result<Vec<PostingRow>, ServiceError> {
    let mut rows = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let codes = services.get(&source.service).ok_or_else(|| {
            // A service no longer configured: its takings cannot be coded, and leaving them out
            // would lose them from the income system. Nothing is built until it is.
            StoreError::Other(format!(
                "service {} has takings on {account} but no posting codes: batch {day} not built",
                source.service
            ))
        })?;
        rows.push(posting_row(
            source,
            codes,
            &plan.suspense,
            &plan.limits,
            i as i64 + 1,
        ));
    }
    Ok(rows)
}

/// How many rows are looked up in the income system at once after a lost answer.
const LOOKUPS_AT_ONCE: usize = 8;

/// The rows the income system does not hold yet, in their order: each looked up by its internal
/// reference, a few at a time (a day of a large council's takings is thousands of rows).
async fn not_held(
    system: &dyn IncomeSystem,
    rows: Vec<PostingRow>,
) -> Result<Vec<PostingRow>, IncomeSystemError> {
    let mut held = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(LOOKUPS_AT_ONCE) {
        let lookups: Vec<_> = chunk.iter().map(|row| system.holds(&row.line_id)).collect();
        for answer in futures_util::future::join_all(lookups).await {
            held.push(answer?);
        }
    }
    Ok(rows
        .into_iter()
        .zip(held)
        .filter(|(_, held)| !held)
        .map(|(row, _)| row)
        .collect())
}

/// What one round of building did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BuildRound {
    pub built: Vec<IncomeBatch>,
    /// Accounts whose next day could not be built, and why (it is tried again next round).
    pub unbuilt: Vec<(String, String)>,
}

/// What one round of posting did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PostRound {
    pub posted: usize,
    pub retrying: usize,
    pub failed: usize,
}

pub struct IncomeService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    plan: Option<IncomePlan>,
    system: Option<Arc<dyn IncomeSystem>>,
}

impl IncomeService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        plan: Option<IncomePlan>,
        system: Option<Arc<dyn IncomeSystem>>,
    ) -> Self {
        Self {
            store,
            clock,
            plan,
            system,
        }
    }

    /// Whether takings are posted at all (`income.target` is set).
    pub fn enabled(&self) -> bool {
        self.plan.is_some()
    }

    /// Builds every batch that is due: for each account, each London day from the day after
    /// its last batch (or `starts_on`) to yesterday (once today's `build_hour` has come; the day
    /// before until then). Returns the batches built, and the accounts whose next day could not
    /// be built, with why.
    pub async fn build_due(&self) -> Result<BuildRound, ServiceError> {
        let Some(plan) = &self.plan else {
            return Ok(BuildRound::default());
        };
        let now = self.clock.now().with_timezone(&chrono_tz::Europe::London);
        let closed_days = if now.hour() >= plan.build_hour { 1 } else { 2 };
        let yesterday = now.date_naive() - Days::new(closed_days);
        let mut round = BuildRound::default();
        for (account, services) in &plan.accounts {
            // One account's day that cannot be built (a service with takings but no codes, say)
            // holds up that account only; the others are built all the same.
            if let Err(e) = self
                .build_account(plan, account, services, yesterday, &mut round.built)
                .await
            {
                tracing::warn!(account, error = %e, "income batches could not be built");
                round.unbuilt.push((account.clone(), e.to_string()));
            }
        }
        Ok(round)
    }

    /// Builds `account`'s days up to `last`, one after another, onto `built`.
    async fn build_account(
        &self,
        plan: &IncomePlan,
        account: &str,
        services: &BTreeMap<String, PostingCodes>,
        last: NaiveDate,
        built: &mut Vec<IncomeBatch>,
    ) -> Result<(), ServiceError> {
        loop {
            let latest = self.store.latest_batch(account).await?;
            let day = match &latest {
                Some(batch) => batch.day + Days::new(1),
                None => plan.starts_on,
            };
            if day > last {
                return Ok(());
            }
            let number = latest.map_or(1, |b| b.number + 1);
            if let Some(batch) = self.build(plan, account, services, day, number).await? {
                built.push(batch);
            }
        }
    }

    /// Builds one account's batch for `day`: every succeeded payment and refund of the account
    /// up to the end of that day that is in no batch yet. `None`: another server built it first.
    async fn build(
        &self,
        plan: &IncomePlan,
        account: &str,
        services: &BTreeMap<String, PostingCodes>,
        day: NaiveDate,
        number: i64,
    ) -> Result<Option<IncomeBatch>, ServiceError> {
        let (start, _) = london_days(plan.starts_on, plan.starts_on);
        let (_, end) = london_days(day, day);
        let sources = self.store.unbatched_sources(account, start, end).await?;
        let rows = rows_of(plan, account, services, day, &sources)?;
        let locked: Vec<String> = self
            .store
            .locked_periods()
            .await?
            .into_iter()
            .map(|p| p.period)
            .collect();
        let now = self.clock.now();
        let reference = batch_reference(account, number, plan.limits.batch_reference);
        let heading = BatchHeading {
            reference: &reference,
            built_at: now,
        };
        let document = render(&plan.layout, &heading, &rows);
        let totals = ControlTotals::of(&rows);
        let pushed = matches!(plan.layout, Layout::LocalgovIms { .. });
        // An empty day has nothing to post: it is closed as it is built.
        let empty = rows.is_empty();
        let batch = IncomeBatch {
            id: crate::domain::refs::new_id("bat_"),
            account: account.to_owned(),
            number,
            reference: reference.clone(),
            day,
            period: open_period(day, &locked),
            layout: plan.layout.clone(),
            row_count: totals.rows,
            control_total: totals.total,
            checksum: checksum(&document),
            built_at: now,
            status: if empty {
                BatchStatus::Posted
            } else {
                BatchStatus::Ready
            },
            pushed,
            attempts: 0,
            next_attempt_at: None,
            outcome_unknown: false,
            last_error: None,
            posted_at: empty.then_some(now),
            posted_by: empty.then(|| WORKER_ID.to_owned()),
            posted_by_label: empty.then(|| "Counterfoil (nothing to post)".to_owned()),
        };
        if !self.store.insert_batch(&batch, &rows).await? {
            return Ok(None);
        }
        tracing::info!(
            account,
            batch = %batch.reference,
            %day,
            rows = batch.row_count,
            control_total = batch.control_total,
            "income batch built"
        );
        Ok(Some(batch))
    }

    /// Pushes every batch that is due to the income system, one at a time, oldest first.
    pub async fn post_due(&self) -> Result<PostRound, ServiceError> {
        let (Some(plan), Some(system)) = (&self.plan, &self.system) else {
            return Ok(PostRound::default());
        };
        let mut round = PostRound::default();
        loop {
            let now = self.clock.now();
            let lease = now + chrono::Duration::from_std(plan.retry_interval).unwrap_or_default();
            let Some(batch) = self.store.lease_batch_to_post(now, lease).await? else {
                return Ok(round);
            };
            let record = self.post(system.as_ref(), plan, &batch).await?;
            match record.status {
                BatchStatus::Posted => round.posted += 1,
                BatchStatus::Failed => round.failed += 1,
                BatchStatus::Ready => round.retrying += 1,
            }
            self.store.record_post(&batch.id, &record, None).await?;
            if record.status == BatchStatus::Ready {
                // The income system is not answering: the rest wait for the next round.
                return Ok(round);
            }
        }
    }

    /// One push of `batch`. After a lost answer, the rows the income system already holds are
    /// left out (it may have taken all, some or none of them).
    async fn post(
        &self,
        system: &dyn IncomeSystem,
        plan: &IncomePlan,
        batch: &IncomeBatch,
    ) -> Result<PostRecord, ServiceError> {
        let now = self.clock.now();
        let retry_at = now + chrono::Duration::from_std(plan.retry_interval).unwrap_or_default();
        let retry = |unknown: bool, why: String| PostRecord {
            status: BatchStatus::Ready,
            next_attempt_at: Some(retry_at),
            outcome_unknown: unknown,
            last_error: Some(why),
            posted: None,
        };
        let rows = self.store.batch_rows(&batch.id).await?;
        let to_send = if batch.outcome_unknown {
            match not_held(system, rows).await {
                Ok(rows) => rows,
                Err(e) => return Ok(retry(true, e.to_string())),
            }
        } else {
            rows
        };
        if !to_send.is_empty() {
            let heading = BatchHeading {
                reference: &batch.reference,
                built_at: batch.built_at,
            };
            let body = render(&batch.layout, &heading, &to_send);
            match system.import(body).await {
                Ok(()) => {}
                Err(IncomeSystemError::Unknown(why)) => return Ok(retry(true, why)),
                Err(IncomeSystemError::NotSent(why)) => {
                    return Ok(retry(batch.outcome_unknown, why))
                }
                Err(e @ (IncomeSystemError::Refused(_) | IncomeSystemError::CardData)) => {
                    tracing::warn!(batch = %batch.reference, error = %e, "income batch refused");
                    return Ok(PostRecord {
                        status: BatchStatus::Failed,
                        next_attempt_at: None,
                        outcome_unknown: batch.outcome_unknown,
                        last_error: Some(e.to_string()),
                        posted: None,
                    });
                }
            }
        }
        tracing::info!(batch = %batch.reference, sent = to_send.len(), "income batch posted");
        Ok(PostRecord {
            status: BatchStatus::Posted,
            next_attempt_at: None,
            outcome_unknown: false,
            last_error: None,
            posted: Some((self.clock.now(), WORKER_ID.into(), WORKER_LABEL.into())),
        })
    }

    /// Up to `limit` batches, latest day first, after `before` (a day and an account).
    pub async fn batches(
        &self,
        before: Option<(NaiveDate, String)>,
        limit: u32,
    ) -> Result<Vec<IncomeBatch>, ServiceError> {
        Ok(self.store.batches_page(before, limit).await?)
    }

    /// A batch and its rows.
    pub async fn batch(
        &self,
        id: &str,
    ) -> Result<Option<(IncomeBatch, Vec<PostingRow>)>, ServiceError> {
        let Some(batch) = self.store.get_batch(id).await? else {
            return Ok(None);
        };
        let rows = self.store.batch_rows(id).await?;
        Ok(Some((batch, rows)))
    }

    /// The batch's document, exactly as built: written again from its frozen rows and layout and
    /// checked against the checksum taken when it was built. A document that no longer matches
    /// is never handed out.
    pub async fn document(&self, id: &str) -> Result<Option<(IncomeBatch, Vec<u8>)>, ServiceError> {
        let Some((batch, rows)) = self.batch(id).await? else {
            return Ok(None);
        };
        let heading = BatchHeading {
            reference: &batch.reference,
            built_at: batch.built_at,
        };
        let document = render(&batch.layout, &heading, &rows);
        if checksum(&document) != batch.checksum {
            return Err(StoreError::Corrupt(format!(
                "batch {} no longer matches the checksum it was built with",
                batch.reference
            ))
            .into());
        }
        Ok(Some((batch, document)))
    }

    /// The audit entry of something a person did, now.
    fn by_person(
        &self,
        (by_id, by_label): (&str, &str),
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            actor_key_id: by_id.to_owned(),
            actor_label: by_label.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
        }
    }

    /// A person says a file batch was imported (or a failed push was put right by hand).
    pub async fn mark_posted(
        &self,
        id: &str,
        by_id: &str,
        by_label: &str,
    ) -> Result<bool, ServiceError> {
        let Some(batch) = self.store.get_batch(id).await? else {
            return Ok(false);
        };
        let now = self.clock.now();
        let detail = serde_json::json!({
            "batch_id": batch.id,
            "rows": batch.row_count,
            "control_total": batch.control_total,
        });
        let audit = self.by_person(
            (by_id, by_label),
            "income.batch_posted",
            &batch.reference,
            detail,
        );
        let record = PostRecord {
            status: BatchStatus::Posted,
            next_attempt_at: None,
            outcome_unknown: false,
            last_error: None,
            posted: Some((now, by_id.to_owned(), by_label.to_owned())),
        };
        Ok(self.store.record_post(id, &record, Some(&audit)).await?)
    }

    /// A person asks for a refused batch to be pushed again, once the income system is put right.
    /// Nothing is assumed about what it took: before anything is sent, it is asked which rows
    /// it already holds. `Ok(false)`: no such batch waiting for a person.
    pub async fn post_again(
        &self,
        id: &str,
        by_id: &str,
        by_label: &str,
    ) -> Result<bool, ServiceError> {
        let Some(batch) = self.store.get_batch(id).await? else {
            return Ok(false);
        };
        if batch.status != BatchStatus::Failed || !batch.pushed {
            return Ok(false);
        }
        let detail = serde_json::json!({
            "batch_id": batch.id,
            "refused_with": batch.last_error,
        });
        let audit = self.by_person(
            (by_id, by_label),
            "income.batch_post_again",
            &batch.reference,
            detail,
        );
        let record = PostRecord {
            status: BatchStatus::Ready,
            next_attempt_at: None,
            outcome_unknown: true,
            last_error: batch.last_error.clone(),
            posted: None,
        };
        Ok(self.store.record_post(id, &record, Some(&audit)).await?)
    }

    /// Closes a month: nothing more is posted into it.
    pub async fn lock_period(
        &self,
        period: &str,
        by_id: &str,
        by_label: &str,
    ) -> Result<bool, ServiceError> {
        let now = self.clock.now();
        let detail = serde_json::json!({ "period": period });
        let audit = self.by_person((by_id, by_label), "income.period_locked", period, detail);
        let locked = LockedPeriod {
            period: period.to_owned(),
            locked_at: now,
            locked_by_label: by_label.to_owned(),
        };
        Ok(self.store.lock_period(&locked, by_id, &audit).await?)
    }

    /// The batch's London day's payments and refunds that it does not hold (posted later, or
    /// not yet).
    pub async fn day_elsewhere(
        &self,
        batch: &IncomeBatch,
    ) -> Result<Vec<crate::store::LineElsewhere>, ServiceError> {
        let (start, end) = london_days(batch.day, batch.day);
        Ok(self
            .store
            .day_lines_elsewhere(&batch.account, start, end, &batch.id)
            .await?)
    }

    /// What the batches posted per month and fund, the latest `months` months.
    pub async fn period_totals(
        &self,
        months: u32,
    ) -> Result<Vec<crate::store::PeriodFundTotal>, ServiceError> {
        Ok(self.store.period_totals(months).await?)
    }

    pub async fn locked_periods(&self) -> Result<Vec<LockedPeriod>, ServiceError> {
        Ok(self.store.locked_periods().await?)
    }
}
