//! Captures every log line the app writes during the test run, so tests can prove what never
//! reaches the logs.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        BUFFER
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();

/// Installs the capturing subscriber once per test process: everything Counterfoil itself logs,
/// down to TRACE, and libraries at INFO (their TRACE output is timing chatter an operator would
/// not run with, and full of numbers that short digit values could match by chance). Spans go
/// through the same OpenTelemetry layer and card-number guard production uses, into the SDK's
/// in-memory exporter.
pub fn install() {
    INSTALLED.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        // The same guarded provider and writer production builds, so what is captured here is
        // what production would write and export.
        let provider =
            counterfoil::telemetry::tracer_provider(exporter.clone(), "counterfoil-test", false);
        SPANS.set(exporter).ok();
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info,counterfoil=trace"))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(counterfoil::telemetry::log_writer(Capture))
                    .with_ansi(false),
            )
            .with(counterfoil::telemetry::trace_layer(&provider))
            .init();
        // The provider must outlive every test; the exporter holds the finished spans.
        std::mem::forget(provider);
    });
}

/// Every span finished so far by every test in this process.
pub fn finished_spans() -> Vec<SpanData> {
    SPANS
        .get()
        .expect("logs::install ran")
        .get_finished_spans()
        .expect("the in-memory exporter answers")
}

/// Everything logged so far by every test in this process.
pub fn captured() -> String {
    String::from_utf8_lossy(&BUFFER.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// Where the log and the finished spans are now, to read only what comes after with
/// [`captured_since`] and [`spans_since`].
pub fn mark() -> (usize, usize) {
    let spans = SPANS
        .get()
        .map_or(0, |e| e.get_finished_spans().map_or(0, |s| s.len()));
    (
        BUFFER.lock().unwrap_or_else(|p| p.into_inner()).len(),
        spans,
    )
}

/// Everything logged since `mark`, by every test in this process.
pub fn captured_since(mark: (usize, usize)) -> String {
    let buffer = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(buffer.get(mark.0..).unwrap_or_default()).into_owned()
}

/// Every span finished since `mark`, by every test in this process.
pub fn spans_since(mark: (usize, usize)) -> Vec<SpanData> {
    finished_spans().into_iter().skip(mark.1).collect()
}
