//! Log records over OTLP, the third signal.
//!
//! The `tracing` events that make the console lines also leave the process
//! as OpenTelemetry log records (`opentelemetry-appender-tracing`): the
//! same resource as the spans, the level as severity, the message as body,
//! the fields as attributes, and the trace id, span id and flags of the
//! span the event happened in (tracing-opentelemetry makes each entered
//! span the current OpenTelemetry context, and the SDK's logger reads it).
//! They go where the spans go (`OTEL_EXPORTER_OTLP_ENDPOINT`, the protocol
//! from `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`)
//! unless `OTEL_LOGS_EXPORTER=none`.
//!
//! Between the bridge and the exporter sits [`LogPipeline`], our batch
//! processor:
//!
//! - **bounded**: a record waits in a queue of fixed size
//!   (`OTEL_BLRP_MAX_QUEUE_SIZE`). A full queue (a flood of error lines, a
//!   collector that is slow) drops the record on the spot, never holds the
//!   request, and counts it in `telemetry_log_records_dropped_total
//!   {reason="queue_full"}`. A batch the collector refused or never got is
//!   counted with `reason="export_failed"`; what it took, in
//!   `telemetry_log_records_exported_total`.
//! - **redacted**: each record is rebuilt on the pipeline's own thread, off
//!   the request path, by [`crate::redact::redact_log_record`] (body and
//!   strings scrubbed, attribute keys allow-listed), before any exporter
//!   sees it.
//! - **quiet**: an unreachable collector is reported once, and once more
//!   when it is back, like the span exporter does.
//!
//! Why not the SDK's `BatchLogProcessor`: it reports its drops only in one
//! internal log line at shutdown, and its exporter gets the records
//! borrowed, so nothing between could rewrite them.

use std::{
    mem,
    sync::{
        LazyLock, Mutex,
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use opentelemetry::{
    Context, InstrumentationScope,
    logs::{LogRecord as _, Logger as _, LoggerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord, SdkLoggerProvider},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// How big the queue and the batches are, and how often a partial batch
/// leaves. The defaults and variables are the specification's
/// (`OTEL_BLRP_*`).
#[derive(Debug, Clone, Copy)]
pub struct LogBounds {
    /// Records waiting at most; more are dropped and counted.
    pub max_queue: usize,
    /// Records per export at most.
    pub max_batch: usize,
    /// How long a record waits for its batch to fill.
    pub delay: Duration,
}

impl Default for LogBounds {
    fn default() -> Self {
        Self {
            max_queue: 2048,
            max_batch: 512,
            delay: Duration::from_secs(1),
        }
    }
}

/// Why a log record was not exported.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum DropReason {
    /// The queue was full when the record was made.
    queue_full,
    /// The collector refused the batch or could not be reached.
    export_failed,
    /// Made after the pipeline shut down.
    shutdown,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: DropReason,
}

/// Process-wide, like the pipeline: one logger provider per process.
struct LogCounters {
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl LogCounters {
    fn dropped(&self, reason: DropReason, records: usize) {
        self.dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(records as u64);
    }
}

static COUNTERS: LazyLock<LogCounters> = LazyLock::new(|| {
    let dropped = Family::default();
    // Every reason from the start, so a dashboard sees 0, not no data.
    for reason in [
        DropReason::queue_full,
        DropReason::export_failed,
        DropReason::shutdown,
    ] {
        let _ = dropped.get_or_create(&DropLabels { reason });
    }
    LogCounters {
        exported: Counter::default(),
        dropped,
    }
});

/// Adds the log pipeline's counters to a service's registry.
pub(crate) fn register(registry: &mut Registry) {
    registry.register(
        "telemetry_log_records_exported",
        "Log records the OTLP collector accepted",
        COUNTERS.exported.clone(),
    );
    registry.register(
        "telemetry_log_records_dropped",
        "Log records not exported, by reason: queue_full (a flood), export_failed (collector down \
         or refusing), shutdown",
        COUNTERS.dropped.clone(),
    );
}

/// The events that become log records: what `directives` (`RUST_LOG`)
/// lets through to the console, minus the exporting machinery's own
/// events, so exporting logs never makes logs.
pub(crate) fn bridge_filter(directives: &str) -> EnvFilter {
    const EXPORT_MACHINERY: &str = "h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,\
         reqwest=off,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off";
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(format!("{directives},{EXPORT_MACHINERY}"))
}

enum Message {
    Record(Box<(SdkLogRecord, InstrumentationScope)>),
    Flush(SyncSender<OTelSdkResult>),
    Shutdown(SyncSender<OTelSdkResult>),
}

/// The batch processor: a bounded queue, one thread that redacts and
/// exports. See the module documentation.
#[derive(Debug)]
pub struct LogPipeline {
    sender: SyncSender<Message>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl LogPipeline {
    /// Starts the pipeline's thread. `resource` is given here rather than
    /// through `set_resource`, so the exporter has it before the thread
    /// owns it.
    pub fn new<E: LogExporter + 'static>(
        mut exporter: E,
        resource: &Resource,
        bounds: LogBounds,
    ) -> Self {
        exporter.set_resource(resource);
        let (sender, receiver) = mpsc::sync_channel(bounds.max_queue.max(1));
        let worker = Worker {
            exporter,
            receiver,
            bounds,
            blank: blank_record(),
            failing: false,
        };
        let handle = std::thread::Builder::new()
            .name("otel-logs".into())
            .spawn(move || worker.run())
            .expect("spawning the log export thread");
        Self {
            sender,
            worker: Mutex::new(Some(handle)),
        }
    }

    /// Sends a control message and waits for its answer until `deadline`.
    /// A full queue is waited on: the thread is draining it.
    fn ask(
        &self,
        message: fn(SyncSender<OTelSdkResult>) -> Message,
        timeout: Duration,
    ) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (reply, answer) = mpsc::sync_channel(1);
        let mut message = message(reply);
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return Err(OTelSdkError::Timeout(timeout)),
                Err(TrySendError::Disconnected(_)) => return Err(OTelSdkError::AlreadyShutdown),
            }
        }
        match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(OTelSdkError::AlreadyShutdown),
        }
    }
}

