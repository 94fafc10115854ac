//! Trace capture for reports: keep the complete traces of the journeys that
//! matter (the slowest, the failed), their spans and their log records,
//! within a fixed memory budget.
//!
//! A load generator only learns which traces matter as journeys finish,
//! while the services' batch exporters deliver spans and log records
//! seconds later — some of a journey's arrive before its verdict, some
//! after. So every record is held for a while in a *recent window*,
//! grouped by trace; when the window is over budget, whole traces leave
//! it, the one that has been quiet longest first (a trace cut in half is
//! worse than no trace). [`TraceStore::keep`] pins a trace: what is
//! already held moves out of the window, and records arriving later join
//! it, however late. [`TraceStore::release`] hands it back to the window
//! (a journey pushed out of the slowest set by a slower one).
//!
//! A log record belongs to the trace its `trace_id` names, and goes where
//! that trace goes: held, pinned, evicted with it. A record made outside
//! any trace has nowhere to go: it is counted
//! ([`CaptureStats::untraced_logs`]), never held.
//!
//! Two budgets, so that neither can starve the other:
//!
//! * the recent window: [`CaptureLimits::recent_spans`],
//!   [`CaptureLimits::recent_logs`] and [`CaptureLimits::recent_bytes`]
//!   (spans and log records together). It decides how far back a pin can
//!   reach: at 20 000 spans/s, 200 000 spans cover 10 s.
//! * pinned traces: at most [`CaptureLimits::max_pinned_traces`] of them,
//!   [`CaptureLimits::pinned_bytes`] together.
//!
//! [`CaptureLimits::max_spans_per_trace`] and
//! [`CaptureLimits::max_logs_per_trace`] cap every trace, so one runaway
//! trace (a retry storm, a loop logging on every turn) cannot fill either
//! budget alone.
//!
//! Sizes are estimates (`size.rs`): the heap a record's strings and maps
//! own plus the struct itself, not allocator overhead. Plan for roughly
//! twice the configured bytes of real memory.
//!
//! The store is not synchronised; [`Receiver::with_capture`]
//! wraps it in the receiver's lock and feeds it everything received.
//!
//! [`Receiver::with_capture`]: crate::Receiver::with_capture

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::log::CapturedLog;
use crate::size;
use crate::span::CapturedSpan;
use crate::trace::CapturedTrace;

/// The budgets of a trace capture ([`Receiver::with_capture`]).
/// [`CaptureLimits::default`] suits a few thousand journeys per second on
/// one machine.
///
/// The recent window decides how far back a pin can reach: at 20 000
/// spans/s, 200 000 spans cover 10 s. Pinned traces have their own budget,
/// so that neither can starve the other. Sizes are estimates of the heap a
/// record owns, not allocator overhead: plan for roughly twice the
/// configured bytes of real memory.
///
/// [`Receiver::with_capture`]: crate::Receiver::with_capture
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaptureLimits {
    /// Spans held in the recent window (traces nobody pinned yet).
    pub recent_spans: usize,
    /// Log records held in the recent window.
    pub recent_logs: usize,
    /// Approximate bytes held in the recent window, spans and log records
    /// together.
    pub recent_bytes: usize,
    /// Traces pinned at once; pins beyond it are refused.
    pub max_pinned_traces: usize,
    /// Approximate bytes of all pinned traces together; records that would
    /// exceed it are dropped.
    pub pinned_bytes: usize,
    /// Spans kept per trace, pinned or not; later ones are dropped.
    pub max_spans_per_trace: usize,
    /// Log records kept per trace, pinned or not; later ones are dropped.
    pub max_logs_per_trace: usize,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        // A span as the services export it (a dozen attributes and the
        // resource) estimates at about 1 KB, so 200 000 spans would be
        // ~200 MB: the byte bound usually binds first and sets the window.
        // A log record (the resource, a message, a few fields) is smaller,
        // and a request makes fewer of them than spans.
        Self {
            recent_spans: 200_000,
            recent_logs: 200_000,
            recent_bytes: 128 * 1024 * 1024,
            max_pinned_traces: 500,
            pinned_bytes: 64 * 1024 * 1024,
            max_spans_per_trace: 2_000,
            max_logs_per_trace: 2_000,
        }
    }
}

