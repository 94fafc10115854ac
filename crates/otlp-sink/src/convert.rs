//! From the generated OTLP types to the span and log-record models: ids
//! hex-encoded, attributes in sorted maps, enum values this receiver does
//! not know mapped to their defaults.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status};

use crate::log::{CapturedLog, Severity};
use crate::span::{
    AttrValue, CapturedEvent, CapturedSpan, SpanKind, SpanStatus, StatusCode, Transport,
};

pub(crate) fn convert_request(
    request: ExportTraceServiceRequest,
    transport: Transport,
) -> Vec<CapturedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let (resource, service_name) = convert_resource(resource_spans.resource);
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

pub(crate) fn convert_logs_request(
    request: ExportLogsServiceRequest,
    transport: Transport,
) -> Vec<CapturedLog> {
    let mut out = Vec::new();
    for resource_logs in request.resource_logs {
        let (resource, service_name) = convert_resource(resource_logs.resource);
        for scope_logs in resource_logs.scope_logs {
            let scope_name = scope_logs.scope.map(|s| s.name).unwrap_or_default();
            for record in scope_logs.log_records {
                out.push(CapturedLog {
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    trace_id: optional_id(&record.trace_id),
                    span_id: optional_id(&record.span_id),
                    flags: record.flags,
                    severity: Severity::of_record(record.severity_number, &record.severity_text),
                    severity_number: record.severity_number,
                    severity_text: record.severity_text,
                    body: convert_value(record.body),
                    attributes: convert_attributes(record.attributes),
                    event_name: record.event_name,
                    time_unix_nano: record.time_unix_nano,
                    observed_time_unix_nano: record.observed_time_unix_nano,
                    transport,
                });
            }
        }
    }
    out
}

/// A resource's attributes, and its `service.name` (empty when unset).
fn convert_resource(resource: Option<Resource>) -> (BTreeMap<String, AttrValue>, String) {
    let attributes = resource
        .map(|r| convert_attributes(r.attributes))
        .unwrap_or_default();
    let service_name = attributes
        .get("service.name")
        .and_then(AttrValue::as_str)
        .unwrap_or_default()
        .to_owned();
    (attributes, service_name)
}

/// OTLP marks "no parent" (and a log record "no trace", "no span") with
/// an empty id; some exporters send zeros.
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
        // An index into a profiles string table; traces and logs have no
        // such table to resolve it against.
        Some(any_value::Value::StringValueStrindex(_)) => AttrValue::Empty,
    }
}
