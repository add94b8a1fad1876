//! Reconciliation: compare our payments and refunds for a period with the provider's own records.
//! Where the provider is authoritative (a status we have not heard, a create whose answer was
//! lost, a refund's outcome) the run heals our record through the state machine, and says so.

mod runs;
mod view;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use view::ts;
pub use view::{DiscrepancyView, RunView};

use super::payments::PaymentService;
use super::{Clock, ServiceError};
use crate::domain::reconciliation::{Discrepancy, DiscrepancyKind, ReconciliationRun, RunStatus};
use crate::domain::refund::RefundStatus;
use crate::domain::Actor;
use crate::domain::{
    decide_transition, CreateOutcome, Payment, TransitionDecision, TransitionSource,
};
use crate::providers::{PaymentProvider, ProviderPayment, ProviderRefundRecord, ProviderRegistry};
use crate::store::{AuditEntry, Store};

/// Our record and the provider's can be stamped a little apart; each side is checked against the
/// other's records over this much more time.
const MARGIN: chrono::Duration = chrono::Duration::minutes(10);

pub struct ReconciliationService {
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    payments: Arc<PaymentService>,
    clock: Arc<dyn Clock>,
    /// Records compared per step.
    batch: u32,
}

fn discrepancy(
    kind: DiscrepancyKind,
    ours: Option<&crate::domain::Payment>,
    provider_id: Option<&str>,
) -> Discrepancy {
    Discrepancy {
        payment_id: ours.map(|p| p.id.to_string()),
        provider_payment_id: provider_id.map(str::to_owned),
        ..Discrepancy::new(kind)
    }
}

impl ReconciliationService {
    pub fn new(
        store: Arc<dyn Store>,
        providers: ProviderRegistry,
        payments: Arc<PaymentService>,
        clock: Arc<dyn Clock>,
        batch: u32,
    ) -> Self {
        Self {
            store,
            providers,
            payments,
            clock,
            batch: batch.max(1),
        }
    }

    /// Whether `account` is a provider account configured in Counterfoil.
    pub fn knows_account(&self, account: &str) -> bool {
        self.providers.get(account).is_ok()
    }

