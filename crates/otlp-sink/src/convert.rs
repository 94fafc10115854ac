//! From the generated OTLP types to the span model: ids hex-encoded,
//! attributes in sorted maps, enum values this receiver does not know
//! mapped to their defaults.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};

use crate::span::{
    AttrValue, CapturedEvent, CapturedSpan, SpanKind, SpanStatus, StatusCode, Transport,
};

pub(crate) fn convert_request(
    request: ExportTraceServiceRequest,
    transport: Transport,
) -> Vec<CapturedSpan> {
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