impl LogProcessor for LogPipeline {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        let message = Message::Record(Box::new((record.clone(), scope.clone())));
        match self.sender.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => COUNTERS.dropped(DropReason::queue_full, 1),
            Err(TrySendError::Disconnected(_)) => COUNTERS.dropped(DropReason::shutdown, 1),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Message::Flush, Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.ask(Message::Shutdown, timeout);
        if result.is_ok()
            && let Some(handle) = self.worker.lock().ok().and_then(|mut w| w.take())
        {
            let _ = handle.join();
        }
        result
    }
}

/// An empty record to rebuild redacted ones from: the SDK makes records
/// only through a logger, and a provider without processors is the
/// cheapest logger there is.
fn blank_record() -> SdkLogRecord {
    SdkLoggerProvider::builder()
        .build()
        .logger("redaction")
        .create_log_record()
}

struct Worker<E> {
    exporter: E,
    receiver: Receiver<Message>,
    bounds: LogBounds,
    blank: SdkLogRecord,
    /// The last export failed: reported once, until one succeeds.
    failing: bool,
}

impl<E: LogExporter> Worker<E> {
    fn run(mut self) {
        // What the exporter logs (the collector is down, say) goes to the
        // console and never back into this queue.
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        let mut batch = Vec::with_capacity(self.bounds.max_batch);
        let mut due = Instant::now() + self.bounds.delay;
        loop {
            match self
                .receiver
                .recv_timeout(due.saturating_duration_since(Instant::now()))
            {
                Ok(Message::Record(record)) => {
                    let (record, scope) = *record;
                    let mut record = crate::redact::redact_log_record(&record, &self.blank);
                    // The bridge leaves the event's time unset; the SDK
                    // stamps when it saw the record, which is the same
                    // moment. Backends that read only the event's time
                    // would otherwise show 1970.
                    if record.timestamp().is_none()
                        && let Some(seen) = record.observed_timestamp()
                    {
                        record.set_timestamp(seen);
                    }
                    batch.push((record, scope));
                    if batch.len() >= self.bounds.max_batch {
                        // A failure is counted and reported by `export`.
                        let _ = self.export(&mut batch);
                    }
                }
                Ok(Message::Flush(reply)) => {
                    let _ = reply.send(self.export(&mut batch));
                }
                Ok(Message::Shutdown(reply)) => {
                    let exported = self.export(&mut batch);
                    let _ = reply.send(exported.and(self.exporter.shutdown()));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.export(&mut batch);
                    due = Instant::now() + self.bounds.delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.export(&mut batch);
                    return;
                }
            }
        }
    }

    /// Exports and empties `batch`; counts what went and what was lost.
    fn export(&mut self, batch: &mut Vec<(SdkLogRecord, InstrumentationScope)>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let records = batch.len();
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch
            .iter()
            .map(|(record, scope)| (record, scope))
            .collect();
        let result = futures::executor::block_on(self.exporter.export(LogBatch::new(&refs)));
        drop(refs);
        batch.clear();
        match &result {
            Ok(()) => {
                COUNTERS.exported.inc_by(records as u64);
                if mem::replace(&mut self.failing, false) {
                    tracing::info!("log collector reachable again; exporting log records");
                }
            }
            Err(error) => {
                COUNTERS.dropped(DropReason::export_failed, records);
                if !mem::replace(&mut self.failing, true) {
                    tracing::warn!(
                        %error,
                        dropped_records = records,
                        "cannot export log records (is a collector listening on \
                         OTEL_EXPORTER_OTLP_ENDPOINT?); they are dropped and counted in \
                         telemetry_log_records_dropped_total until it is reachable, and this \
                         is logged once"
                    );
                }
            }
        }
        result
    }
}
