//! A trace as the receiver holds it: its spans and the log records made
//! inside it, what [`Receiver::traces`](crate::Receiver::traces) answers
//! and a report draws.

use serde::Serialize;

use crate::log::CapturedLog;
use crate::span::CapturedSpan;

/// The held spans and log records of one trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CapturedTrace {
    /// By start time, parents before the children that start with them.
    pub spans: Vec<CapturedSpan>,
    /// By the time they were made ([`CapturedLog::timestamp_unix_nano`]).
    pub logs: Vec<CapturedLog>,
}

impl CapturedTrace {
    /// Puts `spans` and `logs` in the orders the fields promise.
    pub fn new(mut spans: Vec<CapturedSpan>, mut logs: Vec<CapturedLog>) -> Self {
        spans.sort_by_key(|s| (s.start_unix_nano, std::cmp::Reverse(s.end_unix_nano)));
        logs.sort_by_key(CapturedLog::timestamp_unix_nano);
        Self { spans, logs }
    }

    /// Whether nothing of the trace is held.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty()
    }

    /// The log records made while span `span_id` (hex, lowercase) was
    /// active, in time order.
    pub fn logs_of<'a>(&'a self, span_id: &'a str) -> impl Iterator<Item = &'a CapturedLog> + 'a {
        self.logs
            .iter()
            .filter(move |log| log.span_id.as_deref() == Some(span_id))
    }
}
