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

#[derive(Debug, Clone, Copy)]
enum Style {
    Text,
    Json,
}

/// Formats events as text or JSON with the OpenTelemetry ids of the span
/// they happened in.
#[derive(Debug, Clone)]
pub struct TraceIdFormat {
    style: Style,
    text: tracing_subscriber::fmt::format::Format,
}

impl TraceIdFormat {
    pub fn text() -> Self {
        Self {
            style: Style::Text,
            text: tracing_subscriber::fmt::format::Format::default(),
        }
    }

    pub fn json() -> Self {
        Self {
            style: Style::Json,
            text: tracing_subscriber::fmt::format::Format::default(),
        }
    }
}

/// The trace and span id of the innermost span around the event, if it is
/// part of a valid trace.
fn current_ids<S>(ctx: &FmtContext<'_, S, impl for<'w> FormatFields<'w> + 'static>) -> Option<(String, String)>
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
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let ids = current_ids(ctx);
        match self.style {
            Style::Text => {
                // The stock format, with the ids appended before the newline.
                let mut line = String::new();
                self.text.format_event(ctx, Writer::new(&mut line), event)?;
                let line = line.trim_end_matches('\n');
                match ids {
                    Some((trace_id, span_id)) => writeln!(writer, "{line} trace_id={trace_id} span_id={span_id}"),
                    None => writeln!(writer, "{line}"),
                }
            }
            Style::Json => {
                let meta = event.metadata();
                let mut obj = Map::new();
                obj.insert("timestamp".into(), Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
                obj.insert("level".into(), Value::String(meta.level().to_string()));
                obj.insert("target".into(), Value::String(meta.target().to_string()));
                let mut visitor = JsonVisitor(&mut obj);
                event.record(&mut visitor);
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
        self.0.insert(field.name().into(), Value::String(value.into()));
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
        self.0.insert(field.name().into(), Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}
