//! The [`Receiver`]: one handle over the span store that both transports
//! feed and every query reads.
//!
//! The store is either a plain buffer of spans, bounded by a count
//! ([`DEFAULT_MAX_SPANS`] unless configured; when it is full the oldest
//! spans are dropped and counted in [`ReceiverStats::dropped_spans`]), or,
//! with [`Receiver::with_capture`], a trace store ([`crate::capture`]) that
//! groups spans by trace and holds the traces pinned with
//! [`Receiver::keep`]. Both sit behind one lock, with a wake-up for
//! [`Receiver::wait_for`].
//!
//! The transports ([`crate::grpc`], [`crate::http`]) decode requests and
//! hand them to [`Receiver::ingest`]; [`crate::server`] serves them.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Serialize;
use tokio::sync::Notify;

use crate::capture::{CaptureLimits, CaptureStats, TraceStore};
use crate::convert::convert_request;
use crate::span::{CapturedSpan, Transport};

/// How many spans a [`Receiver::new`] keeps before dropping the oldest.
pub const DEFAULT_MAX_SPANS: usize = 100_000;

/// Largest request accepted on either transport, after decompression.
///
/// Exporters batch up to a few thousand spans; this is far above that, yet
/// still stops a gzip bomb or a runaway client from exhausting memory.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// The receiver's span store. Cheap to clone: clones share the same spans.
///
/// It also implements the OTLP gRPC [`TraceService`], so it can be mounted
/// into another tonic server with `TraceServiceServer::new(receiver.clone())`.
///
/// [`TraceService`]: opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

struct Shared {
    store: Mutex<Store>,
    /// Woken on every ingest, so [`Receiver::wait_for`] re-checks only when
    /// something arrived instead of polling.
    changed: Notify,
}

/// Where spans go: the plain buffer tests assert on, or the trace store
/// reports draw from.
enum Store {
    Buffer(Buffer),
    Capture(TraceStore),
}

struct Buffer {
    spans: VecDeque<CapturedSpan>,
    max_spans: usize,
    received: u64,
    dropped: u64,
}

