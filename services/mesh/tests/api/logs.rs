//! Log records, the third signal: what `telemetry::init` builds for them
//! (the appender bridge behind the span layer, the bounded and redacting
//! `LogPipeline`), with an in-memory exporter in place of the network.

use std::{
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use axum::{Router, body::Body, http::StatusCode, routing::get};
use http::Request;
use mesh::{
    Mesh, Readiness,
    logs::{LogBounds, LogPipeline},
    redact::REDACTED_ATTRIBUTES,
};
use opentelemetry::{
    KeyValue,
    logs::{AnyValue, Severity},
    trace::{SpanKind, TracerProvider as _},
};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    logs::{InMemoryLogExporter, LogBatch, LogExporter, SdkLogRecord, SdkLoggerProvider},
    trace::{InMemorySpanExporter, SdkTracerProvider},
};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{call, identity, scrape, serve_config};

/// A handler that fails the way a real one does: an error line inside the
/// request, careless about what it puts in it.
async fn failing() -> (StatusCode, &'static str) {
    tracing::error!(
        error = "provider said no to card 4111 1111 1111 1111",
        password = "hunter2",
        "charge failed for alice@example.com, Bearer s3cr3t-t0k3n"
    );
    (StatusCode::BAD_GATEWAY, "no")
}

fn app() -> Router {
    let api = Router::new().route("/charges/{id}", get(failing));
    let readiness = Readiness::new(None);
    readiness.mark_started();
    Mesh::new(identity("payments"), &serve_config()).router(api, readiness)
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", "payments"))
        .build()
}

fn string(value: Option<&AnyValue>) -> Option<String> {
    match value? {
        AnyValue::String(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn attribute<'a>(record: &'a SdkLogRecord, key: &str) -> Option<&'a AnyValue> {
    record
        .attributes_iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

#[tokio::test]
async fn an_error_line_leaves_as_a_record_inside_its_span_without_secrets() {
    let spans = InMemorySpanExporter::default();
    let tracer = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let logs = InMemoryLogExporter::default();
    let logger = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_log_processor(LogPipeline::new(
            logs.clone(),
            &resource(),
            LogBounds::default(),
        ))
        .build();
    // The order `telemetry::init` uses: spans first, so the event's span
    // is the current OpenTelemetry context when the bridge sees it.
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer.tracer("test")))
            .with(OpenTelemetryTracingBridge::new(&logger)),
    );

    let res = call(
        &app(),
        Request::get("/charges/7").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    tracing::warn!("outside any request");
    logger.force_flush().unwrap();

    let server = spans
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("the request's server span");
    let records = logs.get_emitted_logs().unwrap();
    let failed = records
        .iter()
        .find(|r| r.record.severity_number() == Some(Severity::Error))
        .unwrap_or_else(|| panic!("no ERROR record in {records:#?}"));
    let record = &failed.record;
    let cx = record
        .trace_context()
        .expect("a record inside a span has its context");
    assert_eq!(cx.trace_id, server.span_context.trace_id());
    assert_eq!(cx.span_id, server.span_context.span_id());
    assert!(cx.trace_flags.is_some_and(|f| f.is_sampled()));
    assert_eq!(record.severity_text(), Some("ERROR"));
    assert!(record.timestamp().is_some(), "the event's time is set");
    assert_eq!(
        failed
            .resource
            .get(&"service.name".into())
            .map(|v| v.to_string()),
        Some("payments".to_owned())
    );
    // Scrubbed body and fields; the secret-named field gone and counted.
    assert_eq!(
        string(record.body()).as_deref(),
        Some("charge failed for [REDACTED:email], Bearer [REDACTED:bearer]")
    );
    assert_eq!(
        string(attribute(record, "error")).as_deref(),
        Some("provider said no to card [REDACTED:card]")
    );
    assert_eq!(attribute(record, "password"), None);
    assert_eq!(
        attribute(record, REDACTED_ATTRIBUTES),
        Some(&AnyValue::Int(1))
    );
    for r in &records {
        let text = format!("{:?}", r.record);
        for secret in ["alice@example.com", "hunter2", "4111", "s3cr3t-t0k3n"] {
            assert!(!text.contains(secret), "{secret:?} exported in {text}");
        }
    }

    // A line outside any span is exported without a trace context.
    let outside = records
        .iter()
        .find(|r| string(r.record.body()).as_deref() == Some("outside any request"))
        .expect("the line outside a request");
    assert!(outside.record.trace_context().is_none());
    assert_eq!(outside.record.severity_number(), Some(Severity::Warn));
}

/// A collector that takes nothing until it is let go: every batch waits.
#[derive(Debug, Clone, Default)]
struct StuckCollector {
    open: Arc<(Mutex<bool>, Condvar)>,
    taken: Arc<Mutex<usize>>,
}

impl StuckCollector {
    fn let_go(&self) {
        *self.open.0.lock().unwrap() = true;
        self.open.1.notify_all();
    }
}

impl LogExporter for StuckCollector {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let (open, changed) = &*self.open;
        let mut is_open = open.lock().unwrap();
        while !*is_open {
            is_open = changed.wait(is_open).unwrap();
        }
        *self.taken.lock().unwrap() += batch.iter().count();
        Ok(())
    }
}

/// The log pipeline's counters, as a scrape shows them.
async fn counted() -> (f64, f64) {
    let metrics = scrape(&app()).await;
    let dropped = metrics
        .value(
            "telemetry_log_records_dropped_total",
            &[("reason", "queue_full")],
        )
        .expect("drops counted from the start");
    let exported = metrics
        .value("telemetry_log_records_exported_total", &[])
        .expect("exports counted from the start");
    (dropped, exported)
}

#[tokio::test]
async fn a_flood_of_error_lines_is_bounded_and_its_drops_counted() {
    let collector = StuckCollector::default();
    let bounds = LogBounds {
        max_queue: 64,
        max_batch: 16,
        delay: Duration::from_millis(10),
    };
    let logger = SdkLoggerProvider::builder()
        .with_log_processor(LogPipeline::new(collector.clone(), &resource(), bounds))
        .build();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&logger)),
    );
    let (dropped_before, exported_before) = counted().await;

    // Every request failing, with the collector stuck: the lines cannot
    // leave, and none may wait in memory beyond the queue and one batch.
    const LINES: usize = 20_000;
    for i in 0..LINES {
        tracing::error!(attempt = i, "upstream failed");
    }
    let dropped = counted().await.0 - dropped_before;
    let held = LINES - dropped as usize;
    assert!(
        held <= bounds.max_queue + bounds.max_batch + 1,
        "{held} lines held in memory for a stuck collector, {dropped} dropped"
    );

    // Once the collector takes again, what was held leaves, and every line
    // is either exported or counted as dropped.
    collector.let_go();
    logger.force_flush().unwrap();
    let taken = *collector.taken.lock().unwrap();
    assert_eq!(taken, held);
    let exported = counted().await.1 - exported_before;
    assert_eq!(exported as usize, taken);
}