/// What a trace capture did with the spans and log records it was given
/// ([`Receiver::capture_stats`](crate::Receiver::capture_stats)). Every
/// span received is held, evicted or dropped; every log record is held,
/// evicted, dropped or untraced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CaptureStats {
    /// Spans given to the store.
    pub received_spans: u64,
    /// Spans held now, pinned or not.
    pub held_spans: usize,
    /// Approximate bytes held now, spans and log records.
    pub held_bytes: usize,
    /// Traces pinned now (including ones with nothing held yet).
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
    /// Log records given to the store, with a trace id or without.
    pub received_logs: u64,
    /// Log records held now, pinned or not.
    pub held_logs: usize,
    /// Log records held now in pinned traces.
    pub pinned_logs: usize,
    /// Log records evicted with their traces.
    pub evicted_logs: u64,
    /// Log records refused on arrival: over
    /// [`CaptureLimits::max_logs_per_trace`] or
    /// [`CaptureLimits::pinned_bytes`], or larger than the whole window.
    pub dropped_logs: u64,
    /// Log records made outside any trace: counted, never held.
    pub untraced_logs: u64,
}

/// Recent records grouped by trace, with pins. See the module docs.
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
    /// When it last received a record (or was pinned), its key in `by_age`
    /// while unpinned. A released trace goes back with its old age: it is
    /// among the first to go, as nothing wants it any more.
    age: u64,
    pinned: bool,
    spans: Vec<CapturedSpan>,
    logs: Vec<CapturedLog>,
    bytes: usize,
}

impl HeldTrace {
    fn new(age: u64, pinned: bool) -> Self {
        Self {
            age,
            pinned,
            spans: Vec::new(),
            logs: Vec::new(),
            bytes: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty()
    }

    fn count(&self, record: Record) -> usize {
        match record {
            Record::Span => self.spans.len(),
            Record::Log => self.logs.len(),
        }
    }
}

/// The two kinds of record a trace holds.
#[derive(Debug, Clone, Copy)]
enum Record {
    Span,
    Log,
}

/// What one budget (the recent window, or the pinned traces) holds.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    spans: usize,
    logs: usize,
    bytes: usize,
}

impl Usage {
    fn add(&mut self, record: Record, bytes: usize) {
        match record {
            Record::Span => self.spans += 1,
            Record::Log => self.logs += 1,
        }
        self.bytes += bytes;
    }

    fn add_trace(&mut self, trace: &HeldTrace) {
        self.spans += trace.spans.len();
        self.logs += trace.logs.len();
        self.bytes += trace.bytes;
    }

    fn sub_trace(&mut self, trace: &HeldTrace) {
        self.spans = self.spans.saturating_sub(trace.spans.len());
        self.logs = self.logs.saturating_sub(trace.logs.len());
        self.bytes = self.bytes.saturating_sub(trace.bytes);
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
        let size = size::span(&span);
        match self.admit(&span.trace_id, Record::Span, size) {
            Some(trace) => trace.spans.push(span),
            None => self.stats.dropped_spans += 1,
        }
        self.evict_over_budget();
    }

    /// Takes one log record, as [`insert`](Self::insert) takes a span, into
    /// the trace it names; one outside any trace is only counted.
    pub fn insert_log(&mut self, log: CapturedLog) {
        self.stats.received_logs += 1;
        let Some(trace_id) = log.trace_id.as_deref() else {
            self.stats.untraced_logs += 1;
            return;
        };
        let size = size::log(&log);
        match self.admit(trace_id, Record::Log, size) {
            Some(trace) => trace.logs.push(log),
            None => self.stats.dropped_logs += 1,
        }
        self.evict_over_budget();
    }

    /// Makes room for one record of `size` bytes in trace `id` and counts
    /// it: in the pinned budget if the trace is pinned, otherwise in the
    /// recent window, where the trace becomes the most recently active.
    /// Returns the trace to add the record to, or `None` when it is refused
    /// (its trace's cap or the pinned budget is full, or it could never fit
    /// in the window). The caller evicts what is over budget afterwards.
    fn admit(&mut self, id: &str, record: Record, size: usize) -> Option<&mut HeldTrace> {
        let (per_trace, window) = match record {
            Record::Span => (self.limits.max_spans_per_trace, self.limits.recent_spans),
            Record::Log => (self.limits.max_logs_per_trace, self.limits.recent_logs),
        };
        let fresh = !self.traces.contains_key(id);
        if fresh {
            // A record that could never fit would only empty the window.
            if per_trace == 0 || window == 0 || size > self.limits.recent_bytes {
                return None;
            }
            // Its age is set below, as for any unpinned trace.
            self.traces.insert(id.to_owned(), HeldTrace::new(0, false));
        }
        let trace = self.traces.get_mut(id)?;
        if trace.count(record) >= per_trace {
            return None;
        }
        if trace.pinned {
            if self.pinned.bytes + size > self.limits.pinned_bytes {
                return None;
            }
            self.pinned.add(record, size);
        } else {
            // Age is the latest arrival: a trace still receiving records
            // belongs to a journey that may not have ended, so the one
            // quiet longest is the one to let go.
            if !fresh {
                self.by_age.remove(&trace.age);
            }
            trace.age = self.next_age;
            self.next_age += 1;
            self.by_age.insert(trace.age, id.to_owned());
            self.recent.add(record, size);
        }
        trace.bytes += size;
        Some(trace)
    }

