//! The plain store tests assert on: the latest spans and the latest log
//! records, each in a buffer bounded by a count. When one is full its
//! oldest record is dropped and counted, so a flood costs a fixed amount
//! of memory and says how much it cost.

use std::collections::{BTreeMap, VecDeque};

use crate::log::CapturedLog;
use crate::span::CapturedSpan;
use crate::trace::CapturedTrace;

/// The latest spans and log records, bounded apart: a flood of one signal
/// cannot push the other out.
#[derive(Debug)]
pub(crate) struct Buffer {
    pub spans: Bounded<CapturedSpan>,
    pub logs: Bounded<CapturedLog>,
}

impl Buffer {
    pub fn new(max_spans: usize, max_logs: usize) -> Self {
        Self {
            spans: Bounded::new(max_spans),
            logs: Bounded::new(max_logs),
        }
    }

    /// Whatever the buffers still hold of each of `trace_ids` (lowercase
    /// hex), with the orders [`CapturedTrace`] promises.
    pub fn traces(&self, trace_ids: &[String]) -> BTreeMap<String, CapturedTrace> {
        let mut out: BTreeMap<String, CapturedTrace> = BTreeMap::new();
        for span in &self.spans.items {
            if trace_ids.contains(&span.trace_id) {
                let trace = out.entry(span.trace_id.clone()).or_default();
                trace.spans.push(span.clone());
            }
        }
        for log in &self.logs.items {
            if let Some(id) = log.trace_id.as_ref().filter(|id| trace_ids.contains(id)) {
                out.entry(id.clone()).or_default().logs.push(log.clone());
            }
        }
        out.into_iter()
            .map(|(id, trace)| (id, CapturedTrace::new(trace.spans, trace.logs)))
            .collect()
    }

    pub fn clear(&mut self) {
        self.spans = Bounded::new(self.spans.max);
        self.logs = Bounded::new(self.logs.max);
    }
}

/// A queue of at most `max` records, dropping the oldest, with counters.
#[derive(Debug)]
pub(crate) struct Bounded<T> {
    items: VecDeque<T>,
    max: usize,
    /// Records pushed, including ones since dropped.
    pub received: u64,
    /// Records dropped to stay within `max`.
    pub dropped: u64,
}

impl<T> Bounded<T> {
    fn new(max: usize) -> Self {
        Self {
            items: VecDeque::new(),
            max,
            received: 0,
            dropped: 0,
        }
    }

    /// Appends `item`, dropping the oldest record if the queue is full. A
    /// queue of zero keeps nothing and only counts.
    pub fn push(&mut self, item: T) {
        self.received += 1;
        if self.max == 0 {
            self.dropped += 1;
            return;
        }
        if self.items.len() >= self.max {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
    }

    /// The records held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// The records held, oldest first, as one slice (a predicate reads
    /// them without a copy).
    pub fn as_slice(&mut self) -> &[T] {
        self.items.make_contiguous()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}
