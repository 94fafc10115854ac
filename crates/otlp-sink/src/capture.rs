//! Trace capture for reports: keep the complete traces of the journeys that
//! matter (the slowest, the failed) within a fixed memory budget.
//!
//! A load generator only learns which traces matter as journeys finish,
//! while the services' batch exporters deliver spans seconds later — some
//! spans of a journey arrive before its verdict, some after. So every span
//! is held for a while in a *recent window*, grouped by trace; when the
//! window is over budget, whole traces leave it, the one that has been
//! quiet longest first (a trace cut in half is worse than no trace). [`TraceStore::keep`] pins a trace: the
//! spans already held move out of the window, and spans arriving later join
//! it, however late. [`TraceStore::release`] hands it back to the window
//! (a journey pushed out of the slowest set by a slower one).
//!
//! Two budgets, so that neither can starve the other:
//!
//! * the recent window: [`CaptureLimits::recent_spans`] and
//!   [`CaptureLimits::recent_bytes`]. It decides how far back a pin can
//!   reach: at 20 000 spans/s, 200 000 spans cover 10 s.
//! * pinned traces: at most [`CaptureLimits::max_pinned_traces`] of them,
//!   [`CaptureLimits::pinned_bytes`] together.
//!
//! [`CaptureLimits::max_spans_per_trace`] caps every trace, so one runaway
//! trace (a retry storm, a loop) cannot fill either budget alone.
//!
//! Sizes are estimates ([`approx_size`]): the heap the span's strings and
//! maps own plus the struct itself, not allocator overhead. Plan for
//! roughly twice the configured bytes of real memory.
//!
//! The store is not synchronised; [`Receiver::with_capture`]
//! wraps it in the receiver's lock and feeds it every span received.
//!
//! [`Receiver::with_capture`]: crate::Receiver::with_capture

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;

use serde::Serialize;

use crate::span::{AttrValue, CapturedEvent, CapturedSpan};

/// The budgets of a trace capture ([`Receiver::with_capture`]).
/// [`CaptureLimits::default`] suits a few thousand journeys per second on
/// one machine.
///
/// The recent window decides how far back a pin can reach: at 20 000
/// spans/s, 200 000 spans cover 10 s. Pinned traces have their own budget,
/// so that neither can starve the other. Sizes are estimates of the heap a
/// span owns, not allocator overhead: plan for roughly twice the configured
/// bytes of real memory.
///
/// [`Receiver::with_capture`]: crate::Receiver::with_capture
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaptureLimits {
    /// Spans held in the recent window (traces nobody pinned yet).
    pub recent_spans: usize,
    /// Approximate bytes held in the recent window.
    pub recent_bytes: usize,
    /// Traces pinned at once; pins beyond it are refused.
    pub max_pinned_traces: usize,
    /// Approximate bytes of all pinned traces together; spans that would
    /// exceed it are dropped.
    pub pinned_bytes: usize,
    /// Spans kept per trace, pinned or not; later ones are dropped.
    pub max_spans_per_trace: usize,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        // A span as the services export it (a dozen attributes and the
        // resource) estimates at about 1 KB, so 200 000 spans would be
        // ~200 MB: the byte bound usually binds first and sets the window.
        Self {
            recent_spans: 200_000,
            recent_bytes: 128 * 1024 * 1024,
            max_pinned_traces: 500,
            pinned_bytes: 64 * 1024 * 1024,
            max_spans_per_trace: 2_000,
        }
    }
}

/// What a trace capture did with the spans it was given
/// ([`Receiver::capture_stats`](crate::Receiver::capture_stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CaptureStats {
    /// Spans given to the store.
    pub received_spans: u64,
    /// Spans held now, pinned or not.
    pub held_spans: usize,
    /// Approximate bytes held now.
    pub held_bytes: usize,
    /// Traces pinned now (including ones with no span yet).
    pub pinned_traces: usize,
    /// Spans held now in pinned traces.
    pub pinned_spans: usize,
    /// Whole traces evicted from the recent window, and their spans.
    pub evicted_traces: u64,
    pub evicted_spans: u64,
    /// Spans refused on arrival: over [`CaptureLimits::max_spans_per_trace`]
    /// or [`CaptureLimits::pinned_bytes`], or larger than the whole window.
    pub dropped_spans: u64,
    /// Pins refused ([`Receiver::keep`](crate::Receiver::keep)) because the
    /// pinned budget was full.
    pub refused_pins: u64,
}

/// Recent spans grouped by trace, with pins. See the module docs.
#[derive(Debug)]
pub(crate) struct TraceStore {
    limits: CaptureLimits,
    traces: HashMap<String, HeldTrace>,
    /// Unpinned traces by age (latest arrival): the eviction order.
    by_age: BTreeMap<u64, String>,
    next_age: u64,
    recent: Usage,
    pinned: Usage,
    pinned_traces: usize,
    stats: CaptureStats,
}