    /// Pins a trace (`trace_id` is hex, either case): the records held now
    /// and every later one are kept until [`release`](Self::release).
    /// Pinning a trace with nothing held yet is how a record that is still
    /// on its way gets kept.
    ///
    /// Returns whether the trace is pinned now; `false` (counted in
    /// [`CaptureStats::refused_pins`]) when [`CaptureLimits::max_pinned_traces`]
    /// traces are pinned already or what it holds does not fit in
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
                self.recent.sub_trace(trace);
                self.pinned.add_trace(trace);
            }
            None => {
                if full {
                    self.stats.refused_pins += 1;
                    return false;
                }
                let age = self.next_age;
                self.next_age += 1;
                self.traces.insert(id, HeldTrace::new(age, true));
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
        self.pinned.sub_trace(trace);
        if trace.is_empty() {
            self.traces.remove(&id);
            return;
        }
        self.recent.add_trace(trace);
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

    /// What is held of each trace asked for that has anything, spans by
    /// start time and log records by time ([`CapturedTrace`]). Keys are
    /// lowercase hex; ids with nothing held are left out.
    pub fn traces<I>(&self, trace_ids: I) -> BTreeMap<String, CapturedTrace>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        trace_ids
            .into_iter()
            .filter_map(|id| {
                let id = id.as_ref().to_ascii_lowercase();
                let trace = self.traces.get(&id).filter(|t| !t.is_empty())?;
                let held = CapturedTrace::new(trace.spans.clone(), trace.logs.clone());
                Some((id, held))
            })
            .collect()
    }

    /// The spans of one trace, in arrival order (empty if none are held).
    pub fn trace(&self, trace_id: &str) -> &[CapturedSpan] {
        self.traces
            .get(&trace_id.to_ascii_lowercase())
            .map_or(&[], |t| &t.spans)
    }

    /// The log records of one trace, in arrival order.
    pub fn trace_logs(&self, trace_id: &str) -> &[CapturedLog] {
        self.traces
            .get(&trace_id.to_ascii_lowercase())
            .map_or(&[], |t| &t.logs)
    }

    /// Every held span: traces from the least to the most recently active,
    /// each in arrival order.
    pub fn spans(&self) -> impl Iterator<Item = &CapturedSpan> {
        self.by_activity().flat_map(|t| t.spans.iter())
    }

    /// Every held log record, in the order of [`spans`](Self::spans).
    pub fn logs(&self) -> impl Iterator<Item = &CapturedLog> {
        self.by_activity().flat_map(|t| t.logs.iter())
    }

    fn by_activity(&self) -> impl Iterator<Item = &HeldTrace> {
        let mut traces: Vec<&HeldTrace> = self.traces.values().collect();
        traces.sort_by_key(|t| t.age);
        traces.into_iter()
    }

    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            held_spans: self.recent.spans + self.pinned.spans,
            held_logs: self.recent.logs + self.pinned.logs,
            held_bytes: self.recent.bytes + self.pinned.bytes,
            pinned_traces: self.pinned_traces,
            pinned_spans: self.pinned.spans,
            pinned_logs: self.pinned.logs,
            ..self.stats
        }
    }

    /// Forgets every record and pin and resets the counters.
    pub fn clear(&mut self) {
        *self = Self::new(self.limits);
    }

    fn evict_over_budget(&mut self) {
        while self.recent.spans > self.limits.recent_spans
            || self.recent.logs > self.limits.recent_logs
            || self.recent.bytes > self.limits.recent_bytes
        {
            let Some((_, id)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(trace) = self.traces.remove(&id) {
                self.recent.sub_trace(&trace);
                self.stats.evicted_traces += 1;
                self.stats.evicted_spans += trace.spans.len() as u64;
                self.stats.evicted_logs += trace.logs.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests;
