//! A span exporter wrapper that reports an unreachable collector once.
//!
//! Without it every failed batch (one every few seconds, per service) logs
//! an error: a demo run without Jaeger drowns its own logs. We log one
//! warning when exporting starts failing and one line when it recovers.

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
