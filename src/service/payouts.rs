//! The provider's payouts to the council's bank: read from each account that has them, kept,
//! and each traced to the payments, refunds and fees in it and the income batches that posted
//! them, so a bank statement line can be followed down to single payments.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{Clock, ServiceError};
use crate::domain::payout::{Payout, PayoutCheck, PayoutLine};
use crate::domain::ProviderKind;
use crate::providers::ProviderRegistry;
use crate::store::Store;

/// How far back each read looks for payouts: Stripe pays out within days, and a payout read
/// again is only brought up to date.
const LOOK_BACK_DAYS: i64 = 35;

/// GOV.UK Pay's settlements are read from its payment search, so it looks back less far: the
/// payments made in the last ten days (Stripe settles within a few working days).
const SETTLED_LOOK_BACK_DAYS: i64 = 10;

/// What a reading of every account's payouts did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PayoutReading {
    /// Payouts new or changed.
    pub changed: usize,
    /// Accounts whose provider could not be read, and why.
    pub unread: Vec<(String, String)>,
}

/// A payout and how it stands against the batches.
#[derive(Debug, Clone)]
pub struct PayoutView {
    pub payout: Payout,
    pub check: PayoutCheck,
}

pub struct PayoutService {
    store: Arc<dyn Store>,
    providers: ProviderRegistry,
    clock: Arc<dyn Clock>,
}

impl PayoutService {
    pub fn new(store: Arc<dyn Store>, providers: ProviderRegistry, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            providers,
            clock,
        }
    }

    /// Reads every account's recent payouts: Stripe's, and GOV.UK Pay's days of settlement
    /// (accounts on its Stripe-backed service say when each payment was settled; others give
    /// none). An account whose provider cannot be read is named; the others are read all the
    /// same.
    pub async fn read_all(&self) -> Result<PayoutReading, ServiceError> {
        let mut reading = PayoutReading::default();
        for account in self.providers.accounts() {
            let provider = self.providers.get(&account)?;
            let look_back = match provider.kind() {
                ProviderKind::Stripe => LOOK_BACK_DAYS,
                // Every payment made in the period is read again to see whether it settled.
                ProviderKind::GovukPay => SETTLED_LOOK_BACK_DAYS,
            };
            let since = self.clock.now() - Duration::days(look_back);
            match self.read(&account, since).await {
                Ok(changed) => reading.changed += changed,
                Err(ServiceError::Store(e)) => return Err(ServiceError::Store(e)),
                Err(e) => reading.unread.push((account, e.to_string())),
            }
        }
        Ok(reading)
    }

    /// Reads `account`'s payouts created since `since`: a payout not seen before is kept with
    /// every item in it; one seen before has only its status brought up to date.
    pub async fn read(&self, account: &str, since: DateTime<Utc>) -> Result<usize, ServiceError> {
        let provider = self.providers.get(account)?;
        let from_provider =
            |e: crate::providers::ProviderError| ServiceError::from_provider(&e, None);
        let mut changed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = provider
                .search_payouts(since, cursor.as_deref())
                .await
                .map_err(from_provider)?;
            for payout in &page.items {
                let known = self.store.payout_status(account, &payout.id).await?;
                if known.as_deref() == Some(payout.status.as_str()) {
                    continue;
                }
                let mut items = Vec::new();
                if known.is_none() {
                    let mut at: Option<String> = None;
                    loop {
                        let part = provider
                            .payout_items(&payout.id, at.as_deref())
                            .await
                            .map_err(from_provider)?;
                        items.extend(part.items);
                        match part.next {
                            Some(next) => at = Some(next),
                            None => break,
                        }
                    }
                }
                self.store
                    .save_payout(account, payout, &items, self.clock.now())
                    .await?;
                changed += 1;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(changed),
            }
        }
    }

    /// Up to `limit` payouts, latest arrival first, each checked against the batches.
    pub async fn payouts(
        &self,
        before: Option<(NaiveDate, String, String)>,
        limit: u32,
    ) -> Result<Vec<PayoutView>, ServiceError> {
        let mut views = Vec::new();
        for payout in self.store.payouts_page(before, limit).await? {
            let lines = self.store.payout_lines(&payout.account, &payout.id).await?;
            let check = PayoutCheck::of(payout.amount, &lines);
            views.push(PayoutView { payout, check });
        }
        Ok(views)
    }

    /// One of `account`'s payouts, checked, with its items.
    pub async fn payout(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Option<(PayoutView, Vec<PayoutLine>)>, ServiceError> {
        let Some(payout) = self.store.get_payout(account, id).await? else {
            return Ok(None);
        };
        let lines = self.store.payout_lines(account, id).await?;
        let check = PayoutCheck::of(payout.amount, &lines);
        Ok(Some((PayoutView { payout, check }, lines)))
    }
}
