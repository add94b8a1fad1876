//! GOV.UK Pay's payouts, where it gives them. Its public API lists none; on its Stripe-backed
//! service each payment and refund says the day it was paid into (or taken from) the service's
//! bank account (`settlement_summary.settled_date`), and a payment its `fee` and `net_amount`.
//! So a payout here is the payments and refunds settled on one day (`settled-YYYY-MM-DD`), read
//! from the payment and refund searches.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};

use super::{next_page, page_number, wire, GovukPayClient};
use crate::providers::{ProviderError, ProviderPayout, ProviderPayoutItem, SearchPage};

const PREFIX: &str = "settled-";

/// How long before its settled day a payment may have been made (Stripe pays out within days).
const MADE_BEFORE_SETTLED: Days = Days::new(14);

fn settled_on(summary: Option<&wire::SettlementSummary>) -> Option<NaiveDate> {
    let day = summary?.settled_date.as_deref()?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

impl GovukPayClient {
    /// Every page of a search over [from, to), each handed to `visit`, which says the search's
    /// total (to know when the last page has been read).
    async fn each_page<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        mut visit: impl FnMut(T) -> u64,
    ) -> Result<(), ProviderError> {
        let mut page = 1;
        while let Some(found) = self.search::<T>(path, from, to, page).await? {
            match next_page(page, visit(found)) {
                Some(_) => page += 1,
                None => break,
            }
        }
        Ok(())
    }

    /// Every payment and refund made in [from, to) that was settled, with its day.
    async fn settled(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(NaiveDate, ProviderPayoutItem)>, ProviderError> {
        let mut settled = Vec::new();
        self.each_page("/v1/payments", (from, to), |found: wire::SearchResults| {
            for p in &found.results {
                let Some(day) = settled_on(p.settlement_summary.as_ref()) else {
                    continue;
                };
                let fee = p.fee.unwrap_or(0);
                settled.push((
                    day,
                    ProviderPayoutItem {
                        id: p.payment_id.clone(),
                        kind: "charge".into(),
                        amount: p.amount,
                        fee,
                        net: p.net_amount.unwrap_or(p.amount - fee),
                        provider_payment_id: Some(p.payment_id.clone()),
                        provider_refund_id: None,
                    },
                ));
            }
            found.total
        })
        .await?;
        self.each_page(
            "/v1/refunds",
            (from, to),
            |found: wire::RefundSearchResults| {
                for r in &found.results {
                    let Some(day) = settled_on(r.refund.settlement_summary.as_ref()) else {
                        continue;
                    };
                    settled.push((
                        day,
                        ProviderPayoutItem {
                            id: r.refund.refund_id.clone(),
                            kind: "refund".into(),
                            amount: -r.refund.amount,
                            fee: 0,
                            net: -r.refund.amount,
                            provider_payment_id: None,
                            provider_refund_id: Some(r.refund.refund_id.clone()),
                        },
                    ));
                }
                found.total
            },
        )
        .await?;
        Ok(settled)
    }

    /// One payout per day on which payments made since `since` were settled (all on the first
    /// page: a day is one payout).
    pub(super) async fn settlements_page(
        &self,
        since: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayout>, ProviderError> {
        if page_number(cursor)? > 1 {
            return Ok(SearchPage::default());
        }
        let mut days = std::collections::BTreeMap::<NaiveDate, i64>::new();
        // Up to a minute ahead: the search's dates are whole seconds, and the last second counts.
        let until = Utc::now() + chrono::Duration::minutes(1);
        for (day, item) in self.settled(since, until).await? {
            *days.entry(day).or_default() += item.net;
        }
        let items = days
            .into_iter()
            .rev()
            .map(|(day, amount)| ProviderPayout {
                id: format!("{PREFIX}{day}"),
                amount,
                arrival_date: day,
                created_at: Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight")),
                status: "paid".into(),
            })
            .collect();
        Ok(SearchPage { items, next: None })
    }

    /// The payments and refunds settled on the payout's day.
    pub(super) async fn settlement_items_page(
        &self,
        payout_id: &str,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayoutItem>, ProviderError> {
        let day = payout_id
            .strip_prefix(PREFIX)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let (Some(day), 1) = (day, page_number(cursor)?) else {
            return Ok(SearchPage::default());
        };
        let midnight =
            |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"));
        let from = midnight(day - MADE_BEFORE_SETTLED);
        let to = midnight(day + Days::new(1));
        let items = self
            .settled(from, to)
            .await?
            .into_iter()
            .filter(|(settled, _)| *settled == day)
            .map(|(_, item)| item)
            .collect();
        Ok(SearchPage { items, next: None })
    }
}
