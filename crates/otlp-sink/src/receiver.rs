//! In-memory OTLP trace receiver.
//!
//! loadgen and the end-to-end tests use it to capture the spans the services
//! export, so a test can assert on real traces (parentage, kinds, attributes,
//! resource) instead of trusting that exporting "probably worked"; loadgen will
//! also use it to capture traces for its reports.
//!
//! It speaks both OTLP transports the services can be configured with:
//!
//! * gRPC (`opentelemetry.proto.collector.trace.v1.TraceService/Export`),
//!   optionally gzip-compressed;
//! * HTTP `POST /v1/traces` with `application/x-protobuf` or `application/json`
//!   (OTLP/JSON: hex trace and span ids, 64-bit integers as strings), optionally
//!   with `Content-Encoding: gzip`.
//!
//! Spans are kept in a bounded in-memory buffer ([`DEFAULT_MAX_SPANS`] unless
//! configured); when it is full the oldest spans are dropped and counted in
//! [`ReceiverStats::dropped_spans`].
//!
//! For reports, [`Receiver::with_capture`] keeps spans grouped by trace in a
//! [`TraceStore`] instead: a recent window evicting whole traces, and the
//! traces loadgen pins with [`Receiver::keep`] (the slowest and the failed
//! journeys) held until the end of the run. See [`crate::capture`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use otlp_sink::Receiver;
//!
//! let running = Receiver::new()
//!     .start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap())
//!     .await?;
//! // Point a service at running.grpc_endpoint() or running.http_endpoint() ...
//! let spans = running
//!     .wait_for(Duration::from_secs(10), |spans| spans.iter().any(|s| s.name == "GET /healthz"))
//!     .await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{self, Read as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode as HttpStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};
use prost::Message as _;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinError, JoinHandle};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;

use crate::capture::{CaptureLimits, CaptureStats, TraceStore};
use crate::span::{
    AttrValue, CapturedEvent, CapturedSpan, SpanKind, SpanStatus, StatusCode, Transport,
};

/// How many spans a [`Receiver::new`] keeps before dropping the oldest.
pub const DEFAULT_MAX_SPANS: usize = 100_000;

/// The OTLP/HTTP path for traces; `http_endpoint()` + this is the full URL.
pub const HTTP_TRACES_PATH: &str = "/v1/traces";

/// Largest request accepted on either transport, after decompression.
///
/// Exporters batch up to a few thousand spans; this is far above that, yet
/// still stops a gzip bomb or a runaway client from exhausting memory.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// How long [`RunningReceiver::shutdown`] lets open connections drain before
/// it stops waiting for them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
const CONTENT_TYPE_JSON: &str = "application/json";

/// The receiver's span store. Cheap to clone: clones share the same spans.
///
/// It also implements the OTLP gRPC [`TraceService`], so it can be mounted
/// into another tonic server with `TraceServiceServer::new(receiver.clone())`.
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

