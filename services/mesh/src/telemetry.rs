//! Process-wide telemetry: the `tracing` subscriber (console lines), the
//! OpenTelemetry tracer provider (spans) and logger provider (log records,
//! [`crate::logs`]), set up once at start and flushed once at shutdown.
//!
//! All leave the process through [`crate::redact`]: spans through the
//! redacting exporter (attribute allow-list, value scrubber), log records
//! through the log pipeline (the same), console lines through the
//! scrubbing formatter.

use std::time::Duration;

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    logs::SdkLoggerProvider,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::SdkTracerProvider,
};
use opentelemetry_semantic_conventions::resource as semres;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{
    EnvFilter, Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

use crate::{
    config::{LogFormat, LogsExporter, OtlpProtocol, TelemetryConfig, TracesExporter},
    exporter::{QuietExporter, RedactingExporter},
    identity::ServiceIdentity,
    log_format::TraceIdFormat,
    logs::LogPipeline,
};

/// Keeps the tracer and logger providers alive;
/// [`TelemetryGuard::shutdown`] flushes the spans and log records still
/// queued.
#[must_use = "dropping the guard without shutdown() loses the last batch of spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    logs: Option<SdkLoggerProvider>,
}

impl TelemetryGuard {
    /// Flushes queued log records and spans and stops the exporters,
    /// waiting at most `timeout` for each.
    pub async fn shutdown(mut self, timeout: Duration) {
        // The SDK's shutdowns block on the export threads; keep them off the
        // async workers, which the gRPC exporters still need to finish.
        // Log records first: the spans' shutdown may log.
        if let Some(logs) = self.logs.take() {
            let joined =
                tokio::task::spawn_blocking(move || logs.shutdown_with_timeout(timeout)).await;
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => eprintln!("flushing log records at shutdown failed: {error}"),
                Err(error) => eprintln!("flushing log records at shutdown panicked: {error}"),
            }
        }
        if let Some(provider) = self.provider.take() {
            let joined =
                tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout)).await;
            match joined {
                Ok(Ok(())) => tracing::debug!("spans flushed"),
                Ok(Err(error)) => eprintln!("flushing spans at shutdown failed: {error}"),
                Err(error) => eprintln!("flushing spans at shutdown panicked: {error}"),
            }
        }
    }
}

/// The `service.*` resource the SDK reports: `OTEL_RESOURCE_ATTRIBUTES`
/// and `OTEL_SERVICE_NAME` are read by the SDK's own detectors; we add the
/// version and a per-replica instance id unless the environment set them.
fn resource(identity: &ServiceIdentity) -> Resource {
    let from_env = Resource::builder().build();
    let mut builder = Resource::builder().with_service_name(identity.name.to_string());
    if from_env.get(&semres::SERVICE_VERSION.into()).is_none() {
        builder = builder.with_attribute(KeyValue::new(semres::SERVICE_VERSION, identity.version));
    }
    builder = builder.with_attribute(KeyValue::new(
        semres::SERVICE_INSTANCE_ID,
        identity.instance_id.to_string(),
    ));
    builder.build()
}

/// One signal's OTLP exporter (`SpanExporter`, `LogExporter`: the same
/// builder methods, no shared trait) over `$protocol`. Without `$endpoint`
/// the SDK reads `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT`, then
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, itself.
macro_rules! otlp_exporter {
    ($exporter:path, $protocol:expr, $endpoint:expr, $path:literal) => {{
        use $exporter as Exporter;
        let endpoint: Option<&str> = $endpoint;
        match $protocol {
            OtlpProtocol::Grpc => {
                let builder = Exporter::builder()
                    .with_tonic()
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc);
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build()?,
                    None => builder.build()?,
                }
            }
            // The blocking client: the batch processors export from their
            // own threads, where the async reqwest client panics for want
            // of a reactor (opentelemetry-rust #2673).
            OtlpProtocol::HttpProtobuf => {
                let builder = Exporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                match endpoint {
                    // A signal-specific URL, as the signal's own variable
                    // would be: the path is not appended for us.
                    Some(endpoint) => builder
                        .with_endpoint(format!("{}{}", endpoint.trim_end_matches('/'), $path))
                        .build()?,
                    None => builder.build()?,
                }
            }
        }
    }};
}

fn tracer_provider(
    config: &TelemetryConfig,
    identity: &ServiceIdentity,
) -> anyhow::Result<SdkTracerProvider> {
    // The sampler comes from OTEL_TRACES_SAMPLER/_ARG through the SDK's
    // default config (parent-based always-on when unset).
    let builder = SdkTracerProvider::builder().with_resource(resource(identity));
    if config.otel_sdk_disabled || config.traces_exporter == TracesExporter::None {
        return Ok(builder.build());
    }
    let exporter = otlp_exporter!(
        opentelemetry_otlp::SpanExporter,
        config.traces_protocol(),
        config.export_endpoint.as_deref(),
        "/v1/traces"
    );
    // Redaction inside the quiet wrapper: whatever the collector's state,
    // no span leaves without the allow-list and the scrubber (`redact`).
    Ok(builder
        .with_batch_exporter(QuietExporter::new(
            RedactingExporter::new(exporter),
            config.traces_protocol(),
        ))
        .build())
}

