//! Estimated memory a span or a log record holds, for the capture's byte
//! budgets: the struct plus the heap its strings, maps and lists own. Map
//! nodes are counted at a flat overhead per entry; the aim is a bound that
//! tracks real use within a small factor, cheaply, not allocator-exact
//! accounting.

use std::collections::BTreeMap;
use std::mem::size_of;

use crate::log::CapturedLog;
use crate::span::{AttrValue, CapturedEvent, CapturedSpan};

/// Estimated bytes a span holds.
pub(crate) fn span(span: &CapturedSpan) -> usize {
    size_of::<CapturedSpan>()
        + span.service_name.len()
        + span.scope_name.len()
        + span.trace_id.len()
        + span.span_id.len()
        + span.parent_span_id.as_ref().map_or(0, String::len)
        + span.name.len()
        + span.status.message.len()
        + attributes(&span.resource)
        + attributes(&span.attributes)
        + span.events.iter().map(event).sum::<usize>()
        + span
            .links
            .iter()
            .map(|(t, s)| size_of::<(String, String)>() + t.len() + s.len())
            .sum::<usize>()
}

/// Estimated bytes a log record holds.
pub(crate) fn log(log: &CapturedLog) -> usize {
    size_of::<CapturedLog>()
        + log.service_name.len()
        + log.scope_name.len()
        + log.trace_id.as_ref().map_or(0, String::len)
        + log.span_id.as_ref().map_or(0, String::len)
        + log.severity_text.len()
        + log.event_name.len()
        + value_heap(&log.body)
        + attributes(&log.resource)
        + attributes(&log.attributes)
}

/// Per-entry overhead of a `BTreeMap` node slot, roughly.
const MAP_ENTRY_OVERHEAD: usize = 16;

fn attributes(map: &BTreeMap<String, AttrValue>) -> usize {
    map.iter()
        .map(|(k, v)| {
            MAP_ENTRY_OVERHEAD
                + size_of::<String>()
                + size_of::<AttrValue>()
                + k.len()
                + value_heap(v)
        })
        .sum()
}

fn value_heap(value: &AttrValue) -> usize {
    match value {
        AttrValue::String(s) => s.len(),
        AttrValue::Bytes(b) => b.len(),
        AttrValue::Array(items) => items
            .iter()
            .map(|v| size_of::<AttrValue>() + value_heap(v))
            .sum(),
        AttrValue::KvList(map) => attributes(map),
        AttrValue::Bool(_) | AttrValue::Int(_) | AttrValue::Double(_) | AttrValue::Empty => 0,
    }
}

fn event(event: &CapturedEvent) -> usize {
    size_of::<CapturedEvent>() + event.name.len() + attributes(&event.attributes)
}
