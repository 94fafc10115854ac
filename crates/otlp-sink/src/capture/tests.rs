use super::*;
use crate::log::Severity;
use crate::span::{AttrValue, SpanKind, SpanStatus, Transport};

fn span(trace: u8, name: &str) -> CapturedSpan {
    CapturedSpan {
        service_name: "courses".into(),
        resource: BTreeMap::from([("service.name".into(), AttrValue::String("courses".into()))]),
        scope_name: "mesh".into(),
        trace_id: format!("{trace:032x}"),
        span_id: format!("{:016x}", (u64::from(trace) << 8) | name.len() as u64),
        parent_span_id: None,
        name: name.into(),
        kind: SpanKind::Server,
        attributes: BTreeMap::new(),
        status: SpanStatus::default(),
        start_unix_nano: 0,
        end_unix_nano: 1,
        events: Vec::new(),
        links: Vec::new(),
        transport: Transport::Grpc,
    }
}

/// A log record in span `span(trace, name)` of `trace`, or outside any
/// trace when `trace` is `None`.
fn log(trace: Option<u8>, body: &str) -> CapturedLog {
    CapturedLog {
        service_name: "courses".into(),
        resource: BTreeMap::from([("service.name".into(), AttrValue::String("courses".into()))]),
        scope_name: "courses".into(),
        trace_id: trace.map(id),
        span_id: trace.map(|t| format!("{:016x}", u64::from(t) << 8)),
        flags: 1,
        severity: Severity::Error,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: AttrValue::String(body.into()),
        attributes: BTreeMap::new(),
        event_name: String::new(),
        time_unix_nano: 0,
        observed_time_unix_nano: 0,
        transport: Transport::Grpc,
    }
}

fn id(trace: u8) -> String {
    format!("{trace:032x}")
}

fn limits(recent_spans: usize) -> CaptureLimits {
    CaptureLimits {
        recent_spans,
        recent_logs: recent_spans,
        recent_bytes: usize::MAX,
        max_pinned_traces: 10,
        pinned_bytes: usize::MAX,
        max_spans_per_trace: 100,
        max_logs_per_trace: 100,
    }
}

fn bodies(store: &TraceStore, trace: u8) -> Vec<String> {
    store
        .trace_logs(&id(trace))
        .iter()
        .map(|l| l.body_text().into_owned())
        .collect()
}

