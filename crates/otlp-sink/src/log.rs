//! The log-record model: an OTLP log record as the receiver decoded it,
//! beside the span model and in its terms (hex ids, attributes in sorted
//! maps, [`AttrValue`]). The transports produce it, the stores hold it,
//! callers read it; it needs none of them.
//!
//! Severity follows the OpenTelemetry log data model: `severity_number`
//! 1–24 in six ranges (TRACE 1–4, DEBUG 5–8, INFO 9–12, WARN 13–16,
//! ERROR 17–20, FATAL 21–24), read into [`Severity`]; the text the
//! exporter sent is kept as it was.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::span::{AttrValue, Transport};

/// A log record as received, with ids hex-encoded and attributes in sorted
/// maps, like [`CapturedSpan`](crate::span::CapturedSpan).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedLog {
    /// The resource's `service.name`, or empty if the exporter sent none.
    pub service_name: String,
    /// All resource attributes, `service.name` included.
    pub resource: BTreeMap<String, AttrValue>,
    /// Name of the instrumentation scope (the logger) that produced it.
    pub scope_name: String,
    /// 32 lowercase hex digits; `None` for a record made outside any trace
    /// (absent or all-zero id).
    pub trace_id: Option<String>,
    /// 16 lowercase hex digits: the span that was active when the record
    /// was made; `None` outside a span.
    pub span_id: Option<String>,
    /// OTLP `flags`: the W3C trace flags in the low byte (`0x01`: sampled).
    pub flags: u32,
    /// The severity range `severity_number` falls in, or that
    /// `severity_text` names when the number is unset.
    pub severity: Severity,
    /// As sent: 1–24, or 0 when unspecified.
    pub severity_number: i32,
    /// As sent (`ERROR`, `warn`, ...); may be empty.
    pub severity_text: String,
    /// The message; [`body_text`](Self::body_text) reads any body as text.
    pub body: AttrValue,
    /// The event's fields (`error`, `destination`, ...).
    pub attributes: BTreeMap<String, AttrValue>,
    /// OTLP `event_name`; empty for a plain log line.
    pub event_name: String,
    /// When the event happened; 0 when the exporter did not say.
    pub time_unix_nano: u64,
    /// When the exporting SDK saw the record.
    pub observed_time_unix_nano: u64,
    /// How the record reached the receiver.
    pub transport: Transport,
}

impl CapturedLog {
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

    /// The body as text: a string body as it is, any other as JSON, no
    /// body as an empty string.
    pub fn body_text(&self) -> Cow<'_, str> {
        match &self.body {
            AttrValue::String(s) => Cow::Borrowed(s),
            AttrValue::Empty => Cow::Borrowed(""),
            other => Cow::Owned(serde_json::to_string(other).unwrap_or_default()),
        }
    }

    /// When the event happened: `time_unix_nano`, or the observed time
    /// when the exporter left it unset (which OTLP allows).
    pub fn timestamp_unix_nano(&self) -> u64 {
        if self.time_unix_nano == 0 {
            self.observed_time_unix_nano
        } else {
            self.time_unix_nano
        }
    }
}

/// A severity range of the OpenTelemetry log data model, least severe
/// first, so `log.severity >= Severity::Warn` selects warnings and worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Neither a number in 1–24 nor a text this receiver knows.
    Unspecified,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Severity {
    /// The range of a `severity_number` (1–4 TRACE ... 21–24 FATAL);
    /// anything else is `Unspecified`.
    pub fn from_number(number: i32) -> Self {
        match number {
            1..=4 => Self::Trace,
            5..=8 => Self::Debug,
            9..=12 => Self::Info,
            13..=16 => Self::Warn,
            17..=20 => Self::Error,
            21..=24 => Self::Fatal,
            _ => Self::Unspecified,
        }
    }

    /// The range a `severity_text` names, in either case, with the usual
    /// spellings (`WARNING`, `ERR`, `CRITICAL`); `Unspecified` otherwise.
    pub fn from_text(text: &str) -> Self {
        match text.trim().to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" | "INFORMATION" | "NOTICE" => Self::Info,
            "WARN" | "WARNING" => Self::Warn,
            "ERROR" | "ERR" => Self::Error,
            "FATAL" | "CRITICAL" | "CRIT" | "PANIC" => Self::Fatal,
            _ => Self::Unspecified,
        }
    }

    /// What a receiver makes of a record: the number if it is set (the
    /// specification's comparable field), else the text.
    pub fn of_record(number: i32, text: &str) -> Self {
        match Self::from_number(number) {
            Self::Unspecified => Self::from_text(text),
            known => known,
        }
    }

    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`, or
    /// `UNSPECIFIED`: the data model's short names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "UNSPECIFIED",
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: `{:<5}` lines records up in columns.
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_the_data_models_ranges_then_the_text() {
        let ranges = [
            (1, Severity::Trace),
            (4, Severity::Trace),
            (5, Severity::Debug),
            (9, Severity::Info),
            (13, Severity::Warn),
            (16, Severity::Warn),
            (17, Severity::Error),
            (20, Severity::Error),
            (21, Severity::Fatal),
            (24, Severity::Fatal),
            (0, Severity::Unspecified),
            (25, Severity::Unspecified),
            (-1, Severity::Unspecified),
        ];
        for (number, severity) in ranges {
            assert_eq!(Severity::from_number(number), severity, "{number}");
        }
        assert_eq!(Severity::of_record(0, "warning"), Severity::Warn);
        assert_eq!(Severity::of_record(0, " Error "), Severity::Error);
        assert_eq!(
            Severity::of_record(17, "INFO"),
            Severity::Error,
            "the number wins"
        );
        assert_eq!(Severity::of_record(0, "loud"), Severity::Unspecified);
        assert!(Severity::Warn < Severity::Error && Severity::Unspecified < Severity::Trace);
        assert_eq!(format!("[{:<5}]", Severity::Warn), "[WARN ]");
    }

    #[test]
    fn a_body_reads_as_text_whatever_its_type() {
        let mut log = CapturedLog {
            service_name: "payments".into(),
            resource: BTreeMap::new(),
            scope_name: String::new(),
            trace_id: None,
            span_id: None,
            flags: 0,
            severity: Severity::Info,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: AttrValue::String("charged".into()),
            attributes: BTreeMap::new(),
            event_name: String::new(),
            time_unix_nano: 0,
            observed_time_unix_nano: 7,
            transport: Transport::Grpc,
        };
        assert_eq!(log.body_text(), "charged");
        assert_eq!(log.timestamp_unix_nano(), 7, "observed when unset");
        log.time_unix_nano = 5;
        assert_eq!(log.timestamp_unix_nano(), 5);
        log.body = AttrValue::KvList(BTreeMap::from([("n".into(), AttrValue::Int(1))]));
        assert_eq!(log.body_text(), r#"{"n":1}"#);
        log.body = AttrValue::Empty;
        assert_eq!(log.body_text(), "");
    }
}
