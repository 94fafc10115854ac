//! The [`Receiver`]: one handle over the store that both transports feed
//! and every query reads, for spans and log records alike.
//!
//! The store is either the plain buffers ([`crate::buffer`]: the latest
//! spans and log records, each bounded by a count, [`DEFAULT_MAX_SPANS`]
//! and [`DEFAULT_MAX_LOGS`] unless configured; when one is full its oldest
//! records are dropped and counted in [`ReceiverStats`]), or, with
//! [`Receiver::with_capture`], a trace store ([`crate::capture`]) that
//! groups spans and log records by trace and holds the traces pinned with
//! [`Receiver::keep`]. Both sit behind one lock, with a wake-up for
//! [`Receiver::wait_for`] and [`Receiver::wait_for_logs`], and log records
//! are also announced to [`Receiver::subscribe_logs`] as they arrive.
//!
//! The transports ([`crate::grpc`], [`crate::http`]) decode requests and
//! hand them to [`Receiver::ingest`] and [`Receiver::ingest_logs`];
//! [`crate::server`] serves them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::buffer::Buffer;
use crate::capture::{CaptureLimits, CaptureStats, TraceStore};
use crate::convert::{convert_logs_request, convert_request};
use crate::log::CapturedLog;
use crate::span::{CapturedSpan, Transport};
use crate::trace::CapturedTrace;

/// How many spans a [`Receiver::new`] keeps before dropping the oldest.
pub const DEFAULT_MAX_SPANS: usize = 100_000;

/// How many log records a [`Receiver::new`] keeps before dropping the
/// oldest.
pub const DEFAULT_MAX_LOGS: usize = 100_000;

/// Log records a [`Receiver::subscribe_logs`] subscriber may fall behind
/// by before it misses some (and is told how many).
pub const LOG_FEED_CAPACITY: usize = 4_096;

/// Largest request accepted on either transport, after decompression.
///
/// Exporters batch up to a few thousand spans; this is far above that, yet
/// still stops a gzip bomb or a runaway client from exhausting memory.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// The receiver's store of spans and log records. Cheap to clone: clones
/// share the same store.
///
/// It also implements the OTLP gRPC [`TraceService`] and [`LogsService`],
/// so it can be mounted into another tonic server with
/// `TraceServiceServer::new(receiver.clone())` and
/// `LogsServiceServer::new(receiver.clone())`.
///
/// [`TraceService`]: opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
/// [`LogsService`]: opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

struct Shared {
    store: Mutex<Store>,
    /// Woken on every ingest, so the waits re-check only when something
    /// arrived instead of polling.
    changed: Notify,
    /// Log records as they arrive, for [`Receiver::subscribe_logs`].
    log_feed: broadcast::Sender<CapturedLog>,
}

/// Where records go: the plain buffers tests assert on, or the trace store
/// reports draw from.
enum Store {
    Buffer(Buffer),
    Capture(TraceStore),
}

