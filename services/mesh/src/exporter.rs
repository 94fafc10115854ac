//! Span exporter wrappers: [`RedactingExporter`] applies the telemetry
//! hygiene rules to every span on its way out, and [`QuietExporter`]
//! reports an unreachable collector once.
//!
//! Without the latter every failed batch (one every few seconds, per
//! service) logs an error: a demo run without Jaeger drowns its own logs.
//! We log one warning when exporting starts failing and one line when it
//! recovers.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

use crate::config::OtlpProtocol;

#[derive(Debug)]
pub(crate) struct QuietExporter<E> {
    inner: E,
    protocol: OtlpProtocol,
    failing: AtomicBool,
}

impl<E> QuietExporter<E> {
    pub(crate) fn new(inner: E, protocol: OtlpProtocol) -> Self {
        Self {
            inner,
            protocol,
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for QuietExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        match self.inner.export(batch).await {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(protocol = ?self.protocol, "trace collector reachable again; exporting spans");
                }
                Ok(())
            }
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        protocol = ?self.protocol,
                        %error,
                        dropped_spans = spans,
                        "cannot export spans (is a collector listening on OTEL_EXPORTER_OTLP_ENDPOINT?); \
                         the service works on, spans are dropped until it is reachable, and this is logged once"
                    );
                }
                // Reported above; returning the error would make the SDK log
                // it again for every batch.
                Ok(())
            }
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Passes every span through [`crate::redact::redact_span`] (attribute
/// allow-list, value scrubber) before `inner` exports it. An exporter
/// rather than a span processor: the work happens on the batch exporter's
/// thread, off the request path, and nothing reaches the collector without
/// it.
#[derive(Debug)]
pub struct RedactingExporter<E> {
    inner: E,
}

impl<E> RedactingExporter<E> {
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

impl<E: SpanExporter> SpanExporter for RedactingExporter<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        for span in &mut batch {
            crate::redact::redact_span(span);
        }
        self.inner.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex},
    };

    use opentelemetry_sdk::error::OTelSdkError;
    use tracing::{Level, Subscriber};
    use tracing_subscriber::{Layer, layer::SubscriberExt as _};

    use super::*;

    /// A collector that is down for the exports its script says.
    #[derive(Debug, Default)]
    struct ScriptedExporter {
        /// `true`: this export succeeds.
        script: Mutex<VecDeque<bool>>,
        shutdown_fails: bool,
    }

    impl ScriptedExporter {
        fn new(script: &[bool]) -> Self {
            Self {
                script: Mutex::new(script.iter().copied().collect()),
                shutdown_fails: false,
            }
        }
    }

    impl SpanExporter for ScriptedExporter {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            let ok = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .expect("export not in the script");
            if ok {
                Ok(())
            } else {
                Err(OTelSdkError::InternalFailure("connection refused".into()))
            }
        }

        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            if self.shutdown_fails {
                Err(OTelSdkError::Timeout(Duration::from_secs(1)))
            } else {
                Ok(())
            }
        }
    }

    /// The log lines the wrapper wrote, by level.
    #[derive(Clone, Default)]
    struct Logged(Arc<Mutex<Vec<(Level, String)>>>);

    impl Logged {
        fn count(&self, level: Level) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|(l, _)| *l == level)
                .count()
        }
    }

    impl<S: Subscriber> Layer<S> for Logged {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    use std::fmt::Write as _;
                    let _ = write!(self.0, "{}={value:?} ", field.name());
                }
            }
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), text));
        }
    }

    #[tokio::test]
    async fn an_outage_is_logged_once_and_the_recovery_once() {
        let logged = Logged::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(logged.clone()));
        let exporter = QuietExporter::new(
            ScriptedExporter::new(&[false, false, false, true, true, false, false, true]),
            OtlpProtocol::Grpc,
        );
        let export = || exporter.export(Vec::new());

        // Down: every batch "succeeds" (the SDK would log each error again),
        // one warning for the whole outage.
        for _ in 0..3 {
            assert!(export().await.is_ok());
        }
        assert_eq!(
            (logged.count(Level::WARN), logged.count(Level::INFO)),
            (1, 0)
        );
        assert!(
            logged.0.lock().unwrap()[0].1.contains("connection refused"),
            "{:?}",
            logged.0
        );

        // Back: one line saying so, then silence while it stays up.
        for _ in 0..2 {
            assert!(export().await.is_ok());
        }
        assert_eq!(
            (logged.count(Level::WARN), logged.count(Level::INFO)),
            (1, 1)
        );

        // A second outage is news again, and so is the second recovery.
        for _ in 0..2 {
            assert!(export().await.is_ok());
        }
        assert!(export().await.is_ok());
        assert_eq!(
            (logged.count(Level::WARN), logged.count(Level::INFO)),
            (2, 2)
        );
        assert_eq!(
            logged.0.lock().unwrap().len(),
            4,
            "nothing else logged: {:?}",
            logged.0
        );
    }

    #[test]
    fn shutdown_results_are_passed_through() {
        // Only export errors are swallowed; the SDK must still learn that
        // the final flush at shutdown failed.
        let failing = ScriptedExporter {
            shutdown_fails: true,
            ..ScriptedExporter::default()
        };
        assert!(
            QuietExporter::new(failing, OtlpProtocol::Grpc)
                .shutdown_with_timeout(Duration::from_secs(1))
                .is_err()
        );
        let fine = ScriptedExporter::default();
        assert!(
            QuietExporter::new(fine, OtlpProtocol::HttpProtobuf)
                .shutdown_with_timeout(Duration::from_secs(1))
                .is_ok()
        );
    }
}
