//! The span model: a span as the receiver decoded it from OTLP, with ids
//! hex-encoded and attributes in sorted maps. The transports produce it,
//! the stores hold it, callers read it; it needs none of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// A span as received, with ids hex-encoded and attributes in sorted maps so
/// tests can compare and print them directly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedSpan {
    /// The resource's `service.name`, or empty if the exporter sent none.
    pub service_name: String,
    /// All resource attributes, `service.name` included.
    pub resource: BTreeMap<String, AttrValue>,
    /// Name of the instrumentation scope (the tracer) that produced the span.
    pub scope_name: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits; `None` for a root span (absent or all-zero id).
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub attributes: BTreeMap<String, AttrValue>,
    pub status: SpanStatus,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub events: Vec<CapturedEvent>,
    /// Linked spans as `(trace_id, span_id)`, hex like the span's own ids.
    pub links: Vec<(String, String)>,
    /// How the span reached the receiver.
    pub transport: Transport,
}

impl CapturedSpan {
    /// The attribute `key`, of any type.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The attribute `key` if it is a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    /// The attribute `key` if it is an integer.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttrValue::as_i64)
    }

    /// End minus start; zero if the exporter sent an end before the start.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nano.saturating_sub(self.start_unix_nano))
    }

    /// Whether the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}

/// An OTLP `AnyValue`. `Empty` is an attribute sent without a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    KvList(BTreeMap<String, AttrValue>),
    Empty,
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// OTLP span kind; values the receiver does not know map to `Unspecified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// OTLP status code; values the receiver does not know map to `Unset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

/// A span's final status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SpanStatus {
    pub code: StatusCode,
    /// Developer-facing message; OTLP only gives it meaning for `Error`.
    pub message: String,
}

/// A time-stamped event recorded on a span (exceptions, log-like notes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// How a span reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with an OTLP/JSON body.
    HttpJson,
}