fn names(store: &TraceStore, trace: u8) -> Vec<String> {
    store
        .trace(&id(trace))
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn a_pin_keeps_spans_that_arrived_before_it_and_after_it() {
    let mut store = TraceStore::new(limits(4));
    store.insert(span(1, "before"));
    assert!(
        store.keep(&id(1).to_ascii_uppercase()),
        "ids in either case"
    );
    store.insert(span(1, "after"));
    // Flood the window well past its budget with other traces.
    for t in 2..50 {
        store.insert(span(t, "noise"));
    }
    assert_eq!(names(&store, 1), ["before", "after"]);
    assert!(store.is_pinned(&id(1)));
}

#[test]
fn a_pin_before_any_span_keeps_the_late_ones() {
    let mut store = TraceStore::new(limits(2));
    assert!(store.keep(&id(7)));
    assert!(store.traces([id(7)]).is_empty(), "nothing held yet");
    for t in 10..20 {
        store.insert(span(t, "noise"));
    }
    store.insert(span(7, "late"));
    for t in 20..30 {
        store.insert(span(t, "noise"));
    }
    let traces = store.traces([id(7), id(99)]);
    assert_eq!(
        traces.keys().collect::<Vec<_>>(),
        [&id(7)],
        "unknown ids are left out"
    );
    assert_eq!(traces[&id(7)].spans[0].name, "late");
}

#[test]
fn eviction_takes_whole_oldest_traces_and_keeps_pinned() {
    let mut store = TraceStore::new(limits(4));
    store.insert(span(1, "a"));
    store.insert(span(2, "a"));
    store.insert(span(2, "b"));
    store.insert(span(3, "a"));
    store.insert(span(1, "b"));
    // 5 spans > 4: trace 2, quiet longest, goes with both of its spans;
    // trace 1 began first but has just received one.
    assert!(store.trace(&id(2)).is_empty());
    assert_eq!(names(&store, 1), ["a", "b"]);
    assert_eq!(store.stats().evicted_traces, 1);
    assert_eq!(store.stats().evicted_spans, 2);

    assert!(store.keep(&id(1)));
    store.insert(span(4, "a"));
    store.insert(span(5, "a"));
    store.insert(span(6, "a"));
    store.insert(span(7, "a"));
    assert!(store.trace(&id(3)).is_empty(), "the oldest unpinned went");
    assert_eq!(names(&store, 1), ["a", "b"], "pinned stays");
    let stats = store.stats();
    assert_eq!((stats.held_spans, stats.pinned_spans), (6, 2));
}

#[test]
fn a_released_trace_is_first_to_go() {
    let mut store = TraceStore::new(limits(3));
    store.insert(span(1, "a"));
    assert!(store.keep(&id(1)));
    store.insert(span(2, "a"));
    store.insert(span(3, "a"));
    store.insert(span(4, "a"));
    store.release(&id(1));
    // Back in the window with its old age: over budget, so it goes first.
    assert!(store.trace(&id(1)).is_empty());
    assert_eq!(store.stats().held_spans, 3);
    assert!(!store.is_pinned(&id(1)));

    // Releasing a pin that never saw a span leaves nothing behind.
    assert!(store.keep(&id(9)));
    store.release(&id(9));
    assert_eq!(store.stats().pinned_traces, 0);
    store.release("not a trace id");
}

#[test]
fn pins_are_bounded() {
    let mut store = TraceStore::new(CaptureLimits {
        max_pinned_traces: 2,
        ..limits(100)
    });
    assert!(store.keep(&id(1)));
    assert!(store.keep(&id(2)));
    assert!(store.keep(&id(2)), "pinning twice is not a second pin");
    store.insert(span(3, "a"));
    assert!(!store.keep(&id(3)));
    assert!(!store.keep(&id(4)));
    assert_eq!(store.stats().refused_pins, 2);
    store.release(&id(1));
    assert!(store.keep(&id(3)), "a release frees a slot");
}

#[test]
fn traces_are_capped_per_trace_and_pinned_bytes_are_bounded() {
    let one = size::span(&span(1, "a"));
    let mut store = TraceStore::new(CaptureLimits {
        max_spans_per_trace: 2,
        pinned_bytes: 3 * one,
        ..limits(100)
    });
    for name in ["a", "b", "c"] {
        store.insert(span(1, name));
    }
    assert_eq!(names(&store, 1), ["a", "b"]);
    assert_eq!(store.stats().dropped_spans, 1);

    assert!(store.keep(&id(1)));
    assert!(store.keep(&id(2)));
    store.insert(span(2, "a"));
    store.insert(span(2, "b"));
    assert_eq!(names(&store, 2), ["a"], "the pinned budget is full");
    assert_eq!(store.stats().dropped_spans, 2);
}

#[test]
fn memory_stays_bounded_under_a_flood() {
    let limits = CaptureLimits {
        recent_spans: 1_000,
        recent_logs: 500,
        recent_bytes: 200 * 1024,
        max_pinned_traces: 20,
        pinned_bytes: 100 * 1024,
        max_spans_per_trace: 50,
        max_logs_per_trace: 20,
    };
    let mut store = TraceStore::new(limits);
    let mut big = span(0, "big");
    big.attributes
        .insert("payload".into(), AttrValue::String("x".repeat(2_000)));
    for i in 0..100_000u32 {
        let trace = (i % 251) as u8;
        let mut s = if i % 7 == 0 {
            big.clone()
        } else {
            span(trace, "s")
        };
        s.trace_id = format!("{:032x}", i / 3);
        if i % 5_000 == 0 {
            store.keep(&s.trace_id);
        }
        // Log records in the same traces (a few large), and some outside any.
        let mut l = log(Some(trace), "l");
        l.trace_id = Some(s.trace_id.clone());
        if i % 11 == 0 {
            l.body = AttrValue::String("y".repeat(1_500));
        }
        store.insert_log(l);
        if i % 13 == 0 {
            store.insert_log(log(None, "outside"));
        }
        store.insert(s);
        let stats = store.stats();
        let recent_bytes = stats.held_bytes - pinned_bytes(&store);
        assert!(stats.held_spans - stats.pinned_spans <= limits.recent_spans);
        assert!(stats.held_logs - stats.pinned_logs <= limits.recent_logs);
        assert!(recent_bytes <= limits.recent_bytes);
        assert!(pinned_bytes(&store) <= limits.pinned_bytes);
        assert!(stats.pinned_traces <= limits.max_pinned_traces);
    }
    let stats = store.stats();
    assert_eq!(stats.received_spans, 100_000);
    assert_eq!(stats.pinned_traces, 20);
    assert!(stats.refused_pins == 0, "20 pins fit exactly");
    assert_eq!(
        stats.received_spans,
        stats.held_spans as u64 + stats.evicted_spans + stats.dropped_spans,
        "every span is held, evicted or dropped"
    );
    assert_eq!(stats.received_logs, 100_000 + 100_000 / 13 + 1);
    assert_eq!(stats.untraced_logs, 100_000 / 13 + 1);
    assert!(stats.pinned_logs > 0 && stats.evicted_logs > 0);
    assert_eq!(
        stats.received_logs,
        stats.held_logs as u64 + stats.evicted_logs + stats.dropped_logs + stats.untraced_logs,
        "every log record is held, evicted, dropped or untraced"
    );
}

fn pinned_bytes(store: &TraceStore) -> usize {
    store.pinned.bytes
}

#[test]
fn size_counts_attributes() {
    let plain = span(1, "a");
    let mut heavy = plain.clone();
    heavy
        .attributes
        .insert("http.route".into(), AttrValue::String("/x".repeat(500)));
    assert!(size::span(&heavy) >= size::span(&plain) + 1_000);

    let plain = log(Some(1), "a");
    let mut heavy = plain.clone();
    heavy.body = AttrValue::String("x".repeat(1_000));
    heavy
        .attributes
        .insert("error".into(), AttrValue::String("e".repeat(1_000)));
    assert!(size::log(&heavy) >= size::log(&plain) + 2_000);
}

#[test]
fn a_kept_trace_keeps_its_log_records_and_others_go_with_their_traces() {
    let mut store = TraceStore::new(limits(4));
    store.insert(span(1, "a"));
    store.insert_log(log(Some(1), "before the pin"));
    assert!(store.keep(&id(1)));
    store.insert_log(log(Some(1), "after the pin"));
    store.insert_log(log(Some(2), "not kept"));
    store.insert(span(2, "a"));
    store.insert_log(log(None, "outside any trace"));
    for t in 10..20 {
        store.insert(span(t, "noise"));
    }
    assert_eq!(bodies(&store, 1), ["before the pin", "after the pin"]);
    assert!(
        store.trace_logs(&id(2)).is_empty(),
        "evicted with its trace"
    );
    assert!(
        store.logs().all(|l| l.trace_id.is_some()),
        "a record outside any trace is never held"
    );

    let traces = store.traces([id(1), id(2)]);
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[&id(1)].spans.len(), 1);
    assert_eq!(traces[&id(1)].logs.len(), 2);

    let stats = store.stats();
    assert_eq!(stats.received_logs, 4);
    assert_eq!((stats.held_logs, stats.pinned_logs), (2, 2));
    assert_eq!(stats.evicted_logs, 1);
    assert_eq!(stats.untraced_logs, 1);
    assert_eq!(stats.dropped_logs, 0);
}