/// Counters since the receiver was created or last [`Receiver::clear`]ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReceiverStats {
    /// Spans received over any transport, including ones since dropped.
    pub received_spans: u64,
    /// Spans currently held.
    pub stored_spans: usize,
    /// Spans evicted because the buffer was full (oldest first).
    pub dropped_spans: u64,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Receiver {
    // The spans themselves would flood test output; the counters say enough.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Receiver {
    /// A receiver keeping at most [`DEFAULT_MAX_SPANS`] spans.
    pub fn new() -> Self {
        Self::with_max_spans(DEFAULT_MAX_SPANS)
    }

    /// A receiver keeping at most `max_spans` spans; older ones are dropped
    /// first. Zero keeps nothing and only counts.
    pub fn with_max_spans(max_spans: usize) -> Self {
        Self::with_store(Store::Buffer(Buffer {
            spans: VecDeque::new(),
            max_spans,
            received: 0,
            dropped: 0,
        }))
    }

    /// A receiver for trace capture: it keeps the complete traces that turn
    /// out to matter (a load generator's slowest and failed requests)
    /// within a fixed memory budget, though their spans arrive both before
    /// and after the caller learns that they matter.
    ///
    /// Every span goes into a recent window, grouped by trace; over budget,
    /// whole traces leave it, the one quiet longest first.
    /// [`keep`](Self::keep) pins a trace: the spans held now and those that
    /// arrive later are kept until [`release`](Self::release). `limits` sets
    /// both budgets and a cap per trace; [`capture_stats`](Self::capture_stats)
    /// counts what was not kept.
    ///
    /// [`spans`](Self::spans), [`trace`](Self::trace),
    /// [`wait_for`](Self::wait_for) and [`stats`](Self::stats) work as with
    /// the buffer, over what is held.
    pub fn with_capture(limits: CaptureLimits) -> Self {
        Self::with_store(Store::Capture(TraceStore::new(limits)))
    }

    fn with_store(store: Store) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                changed: Notify::new(),
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

    /// Pins a trace (`trace_id` is hex, in either case) so that its spans,
    /// held now or arriving later, are kept until
    /// [`release`](Self::release); a pin may come before the trace's first
    /// span. Returns whether it is pinned: `false` when
    /// [`CaptureLimits::max_pinned_traces`] traces are pinned already or its
    /// spans do not fit in [`CaptureLimits::pinned_bytes`], and always
    /// without capture.
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

    /// The held spans of each of `trace_ids` that has any, by start time
    /// (parents before the children that start with them), keyed by
    /// lowercase hex id. Without capture, whatever the buffer still holds
    /// of them.
    ///
    /// `trace_ids` is anything that lists ids: `&[&str]`, `&Vec<String>`,
    /// an iterator of `String`s.
    pub fn traces<I>(&self, trace_ids: I) -> BTreeMap<String, Vec<CapturedSpan>>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        match &*self.lock() {
            Store::Capture(store) => store.traces(trace_ids),
            Store::Buffer(buffer) => {
                let mut out: BTreeMap<String, Vec<CapturedSpan>> = BTreeMap::new();
                let wanted: Vec<String> = trace_ids
                    .into_iter()
                    .map(|id| id.as_ref().to_ascii_lowercase())
                    .collect();
                for span in &buffer.spans {
                    if wanted.contains(&span.trace_id) {
                        out.entry(span.trace_id.clone())
                            .or_default()
                            .push(span.clone());
                    }
                }
                for spans in out.values_mut() {
                    spans.sort_by_key(|s| (s.start_unix_nano, std::cmp::Reverse(s.end_unix_nano)));
                }
                out
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
    /// spans arrive. Returns `Ok` with the spans that satisfied it, or, once
    /// `timeout` has passed, `Err` with the spans there were, for the failure
    /// message.
    ///
    /// `pred` runs while the store is locked (so 100 000 spans are not cloned
    /// on every check): keep it quick and do not call this receiver from it.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[CapturedSpan]) -> bool,
    ) -> Result<Vec<CapturedSpan>, Vec<CapturedSpan>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check so an ingest between the check and
            // the await still wakes us.
            let changed = self.shared.changed.notified();
            if let Some(spans) = self.check(&mut pred) {
                return Ok(spans);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.check(&mut pred).ok_or_else(|| self.spans());
            }
        }
    }

    fn check(&self, pred: &mut impl FnMut(&[CapturedSpan]) -> bool) -> Option<Vec<CapturedSpan>> {
        match &mut *self.lock() {
            Store::Buffer(buffer) => {
                let spans = buffer.spans.make_contiguous();
                pred(spans).then(|| spans.to_vec())
            }
            // Grouped by trace, the spans are not one slice: copy them. Tests
            // wait on small stores; a capture is asked for its traces, not waited on.
            Store::Capture(store) => {
                let spans: Vec<CapturedSpan> = store.spans().cloned().collect();
                pred(&spans).then_some(spans)
            }
        }
    }

    /// Forgets every stored span (and pin) and resets the counters.
    pub fn clear(&self) {
        match &mut *self.lock() {
            Store::Buffer(buffer) => {
                buffer.spans.clear();
                buffer.received = 0;
                buffer.dropped = 0;
            }
            Store::Capture(store) => store.clear(),
        }
    }

    /// Current counters. With capture, `dropped_spans` counts both spans
    /// evicted with their traces and spans refused on arrival.
    pub fn stats(&self) -> ReceiverStats {
        match &*self.lock() {
            Store::Buffer(buffer) => ReceiverStats {
                received_spans: buffer.received,
                stored_spans: buffer.spans.len(),
                dropped_spans: buffer.dropped,
            },
            Store::Capture(store) => {
                let stats = store.stats();
                ReceiverStats {
                    received_spans: stats.received_spans,
                    stored_spans: stats.held_spans,
                    dropped_spans: stats.evicted_spans + stats.dropped_spans,
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panicking `wait_for` predicate poisons the lock; the store is
        // still consistent (every mutation completes before user code runs).
        self.shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what an exporter sent, over either transport, and wakes the
    /// waiters.
    pub(crate) fn ingest(&self, request: ExportTraceServiceRequest, transport: Transport) {
        // Conversion happens outside the lock so exporters never wait on
        // each other's decoding.
        let spans = convert_request(request, transport);
        if spans.is_empty() {
            return;
        }
        match &mut *self.lock() {
            Store::Buffer(buffer) => {
                for span in spans {
                    buffer.received += 1;
                    if buffer.max_spans == 0 {
                        buffer.dropped += 1;
                        continue;
                    }
                    if buffer.spans.len() >= buffer.max_spans {
                        buffer.spans.pop_front();
                        buffer.dropped += 1;
                    }
                    buffer.spans.push_back(span);
                }
            }
            Store::Capture(store) => {
                for span in spans {
                    store.insert(span);
                }
            }
        }
        self.shared.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

    use super::*;
    use crate::samples::{TRACE_HEX, named_span, sample_request, start};

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
                dropped_spans: 1
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
        let names: Vec<_> = traces[TRACE_HEX].iter().map(|s| s.name.as_str()).collect();
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
}
