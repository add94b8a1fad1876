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

    /// Reads every account's recent payouts (Stripe's; GOV.UK Pay's public API has none). Returns
    /// how many payouts were new or changed.
    pub async fn read_all(&self) -> Result<usize, ServiceError> {
        let since = self.clock.now() - Duration::days(LOOK_BACK_DAYS);
        let mut changed = 0;
        for account in self.providers.accounts() {
            let provider = self.providers.get(&account)?;
            if provider.kind() == ProviderKind::Stripe {
                changed += self.read(&account, since).await?;
            }
        }
        Ok(changed)
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
                let known = self.store.payout_status(&payout.id).await?;
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
        before: Option<(NaiveDate, String)>,
        limit: u32,
    ) -> Result<Vec<PayoutView>, ServiceError> {
        let mut views = Vec::new();
        for payout in self.store.payouts_page(before, limit).await? {
            let lines = self.store.payout_lines(&payout.id).await?;
            let check = PayoutCheck::of(payout.amount, &lines);
            views.push(PayoutView { payout, check });
        }
        Ok(views)
    }

    /// One payout, checked, with its items.
    pub async fn payout(
        &self,
        id: &str,
    ) -> Result<Option<(PayoutView, Vec<PayoutLine>)>, ServiceError> {
        let Some(payout) = self.store.get_payout(id).await? else {
            return Ok(None);
        };
        let lines = self.store.payout_lines(id).await?;
        let check = PayoutCheck::of(payout.amount, &lines);
        Ok(Some((PayoutView { payout, check }, lines)))
    }
}