#[test]
fn a_pin_before_any_record_keeps_late_log_records_and_a_trace_of_logs_alone() {
    let mut store = TraceStore::new(limits(2));
    assert!(store.keep(&id(7)));
    store.insert_log(log(Some(7), "late"));
    for t in 10..20 {
        store.insert_log(log(Some(t), "noise"));
    }
    assert_eq!(bodies(&store, 7), ["late"]);
    let traces = store.traces([id(7)]);
    assert!(traces[&id(7)].spans.is_empty(), "only a log record arrived");
    assert_eq!(traces[&id(7)].logs.len(), 1);
    // Log records count against the recent window like spans.
    let stats = store.stats();
    assert_eq!(stats.held_logs - stats.pinned_logs, 2);
    assert_eq!(stats.evicted_logs, 8);

    store.release(&id(7));
    store.insert_log(log(Some(30), "newer"));
    assert!(
        store.trace_logs(&id(7)).is_empty(),
        "released, then first to go"
    );
}

#[test]
fn log_records_are_capped_per_trace_and_by_the_pinned_bytes() {
    let one = size::log(&log(Some(1), "a"));
    let mut store = TraceStore::new(CaptureLimits {
        max_logs_per_trace: 2,
        pinned_bytes: 3 * one,
        ..limits(100)
    });
    for body in ["a", "b", "c"] {
        store.insert_log(log(Some(1), body));
    }
    assert_eq!(bodies(&store, 1), ["a", "b"], "a runaway trace is capped");
    assert_eq!(store.stats().dropped_logs, 1);
    store.insert(span(1, "a"));
    assert_eq!(names(&store, 1), ["a"], "its spans have their own cap");

    let mut store = TraceStore::new(CaptureLimits {
        pinned_bytes: 2 * one,
        ..limits(100)
    });
    assert!(store.keep(&id(2)));
    for body in ["a", "b", "c"] {
        store.insert_log(log(Some(2), body));
    }
    assert_eq!(bodies(&store, 2), ["a", "b"], "the pinned budget is full");
    assert_eq!(store.stats().dropped_logs, 1);

    let mut store = TraceStore::new(CaptureLimits {
        recent_bytes: one - 1,
        ..limits(100)
    });
    store.insert_log(log(Some(3), "a"));
    assert_eq!(
        store.stats().dropped_logs,
        1,
        "larger than the whole window: refused, not emptying it"
    );
}
