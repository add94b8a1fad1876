//! One wrapper for every provider decorator: it hands each operation to the provider inside,
//! through a [`Layer`] that may observe the call or check what comes back. A decorator is a
//! `Layer` and says only what it changes; nothing is forwarded by hand twice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::{
    CreateSession, HeaderLookup, PaymentProvider, ProviderError, ProviderPayment, ProviderPayout,
    ProviderPayoutItem, ProviderRefund, ProviderRefundRecord, SearchPage, WebhookRejection,
};
use crate::domain::{PaymentId, ProviderEvent, ProviderKind};

/// What a decorator adds around a provider. Every method has a default that changes nothing.
pub trait Layer: Send + Sync + 'static {
    /// Runs one call to the provider inside (named by `operation`); a layer may time, trace or
    /// count it.
    fn call<'a, T: Send + 'a>(
        &'a self,
        _provider: ProviderKind,
        _operation: &'static str,
        call: BoxFuture<'a, Result<T, ProviderError>>,
    ) -> BoxFuture<'a, Result<T, ProviderError>> {
        call
    }

    /// A payment the provider returned from a create, a read or a find: a layer may refuse it.
    fn payment(&self, payment: ProviderPayment) -> Result<ProviderPayment, ProviderError> {
        Ok(payment)
    }

    /// A payment in a search result: a layer may change it, never refuse the whole page.
    fn searched(&self, _payment: &mut ProviderPayment) {}
}

/// A provider with a layer around it.
pub struct Layered<L> {
    inner: Arc<dyn PaymentProvider>,
    layer: L,
}

impl<L: Layer> Layered<L> {
    pub fn wrap(inner: Arc<dyn PaymentProvider>, layer: L) -> Arc<dyn PaymentProvider> {
        Arc::new(Self { inner, layer })
    }
}

#[async_trait]
impl<L: Layer> PaymentProvider for Layered<L> {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn create_payment(
        &self,
        request: &CreateSession<'_>,
    ) -> Result<ProviderPayment, ProviderError> {
        let created = self.inner.create_payment(request);
        let created = self
            .layer
            .call(self.kind(), "create_payment", created)
            .await?;
        self.layer.payment(created)
    }

    async fn get_payment(
        &self,
        provider_payment_id: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        let read = self.inner.get_payment(provider_payment_id);
        let read = self.layer.call(self.kind(), "get_payment", read).await?;
        self.layer.payment(read)
    }

    async fn cancel_payment(&self, provider_payment_id: &str) -> Result<(), ProviderError> {
        let cancelled = self.inner.cancel_payment(provider_payment_id);
        self.layer
            .call(self.kind(), "cancel_payment", cancelled)
            .await
    }

    async fn refund(
        &self,
        provider_payment_id: &str,
        amount: i64,
        amount_available: i64,
        refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let refunded = self
            .inner
            .refund(provider_payment_id, amount, amount_available, refund_id);
        self.layer.call(self.kind(), "refund", refunded).await
    }

    async fn get_refund(
        &self,
        provider_payment_id: &str,
        provider_refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let read = self
            .inner
            .get_refund(provider_payment_id, provider_refund_id);
        self.layer.call(self.kind(), "get_refund", read).await
    }

    async fn search_payments(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayment>, ProviderError> {
        let found = self.inner.search_payments(from, to, cursor);
        let mut page = self
            .layer
            .call(self.kind(), "search_payments", found)
            .await?;
        page.items.iter_mut().for_each(|p| self.layer.searched(p));
        Ok(page)
    }

    async fn search_refunds(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderRefundRecord>, ProviderError> {
        let found = self.inner.search_refunds(from, to, cursor);
        self.layer.call(self.kind(), "search_refunds", found).await
    }

    async fn search_payouts(
        &self,
        since: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayout>, ProviderError> {
        let found = self.inner.search_payouts(since, cursor);
        self.layer.call(self.kind(), "search_payouts", found).await
    }

    async fn payout_items(
        &self,
        payout_id: &str,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayoutItem>, ProviderError> {
        let found = self.inner.payout_items(payout_id, cursor);
        self.layer.call(self.kind(), "payout_items", found).await
    }

    fn verify_webhook(
        &self,
        header: HeaderLookup<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookRejection> {
        self.inner.verify_webhook(header, body, now)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<ProviderEvent, WebhookRejection> {
        self.inner.parse_webhook(body)
    }

    async fn find_payment(
        &self,
        reference: &str,
        payment_id: &PaymentId,
        created_from: DateTime<Utc>,
    ) -> Result<Option<ProviderPayment>, ProviderError> {
        let found = self.inner.find_payment(reference, payment_id, created_from);
        match self.layer.call(self.kind(), "find_payment", found).await? {
            Some(found) => self.layer.payment(found).map(Some),
            None => Ok(None),
        }
    }
}
