//! Sample OTLP export requests, and the checks that a receiver kept all
//! they carry, for the unit tests of both transports and of the store.

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use crate::log::{CapturedLog, Severity};
use crate::receiver::Receiver;
use crate::server::RunningReceiver;
use crate::span::{AttrValue, CapturedSpan, SpanKind, SpanStatus, StatusCode, Transport};

const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
pub(crate) const TRACE_HEX: &str = "5b8efff798038103d269b633813fc60c";
const ROOT_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73];
pub(crate) const ROOT_HEX: &str = "eee19b7ec3c1b173";
const CHILD_ID: [u8; 8] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
pub(crate) const CHILD_HEX: &str = "0011223344556677";

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
pub(crate) fn sample_request() -> ExportTraceServiceRequest {
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

/// Two `payments` log records: an ERROR made in the sample trace's CLIENT
/// span, with the event's fields, and an INFO made outside any trace
/// (all-zero ids, as some exporters send).
pub(crate) fn sample_logs_request() -> ExportLogsServiceRequest {
    let error = LogRecord {
        time_unix_nano: 3_500,
        observed_time_unix_nano: 3_600,
        severity_number: SeverityNumber::Error as i32,
        severity_text: "ERROR".to_owned(),
        body: Some(AnyValue {
            value: Some(string("payment provider failed")),
        }),
        attributes: vec![
            kv("error", string("connection refused")),
            kv("destination", string("provider")),
            kv("attempt", any_value::Value::IntValue(3)),
        ],
        flags: 1,
        trace_id: TRACE_ID.to_vec(),
        span_id: CHILD_ID.to_vec(),
        ..Default::default()
    };
    let outside = LogRecord {
        time_unix_nano: 500,
        severity_number: SeverityNumber::Info as i32,
        severity_text: "INFO".to_owned(),
        body: Some(AnyValue {
            value: Some(string("listening")),
        }),
        trace_id: vec![0; 16],
        span_id: vec![0; 8],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", string("payments")),
                    kv("service.version", string("0.1.0")),
                    kv("service.instance.id", string("payments-7")),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "payments".to_owned(),
                    ..Default::default()
                }),
                log_records: vec![error, outside],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One log record of `trace` (a sample-trace-like id made of that byte),
/// with `body`.
pub(crate) fn log_in_trace(trace: u8, body: &str) -> ExportLogsServiceRequest {
    let mut request = sample_logs_request();
    let records = &mut request.resource_logs[0].scope_logs[0].log_records;
    records.truncate(1);
    records[0].trace_id = vec![trace; 16];
    records[0].body = Some(AnyValue {
        value: Some(string(body)),
    });
    request
}

/// Asserts everything `sample_logs_request` carries survived the trip.
pub(crate) fn assert_sample_logs_captured(logs: &[CapturedLog], transport: Transport) {
    assert_eq!(logs.len(), 2, "{logs:#?}");
    let (error, outside) = (&logs[0], &logs[1]);

    assert_eq!(error.service_name, "payments");
    assert_eq!(
        error
            .resource
            .get("service.instance.id")
            .and_then(AttrValue::as_str),
        Some("payments-7")
    );
    assert_eq!(error.scope_name, "payments");
    assert_eq!(error.trace_id.as_deref(), Some(TRACE_HEX));
    assert_eq!(error.span_id.as_deref(), Some(CHILD_HEX));
    assert_eq!(error.flags, 1);
    assert_eq!(error.severity, Severity::Error);
    assert_eq!(
        (error.severity_number, error.severity_text.as_str()),
        (17, "ERROR")
    );
    assert_eq!(error.body_text(), "payment provider failed");
    assert_eq!(error.attr_str("error"), Some("connection refused"));
    assert_eq!(error.attr_str("destination"), Some("provider"));
    assert_eq!(error.attr_i64("attempt"), Some(3));
    assert_eq!(
        (error.time_unix_nano, error.observed_time_unix_nano),
        (3_500, 3_600)
    );
    assert_eq!(error.transport, transport);

    assert_eq!(outside.trace_id, None, "all-zero ids are no trace");
    assert_eq!(outside.span_id, None);
    assert_eq!(outside.severity, Severity::Info);
    assert_eq!(outside.body_text(), "listening");
    assert_eq!(outside.transport, transport);
}

pub(crate) fn named_span(name: &str) -> ExportTraceServiceRequest {
    let mut request = sample_request();
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans.truncate(1);
    spans[0].name = name.to_owned();
    request
}

/// Asserts everything `sample_request` carries survived the trip.
pub(crate) fn assert_sample_captured(spans: &[CapturedSpan], transport: Transport) {
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

pub(crate) async fn start(receiver: Receiver) -> RunningReceiver {
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    receiver
        .start(any_port, any_port)
        .await
        .expect("receiver starts")
}