/// Counters since the receiver was created or last [`Receiver::clear`]ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReceiverStats {
    /// Spans received over any transport, including ones since dropped.
    pub received_spans: u64,
    /// Spans currently held.
    pub stored_spans: usize,
    /// Spans received and not held: evicted because the store was full
    /// (oldest first), or refused by a capture.
    pub dropped_spans: u64,
    /// Log records received over any transport, including ones since
    /// dropped.
    pub received_logs: u64,
    /// Log records currently held.
    pub stored_logs: usize,
    /// Log records received and not held: evicted or refused as spans are,
    /// and, with capture, those made outside any trace.
    pub dropped_logs: u64,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Receiver {
    // The records themselves would flood test output; the counters say enough.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Receiver {
    /// A receiver keeping at most [`DEFAULT_MAX_SPANS`] spans and
    /// [`DEFAULT_MAX_LOGS`] log records.
    pub fn new() -> Self {
        Self::with_max_records(DEFAULT_MAX_SPANS, DEFAULT_MAX_LOGS)
    }

    /// A receiver keeping at most `max_spans` spans, and as many log
    /// records; older ones are dropped first. Zero keeps nothing and only
    /// counts.
    pub fn with_max_spans(max_spans: usize) -> Self {
        Self::with_max_records(max_spans, max_spans)
    }

    /// A receiver keeping at most `max_spans` spans and `max_logs` log
    /// records, each dropping its oldest first; zero keeps none of that
    /// signal and only counts it.
    pub fn with_max_records(max_spans: usize, max_logs: usize) -> Self {
        Self::with_store(Store::Buffer(Buffer::new(max_spans, max_logs)))
    }

    /// A receiver for trace capture: it keeps the complete traces that turn
    /// out to matter (a load generator's slowest and failed requests),
    /// their spans and log records, within a fixed memory budget, though
    /// they arrive both before and after the caller learns that they
    /// matter.
    ///
    /// Every span and every log record of a trace goes into a recent
    /// window, grouped by trace; over budget, whole traces leave it, the
    /// one quiet longest first. [`keep`](Self::keep) pins a trace: what is
    /// held now and what arrives later is kept until
    /// [`release`](Self::release). Log records made outside any trace are
    /// counted, not kept. `limits` sets both budgets and caps per trace;
    /// [`capture_stats`](Self::capture_stats) counts what was not kept.
    ///
    /// [`spans`](Self::spans), [`logs`](Self::logs), [`trace`](Self::trace),
    /// the waits and [`stats`](Self::stats) work as with the buffers, over
    /// what is held.
    pub fn with_capture(limits: CaptureLimits) -> Self {
        Self::with_store(Store::Capture(TraceStore::new(limits)))
    }

    fn with_store(store: Store) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                changed: Notify::new(),
                log_feed: broadcast::channel(LOG_FEED_CAPACITY).0,
            }),
        }
    }

    /// A copy of every stored span, oldest first (with capture: grouped by
    /// trace, least recently active trace first).
    pub fn spans(&self) -> Vec<CapturedSpan> {
        match &*self.lock() {
            Store::Buffer(buffer) => buffer.spans.iter().cloned().collect(),
            Store::Capture(store) => store.spans().cloned().collect(),
        }
    }

    /// A copy of every stored log record, in arrival order (with capture:
    /// grouped by trace, least recently active trace first).
    pub fn logs(&self) -> Vec<CapturedLog> {
        match &*self.lock() {
            Store::Buffer(buffer) => buffer.logs.iter().cloned().collect(),
            Store::Capture(store) => store.logs().cloned().collect(),
        }
    }

    /// The stored spans of one trace, oldest first. `trace_id` is hex, in
    /// either case.
    pub fn trace(&self, trace_id: &str) -> Vec<CapturedSpan> {
        let wanted = trace_id.to_ascii_lowercase();
        match &*self.lock() {
            Store::Buffer(buffer) => buffer
                .spans
                .iter()
                .filter(|s| s.trace_id == wanted)
                .cloned()
                .collect(),
            Store::Capture(store) => store.trace(&wanted).to_vec(),
        }
    }

    /// The stored log records of one trace, in arrival order. `trace_id`
    /// is hex, in either case.
    pub fn trace_logs(&self, trace_id: &str) -> Vec<CapturedLog> {
        let wanted = trace_id.to_ascii_lowercase();
        match &*self.lock() {
            Store::Buffer(buffer) => buffer
                .logs
                .iter()
                .filter(|l| l.trace_id.as_ref() == Some(&wanted))
                .cloned()
                .collect(),
            Store::Capture(store) => store.trace_logs(&wanted).to_vec(),
        }
    }

    /// Pins a trace (`trace_id` is hex, in either case) so that its spans
    /// and log records, held now or arriving later, are kept until
    /// [`release`](Self::release); a pin may come before the trace's first
    /// record. Returns whether it is pinned: `false` when
    /// [`CaptureLimits::max_pinned_traces`] traces are pinned already or
    /// what it holds does not fit in [`CaptureLimits::pinned_bytes`], and
    /// always without capture.
    pub fn keep(&self, trace_id: &str) -> bool {
        match &mut *self.lock() {
            Store::Buffer(_) => false,
            Store::Capture(store) => store.keep(trace_id),
        }
    }

    /// Unpins a trace: it goes back to the recent window as old as it was,
    /// so it is the first to be evicted. A no-op without capture, or for a
    /// trace that is not pinned.
    pub fn release(&self, trace_id: &str) {
        if let Store::Capture(store) = &mut *self.lock() {
            store.release(trace_id);
        }
    }

    /// What is held of each of `trace_ids` that has anything: its spans by
    /// start time (parents before the children that start with them) and
    /// its log records by time, keyed by lowercase hex id. Without capture,
    /// whatever the buffers still hold of them.
    ///
    /// `trace_ids` is anything that lists ids: `&[&str]`, `&Vec<String>`,
    /// an iterator of `String`s.
    pub fn traces<I>(&self, trace_ids: I) -> BTreeMap<String, CapturedTrace>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        match &*self.lock() {
            Store::Capture(store) => store.traces(trace_ids),
            Store::Buffer(buffer) => {
                let wanted: Vec<String> = trace_ids
                    .into_iter()
                    .map(|id| id.as_ref().to_ascii_lowercase())
                    .collect();
                buffer.traces(&wanted)
            }
        }
    }

    /// The capture counters; `None` without capture.
    pub fn capture_stats(&self) -> Option<CaptureStats> {
        match &*self.lock() {
            Store::Buffer(_) => None,
            Store::Capture(store) => Some(store.stats()),
        }
    }

    /// Waits until `pred` holds for the stored spans, re-checking whenever
    /// records arrive. Returns `Ok` with the spans that satisfied it, or,
    /// once `timeout` has passed, `Err` with the spans there were, for the
    /// failure message.
    ///
    /// `pred` runs while the store is locked (so 100 000 spans are not cloned
    /// on every check): keep it quick and do not call this receiver from it.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl FnMut(&[CapturedSpan]) -> bool,
    ) -> Result<Vec<CapturedSpan>, Vec<CapturedSpan>> {
        self.wait_for_records(
            timeout,
            pred,
            |buffer| buffer.spans.as_slice(),
            |store| store.spans().cloned().collect(),
        )
        .await
    }

    /// [`wait_for`](Self::wait_for), over the stored log records.
    pub async fn wait_for_logs(
        &self,
        timeout: Duration,
        pred: impl FnMut(&[CapturedLog]) -> bool,
    ) -> Result<Vec<CapturedLog>, Vec<CapturedLog>> {
        self.wait_for_records(
            timeout,
            pred,
            |buffer| buffer.logs.as_slice(),
            |store| store.logs().cloned().collect(),
        )
        .await
    }

    /// The waits, for either signal: `buffered` reads its records in the
    /// plain buffers, `captured` copies them out of a capture.
    async fn wait_for_records<T: Clone>(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[T]) -> bool,
        buffered: impl Fn(&mut Buffer) -> &[T],
        captured: impl Fn(&TraceStore) -> Vec<T>,
    ) -> Result<Vec<T>, Vec<T>> {
        // The records, if `pred` holds for them.
        let check = |pred: &mut dyn FnMut(&[T]) -> bool| -> Option<Vec<T>> {
            // One check, the lock held only for it (never across an await).
            match &mut *self.lock() {
                Store::Buffer(buffer) => {
                    let held = buffered(buffer);
                    pred(held).then(|| held.to_vec())
                }
                // Grouped by trace, the records are not one slice: copy them.
                // Tests wait on small stores; a capture is asked for its
                // traces, not waited on.
                Store::Capture(store) => {
                    let held = captured(store);
                    pred(&held).then_some(held)
                }
            }
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check so an ingest between the check and
            // the await still wakes us.
            let changed = self.shared.changed.notified();
            if let Some(found) = check(&mut pred) {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                // On time out, every record there is, for the failure message.
                return check(&mut pred).ok_or_else(|| check(&mut |_| true).unwrap_or_default());
            }
        }
    }

    /// Every log record that arrives from now on, as it arrives, whether
    /// the store keeps it or not (`loadgen receive` prints them). A
    /// subscriber more than [`LOG_FEED_CAPACITY`] records behind misses
    /// the oldest and is told how many (`RecvError::Lagged`): a slow
    /// reader costs a bounded queue, never the exporters' time.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<CapturedLog> {
        self.shared.log_feed.subscribe()
    }

    /// Forgets every stored record (and pin) and resets the counters.
    pub fn clear(&self) {
        match &mut *self.lock() {
            Store::Buffer(buffer) => buffer.clear(),
            Store::Capture(store) => store.clear(),
        }
    }

    /// Current counters. With capture, `dropped_spans` counts both spans
    /// evicted with their traces and spans refused on arrival;
    /// `dropped_logs` also counts the log records made outside any trace.
    pub fn stats(&self) -> ReceiverStats {
        match &*self.lock() {
            Store::Buffer(buffer) => ReceiverStats {
                received_spans: buffer.spans.received,
                stored_spans: buffer.spans.len(),
                dropped_spans: buffer.spans.dropped,
                received_logs: buffer.logs.received,
                stored_logs: buffer.logs.len(),
                dropped_logs: buffer.logs.dropped,
            },
            Store::Capture(store) => {
                let stats = store.stats();
                ReceiverStats {
                    received_spans: stats.received_spans,
                    stored_spans: stats.held_spans,
                    dropped_spans: stats.evicted_spans + stats.dropped_spans,
                    received_logs: stats.received_logs,
                    stored_logs: stats.held_logs,
                    dropped_logs: stats.evicted_logs + stats.dropped_logs + stats.untraced_logs,
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panicking wait predicate poisons the lock; the store is still
        // consistent (every mutation completes before user code runs).
        self.shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the spans an exporter sent, over either transport, and wakes
    /// the waiters.
    pub(crate) fn ingest(&self, request: ExportTraceServiceRequest, transport: Transport) {
        // Conversion happens outside the lock so exporters never wait on
        // each other's decoding.
        let spans = convert_request(request, transport);
        if spans.is_empty() {
            return;
        }
        match &mut *self.lock() {
            Store::Buffer(buffer) => spans.into_iter().for_each(|s| buffer.spans.push(s)),
            Store::Capture(store) => spans.into_iter().for_each(|s| store.insert(s)),
        }
        self.shared.changed.notify_waiters();
    }

    /// Takes the log records an exporter sent, over either transport,
    /// announces them to the subscribers and wakes the waiters.
    pub(crate) fn ingest_logs(&self, request: ExportLogsServiceRequest, transport: Transport) {
        let logs = convert_logs_request(request, transport);
        if logs.is_empty() {
            return;
        }
        // Copies only for a subscriber, announced after they are stored so
        // one that asks the store on hearing of a record finds it.
        let announced = (self.shared.log_feed.receiver_count() > 0).then(|| logs.clone());
        match &mut *self.lock() {
            Store::Buffer(buffer) => logs.into_iter().for_each(|l| buffer.logs.push(l)),
            Store::Capture(store) => logs.into_iter().for_each(|l| store.insert_log(l)),
        }
        for log in announced.into_iter().flatten() {
            // An error only means every subscriber has gone meanwhile.
            let _ = self.shared.log_feed.send(log);
        }
        self.shared.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

    use super::*;
    use crate::log::Severity;
    use crate::samples::{
        TRACE_HEX, assert_sample_logs_captured, log_in_trace, named_span, sample_logs_request,
        sample_request, start,
    };

    #[tokio::test]
    async fn store_is_bounded_dropping_the_oldest() {
        let receiver = Receiver::with_max_spans(2);
        for name in ["first", "second", "third"] {
            receiver.ingest(named_span(name), Transport::Grpc);
        }
        let names: Vec<_> = receiver.spans().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["second", "third"]);
        assert_eq!(
            receiver.stats(),
            ReceiverStats {
                received_spans: 3,
                stored_spans: 2,
                dropped_spans: 1,
                ..ReceiverStats::default()
            }
        );

        receiver.clear();
        assert!(receiver.spans().is_empty());
        assert_eq!(receiver.stats(), ReceiverStats::default());

        let counting_only = Receiver::with_max_spans(0);
        counting_only.ingest(sample_request(), Transport::Grpc);
        assert_eq!(counting_only.stats().dropped_spans, 2);
        assert!(counting_only.spans().is_empty());
    }

    /// Capture mode through the real transport: a trace pinned before its
    /// spans arrive survives a flood of other traces that evicts the rest.
    #[tokio::test]
    async fn capture_keeps_a_pinned_trace_through_a_flood() {
        let running = start(Receiver::with_capture(CaptureLimits {
            recent_spans: 4,
            ..CaptureLimits::default()
        }))
        .await;
        assert!(running.keep(TRACE_HEX), "pinned before any span arrived");
        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects");
        client
            .export(sample_request())
            .await
            .expect("export succeeds");
        for i in 1..=20u8 {
            let mut other = named_span("noise");
            other.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![i; 16];
            client.export(other).await.expect("export succeeds");
        }

        let traces = running.traces([TRACE_HEX.to_owned(), "01".repeat(16)]);
        assert_eq!(traces.len(), 1, "the first noise trace was evicted");
        let names: Vec<_> = traces[TRACE_HEX]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["GET /courses", "GET courses"], "by start time");
        assert_eq!(running.trace(TRACE_HEX).len(), 2);

        let stats = running.stats();
        assert_eq!(stats.received_spans, 22);
        assert_eq!(stats.stored_spans, 2 + 4);
        assert_eq!(stats.dropped_spans, 16);
        let capture = running.capture_stats().expect("capture mode");
        assert_eq!((capture.pinned_traces, capture.evicted_traces), (1, 16));

        running.release(TRACE_HEX);
        assert!(
            running.traces([TRACE_HEX]).is_empty(),
            "released, then evicted first"
        );
        assert!(
            !Receiver::new().keep(TRACE_HEX),
            "the plain buffer cannot pin"
        );
        assert_eq!(Receiver::new().capture_stats(), None);
    }

    #[tokio::test]
    async fn trace_selects_one_trace_in_either_case() {
        let receiver = Receiver::new();
        receiver.ingest(sample_request(), Transport::Grpc);
        let mut other = named_span("other trace");
        other.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1; 16];
        receiver.ingest(other, Transport::Grpc);

        assert_eq!(receiver.trace(TRACE_HEX).len(), 2);
        assert_eq!(receiver.trace(&TRACE_HEX.to_ascii_uppercase()).len(), 2);
        assert_eq!(receiver.trace(&"01".repeat(16))[0].name, "other trace");
        assert!(receiver.trace(&"02".repeat(16)).is_empty());
    }

    #[tokio::test]
    async fn wait_for_wakes_on_arrival_and_times_out() {
        let receiver = Receiver::new();
        let sender = receiver.clone();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.ingest(named_span("early"), Transport::Grpc);
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.ingest(named_span("late"), Transport::Grpc);
        });
        let found = receiver
            .wait_for(Duration::from_secs(10), |spans| {
                spans.iter().any(|s| s.name == "late")
            })
            .await
            .expect("the late span arrives");
        assert_eq!(found.len(), 2);
        late.await.expect("sender finishes");

        let missing = receiver
            .wait_for(Duration::from_millis(50), |spans| spans.len() > 2)
            .await
            .expect_err("no third span ever arrives");
        assert_eq!(missing.len(), 2, "the timeout returns what there was");
    }

    /// A flood of log records costs a fixed number of them, the oldest go
    /// first and are counted, and spans keep their own room.
    #[tokio::test]
    async fn log_records_are_bounded_dropping_the_oldest() {
        let receiver = Receiver::with_max_records(2, 3);
        receiver.ingest(sample_request(), Transport::Grpc);
        for i in 0..10u8 {
            receiver.ingest_logs(log_in_trace(1, &format!("record {i}")), Transport::Grpc);
        }
        let bodies: Vec<String> = receiver
            .logs()
            .iter()
            .map(|l| l.body_text().into_owned())
            .collect();
        assert_eq!(bodies, ["record 7", "record 8", "record 9"]);
        assert_eq!(
            receiver.stats(),
            ReceiverStats {
                received_spans: 2,
                stored_spans: 2,
                dropped_spans: 0,
                received_logs: 10,
                stored_logs: 3,
                dropped_logs: 7,
            }
        );

        let counting_only = Receiver::with_max_spans(0);
        counting_only.ingest_logs(sample_logs_request(), Transport::Grpc);
        assert!(counting_only.logs().is_empty());
        assert_eq!(counting_only.stats().dropped_logs, 2);

        receiver.clear();
        assert!(receiver.logs().is_empty());
        assert_eq!(receiver.stats(), ReceiverStats::default());
    }

    #[tokio::test]
    async fn a_traces_log_records_are_found_by_its_id_beside_its_spans() {
        let receiver = Receiver::new();
        receiver.ingest(sample_request(), Transport::Grpc);
        receiver.ingest_logs(sample_logs_request(), Transport::HttpJson);
        assert_sample_logs_captured(&receiver.logs(), Transport::HttpJson);

        let logs = receiver.trace_logs(&TRACE_HEX.to_ascii_uppercase());
        assert_eq!(logs.len(), 1, "the record outside any trace is not in it");
        assert_eq!(logs[0].severity, Severity::Error);

        let traces = receiver.traces([TRACE_HEX]);
        let trace = &traces[TRACE_HEX];
        assert_eq!(trace.spans.len(), 2);
        assert_eq!(trace.logs.len(), 1);
        let child = &trace.spans[1];
        assert_eq!(
            trace.logs_of(&child.span_id).count(),
            1,
            "the record names the span it was made in"
        );
        assert_eq!(trace.logs_of(&trace.spans[0].span_id).count(), 0);
    }

    /// Capture keeps a pinned trace's log records with its spans; a record
    /// outside any trace is counted, not kept.
    #[tokio::test]
    async fn capture_keeps_a_pinned_traces_log_records() {
        let receiver = Receiver::with_capture(CaptureLimits {
            recent_spans: 2,
            recent_logs: 2,
            ..CaptureLimits::default()
        });
        assert!(receiver.keep(TRACE_HEX));
        receiver.ingest_logs(sample_logs_request(), Transport::Grpc);
        receiver.ingest(sample_request(), Transport::Grpc);
        for i in 1..=5u8 {
            receiver.ingest_logs(log_in_trace(i, "noise"), Transport::Grpc);
        }
        let trace = &receiver.traces([TRACE_HEX])[TRACE_HEX];
        assert_eq!(trace.spans.len(), 2);
        assert_eq!(trace.logs.len(), 1);
        assert_eq!(trace.logs[0].body_text(), "payment provider failed");
        assert!(receiver.traces([&"01".repeat(16)]).is_empty(), "evicted");
        assert_eq!(receiver.logs().len(), 1 + 2);

        let stats = receiver.stats();
        assert_eq!(stats.received_logs, 2 + 5);
        assert_eq!(stats.stored_logs, 3);
        assert_eq!(stats.dropped_logs, 3 + 1, "evicted, and the untraced one");
        let capture = receiver.capture_stats().expect("capture mode");
        assert_eq!((capture.untraced_logs, capture.evicted_logs), (1, 3));
    }

    #[tokio::test]
    async fn wait_for_logs_wakes_on_arrival_and_times_out() {
        let receiver = Receiver::new();
        let sender = receiver.clone();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.ingest(sample_request(), Transport::Grpc);
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.ingest_logs(sample_logs_request(), Transport::Grpc);
        });
        let found = receiver
            .wait_for_logs(Duration::from_secs(10), |logs| {
                logs.iter().any(|l| l.severity >= Severity::Error)
            })
            .await
            .expect("the error record arrives");
        assert_eq!(found.len(), 2);
        late.await.expect("sender finishes");

        let missing = receiver
            .wait_for_logs(Duration::from_millis(50), |logs| logs.len() > 2)
            .await
            .expect_err("no third record ever arrives");
        assert_eq!(missing.len(), 2, "the timeout returns what there was");
    }

    #[tokio::test]
    async fn subscribers_hear_of_each_log_record_and_of_what_they_missed() {
        let receiver = Receiver::with_max_spans(0);
        let mut feed = receiver.subscribe_logs();
        receiver.ingest_logs(sample_logs_request(), Transport::Grpc);
        let first = feed.recv().await.expect("announced");
        assert_eq!(first.body_text(), "payment provider failed");
        assert_eq!(
            feed.recv().await.expect("announced").body_text(),
            "listening"
        );
        assert!(receiver.logs().is_empty(), "announced though not kept");

        for _ in 0..LOG_FEED_CAPACITY {
            receiver.ingest_logs(log_in_trace(1, "flood"), Transport::Grpc);
        }
        receiver.ingest_logs(log_in_trace(1, "last"), Transport::Grpc);
        match feed.recv().await {
            Err(broadcast::error::RecvError::Lagged(missed)) => assert_eq!(missed, 1),
            other => panic!("a slow subscriber is told what it missed, not {other:?}"),
        }
        let mut last = None;
        while let Ok(log) = feed.try_recv() {
            last = Some(log);
        }
        assert_eq!(last.expect("the newest are kept").body_text(), "last");
    }
}