/// The logger provider, or `None` when log records are not exported
/// (`OTEL_SDK_DISABLED`, `OTEL_LOGS_EXPORTER=none`).
fn logger_provider(
    config: &TelemetryConfig,
    identity: &ServiceIdentity,
) -> anyhow::Result<Option<SdkLoggerProvider>> {
    if config.otel_sdk_disabled || config.logs_exporter == LogsExporter::None {
        return Ok(None);
    }
    let exporter = otlp_exporter!(
        opentelemetry_otlp::LogExporter,
        config.logs_protocol(),
        config.export_endpoint.as_deref(),
        "/v1/logs"
    );
    let resource = resource(identity);
    let pipeline = LogPipeline::new(exporter, &resource, config.log_bounds());
    Ok(Some(
        SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(pipeline)
            .build(),
    ))
}

/// Which log lines are written: `directives` in `EnvFilter` syntax
/// (`RUST_LOG`, else [`crate::config::DEFAULT_LOG_FILTER`]), INFO for
/// targets they do not name.
fn log_filter(directives: &str) -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(directives)
}

/// Installs the global subscriber, tracer provider and W3C propagators.
///
/// Call once, inside the Tokio runtime (the gRPC exporter needs it). A
/// second call in the same process (several services in one test binary)
/// leaves the first installation in place.
pub fn init(
    config: &TelemetryConfig,
    identity: &ServiceIdentity,
) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(opentelemetry::propagation::TextMapCompositePropagator::new(
        vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ],
    ));
    crate::baggage::set_span_attributes(&config.baggage_span_attributes);
    // With the SDK disabled or no exporter, spans are still made (and
    // dropped): trace context keeps flowing through the service, log lines
    // and `traceresponse` keep their trace ids, and nothing is exported.
    let provider = tracer_provider(config, identity)?;
    // Spans go to OpenTelemetry at INFO and above whatever RUST_LOG says:
    // a log filter that dropped request spans would also stop context
    // propagation (the span *is* the context). The transport crates are
    // excluded so exporting spans never produces spans.
    let otel_filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy("info,h2=off,hyper=off,tonic=off,tower=off,reqwest=off");
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(identity.name.to_string()))
        .with_filter(otel_filter);

    let format = match config.log_format {
        LogFormat::Text => TraceIdFormat::Text,
        LogFormat::Json => TraceIdFormat::Json,
    };
    let fmt_layer = tracing_subscriber::fmt::layer()
        .event_format(format)
        .with_filter(log_filter(&config.log_filter));
    // Log records from the events the console shows, after the span layer:
    // by then the event's span is the current OpenTelemetry context, which
    // is where the record's trace and span ids come from.
    let logs = logger_provider(config, identity)?;
    let logs_layer = logs.as_ref().map(|logs| {
        OpenTelemetryTracingBridge::new(logs)
            .with_filter(crate::logs::bridge_filter(&config.log_filter))
    });

    let installed = tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer)
        .with(logs_layer)
        .try_init()
        .is_ok();
    if !installed {
        return Ok(TelemetryGuard {
            provider: None,
            logs: None,
        });
    }
    global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard {
        provider: Some(provider),
        logs,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{Layer as _, fmt::MakeWriter, layer::SubscriberExt as _};

    use super::log_filter;
    use crate::config::DEFAULT_LOG_FILTER;

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

    /// What a service started on PostgreSQL logs through `directives`:
    /// PostgreSQL's notices as sqlx reports them (NOTICE at INFO, WARNING
    /// at WARN, on `sqlx::postgres::notice`) beside the mesh's own lines.
    fn start_up_lines(directives: &str) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(out.clone())
                .with_filter(log_filter(directives)),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "sqlx::postgres::notice",
                message = "relation \"outbox\" already exists, skipping"
            );
            tracing::warn!(
                target: "sqlx::postgres::notice",
                message = "there is no transaction in progress"
            );
            tracing::info!(target: "mesh::server", "listening");
            tracing::warn!(target: "mesh::auth", "JWT_SECRET is the development default");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn by_default_postgres_notices_stay_out_of_the_log_but_its_warnings_do_not() {
        let lines = start_up_lines(DEFAULT_LOG_FILTER);
        assert!(!lines.contains("already exists"), "{lines}");
        assert!(
            lines.contains("there is no transaction in progress"),
            "{lines}"
        );
        assert!(lines.contains("listening"), "{lines}");
        assert!(lines.contains("JWT_SECRET"), "{lines}");
    }

    #[test]
    fn notices_show_when_asked_for() {
        let lines = start_up_lines("info,sqlx::postgres::notice=info");
        assert!(lines.contains("already exists"), "{lines}");
        let lines = start_up_lines("sqlx=debug");
        assert!(lines.contains("already exists"), "{lines}");
    }
}
