//! Logs and traces: readable text in development, JSON lines in production (filtered by
//! `RUST_LOG`), OpenTelemetry spans exported over OTLP when an endpoint is configured, and W3C
//! `traceparent` read from incoming requests and written into outgoing ones. What is logged is
//! decided where it is logged (never bodies, secrets or card data), and every line and span passes
//! the card-number guard in [`redaction`] on its way out all the same.

pub mod redaction;

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::{Environment, TelemetrySettings};

/// Keeps the trace exporter alive; dropping it (or `shutdown`) flushes spans still buffered.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The default filter: our own info lines, and only warnings from the libraries beneath us.
pub fn default_filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"))
}

/// The OpenTelemetry layer over `provider`'s tracer: every `tracing` span becomes an OTel span.
pub fn trace_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("counterfoil"))
}

/// The resource every span carries.
pub fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .build()
}

/// A tracer provider whose spans reach `exporter` only through the card-number guard: batched
/// in production, one at a time (`batch: false`) where a test reads them back at once.
pub fn tracer_provider<E: SpanExporter + 'static>(
    exporter: E,
    service_name: &str,
    batch: bool,
) -> SdkTracerProvider {
    let exporter = redaction::RedactingExporter(exporter);
    let builder = SdkTracerProvider::builder().with_resource(resource(service_name));
    if batch {
        builder.with_batch_exporter(exporter).build()
    } else {
        builder.with_simple_exporter(exporter).build()
    }
}

/// Where log lines go: `inner`, through the card-number guard.
pub fn log_writer<M>(inner: M) -> redaction::RedactingMakeWriter<M>
where
    M: for<'a> tracing_subscriber::fmt::MakeWriter<'a>,
{
    redaction::RedactingMakeWriter(inner)
}

/// Installs the process-wide subscriber: logs to stderr (stdout is for a command's output), and
/// spans to the OTLP endpoint when one is configured.
pub fn init(
    environment: Environment,
    settings: &TelemetrySettings,
) -> anyhow::Result<TelemetryGuard> {
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint.clone())
                .with_timeout(std::time::Duration::from_secs(10))
                .with_headers(HashMap::new())
                .build()?;
            Some(tracer_provider(exporter, &settings.service_name, true))
        }
        None => None,
    };
    let logs = fmt::layer()
        .with_target(false)
        .with_writer(log_writer(std::io::stderr));
    let logs = match environment {
        Environment::Production => logs.json().flatten_event(true).boxed(),
        Environment::Development => logs.boxed(),
    };
    // RUST_LOG filters the logs only: quieter logs must not cost the traces. Spans are exported
    // from Counterfoil's own code at INFO (requests, store calls, provider and CRM calls).
    let traces = provider.as_ref().map(|provider| {
        trace_layer(provider).with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("counterfoil", tracing::Level::INFO),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(default_filter()))
        .with(traces)
        .try_init();
    // A panic's message goes to the log (through its card-number guard), not straight to stderr.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(
            location = %info.location().map(|l| l.to_string()).unwrap_or_default(),
            message = %message,
            "panic"
        );
    }));
    Ok(TelemetryGuard { provider })
}

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` a child of the trace named by the request's `traceparent`, if it names one (and
/// its ids do not read as a card number). The caller's `tracestate` is left behind: it is free
/// text we could neither vouch for nor export.
pub fn adopt_incoming_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    // A trace id is exported and forwarded as hex: one with a card number anywhere in its runs of
    // digits is not one we take on (declining one costs only the caller's correlation).
    let traceparent = headers
        .get("traceparent")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if traceparent.is_some_and(|t| crate::domain::card_guard::contains_card_digits(&t)) {
        return;
    }
    let extracted = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let remote = extracted.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    let parent = opentelemetry::Context::new()
        .with_remote_span_context(redaction::without_trace_state(&remote));
    let _ = span.set_parent(parent);
}

struct HeaderInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// Adds `traceparent` for the current span to an outgoing request, so the provider's or the
/// CRM's own traces join ours. No `tracestate` is sent: we keep none of our own.
pub fn propagate(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let context = tracing::Span::current().context();
    let mut headers = Vec::new();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(&mut headers));
    headers
        .into_iter()
        .filter(|(key, _)| key == "traceparent")
        .fold(request, |request, (key, value)| request.header(key, value))
}
