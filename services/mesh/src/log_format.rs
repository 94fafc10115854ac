//! Log line formats that carry the current `trace_id` and `span_id`, so a
//! log line found in a terminal or a log store leads to its trace.
//!
//! Every field of a line (the message included) passes [`crate::redact`]
//! as it is recorded, whichever the format: secret-named fields lose their
//! value, and tokens, email addresses and card numbers in any text become
//! `[REDACTED:<kind>]`. The rest of the line is ours (time, level, target,
//! span name, ids).

use std::{borrow::Cow, fmt};

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

use crate::redact;

/// Formats events as one line of text or one JSON object, with the
/// OpenTelemetry ids of the span they happened in.
///
/// Span fields are left out on purpose: the request span carries a dozen
/// HTTP attributes, and repeating them on every line buries the message.
/// The trace id leads to all of them in Jaeger.
#[derive(Debug, Clone, Copy)]
pub enum TraceIdFormat {
    /// `2026-11-26T10:49:57.482235Z  WARN target: message key=value trace_id=… span_id=…`
    Text,
    /// `{"timestamp", "level", "target", "message", fields..., "span", "trace_id", "span_id"}`
    Json,
}

/// The trace and span id of the innermost span around the event, if it is
/// part of a valid trace.
///
/// Read from the OpenTelemetry context that `tracing-opentelemetry`
/// attaches whenever a span is entered, rather than through the tracing
/// dispatcher: inside an event the dispatcher answers with a no-op for
/// scoped subscribers (it guards against re-entry), so only the global one
/// would work.
fn current_ids() -> Option<(String, String)> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    })
}

impl<S, N> FormatEvent<S, N> for TraceIdFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = current_ids();
        let meta = event.metadata();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        match self {
            Self::Text => {
                let message = fields.remove("message");
                write!(writer, "{timestamp} {:>5} {}:", meta.level(), meta.target())?;
                if let Some(Value::String(message)) = message {
                    write!(writer, " {message}")?;
                }
                for (key, value) in &fields {
                    match value {
                        Value::String(s) => write!(writer, " {key}={s}")?,
                        other => write!(writer, " {key}={other}")?,
                    }
                }
                if let Some((trace_id, span_id)) = ids {
                    write!(writer, " trace_id={trace_id} span_id={span_id}")?;
                }
                writeln!(writer)
            }
            Self::Json => {
                let mut obj = Map::new();
                obj.insert("timestamp".into(), Value::String(timestamp));
                obj.insert("level".into(), Value::String(meta.level().to_string()));
                obj.insert("target".into(), Value::String(meta.target().to_string()));
                obj.append(&mut fields);
                if let Some(span) = ctx.lookup_current() {
                    obj.insert("span".into(), Value::String(span.name().to_string()));
                }
                if let Some((trace_id, span_id)) = ids {
                    obj.insert("trace_id".into(), Value::String(trace_id));
                    obj.insert("span_id".into(), Value::String(span_id));
                }
                let line = serde_json::to_string(&obj).map_err(|_| fmt::Error)?;
                writeln!(writer, "{line}")
            }
        }
    }
}

/// Records an event's fields as JSON values, redacted (see the module
/// docs): the one place both formats read fields from.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        let value = if redact::is_sensitive_key(field.name()) {
            Value::String(redact::REDACTED.into())
        } else {
            value
        };
        self.0.insert(field.name().into(), value);
    }

    fn insert_text(&mut self, field: &Field, text: String) {
        let text = match redact::scrub(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(scrubbed) => scrubbed,
        };
        self.insert(field, Value::String(text));
    }
}

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert_text(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert_text(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert_text(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt as _};

    use super::TraceIdFormat;

    /// Collects what the fmt layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Logs one line inside a span and one outside; returns the lines and
    /// the span's trace and span id.
    fn log_lines(format: TraceIdFormat) -> (Vec<String>, String, String) {
        let provider = SdkTracerProvider::builder().build();
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(format)
                    .with_writer(out.clone()),
            );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let ids = {
                let _entered = span.enter();
                tracing::info!(answer = 42, "inside the request");
                let cx = span.context();
                let otel_span = cx.span();
                let sc = otel_span.span_context();
                (sc.trace_id().to_string(), sc.span_id().to_string())
            };
            tracing::warn!("outside any request");
            ids
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        (text.lines().map(str::to_owned).collect(), trace_id, span_id)
    }

    #[test]
    fn json_lines_carry_the_trace_and_span_of_the_request() {
        let (lines, trace_id, span_id) = log_lines(TraceIdFormat::Json);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let inside: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(inside["message"], "inside the request");
        assert_eq!(inside["answer"], 42);
        assert_eq!(inside["level"], "INFO");
        assert_eq!(inside["span"], "request");
        assert_eq!(inside["trace_id"], trace_id.as_str());
        assert_eq!(inside["span_id"], span_id.as_str());
        assert_eq!(trace_id.len(), 32);
        let outside: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(outside["level"], "WARN");
        assert!(outside.get("trace_id").is_none(), "{outside}");
    }

    #[test]
    fn text_lines_carry_the_trace_and_span_of_the_request() {
        let (lines, trace_id, span_id) = log_lines(TraceIdFormat::Text);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains(" INFO "), "{}", lines[0]);
        assert!(
            lines[0].contains("inside the request answer=42"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].ends_with(&format!("trace_id={trace_id} span_id={span_id}")),
            "{}",
            lines[0]
        );
        assert!(!lines[1].contains("trace_id="), "{}", lines[1]);
    }

    /// Logs one line full of secrets; returns it.
    fn secret_line(format: TraceIdFormat) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(format)
                .with_writer(out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let card = "4111 1111 1111 1111";
            let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl";
            tracing::warn!(
                password = "hunter2",
                card_number = 4_111_111_111_111_111_u64,
                header = %format!("Bearer {jwt}"),
                user = ?"alice@example.com",
                route = "/courses/{id}",
                "charged {card} for alice@example.com"
            );
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_are_redacted() {
        let line = secret_line(TraceIdFormat::Json);
        let json: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(
            json["message"],
            "charged [REDACTED:card] for [REDACTED:email]"
        );
        assert_eq!(json["password"], "[REDACTED]");
        assert_eq!(json["card_number"], "[REDACTED]");
        assert_eq!(json["header"], "Bearer [REDACTED:bearer]");
        assert_eq!(json["user"], "\"[REDACTED:email]\"");
        assert_eq!(json["route"], "/courses/{id}");
        for secret in ["hunter2", "4111", "alice@", "eyJ"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
    }

    #[test]
    fn text_lines_are_redacted() {
        let line = secret_line(TraceIdFormat::Text);
        for part in [
            " charged [REDACTED:card] for [REDACTED:email] ",
            " password=[REDACTED] ",
            " card_number=[REDACTED] ",
            " header=Bearer [REDACTED:bearer] ",
            " route=/courses/{id} ",
        ] {
            assert!(line.contains(part), "{part:?} in {line}");
        }
        for secret in ["hunter2", "4111", "alice@", "eyJ"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
    }
}