#[derive(Debug)]
struct HeldTrace {
    /// When it last received a span (or was pinned), its key in `by_age`
    /// while unpinned. A released trace goes back with its old age: it is
    /// among the first to go, as nothing wants it any more.
    age: u64,
    pinned: bool,
    spans: Vec<CapturedSpan>,
    bytes: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    spans: usize,
    bytes: usize,
}

impl Usage {
    fn add(&mut self, spans: usize, bytes: usize) {
        self.spans += spans;
        self.bytes += bytes;
    }

    fn sub(&mut self, spans: usize, bytes: usize) {
        self.spans = self.spans.saturating_sub(spans);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::new(CaptureLimits::default())
    }
}

impl TraceStore {
    pub fn new(limits: CaptureLimits) -> Self {
        Self {
            limits,
            traces: HashMap::new(),
            by_age: BTreeMap::new(),
            next_age: 0,
            recent: Usage::default(),
            pinned: Usage::default(),
            pinned_traces: 0,
            stats: CaptureStats::default(),
        }
    }

    /// Takes one span: into its pinned trace if there is one, otherwise
    /// into the recent window, evicting the oldest traces if that goes over
    /// budget.
    pub fn insert(&mut self, span: CapturedSpan) {
        self.stats.received_spans += 1;
        let size = approx_size(&span);
        if let Some(trace) = self.traces.get_mut(&span.trace_id) {
            if trace.spans.len() >= self.limits.max_spans_per_trace {
                self.stats.dropped_spans += 1;
                return;
            }
            if trace.pinned {
                if self.pinned.bytes + size > self.limits.pinned_bytes {
                    self.stats.dropped_spans += 1;
                    return;
                }
                self.pinned.add(1, size);
            } else {
                // Age is the latest arrival: a trace still receiving spans
                // belongs to a journey that may not have ended, so the one
                // quiet longest is the one to let go.
                self.by_age.remove(&trace.age);
                trace.age = self.next_age;
                self.next_age += 1;
                self.by_age.insert(trace.age, span.trace_id.clone());
                self.recent.add(1, size);
            }
            trace.spans.push(span);
            trace.bytes += size;
        } else {
            // A span that could never fit would only empty the window.
            if self.limits.max_spans_per_trace == 0
                || self.limits.recent_spans == 0
                || size > self.limits.recent_bytes
            {
                self.stats.dropped_spans += 1;
                return;
            }
            let age = self.next_age;
            self.next_age += 1;
            let id = span.trace_id.clone();
            self.by_age.insert(age, id.clone());
            self.traces.insert(
                id,
                HeldTrace {
                    age,
                    pinned: false,
                    spans: vec![span],
                    bytes: size,
                },
            );
            self.recent.add(1, size);
        }
        self.evict_over_budget();
    }

    /// Pins a trace (`trace_id` is hex, either case): the spans held now
    /// and every later one are kept until [`release`](Self::release).
    /// Pinning a trace with no span yet is how a span that is still on its
    /// way gets kept.
    ///
    /// Returns whether the trace is pinned now; `false` (counted in
    /// [`CaptureStats::refused_pins`]) when [`CaptureLimits::max_pinned_traces`]
    /// traces are pinned already or its spans do not fit in
    /// [`CaptureLimits::pinned_bytes`].
    pub fn keep(&mut self, trace_id: &str) -> bool {
        let id = trace_id.to_ascii_lowercase();
        let full = self.pinned_traces >= self.limits.max_pinned_traces;
        match self.traces.get_mut(&id) {
            Some(trace) if trace.pinned => return true,
            Some(trace) => {
                if full || self.pinned.bytes + trace.bytes > self.limits.pinned_bytes {
                    self.stats.refused_pins += 1;
                    return false;
                }
                trace.pinned = true;
                self.by_age.remove(&trace.age);
                self.recent.sub(trace.spans.len(), trace.bytes);
                self.pinned.add(trace.spans.len(), trace.bytes);
            }
            None => {
                if full {
                    self.stats.refused_pins += 1;
                    return false;
                }
                let age = self.next_age;
                self.next_age += 1;
                self.traces.insert(
                    id,
                    HeldTrace {
                        age,
                        pinned: true,
                        spans: Vec::new(),
                        bytes: 0,
                    },
                );
            }
        }
        self.pinned_traces += 1;
        true
    }

    /// Unpins a trace: it goes back to the recent window as old as it was,
    /// so it is the first to be evicted. Unknown or unpinned ids are ignored.
    pub fn release(&mut self, trace_id: &str) {
        let id = trace_id.to_ascii_lowercase();
        let Some(trace) = self.traces.get_mut(&id) else {
            return;
        };
        if !trace.pinned {
            return;
        }
        trace.pinned = false;
        self.pinned_traces -= 1;
        self.pinned.sub(trace.spans.len(), trace.bytes);
        if trace.spans.is_empty() {
            self.traces.remove(&id);
            return;
        }
        self.recent.add(trace.spans.len(), trace.bytes);
        self.by_age.insert(trace.age, id);
        self.evict_over_budget();
    }