/// Why a running receiver's server ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("OTLP gRPC server failed: {0}")]
    Grpc(#[source] tonic::transport::Error),
    #[error("OTLP HTTP server failed: {0}")]
    Http(#[source] io::Error),
    #[error("OTLP {server} server task panicked: {source}")]
    Panicked {
        server: &'static str,
        #[source]
        source: JoinError,
    },
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

    /// A receiver for trace capture: spans are grouped by trace in a
    /// [`TraceStore`] bounded by `limits`, and [`keep`](Self::keep) pins the
    /// traces to hold until the end. [`spans`](Self::spans),
    /// [`trace`](Self::trace), [`wait_for`](Self::wait_for) and
    /// [`stats`](Self::stats) work as with the buffer, over what is held.
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

    /// Binds the gRPC and HTTP listeners (port 0 picks a free port; the
    /// chosen ones are in the returned handle) and serves both in the
    /// background until the handle is shut down or dropped.
    pub async fn start(self, grpc: SocketAddr, http: SocketAddr) -> io::Result<RunningReceiver> {
        let grpc = TcpListener::bind(grpc).await?;
        let http = TcpListener::bind(http).await?;
        self.start_with_listeners(grpc, http)
    }

    /// Like [`Receiver::start`], on listeners the caller already bound.
    /// Must be called inside a Tokio runtime.
    pub fn start_with_listeners(
        self,
        grpc: TcpListener,
        http: TcpListener,
    ) -> io::Result<RunningReceiver> {
        let grpc_addr = grpc.local_addr()?;
        let http_addr = http.local_addr()?;

        let (grpc_stop, grpc_stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        let grpc_task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .serve_with_incoming_shutdown(service, TcpIncoming::from(grpc), async {
                    // A dropped sender (the handle was dropped) stops the server too.
                    let _ = grpc_stopped.await;
                })
                .await
        });

        let (http_stop, http_stopped) = oneshot::channel::<()>();
        let router = self.http_router();
        let http_task = tokio::spawn(async move {
            axum::serve(http, router)
                .with_graceful_shutdown(async {
                    let _ = http_stopped.await;
                })
                .await
        });

        Ok(RunningReceiver {
            grpc_addr,
            http_addr,
            receiver: self,
            grpc_stop,
            http_stop,
            grpc_task,
            http_task,
        })
    }

    fn http_router(&self) -> Router {
        Router::new()
            .route(HTTP_TRACES_PATH, post(export_http))
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(self.clone())
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

    /// Pins a trace so that its spans, held now or arriving later, are kept
    /// until [`release`](Self::release): see [`TraceStore::keep`]. Returns
    /// whether it is pinned; always `false` without capture.
    pub fn keep(&self, trace_id: &str) -> bool {
        match &mut *self.lock() {
            Store::Buffer(_) => false,
            Store::Capture(store) => store.keep(trace_id),
        }
    }

    /// Unpins a trace (see [`TraceStore::release`]); a no-op without capture.
    pub fn release(&self, trace_id: &str) {
        if let Store::Capture(store) = &mut *self.lock() {
            store.release(trace_id);
        }
    }

    /// The held spans of each of `trace_ids`, by start time, for the report
    /// (see [`TraceStore::traces`]). Without capture, whatever the buffer
    /// still holds of them.
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
            // wait on small stores; loadgen itself does not wait in capture.
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

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.ingest(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A receiver serving in the background. Derefs to its [`Receiver`].
///
/// Dropping it stops both servers (without waiting); [`shutdown`] also waits
/// for them.
///
/// [`shutdown`]: RunningReceiver::shutdown
#[derive(Debug)]
pub struct RunningReceiver {
    /// Where the gRPC server listens (the real port when 0 was asked for).
    pub grpc_addr: SocketAddr,
    /// Where the HTTP server listens (the real port when 0 was asked for).
    pub http_addr: SocketAddr,
    receiver: Receiver,
    grpc_stop: oneshot::Sender<()>,
    http_stop: oneshot::Sender<()>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    http_task: JoinHandle<io::Result<()>>,
}

impl Deref for RunningReceiver {
    type Target = Receiver;

    fn deref(&self) -> &Receiver {
        &self.receiver
    }
}

impl RunningReceiver {
    /// The shared span store (also reachable through `Deref`).
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// `http://host:port` for an OTLP gRPC exporter
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT` with protocol `grpc`).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", connectable(self.grpc_addr))
    }

    /// `http://host:port` for an OTLP/HTTP exporter
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`; exporters append [`HTTP_TRACES_PATH`]).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", connectable(self.http_addr))
    }

    /// Stops accepting connections, lets open ones drain for a few seconds,
    /// and reports whether either server had failed. The captured spans stay
    /// readable through any clone of the [`Receiver`].
    pub async fn shutdown(self) -> Result<(), ReceiverError> {
        let Self {
            receiver: _,
            grpc_stop,
            http_stop,
            mut grpc_task,
            mut http_task,
            ..
        } = self;
        // Err only means the server already ended; its result says why.
        let _ = grpc_stop.send(());
        let _ = http_stop.send(());

        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        // A client that keeps its connection open must not hang the caller:
        // after the grace period the servers are cut off.
        let grpc = match tokio::time::timeout_at(deadline, &mut grpc_task).await {
            Ok(joined) => Some(joined),
            Err(_) => {
                grpc_task.abort();
                None
            }
        };
        let http = match tokio::time::timeout_at(deadline, &mut http_task).await {
            Ok(joined) => Some(joined),
            Err(_) => {
                http_task.abort();
                None
            }
        };

        match grpc {
            Some(Ok(Err(e))) => return Err(ReceiverError::Grpc(e)),
            Some(Err(e)) => {
                return Err(ReceiverError::Panicked {
                    server: "gRPC",
                    source: e,
                });
            }
            _ => {}
        }
        match http {
            Some(Ok(Err(e))) => Err(ReceiverError::Http(e)),
            Some(Err(e)) => Err(ReceiverError::Panicked {
                server: "HTTP",
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// An address a client can dial: a wildcard bind becomes loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

// ---------------------------------------------------------------------------
// OTLP/HTTP

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Result<Self, HttpError> {
        let raw = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let media_type = raw
            .as_deref()
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match media_type.as_deref() {
            // application/protobuf is the IANA-registered name some
            // exporters have started to send.
            Some(CONTENT_TYPE_PROTOBUF | "application/protobuf") => Ok(Self::Protobuf),
            Some(CONTENT_TYPE_JSON) => Ok(Self::Json),
            _ => Err(HttpError::UnsupportedContentType(raw.unwrap_or_default())),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => CONTENT_TYPE_PROTOBUF,
            Self::Json => CONTENT_TYPE_JSON,
        }
    }

    fn transport(self) -> Transport {
        match self {
            Self::Protobuf => Transport::HttpProtobuf,
            Self::Json => Transport::HttpJson,
        }
    }

    fn decode(self, body: &[u8]) -> Result<ExportTraceServiceRequest, HttpError> {
        Ok(match self {
            Self::Protobuf => ExportTraceServiceRequest::decode(body)?,
            Self::Json => serde_json::from_slice(body)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(
        "unsupported Content-Type {0:?}: OTLP/HTTP traces must be application/x-protobuf or application/json"
    )]
    UnsupportedContentType(String),
    #[error("unsupported Content-Encoding {0:?}: only gzip and identity are accepted")]
    UnsupportedContentEncoding(String),
    #[error("body is not valid gzip: {0}")]
    Gzip(#[source] io::Error),
    #[error("decompressed body exceeds {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("body is not a protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("body is not an OTLP/JSON ExportTraceServiceRequest: {0}")]
    Json(#[from] serde_json::Error),
}

impl HttpError {
    fn status(&self) -> HttpStatus {
        match self {
            Self::UnsupportedContentType(_) | Self::UnsupportedContentEncoding(_) => {
                HttpStatus::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooLarge => HttpStatus::PAYLOAD_TOO_LARGE,
            Self::Gzip(_) | Self::Protobuf(_) | Self::Json(_) => HttpStatus::BAD_REQUEST,
        }
    }
}

/// `google.rpc.Status`, which OTLP/HTTP requires as the body of error
/// responses (exporters log its message). `details` is left out: it is
/// optional and we have nothing to put there.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC's INVALID_ARGUMENT: every error here is the client's request.
const RPC_INVALID_ARGUMENT: i32 = 3;

async fn export_http(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = match Encoding::from_headers(&headers) {
        Ok(encoding) => encoding,
        // Without a known content type there is no agreed error encoding.
        Err(error) => return (error.status(), error.to_string()).into_response(),
    };
    let request = decompress(&headers, body).and_then(|body| encoding.decode(&body));
    match request {
        Ok(request) => {
            receiver.ingest(request, encoding.transport());
            let body = match encoding {
                // An empty ExportTraceServiceResponse: full success.
                Encoding::Protobuf => ExportTraceServiceResponse {
                    partial_success: None,
                }
                .encode_to_vec(),
                Encoding::Json => b"{}".to_vec(),
            };
            with_content_type(HttpStatus::OK, encoding, body)
        }
        Err(error) => error_response(encoding, &error),
    }
}

fn error_response(encoding: Encoding, error: &HttpError) -> Response {
    let status = RpcStatus {
        code: RPC_INVALID_ARGUMENT,
        message: error.to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": status.code, "message": status.message })
            .to_string()
            .into_bytes(),
    };
    with_content_type(error.status(), encoding, body)
}

fn with_content_type(status: HttpStatus, encoding: Encoding, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(encoding.content_type()),
        )],
        body,
    )
        .into_response()
}

fn decompress(headers: &HeaderMap, body: Bytes) -> Result<Bytes, HttpError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let coding = String::from_utf8_lossy(value.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            // One byte past the limit tells "exactly at" from "over".
            let limit = u64::try_from(MAX_REQUEST_BYTES).map_or(u64::MAX, |l| l.saturating_add(1));
            flate2::read::GzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out)
                .map_err(HttpError::Gzip)?;
            if out.len() > MAX_REQUEST_BYTES {
                return Err(HttpError::TooLarge);
            }
            Ok(Bytes::from(out))
        }
        _ => Err(HttpError::UnsupportedContentEncoding(coding)),
    }
}

// ---------------------------------------------------------------------------
// Conversion from the generated OTLP types

fn convert_request(request: ExportTraceServiceRequest, transport: Transport) -> Vec<CapturedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| convert_attributes(r.attributes))
            .unwrap_or_default();
        let service_name = resource
            .get("service.name")
            .and_then(AttrValue::as_str)
            .unwrap_or_default()
            .to_owned();
        for scope_spans in resource_spans.scope_spans {
            let scope_name = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                out.push(CapturedSpan {
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: optional_id(&span.parent_span_id),
                    name: span.name,
                    kind: convert_kind(span.kind),
                    attributes: convert_attributes(span.attributes),
                    status: span
                        .status
                        .map(|s| SpanStatus {
                            code: convert_status_code(s.code),
                            message: s.message,
                        })
                        .unwrap_or_default(),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    events: span
                        .events
                        .into_iter()
                        .map(|e| CapturedEvent {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano,
                            attributes: convert_attributes(e.attributes),
                        })
                        .collect(),
                    links: span
                        .links
                        .into_iter()
                        .map(|l| (hex::encode(l.trace_id), hex::encode(l.span_id)))
                        .collect(),
                    transport,
                });
            }
        }
    }
    out
}

/// OTLP marks "no parent" with an empty id; some exporters send zeros.
fn optional_id(id: &[u8]) -> Option<String> {
    (!id.iter().all(|b| *b == 0)).then(|| hex::encode(id))
}

fn convert_kind(kind: i32) -> SpanKind {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => SpanKind::Internal,
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        Ok(span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
    }
}

fn convert_status_code(code: i32) -> StatusCode {
    match status::StatusCode::try_from(code) {
        Ok(status::StatusCode::Ok) => StatusCode::Ok,
        Ok(status::StatusCode::Error) => StatusCode::Error,
        Ok(status::StatusCode::Unset) | Err(_) => StatusCode::Unset,
    }
}

fn convert_attributes(attributes: Vec<KeyValue>) -> BTreeMap<String, AttrValue> {
    attributes
        .into_iter()
        .map(|kv| (kv.key, convert_value(kv.value)))
        .collect()
}

fn convert_value(value: Option<AnyValue>) -> AttrValue {
    match value.and_then(|v| v.value) {
        None => AttrValue::Empty,
        Some(any_value::Value::StringValue(s)) => AttrValue::String(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(any_value::Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(any_value::Value::ArrayValue(a)) => AttrValue::Array(
            a.values
                .into_iter()
                .map(|v| convert_value(Some(v)))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(kv)) => AttrValue::KvList(convert_attributes(kv.values)),
        // An index into a profiles string table; traces have no such table
        // to resolve it against.
        Some(any_value::Value::StringValueStrindex(_)) => AttrValue::Empty,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    use super::*;

    const TRACE_ID: [u8; 16] = [
        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6,
        0x0c,
    ];
    const TRACE_HEX: &str = "5b8efff798038103d269b633813fc60c";
    const ROOT_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73];
    const ROOT_HEX: &str = "eee19b7ec3c1b173";
    const CHILD_ID: [u8; 8] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
    const CHILD_HEX: &str = "0011223344556677";

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn string(s: &str) -> any_value::Value {
        any_value::Value::StringValue(s.to_owned())
    }

    /// One `gateway` trace: a root SERVER span and a CLIENT child that failed.
    fn sample_request() -> ExportTraceServiceRequest {
        let root = Span {
            trace_id: TRACE_ID.to_vec(),
            span_id: ROOT_ID.to_vec(),
            // Some exporters send an all-zero id rather than none for roots.
            parent_span_id: vec![0; 8],
            name: "GET /courses".to_owned(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 5_000,
            attributes: vec![
                kv("http.request.method", string("GET")),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
            ],
            ..Default::default()
        };
        let child = Span {
            trace_id: TRACE_ID.to_vec(),
            span_id: CHILD_ID.to_vec(),
            parent_span_id: ROOT_ID.to_vec(),
            name: "GET courses".to_owned(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: 2_000,
            end_time_unix_nano: 4_000,
            attributes: vec![
                kv("server.address", string("courses")),
                kv("retry", any_value::Value::BoolValue(true)),
                kv("ratio", any_value::Value::DoubleValue(0.5)),
                kv(
                    "tags",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(string("a")),
                        }],
                    }),
                ),
                KeyValue {
                    key: "unset".to_owned(),
                    value: None,
                    ..Default::default()
                },
            ],
            events: vec![span::Event {
                time_unix_nano: 3_000,
                name: "exception".to_owned(),
                attributes: vec![kv("exception.message", string("boom"))],
                ..Default::default()
            }],
            links: vec![span::Link {
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                ..Default::default()
            }],
            status: Some(Status {
                message: "upstream 503".to_owned(),
                code: status::StatusCode::Error as i32,
            }),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", string("gateway")),
                        kv("service.version", string("0.1.0")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "gateway".to_owned(),
                        ..Default::default()
                    }),
                    spans: vec![root, child],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn named_span(name: &str) -> ExportTraceServiceRequest {
        let mut request = sample_request();
        let spans = &mut request.resource_spans[0].scope_spans[0].spans;
        spans.truncate(1);
        spans[0].name = name.to_owned();
        request
    }

    /// Asserts everything `sample_request` carries survived the trip.
    fn assert_sample_captured(spans: &[CapturedSpan], transport: Transport) {
        assert_eq!(spans.len(), 2, "{spans:#?}");
        let root = &spans[0];
        let child = &spans[1];

        assert_eq!(root.service_name, "gateway");
        assert_eq!(
            root.resource
                .get("service.version")
                .and_then(AttrValue::as_str),
            Some("0.1.0")
        );
        assert_eq!(root.scope_name, "gateway");
        assert_eq!(root.trace_id, TRACE_HEX);
        assert_eq!(root.span_id, ROOT_HEX);
        assert_eq!(root.parent_span_id, None);
        assert!(root.is_root());
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(root.name, "GET /courses");
        assert_eq!(root.attr_str("http.request.method"), Some("GET"));
        assert_eq!(root.attr_i64("http.response.status_code"), Some(200));
        assert_eq!(root.status, SpanStatus::default());
        assert_eq!((root.start_unix_nano, root.end_unix_nano), (1_000, 5_000));
        assert_eq!(root.duration(), Duration::from_nanos(4_000));
        assert_eq!(root.transport, transport);

        assert_eq!(child.service_name, "gateway");
        assert_eq!(child.trace_id, TRACE_HEX);
        assert_eq!(child.span_id, CHILD_HEX);
        assert_eq!(child.parent_span_id.as_deref(), Some(ROOT_HEX));
        assert_eq!(child.kind, SpanKind::Client);
        assert_eq!(child.attr_str("server.address"), Some("courses"));
        assert_eq!(child.attr("retry").and_then(AttrValue::as_bool), Some(true));
        assert_eq!(child.attr("ratio").and_then(AttrValue::as_f64), Some(0.5));
        assert_eq!(
            child.attr("tags"),
            Some(&AttrValue::Array(vec![AttrValue::String("a".to_owned())]))
        );
        assert_eq!(child.attr("unset"), Some(&AttrValue::Empty));
        assert_eq!(
            child.attr_i64("server.address"),
            None,
            "a string is not an int"
        );
        assert_eq!(
            child.status,
            SpanStatus {
                code: StatusCode::Error,
                message: "upstream 503".to_owned()
            }
        );
        assert_eq!(child.events.len(), 1);
        assert_eq!(child.events[0].name, "exception");
        assert_eq!(child.events[0].time_unix_nano, 3_000);
        assert_eq!(
            child.events[0]
                .attributes
                .get("exception.message")
                .and_then(AttrValue::as_str),
            Some("boom")
        );
        assert_eq!(child.links, vec![("ab".repeat(16), "cd".repeat(8))]);
        assert_eq!(child.transport, transport);
    }

    async fn start(receiver: Receiver) -> RunningReceiver {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        receiver
            .start(any_port, any_port)
            .await
            .expect("receiver starts")
    }

    fn http_client() -> reqwest::Client {
        // A proxy from the environment must not intercept loopback traffic.
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client builds")
    }

    async fn post(
        running: &RunningReceiver,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (reqwest::StatusCode, Option<String>, Vec<u8>) {
        let mut request =
            http_client().post(format!("{}{HTTP_TRACES_PATH}", running.http_endpoint()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .expect("request is answered");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.expect("body is read").to_vec();
        (status, content_type, body)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    }

    #[tokio::test]
    async fn grpc_export_is_captured() {
        let running = start(Receiver::new()).await;
        assert_ne!(running.grpc_addr.port(), 0, "the real port is read back");

        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects");
        let response = client
            .export(sample_request())
            .await
            .expect("export succeeds");
        assert_eq!(response.into_inner().partial_success, None);

        assert_sample_captured(&running.spans(), Transport::Grpc);
        running.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn grpc_accepts_gzip() {
        let running = start(Receiver::new()).await;
        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects")
            .send_compressed(CompressionEncoding::Gzip);
        client
            .export(sample_request())
            .await
            .expect("export succeeds");
        assert_sample_captured(&running.spans(), Transport::Grpc);
    }

    #[tokio::test]
    async fn http_protobuf_export_is_captured() {
        let running = start(Receiver::new()).await;
        assert_ne!(running.http_addr.port(), 0, "the real port is read back");

        let (status, content_type, body) = post(
            &running,
            &[("content-type", CONTENT_TYPE_PROTOBUF)],
            sample_request().encode_to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let response = ExportTraceServiceResponse::decode(&body[..]).expect("protobuf response");
        assert_eq!(response.partial_success, None);

        assert_sample_captured(&running.spans(), Transport::HttpProtobuf);
        running.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn http_gzip_protobuf_export_is_captured() {
        let running = start(Receiver::new()).await;
        let (status, _, _) = post(
            &running,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "gzip"),
            ],
            gzip(&sample_request().encode_to_vec()),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_sample_captured(&running.spans(), Transport::HttpProtobuf);
    }

    /// The OTLP/JSON encoding: hex ids (upper case is allowed), enums as
    /// integers, 64-bit integers as strings.
    #[tokio::test]
    async fn http_json_export_is_captured() {
        let json = r#"{
          "resourceSpans": [{
            "resource": {"attributes": [
              {"key": "service.name", "value": {"stringValue": "courses"}}
            ]},
            "scopeSpans": [{
              "scope": {"name": "courses"},
              "spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "0011223344556677",
                "parentSpanId": "eee19b7ec3c1b173",
                "name": "SELECT courses",
                "kind": 3,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "attributes": [
                  {"key": "db.rows", "value": {"intValue": "42"}},
                  {"key": "db.system", "value": {"stringValue": "sqlite"}}
                ],
                "status": {"code": 1},
                "links": [{"traceId": "abababababababababababababababab", "spanId": "cdcdcdcdcdcdcdcd"}]
              }]
            }]
          }]
        }"#;
        let running = start(Receiver::new()).await;
        let (status, content_type, body) = post(
            &running,
            &[("content-type", "application/json; charset=utf-8")],
            json.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        assert_eq!(body, b"{}");

        let spans = running.spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(span.service_name, "courses");
        assert_eq!(span.scope_name, "courses");
        assert_eq!(span.trace_id, TRACE_HEX, "ids are normalised to lower case");
        assert_eq!(span.span_id, CHILD_HEX);
        assert_eq!(span.parent_span_id.as_deref(), Some(ROOT_HEX));
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.start_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.duration(), Duration::from_secs(1));
        assert_eq!(span.attr_i64("db.rows"), Some(42));
        assert_eq!(span.attr_str("db.system"), Some("sqlite"));
        assert_eq!(span.status.code, StatusCode::Ok);
        assert_eq!(span.links, vec![("ab".repeat(16), "cd".repeat(8))]);
        assert_eq!(span.transport, Transport::HttpJson);
    }

    #[tokio::test]
    async fn http_rejects_other_content_types_and_encodings_with_415() {
        let running = start(Receiver::new()).await;
        let body = sample_request().encode_to_vec();

        let (status, _, message) =
            post(&running, &[("content-type", "text/plain")], body.clone()).await;
        assert_eq!(status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let message = String::from_utf8_lossy(&message);
        assert!(message.contains("text/plain"), "{message}");
        assert!(message.contains("application/x-protobuf"), "{message}");

        let (status, _, _) = post(&running, &[], body.clone()).await;
        assert_eq!(
            status,
            reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no content type"
        );

        let (status, content_type, reply) = post(
            &running,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "br"),
            ],
            body,
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let reply = RpcStatus::decode(&reply[..]).expect("google.rpc.Status body");
        assert!(reply.message.contains("\"br\""), "{}", reply.message);

        assert!(running.spans().is_empty());
    }

    #[tokio::test]
    async fn http_rejects_undecodable_bodies_with_400() {
        let running = start(Receiver::new()).await;

        // Field 1, length 16, but only one byte follows.
        let truncated = vec![0x0a, 0x10, 0x01];
        let (status, content_type, reply) = post(
            &running,
            &[("content-type", CONTENT_TYPE_PROTOBUF)],
            truncated,
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let reply = RpcStatus::decode(&reply[..]).expect("google.rpc.Status body");
        assert_eq!(reply.code, RPC_INVALID_ARGUMENT);
        assert!(
            reply
                .message
                .starts_with("body is not a protobuf ExportTraceServiceRequest"),
            "{}",
            reply.message
        );

        let (status, content_type, reply) = post(
            &running,
            &[("content-type", CONTENT_TYPE_JSON)],
            br#"{"resourceSpans": 5}"#.to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        let reply: serde_json::Value = serde_json::from_slice(&reply).expect("JSON Status body");
        assert_eq!(reply["code"], RPC_INVALID_ARGUMENT);
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("body is not an OTLP/JSON ExportTraceServiceRequest"),
            "{message}"
        );

        let (status, _, reply) = post(
            &running,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "gzip"),
            ],
            b"not gzip".to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        let reply = RpcStatus::decode(&reply[..]).expect("google.rpc.Status body");
        assert!(
            reply.message.starts_with("body is not valid gzip"),
            "{}",
            reply.message
        );

        assert!(running.spans().is_empty());
    }

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

    #[tokio::test]
    async fn shutdown_closes_both_ports_and_keeps_the_spans() {
        let running = start(Receiver::new()).await;
        let receiver = running.receiver().clone();
        let (grpc_addr, http_addr) = (running.grpc_addr, running.http_addr);

        // An open gRPC connection must not hold the shutdown up.
        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects");
        client
            .export(sample_request())
            .await
            .expect("export succeeds");

        let began = tokio::time::Instant::now();
        running.shutdown().await.expect("clean shutdown");
        assert!(
            began.elapsed() < SHUTDOWN_GRACE,
            "drained without waiting out the grace"
        );

        assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err());
        assert!(tokio::net::TcpStream::connect(http_addr).await.is_err());
        assert_eq!(receiver.spans().len(), 2);
    }

    /// The exporter the services link (opentelemetry-otlp) must be
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

    #[test]
    fn wildcard_binds_give_loopback_endpoints() {
        let v4: SocketAddr = "0.0.0.0:4317".parse().expect("valid address");
        let v6: SocketAddr = "[::]:4318".parse().expect("valid address");
        assert_eq!(connectable(v4).to_string(), "127.0.0.1:4317");
        assert_eq!(connectable(v6).to_string(), "[::1]:4318");
    }
}
