//! A provider wrapped with its figures: every call gets a client span (which the HTTP client's
//! `traceparent` continues) and its latency and error kind recorded as metrics, whichever
//! provider it is.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::{
    CreateSession, HeaderLookup, PaymentProvider, ProviderError, ProviderPayment, ProviderRefund,
    ProviderRefundRecord, SearchPage, WebhookRejection,
};
use crate::domain::{PaymentId, ProviderKind};
use crate::metrics::Metrics;

pub struct Instrumented {
    inner: Arc<dyn PaymentProvider>,
    account: String,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    pub fn wrap(
        inner: Arc<dyn PaymentProvider>,
        account: &str,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn PaymentProvider> {
        Arc::new(Self {
            inner,
            account: account.to_owned(),
            metrics,
        })
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let provider = self.inner.kind().as_str();
        let span = tracing::info_span!(
            "provider call",
            otel.name = %format!("{provider} {operation}"),
            otel.kind = "client",
            provider,
            account = %self.account,
            operation,
            error = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let error = result.as_ref().err().map(error_kind);
        if let Some(kind) = error {
            span.record("error", kind);
        }
        self.metrics
            .provider_call(provider, operation, started.elapsed(), error);
        result
    }
}

/// A short, stable name for an error (never its text, which may carry a URL).
fn error_kind(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Rejected { .. } => "rejected",
        ProviderError::NotFound => "not_found",
        ProviderError::Conflict { .. } => "conflict",
        ProviderError::Unreachable(_) => "unreachable",
        ProviderError::Unavailable(_) => "unavailable",
        ProviderError::InvalidResponse(_) => "invalid_response",
        ProviderError::CardData => "card_data_refused",
    }
}

#[async_trait]
impl PaymentProvider for Instrumented {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn create_payment(
        &self,
        request: &CreateSession<'_>,
    ) -> Result<ProviderPayment, ProviderError> {
        self.observe("create_payment", self.inner.create_payment(request))
            .await
    }

    async fn get_payment(
        &self,
        provider_payment_id: &str,
    ) -> Result<ProviderPayment, ProviderError> {
        self.observe("get_payment", self.inner.get_payment(provider_payment_id))
            .await
    }

    async fn cancel_payment(&self, provider_payment_id: &str) -> Result<(), ProviderError> {
        self.observe(
            "cancel_payment",
            self.inner.cancel_payment(provider_payment_id),
        )
        .await
    }

    async fn refund(
        &self,
        provider_payment_id: &str,
        amount: i64,
        amount_available: i64,
        refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        self.observe(
            "refund",
            self.inner
                .refund(provider_payment_id, amount, amount_available, refund_id),
        )
        .await
    }

    async fn get_refund(
        &self,
        provider_payment_id: &str,
        provider_refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        self.observe(
            "get_refund",
            self.inner
                .get_refund(provider_payment_id, provider_refund_id),
        )
        .await
    }

    async fn search_payments(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayment>, ProviderError> {
        self.observe(
            "search_payments",
            self.inner.search_payments(from, to, cursor),
        )
        .await
    }

    async fn search_refunds(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderRefundRecord>, ProviderError> {
        self.observe(
            "search_refunds",
            self.inner.search_refunds(from, to, cursor),
        )
        .await
    }

    fn verify_webhook(
        &self,
        header: HeaderLookup<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookRejection> {
        self.inner.verify_webhook(header, body, now)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<crate::domain::ProviderEvent, WebhookRejection> {
        self.inner.parse_webhook(body)
    }

    async fn find_payment(
        &self,
        reference: &str,
        payment_id: &PaymentId,
        created_from: DateTime<Utc>,
    ) -> Result<Option<ProviderPayment>, ProviderError> {
        self.observe(
            "find_payment",
            self.inner.find_payment(reference, payment_id, created_from),
        )
        .await
    }
}
