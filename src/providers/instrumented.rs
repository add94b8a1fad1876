//! A provider wrapped with its figures: every call gets a client span (which the HTTP client's
//! `traceparent` continues) and its latency and error kind recorded as metrics, whichever
//! provider it is.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::layered::{Layer, Layered};
use super::{PaymentProvider, ProviderError};
use crate::domain::ProviderKind;
use crate::metrics::Metrics;

pub struct Instrumented {
    account: String,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    pub fn wrap(
        inner: Arc<dyn PaymentProvider>,
        account: &str,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn PaymentProvider> {
        Layered::wrap(
            inner,
            Self {
                account: account.to_owned(),
                metrics,
            },
        )
    }
}

impl Layer for Instrumented {
    fn call<'a, T: Send + 'a>(
        &'a self,
        provider: ProviderKind,
        operation: &'static str,
        call: BoxFuture<'a, Result<T, ProviderError>>,
    ) -> BoxFuture<'a, Result<T, ProviderError>> {
        let provider = provider.as_str();
        let span = tracing::info_span!(
            "provider call",
            otel.name = %format!("{provider} {operation}"),
            otel.kind = "client",
            provider,
            account = %self.account,
            operation,
            error = tracing::field::Empty,
        );
        Box::pin(async move {
            let started = Instant::now();
            let result = call.instrument(span.clone()).await;
            let error = result.as_ref().err().map(error_kind);
            if let Some(kind) = error {
                span.record("error", kind);
            }
            self.metrics
                .provider_call(provider, operation, started.elapsed(), error);
            result
        })
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
