//! Payouts read from the provider, and each item matched through the ids to our payments,
//! refunds and income batches.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::domain::payout::{Payout, PayoutLine};
use crate::domain::provider_view::{ProviderPayout, ProviderPayoutItem};

#[async_trait]
pub trait PayoutStore: Send + Sync + 'static {
    /// The status of `account`'s payout `id` as last read, if it has been read.
    async fn payout_status(&self, account: &str, id: &str) -> Result<Option<String>, StoreError>;

    /// Keeps a payout of `account` and its items (items already kept stay as they were: a
    /// payout's contents never change at the provider); its status and amount are brought up
    /// to date.
    async fn save_payout(
        &self,
        account: &str,
        payout: &ProviderPayout,
        items: &[ProviderPayoutItem],
        read_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Up to `limit` payouts, latest arrival first, after `(arrival_date, account, id)`.
    async fn payouts_page(
        &self,
        before: Option<(NaiveDate, String, String)>,
        limit: u32,
    ) -> Result<Vec<Payout>, StoreError>;

    async fn get_payout(&self, account: &str, id: &str) -> Result<Option<Payout>, StoreError>;

    /// The payout's items in the provider's order, each with the payment or refund that carries
    /// its id and the income batch that posted it.
    async fn payout_lines(&self, account: &str, id: &str) -> Result<Vec<PayoutLine>, StoreError>;
}
