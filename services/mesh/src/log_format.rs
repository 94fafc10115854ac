//! Log line formats that carry the current `trace_id` and `span_id`, so a
//! log line found in a terminal or a log store leads to its trace.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

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
fn current_ids<S>(
    ctx: &FmtContext<'_, S, impl for<'w> FormatFields<'w> + 'static>,
) -> Option<(String, String)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.lookup_current()?;
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    // No span extension guard is held here, as get_otel_context requires.
    let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
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
        let ids = current_ids(ctx);
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

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}