    /// Runs a reconciliation of `account` for [from, to) and returns what it found.
    pub async fn run(
        &self,
        actor: &Actor,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<RunView, ServiceError> {
        let mut run = self.begin(actor, account, from, to).await?;
        self.carry_out(&mut run).await?;
        self.get(&run.id)
            .await?
            .ok_or(ServiceError::Store(crate::store::StoreError::Corrupt(
                "a finished reconciliation run is missing".into(),
            )))
    }

    /// Records a run of `account` for [from, to) as started, with its audit entry.
    async fn begin(
        &self,
        actor: &Actor,
        account: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ReconciliationRun, ServiceError> {
        let now = self.clock.now();
        let run = ReconciliationRun {
            id: crate::domain::refs::new_id("rec_"),
            account: account.to_owned(),
            period_from: from,
            period_to: to,
            requested_by: actor.id(),
            requested_by_label: actor.label(),
            started_at: now,
            finished_at: None,
            status: RunStatus::Running,
            provider_payments: 0,
            provider_refunds: 0,
            local_payments: 0,
            error: None,
        };
        let audit = AuditEntry {
            at: now,
            actor_key_id: actor.id(),
            actor_label: actor.label(),
            action: "reconciliation.run".into(),
            subject: run.id.clone(),
            detail: json!({"account": account, "from": ts(from), "to": ts(to)}),
        };
        self.store.insert_reconciliation_run(&run, &audit).await?;
        Ok(run)
    }

    /// Compares the two sides for a started run and records how it ended.
    async fn carry_out(&self, run: &mut ReconciliationRun) -> Result<(), ServiceError> {
        let found = match self.compare(run).await {
            Ok(found) => {
                run.status = RunStatus::Completed;
                found
            }
            Err(e) => {
                // What was found before the failure stays recorded with the failed run.
                run.status = RunStatus::Failed;
                run.error = Some(e.to_string());
                0
            }
        };
        run.finished_at = Some(self.clock.now());
        self.store.finish_reconciliation_run(run).await?;
        tracing::info!(run = %run.id, account = %run.account, status = %run.status, discrepancies = found, "reconciliation run");
        Ok(())
    }

    /// The nightly run of `account` for the London day before `now`. Several replicas may try;
    /// the database lets one start it (a unique nightly run per account and period).
    pub async fn nightly(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RunView>, ServiceError> {
        let yesterday = crate::domain::ledger::london_day(now) - chrono::Days::new(1);
        let (from, to) = crate::domain::ledger::london_days(yesterday, yesterday);
        let actor = Actor::NIGHTLY_RECONCILIATION;
        match self.run(&actor, account, from, to).await {
            Ok(run) => Ok(Some(run)),
            Err(ServiceError::Store(crate::store::StoreError::Conflict)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<RunView>, ServiceError> {
        Ok(self
            .store
            .get_reconciliation_run(id)
            .await?
            .map(|(run, found)| RunView::new(&run, &found)))
    }

    /// Compares the two sides as ordered streams, one bounded step at a time: the provider's pages
    /// are staged in the database as they arrive, then read back in provider-id order beside ours,
    /// so memory holds one step's records whatever the period's size. Records what it finds as it
    /// goes and returns how many.
    async fn compare(&self, run: &mut ReconciliationRun) -> Result<usize, ServiceError> {
        let provider = self.providers.get(&run.account)?;
        let (from, to) = (run.period_from, run.period_to);
        let (payments, refunds) = self
            .stage_theirs(provider.as_ref(), &run.id, from, to)
            .await?;
        run.provider_payments = i32::try_from(payments).unwrap_or(i32::MAX);
        run.provider_refunds = i32::try_from(refunds).unwrap_or(i32::MAX);
        let local = self
            .store
            .count_payments_created(&run.account, from, to)
            .await?;
        run.local_payments = i32::try_from(local).unwrap_or(i32::MAX);

        Ok(self.compare_listed(run).await?
            + self.report_unlisted(run).await?
            + self.compare_refunds_listed(run).await?)
    }

    /// Every payment the provider lists, beside ours with its provider id; how many differ.
    async fn compare_listed(&self, run: &ReconciliationRun) -> Result<usize, ServiceError> {
        let (from, to) = (run.period_from, run.period_to);
        let in_period = |at: Option<DateTime<Utc>>| at.is_none_or(|at| at >= from && at < to);
        let mut found = 0;
        let mut after: Option<String> = None;
        loop {
            let step = self
                .store
                .staged_provider_payments(&run.id, &run.account, after.as_deref(), self.batch)
                .await?;
            let Some((last, _)) = step.last() else {
                return Ok(found);
            };
            after = Some(last.provider_payment_id.clone());
            let mut step_found = Vec::new();
            for (their, ours) in &step {
                match ours {
                    Some(ours) => step_found.extend(self.compare_known(ours, their).await?),
                    // Not known by its provider id: one of ours whose create answer was lost?
                    // (Those made just outside the period are the neighbouring runs' business.)
                    None if in_period(their.created_at) => {
                        step_found.push(self.missing_locally(&run.account, their).await?);
                    }
                    None => {}
                }
            }
            found += self.record(&run.id, &step_found).await?;
        }
    }

    /// Ours of the period that the provider's search does not list; how many.
    async fn report_unlisted(&self, run: &ReconciliationRun) -> Result<usize, ServiceError> {
        let mut found = 0;
        let mut after: Option<(DateTime<Utc>, String)> = None;
        loop {
            let step = self
                .store
                .payments_unlisted_by_provider(
                    &run.id,
                    &run.account,
                    run.period_from,
                    run.period_to,
                    after.clone(),
                    self.batch,
                )
                .await?;
            let Some(last) = step.last() else {
                return Ok(found);
            };
            after = Some((last.created_at, last.id.to_string()));
            let step_found: Vec<Discrepancy> = step.iter().map(missing_at_provider).collect();
            found += self.record(&run.id, &step_found).await?;
        }
    }

    /// The provider's refunds, a payment's at a time; how many payments' refunds differ.
    async fn compare_refunds_listed(&self, run: &ReconciliationRun) -> Result<usize, ServiceError> {
        let mut found = 0;
        let mut after: Option<String> = None;
        loop {
            let step = self
                .store
                .staged_provider_refunds(&run.id, after.as_deref(), self.batch)
                .await?;
            let Some(last) = step.last() else {
                return Ok(found);
            };
            after = Some(last.provider_payment_id.clone());
            let mut step_found = Vec::new();
            for records in step.chunk_by(|a, b| a.provider_payment_id == b.provider_payment_id) {
                step_found.extend(self.compare_refunds(&run.account, records).await?);
            }
            found += self.record(&run.id, &step_found).await?;
        }
    }

    async fn record(&self, run_id: &str, found: &[Discrepancy]) -> Result<usize, ServiceError> {
        self.store.record_discrepancies(run_id, found).await?;
        Ok(found.len())
    }

    /// Every payment and refund the provider lists for the period (and a margin either side),
    /// staged page by page; how many of each.
    async fn stage_theirs(
        &self,
        provider: &dyn PaymentProvider,
        run_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(usize, usize), ServiceError> {
        let provider_error =
            |e: crate::providers::ProviderError| ServiceError::from_provider(&e, None);
        let (mut payments, mut refunds) = (0, 0);
        let mut cursor: Option<String> = None;
        loop {
            let found = provider
                .search_payments(from - MARGIN, to + MARGIN, cursor.as_deref())
                .await
                .map_err(provider_error)?;
            payments += found.items.len();
            let items = keepable(found.items, ProviderPayment::withhold_card_numbers);
            self.store.stage_provider_payments(run_id, &items).await?;
            self.note_progress(run_id, payments, 0).await;
            match found.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut cursor: Option<String> = None;
        loop {
            let found = provider
                .search_refunds(from - MARGIN, to + MARGIN, cursor.as_deref())
                .await
                .map_err(provider_error)?;
            refunds += found.items.len();
            let items = keepable(found.items, ProviderRefundRecord::withhold_card_numbers);
            self.store.stage_provider_refunds(run_id, &items).await?;
            self.note_progress(run_id, payments, refunds).await;
            match found.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok((payments, refunds))
    }

    /// A payment both sides know: amounts and statuses compared, the provider's status applied
    /// where it is ahead.
    async fn compare_known(
        &self,
        ours: &Payment,
        their: &ProviderPayment,
    ) -> Result<Vec<Discrepancy>, ServiceError> {
        let provider_id = their.provider_payment_id.as_str();
        let mut found = Vec::new();
        if ours.amount != their.amount {
            let mut d = discrepancy(
                DiscrepancyKind::AmountMismatch,
                Some(ours),
                Some(provider_id),
            );
            d.ours = Some(ours.amount.to_string());
            d.theirs = Some(their.amount.to_string());
            found.push(d);
        }
        if ours.status != their.status {
            let mut d = discrepancy(
                DiscrepancyKind::StatusMismatch,
                Some(ours),
                Some(provider_id),
            );
            d.ours = Some(ours.status.to_string());
            d.theirs = Some(their.status.to_string());
            if let TransitionDecision::Apply { .. } = decide_transition(ours.status, their.status) {
                let healed = self
                    .payments
                    .apply_reported(
                        ours.clone(),
                        their.status,
                        their.failure_code.clone(),
                        their.finished_at,
                        TransitionSource::Reconciliation,
                    )
                    .await
                    .map_err(|(_, e)| e)?;
                d.healed = healed.status == their.status;
                d.note = "the provider's status was applied".into();
            } else {
                d.note = "our status is final or ahead; not changed".into();
            }
            found.push(d);
        }
        Ok(found)
    }

    /// A payment the provider has and we do not know by its id: a create whose answer was lost
    /// (recorded now), or one not made through Counterfoil.
    async fn missing_locally(
        &self,
        account: &str,
        their: &ProviderPayment,
    ) -> Result<Discrepancy, ServiceError> {
        let lost =
            match their
                .counterfoil_id
                .as_deref()
                .and_then(|id| crate::domain::PaymentId::parse(id).ok())
            {
                Some(id) => self.store.get_payment(&id).await?.filter(|p| {
                    p.account == account && p.create_outcome != CreateOutcome::Confirmed
                }),
                None => None,
            };
        let mut d = discrepancy(
            DiscrepancyKind::MissingLocally,
            lost.as_ref(),
            Some(their.provider_payment_id.as_str()),
        );
        d.theirs = Some(their.status.to_string());
        if let Some(lost) = lost {
            d.ours = Some(lost.status.to_string());
            let resolved = self
                .payments
                .resolve_unknown_create(lost, their.clone(), TransitionSource::Reconciliation)
                .await;
            d.healed = resolved.create_outcome == CreateOutcome::Confirmed;
            d.note = "a create whose answer was lost, now recorded".into();
        } else {
            d.note = "not made through Counterfoil".into();
        }
        Ok(d)
    }

    /// One payment's refunds as the provider lists them: heal our refunds' statuses where the
    /// provider is ahead, then compare totals.
    async fn compare_refunds(
        &self,
        account: &str,
        records: &[ProviderRefundRecord],
    ) -> Result<Option<Discrepancy>, ServiceError> {
        let Some(first) = records.first() else {
            return Ok(None);
        };
        let provider_id = first.provider_payment_id.as_str();
        let Some(ours) = self
            .store
            .find_payment_by_provider_id(account, provider_id)
            .await?
        else {
            return Ok(None);
        };
        let healed_any = self.heal_refund_statuses(&ours, records).await?;
        let their_total: i64 = records
            .iter()
            .filter(|r| r.refund.status == RefundStatus::Succeeded)
            .map(|r| r.refund.amount)
            .sum();
        let our_total = self
            .store
            .get_payment(&ours.id)
            .await?
            .map(|p| p.refunded_amount)
            .unwrap_or_default();
        if !healed_any && their_total == our_total {
            return Ok(None);
        }
        let mut d = discrepancy(
            DiscrepancyKind::RefundMismatch,
            Some(&ours),
            Some(provider_id),
        );
        d.ours = Some(our_total.to_string());
        d.theirs = Some(their_total.to_string());
        d.healed = their_total == our_total;
        d.note = if d.healed {
            "refund statuses brought in line with the provider".into()
        } else {
            "refunded totals differ (a refund made outside Counterfoil?)".into()
        };
        Ok(Some(d))
    }

    /// Moves our refunds of `ours` to the provider's status where the provider is ahead;
    /// whether any moved.
    async fn heal_refund_statuses(
        &self,
        ours: &Payment,
        records: &[ProviderRefundRecord],
    ) -> Result<bool, ServiceError> {
        let our_refunds = self.store.list_refunds(&ours.id).await?;
        let mut healed_any = false;
        for record in records {
            let mine = our_refunds.iter().find(|r| {
                r.provider_refund_id.as_deref() == Some(record.refund.provider_refund_id.as_str())
            });
            let Some(mine) = mine else {
                continue;
            };
            let ahead = mine.status != record.refund.status
                && (mine.status == RefundStatus::Pending
                    || record.refund.status == RefundStatus::Succeeded);
            if ahead {
                healed_any |= self
                    .store
                    .record_refund_status(
                        &mine.id,
                        mine.status,
                        record.refund.status,
                        &record.refund.provider_status,
                        self.clock.now(),
                    )
                    .await?;
            }
        }
        Ok(healed_any)
    }
}

/// One of ours, confirmed at the provider and made in the period, that its search does not list.
fn missing_at_provider(ours: &Payment) -> Discrepancy {
    let mut d = discrepancy(
        DiscrepancyKind::MissingAtProvider,
        Some(ours),
        ours.provider_payment_id.as_deref(),
    );
    d.ours = Some(ours.status.to_string());
    d.note = "the provider's search does not list it (search lags: re-run later)".into();
    d
}

/// What of a provider's page can be kept: fields that read as a card number withheld, and an item
/// whose own id reads as one left out (it could be neither kept nor looked up) and logged for a
/// person, so that a run never fails on what the provider sent.
fn keepable<T>(mut items: Vec<T>, withhold: fn(&mut T) -> bool) -> Vec<T> {
    let before = items.len();
    items.retain_mut(withhold);
    if items.len() < before {
        tracing::error!(
            left_out = before - items.len(),
            "reconciliation: provider records whose id reads as a card number were left out; \
             a person should look them up at the provider"
        );
    }
    items
}
