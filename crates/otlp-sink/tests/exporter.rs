//! The OpenTelemetry SDK's own OTLP exporters (opentelemetry-otlp) against
//! the receiver, on both transports, spans and log records, through the
//! crate's public surface only.

use std::net::SocketAddr;
use std::time::Duration;

use otlp_sink::log::Severity;
use otlp_sink::span::{SpanKind, Transport};
use otlp_sink::{HTTP_LOGS_PATH, HTTP_TRACES_PATH, Receiver, RunningReceiver};

async fn start(receiver: Receiver) -> RunningReceiver {
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    receiver
        .start(any_port, any_port)
        .await
        .expect("receiver starts")
}

/// The exporter real services link (opentelemetry-otlp) must be
/// understood on both transports, not only hand-built requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_otlp_exporter_is_understood() {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_otlp::WithExportConfig as _;

    let running = start(Receiver::new()).await;
    let grpc_endpoint = running.grpc_endpoint();
    let http_url = format!("{}{HTTP_TRACES_PATH}", running.http_endpoint());

    for (service, transport) in [
        ("via-grpc", Transport::Grpc),
        ("via-http", Transport::HttpProtobuf),
    ] {
        let (grpc_endpoint, http_url) = (grpc_endpoint.clone(), http_url.clone());
        // The blocking HTTP client may be neither built nor dropped on
        // an async worker; the simple processor exports on this thread.
        tokio::task::spawn_blocking(move || {
            let builder = opentelemetry_otlp::SpanExporter::builder();
            let exporter = match transport {
                Transport::Grpc => builder.with_tonic().with_endpoint(grpc_endpoint).build(),
                _ => builder.with_http().with_endpoint(http_url).build(),
            }
            .expect("exporter builds");
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                )
                .with_simple_exporter(exporter)
                .build();
            let tracer = provider.tracer("interop");
            tracer.in_span("parent", |_| {
                tracer
                    .span_builder("child")
                    .with_kind(opentelemetry::trace::SpanKind::Client)
                    .with_attributes([opentelemetry::KeyValue::new("attempt", 7)])
                    .start(&tracer);
            });
            provider.shutdown().expect("spans are flushed");
        })
        .await
        .expect("exporting thread finishes");
    }

    let spans = running
        .wait_for(Duration::from_secs(10), |spans| spans.len() >= 4)
        .await
        .expect("both exporters delivered");
    for (service, transport) in [
        ("via-grpc", Transport::Grpc),
        ("via-http", Transport::HttpProtobuf),
    ] {
        let of = |name: &str| {
            spans
                .iter()
                .find(|s| s.service_name == service && s.name == name)
                .unwrap_or_else(|| panic!("{service} {name} missing from {spans:#?}"))
        };
        let (parent, child) = (of("parent"), of("child"));
        assert_eq!(parent.trace_id.len(), 32);
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(
            child.parent_span_id.as_deref(),
            Some(parent.span_id.as_str())
        );
        assert!(parent.is_root());
        assert_eq!(parent.kind, SpanKind::Internal);
        assert_eq!(child.kind, SpanKind::Client);
        assert_eq!(child.attr_i64("attempt"), Some(7));
        assert_eq!(child.scope_name, "interop");
        assert_eq!((parent.transport, child.transport), (transport, transport));
    }
}

/// Log records made as the services make them (`tracing` events through
/// opentelemetry-appender-tracing, inside an OpenTelemetry span) and
/// exported by opentelemetry-otlp's `LogExporter`, on both transports,
/// arrive with their trace and span ids, severity, body and fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_otlp_log_exporter_is_understood() {
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let running = start(Receiver::new()).await;
    let grpc_endpoint = running.grpc_endpoint();
    let http_url = format!("{}{HTTP_LOGS_PATH}", running.http_endpoint());

    let mut made_in = Vec::new();
    for (service, transport) in [
        ("via-grpc", Transport::Grpc),
        ("via-http", Transport::HttpProtobuf),
    ] {
        let (grpc_endpoint, http_url) = (grpc_endpoint.clone(), http_url.clone());
        // As for spans: the blocking HTTP client stays off the async
        // workers, and the simple processor exports on this thread.
        let ids = tokio::task::spawn_blocking(move || {
            let builder = opentelemetry_otlp::LogExporter::builder();
            let exporter = match transport {
                Transport::Grpc => builder.with_tonic().with_endpoint(grpc_endpoint).build(),
                _ => builder.with_http().with_endpoint(http_url).build(),
            }
            .expect("exporter builds");
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build();
            let loggers = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
                .with_resource(resource.clone())
                .with_simple_exporter(exporter)
                .build();
            // Spans only for their context: nothing exports them.
            let tracers = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_resource(resource)
                .build();
            let tracer = tracers.tracer("interop");
            let subscriber =
                tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&loggers));
            let ids = tracing::subscriber::with_default(subscriber, || {
                tracing::info!("listening");
                tracer.in_span("charge", |cx| {
                    tracing::error!(
                        error = "card declined",
                        destination = "provider",
                        "payment failed"
                    );
                    let span = cx.span().span_context().clone();
                    (span.trace_id().to_string(), span.span_id().to_string())
                })
            });
            loggers.shutdown().expect("log records are flushed");
            ids
        })
        .await
        .expect("exporting thread finishes");
        made_in.push((service, transport, ids));
    }

    let logs = running
        .wait_for_logs(Duration::from_secs(10), |logs| logs.len() >= 4)
        .await
        .expect("both exporters delivered");
    for (service, transport, (trace_id, span_id)) in made_in {
        let of = |body: &str| {
            logs.iter()
                .find(|l| l.service_name == service && l.body_text() == body)
                .unwrap_or_else(|| panic!("{service} {body:?} missing from {logs:#?}"))
        };
        let (outside, error) = (of("listening"), of("payment failed"));
        assert_eq!(outside.severity, Severity::Info);
        assert_eq!(outside.severity_text, "INFO");
        assert_eq!((&outside.trace_id, &outside.span_id), (&None, &None));

        assert_eq!(error.trace_id.as_deref(), Some(trace_id.as_str()));
        assert_eq!(error.span_id.as_deref(), Some(span_id.as_str()));
        assert_eq!(error.flags & 0x01, 1, "sampled");
        assert_eq!(error.severity, Severity::Error);
        assert_eq!(error.severity_text, "ERROR");
        assert_eq!(error.attr_str("error"), Some("card declined"));
        assert_eq!(error.attr_str("destination"), Some("provider"));
        assert!(error.time_unix_nano > 0 || error.observed_time_unix_nano > 0);
        assert_eq!((outside.transport, error.transport), (transport, transport));
        assert_eq!(running.trace_logs(&trace_id).len(), 1);
    }
}