    /// Whether the trace is pinned.
    #[cfg(test)]
    pub fn is_pinned(&self, trace_id: &str) -> bool {
        self.traces
            .get(&trace_id.to_ascii_lowercase())
            .is_some_and(|t| t.pinned)
    }

    /// The held spans of each trace asked for that has any, ordered by start
    /// time (parents before children that start with them). Keys are
    /// lowercase hex; ids with nothing held are left out.
    pub fn traces<I>(&self, trace_ids: I) -> BTreeMap<String, Vec<CapturedSpan>>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        trace_ids
            .into_iter()
            .filter_map(|id| {
                let id = id.as_ref().to_ascii_lowercase();
                let trace = self.traces.get(&id).filter(|t| !t.spans.is_empty())?;
                let mut spans = trace.spans.clone();
                spans.sort_by_key(|s| (s.start_unix_nano, std::cmp::Reverse(s.end_unix_nano)));
                Some((id, spans))
            })
            .collect()
    }

    /// The spans of one trace, in arrival order (empty if none are held).
    pub fn trace(&self, trace_id: &str) -> &[CapturedSpan] {
        self.traces
            .get(&trace_id.to_ascii_lowercase())
            .map_or(&[], |t| &t.spans)
    }

    /// Every held span: traces from the least to the most recently active,
    /// each in arrival order.
    pub fn spans(&self) -> impl Iterator<Item = &CapturedSpan> {
        let mut traces: Vec<&HeldTrace> = self.traces.values().collect();
        traces.sort_by_key(|t| t.age);
        traces.into_iter().flat_map(|t| t.spans.iter())
    }

    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            held_spans: self.recent.spans + self.pinned.spans,
            held_bytes: self.recent.bytes + self.pinned.bytes,
            pinned_traces: self.pinned_traces,
            pinned_spans: self.pinned.spans,
            ..self.stats
        }
    }

    /// Forgets every span and pin and resets the counters.
    pub fn clear(&mut self) {
        *self = Self::new(self.limits);
    }

    fn evict_over_budget(&mut self) {
        while self.recent.spans > self.limits.recent_spans
            || self.recent.bytes > self.limits.recent_bytes
        {
            let Some((_, id)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(trace) = self.traces.remove(&id) {
                self.recent.sub(trace.spans.len(), trace.bytes);
                self.stats.evicted_traces += 1;
                self.stats.evicted_spans += trace.spans.len() as u64;
            }
        }
    }
}

/// Estimated memory a span holds: the struct plus the heap its strings,
/// maps and lists own. Map nodes are counted at a flat overhead per entry;
/// the aim is a bound that tracks real use within a small factor, cheaply.
pub(crate) fn approx_size(span: &CapturedSpan) -> usize {
    size_of::<CapturedSpan>()
        + span.service_name.len()
        + span.scope_name.len()
        + span.trace_id.len()
        + span.span_id.len()
        + span.parent_span_id.as_ref().map_or(0, String::len)
        + span.name.len()
        + span.status.message.len()
        + attributes_size(&span.resource)
        + attributes_size(&span.attributes)
        + span.events.iter().map(event_size).sum::<usize>()
        + span
            .links
            .iter()
            .map(|(t, s)| size_of::<(String, String)>() + t.len() + s.len())
            .sum::<usize>()
}

/// Per-entry overhead of a `BTreeMap` node slot, roughly.
const MAP_ENTRY_OVERHEAD: usize = 16;

fn attributes_size(map: &BTreeMap<String, AttrValue>) -> usize {
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
        AttrValue::KvList(map) => attributes_size(map),
        AttrValue::Bool(_) | AttrValue::Int(_) | AttrValue::Double(_) | AttrValue::Empty => 0,
    }
}

fn event_size(event: &CapturedEvent) -> usize {
    size_of::<CapturedEvent>() + event.name.len() + attributes_size(&event.attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{SpanKind, SpanStatus, Transport};

    fn span(trace: u8, name: &str) -> CapturedSpan {
        CapturedSpan {
            service_name: "courses".into(),
            resource: BTreeMap::from([(
                "service.name".into(),
                AttrValue::String("courses".into()),
            )]),
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

    fn id(trace: u8) -> String {
        format!("{trace:032x}")
    }

    fn limits(recent_spans: usize) -> CaptureLimits {
        CaptureLimits {
            recent_spans,
            recent_bytes: usize::MAX,
            max_pinned_traces: 10,
            pinned_bytes: usize::MAX,
            max_spans_per_trace: 100,
        }
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
        assert_eq!(traces[&id(7)][0].name, "late");
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
        let one = approx_size(&span(1, "a"));
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
            recent_bytes: 200 * 1024,
            max_pinned_traces: 20,
            pinned_bytes: 100 * 1024,
            max_spans_per_trace: 50,
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
            store.insert(s);
            let stats = store.stats();
            let recent_bytes = stats.held_bytes - pinned_bytes(&store);
            assert!(stats.held_spans - stats.pinned_spans <= limits.recent_spans);
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
        assert!(approx_size(&heavy) >= approx_size(&plain) + 1_000);
    }
}
