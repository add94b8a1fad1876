//! Stripe's payouts and the balance transactions in each (`GET /v1/payouts`,
//! `GET /v1/balance_transactions?payout=`), read through an allow-list: ids, types, amounts,
//! fees and dates. A charge's source is expanded only to learn its PaymentIntent, from which the
//! Checkout Session (the payment as Counterfoil knows it) is found; the card and billing details
//! the expanded Charge carries have no field here and are skipped unread.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::wire::List;
use super::{from_unix, StripeClient};
use crate::providers::{ProviderError, ProviderPayout, ProviderPayoutItem, SearchPage};

#[derive(Debug, Deserialize)]
struct Payout {
    id: String,
    amount: i64,
    arrival_date: i64,
    created: i64,
    status: String,
}

#[derive(Debug, Deserialize)]
struct BalanceTransaction {
    id: String,
    amount: i64,
    fee: i64,
    net: i64,
    #[serde(rename = "type")]
    kind: String,
    source: Option<Source>,
}

/// A balance transaction's source: an id, or (expanded) the object's id and PaymentIntent.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Source {
    Id(String),
    Object {
        id: String,
        payment_intent: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
struct SessionId {
    id: String,
}

/// The id after which the next page starts, when there is one.
fn next<T>(list: &List<T>, id: impl Fn(&T) -> &str) -> Option<String> {
    list.has_more
        .then(|| list.data.last().map(|last| id(last).to_owned()))
        .flatten()
}

impl StripeClient {
    pub(super) async fn payouts_page(
        &self,
        since: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayout>, ProviderError> {
        let mut query = vec![
            ("limit", "100".to_owned()),
            ("created[gte]", since.timestamp().to_string()),
        ];
        if let Some(after) = cursor {
            query.push(("starting_after", after.to_owned()));
        }
        let list: List<Payout> = self.get("/v1/payouts", &query).await?;
        let next = next(&list, |p| &p.id);
        let items = list
            .data
            .into_iter()
            .map(|p| {
                let arrival = from_unix(Some(p.arrival_date))
                    .ok_or_else(|| ProviderError::InvalidResponse("payout arrival_date".into()))?;
                Ok(ProviderPayout {
                    id: p.id,
                    amount: p.amount,
                    arrival_date: arrival.date_naive(),
                    created_at: from_unix(Some(p.created)).unwrap_or(arrival),
                    status: p.status,
                })
            })
            .collect::<Result<_, ProviderError>>()?;
        Ok(SearchPage { items, next })
    }

    pub(super) async fn payout_items_page(
        &self,
        payout_id: &str,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayoutItem>, ProviderError> {
        let mut query = vec![
            ("payout", payout_id.to_owned()),
            ("limit", "100".to_owned()),
            ("expand[]", "data.source".to_owned()),
        ];
        if let Some(after) = cursor {
            query.push(("starting_after", after.to_owned()));
        }
        let list: List<BalanceTransaction> = self.get("/v1/balance_transactions", &query).await?;
        let next = next(&list, |t| &t.id);
        let mut items = Vec::with_capacity(list.data.len());
        for t in list.data {
            let (source, intent) = match t.source {
                Some(Source::Id(id)) => (Some(id), None),
                Some(Source::Object { id, payment_intent }) => (Some(id), payment_intent),
                None => (None, None),
            };
            let provider_payment_id = match (t.kind.as_str(), intent) {
                ("charge" | "payment", Some(intent)) => self.session_of(&intent).await?,
                _ => None,
            };
            items.push(ProviderPayoutItem {
                provider_refund_id: source.filter(|_| t.kind == "refund"),
                id: t.id,
                kind: t.kind,
                amount: t.amount,
                fee: t.fee,
                net: t.net,
                provider_payment_id,
            });
        }
        Ok(SearchPage { items, next })
    }

    /// The Checkout Session that made a PaymentIntent, if one did (a charge made in Stripe's
    /// dashboard has none).
    async fn session_of(&self, payment_intent: &str) -> Result<Option<String>, ProviderError> {
        let query = [
            ("payment_intent", payment_intent.to_owned()),
            ("limit", "1".to_owned()),
        ];
        let list: List<SessionId> = self.get("/v1/checkout/sessions", &query).await?;
        Ok(list.data.into_iter().next().map(|s| s.id))
    }
}
