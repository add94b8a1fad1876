//! The card-number guard on logs and traces: every log line passes [`RedactingMakeWriter`] and
//! every exported span passes [`RedactingExporter`] on its way out, so a card number that reached a
//! log field or a span attribute by any path is removed before it is written or sent.

use std::borrow::Cow;
use std::io::{self, Write};

use opentelemetry::trace::{SpanContext, TraceState};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_subscriber::fmt::MakeWriter;

use crate::domain::card_guard;

/// What a log line becomes when a card number in it could not be cut out on its own (it hid
/// behind the formatter's escapes): the line's shape is kept, its content is not.
const LINE_REMOVED: &str = "log line removed: it held a card number";

/// One formatted log line, with any card number removed.
pub fn clean_line(line: &str) -> Cow<'_, str> {
    let redacted = card_guard::redact(line);
    // A number behind the formatter's escapes makes `redact` give up the whole text: the line's
    // shape is kept instead.
    if redacted != card_guard::REDACTED || line == card_guard::REDACTED {
        return redacted;
    }
    if line.trim_start().starts_with('{') {
        Cow::Owned(format!(
            "{{\"level\":\"WARN\",\"message\":\"{LINE_REMOVED}\"}}\n"
        ))
    } else {
        Cow::Owned(format!("WARN {LINE_REMOVED}\n"))
    }
}

/// Wraps the writer of a `fmt` layer: each formatted line is cleaned before it is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactingMakeWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter(self.0.make_writer_for(meta))
    }
}

/// The `fmt` layer formats a whole event into one buffer and hands it over in one `write_all`,
/// so each call here sees a whole line.
pub struct RedactingWriter<W>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        match clean_line(&text) {
            Cow::Borrowed(_) if matches!(text, Cow::Borrowed(_)) => self.0.write_all(buf)?,
            cleaned => self.0.write_all(cleaned.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn clean_string(value: StringValue) -> StringValue {
    match card_guard::redact(value.as_str()) {
        Cow::Borrowed(_) => value,
        Cow::Owned(cleaned) => cleaned.into(),
    }
}

fn clean_value(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(clean_string(text)),
        Value::I64(n) if card_guard::contains_card_number(&n.to_string()) => {
            Value::String(card_guard::REDACTED.into())
        }
        Value::Array(Array::String(items)) => {
            Value::Array(Array::String(items.into_iter().map(clean_string).collect()))
        }
        Value::Array(Array::I64(items))
            if items
                .iter()
                .any(|n| card_guard::contains_card_number(&n.to_string())) =>
        {
            Value::String(card_guard::REDACTED.into())
        }
        other => other,
    }
}

fn clean_attributes(attributes: Vec<KeyValue>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|kv| {
            let key = match card_guard::redact(kv.key.as_str()) {
                Cow::Borrowed(_) => kv.key,
                Cow::Owned(cleaned) => cleaned.into(),
            };
            KeyValue::new(key, clean_value(kv.value))
        })
        .collect()
}

/// The same context without a `tracestate`: a caller's state is theirs, not ours to export.
pub fn without_trace_state(context: &SpanContext) -> SpanContext {
    SpanContext::new(
        context.trace_id(),
        context.span_id(),
        context.trace_flags(),
        context.is_remote(),
        TraceState::NONE,
    )
}

/// One finished span, with any card number removed from its name, attributes, events, links and
/// status, and no `tracestate`.
pub fn clean_span(mut span: SpanData) -> SpanData {
    span.span_context = without_trace_state(&span.span_context);
    if let Cow::Owned(name) = card_guard::redact(&span.name) {
        span.name = name.into();
    }
    span.attributes = clean_attributes(std::mem::take(&mut span.attributes));
    for event in span.events.events.iter_mut() {
        if let Cow::Owned(name) = card_guard::redact(&event.name) {
            event.name = name.into();
        }
        event.attributes = clean_attributes(std::mem::take(&mut event.attributes));
    }
    for link in span.links.links.iter_mut() {
        link.span_context = without_trace_state(&link.span_context);
        link.attributes = clean_attributes(std::mem::take(&mut link.attributes));
    }
    if let opentelemetry::trace::Status::Error { description } = &span.status {
        if let Cow::Owned(cleaned) = card_guard::redact(description) {
            span.status = opentelemetry::trace::Status::error(cleaned);
        }
    }
    span
}

/// Wraps a span exporter: every span is cleaned before the inner exporter sees it.
#[derive(Debug)]
pub struct RedactingExporter<E>(pub E);

impl<E: SpanExporter> SpanExporter for RedactingExporter<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.export(batch.into_iter().map(clean_span).collect())
    }

    fn shutdown_with_timeout(&mut self, timeout: std::time::Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::card_guard::test_numbers::{grouped, visa};

    #[test]
    fn a_number_in_a_line_is_cut_out_and_the_rest_kept() {
        let line = format!("INFO request ref={} status=200\n", grouped(&visa(), " "));
        let cleaned = clean_line(&line);
        assert!(!card_guard::contains_card_number(&cleaned));
        assert!(cleaned.contains("status=200"));
    }

    #[test]
    fn a_number_behind_the_formatters_escapes_takes_the_line() {
        let v = visa();
        for line in [
            format!(
                "{{\"message\":\"x\",\"ref\":\"{}\"}}\n",
                grouped(&v, "\\u00a0")
            ),
            format!("INFO ref={:?}\n", grouped(&v, "\u{200b}")).replace("\u{200b}", "\\u{200b}"),
            format!("{{\"ref\":\"\\u0034{}\"}}\n", &v[1..]),
        ] {
            let cleaned = clean_line(&line);
            assert!(!card_guard::contains_card_number(&cleaned), "{line}");
            assert!(!card_guard::escapes_decoded(&cleaned)
                .is_some_and(|t| card_guard::contains_card_number(&t)));
        }
        let split_by_escapes = format!("{{\"ref\":\"{}\"}}\n", grouped(&v, "\\u2013"));
        assert!(clean_line(&split_by_escapes).contains(LINE_REMOVED));
        assert!(clean_line("{\"a\":1}").starts_with('{'));
    }

    #[test]
    fn span_attributes_events_and_state_are_cleaned() {
        use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
        let v = visa();
        let state = TraceState::from_key_value([("vendor", "x")]).unwrap();
        let context = SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([9; 8]),
            TraceFlags::SAMPLED,
            false,
            state,
        );
        let span = SpanData {
            span_context: context,
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Server,
            name: format!("GET {v}").into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![
                KeyValue::new("ref", grouped(&v, "-")),
                KeyValue::new("n", v.parse::<i64>().unwrap()),
                KeyValue::new("ok", "CRM-1"),
            ],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::error(v.clone()),
            instrumentation_scope: Default::default(),
        };
        let cleaned = clean_span(span);
        assert_eq!(cleaned.span_context.trace_state().header(), "");
        let text = format!("{cleaned:?}");
        assert!(!card_guard::contains_card_number(&text), "{text}");
        assert!(text.contains("CRM-1"));
    }
}
