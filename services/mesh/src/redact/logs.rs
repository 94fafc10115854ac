//! Log records get the spans' treatment ([`redact_log_record`]): the body
//! and every string scrubbed, attribute keys allow-listed.

use opentelemetry::{
    Key,
    logs::{AnyValue, LogRecord as _},
};
use opentelemetry_sdk::logs::SdkLogRecord;

use super::{REDACTED_ATTRIBUTES, is_allowed_attribute, is_sensitive_key, scrub};

/// The fields of the services' log events exported as attributes (values
/// still scrubbed), sorted for binary search; span attribute keys
/// ([`super::ALLOWED_SPAN_ATTRIBUTES`]) are allowed too. Adding a field to
/// a log event means adding it here;
/// `tests/api/hygiene_telemetry.rs` checks the code against this list.
pub const ALLOWED_LOG_ATTRIBUTES: &[&str] = &[
    // loadgen's timeline: what it did to which service, when.
    "action",
    // An address the service bound or dialled.
    "addr",
    "at",
    // The outbound retry that follows.
    "attempt",
    // loadgen's platforms: the command they ran (debug), on what.
    "command",
    // Event consumers (progress, payments).
    "consumer",
    "container",
    "delivered",
    // The peer a client calls, and its discovered addresses.
    "destination",
    // The exporters' own reports.
    "dropped_records",
    "dropped_spans",
    "ejected_for",
    "endpoint",
    "endpoints",
    "enrollment.status",
    // The error's display text (scrubbed like every string).
    "error",
    "event_id",
    "exit_code",
    // The fault layer and the admin API's faults.
    "fault",
    "fault.delay_ms",
    "fault.id",
    // A file the service checked (the SQLite database's permissions).
    "file",
    "grace",
    "host",
    "last_heartbeat",
    "lessons",
    "payment.id",
    "point",
    "prefix",
    "protocol",
    "reason",
    "remote",
    "retry.attempt",
    "retry.reason",
    "retry_in",
    "route",
    // loadgen's operator console: the run an operator started, and its
    // scenario (shipped names only).
    "run.id",
    "scenario",
    "service",
    "stale_since",
    "status",
    "up",
    "was",
    "why",
];

/// Whether a log record's attribute is exported.
pub fn is_allowed_log_attribute(key: &str) -> bool {
    ALLOWED_LOG_ATTRIBUTES.binary_search(&key).is_ok() || is_allowed_attribute(key)
}

/// A copy of `record` fit to leave the process: the body and string
/// attributes scrubbed ([`scrub`]), attributes not on
/// [`ALLOWED_LOG_ATTRIBUTES`] dropped and counted in
/// [`REDACTED_ATTRIBUTES`], secret-named ones dropped whatever the list
/// says. Timestamps, severity, target and trace context are kept.
///
/// The SDK's record can gain attributes but not lose them, so the copy is
/// built on `blank` (an empty record; see `crate::logs`).
pub fn redact_log_record(record: &SdkLogRecord, blank: &SdkLogRecord) -> SdkLogRecord {
    let mut out = blank.clone();
    if let Some(name) = record.event_name() {
        out.set_event_name(name);
    }
    if let Some(target) = record.target() {
        out.set_target(target.clone());
    }
    if let Some(at) = record.timestamp() {
        out.set_timestamp(at);
    }
    if let Some(at) = record.observed_timestamp() {
        out.set_observed_timestamp(at);
    }
    if let Some(text) = record.severity_text() {
        out.set_severity_text(text);
    }
    if let Some(number) = record.severity_number() {
        out.set_severity_number(number);
    }
    if let Some(cx) = record.trace_context() {
        out.set_trace_context(cx.trace_id, cx.span_id, cx.trace_flags);
    }
    if let Some(body) = record.body() {
        out.set_body(scrubbed(body));
    }
    let mut dropped = 0_i64;
    for (key, value) in record.attributes_iter() {
        if is_allowed_log_attribute(key.as_str()) && !is_sensitive_key(key.as_str()) {
            out.add_attribute(key.clone(), scrubbed(value));
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        out.add_attribute(Key::from_static_str(REDACTED_ATTRIBUTES), dropped);
    }
    out
}

/// Strings scrubbed, at any depth; numbers, booleans and bytes as they are.
fn scrubbed(value: &AnyValue) -> AnyValue {
    match value {
        AnyValue::String(s) => AnyValue::from(scrub(s.as_str()).into_owned()),
        AnyValue::ListAny(items) => {
            AnyValue::ListAny(Box::new(items.iter().map(scrubbed).collect()))
        }
        AnyValue::Map(map) => AnyValue::Map(Box::new(
            map.iter()
                .filter(|(key, _)| !is_sensitive_key(key.as_str()))
                .map(|(key, value)| (key.clone(), scrubbed(value)))
                .collect(),
        )),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use opentelemetry::{
        logs::{Logger as _, LoggerProvider as _, Severity},
        trace::{SpanId, TraceFlags, TraceId},
    };
    use opentelemetry_sdk::logs::SdkLoggerProvider;

    use super::*;

    fn blank() -> SdkLogRecord {
        SdkLoggerProvider::builder()
            .build()
            .logger("test")
            .create_log_record()
    }

    fn attribute<'a>(record: &'a SdkLogRecord, key: &str) -> Option<&'a AnyValue> {
        record
            .attributes_iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn the_list_is_sorted_for_binary_search() {
        assert!(ALLOWED_LOG_ATTRIBUTES.is_sorted());
    }

    #[test]
    fn a_careless_record_leaves_without_its_secrets_and_keeps_the_rest() {
        let mut record = blank();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        record.set_timestamp(at);
        record.set_severity_number(Severity::Error);
        record.set_severity_text("ERROR");
        record.set_target("payments::charge");
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        record.set_trace_context(trace, span, Some(TraceFlags::SAMPLED));
        record.set_body("charge failed for alice@example.com, Bearer s3cr3t-t0k3n".into());
        record.add_attribute("error", "card 4111 1111 1111 1111 declined");
        record.add_attribute("password", "hunter2");
        record.add_attribute("enduser.email", "bob@example.com");
        record.add_attribute("http.response.status_code", 502_i64);
        record.add_attribute(
            "fault",
            AnyValue::ListAny(Box::new(vec!["mail carol@example.com".into()])),
        );

        let out = redact_log_record(&record, &blank());

        assert_eq!(
            out.body(),
            Some(&AnyValue::from(
                "charge failed for [REDACTED:email], Bearer [REDACTED:bearer]".to_owned()
            ))
        );
        assert_eq!(
            attribute(&out, "error"),
            Some(&AnyValue::from("card [REDACTED:card] declined".to_owned()))
        );
        assert_eq!(
            attribute(&out, "fault"),
            Some(&AnyValue::ListAny(Box::new(vec![AnyValue::from(
                "mail [REDACTED:email]".to_owned()
            )])))
        );
        assert_eq!(attribute(&out, "password"), None);
        assert_eq!(attribute(&out, "enduser.email"), None);
        assert_eq!(
            attribute(&out, REDACTED_ATTRIBUTES),
            Some(&AnyValue::Int(2))
        );
        assert_eq!(
            attribute(&out, "http.response.status_code"),
            Some(&AnyValue::Int(502))
        );
        // What says where and when is kept as it was.
        assert_eq!(out.timestamp(), Some(at));
        assert_eq!(out.severity_number(), Some(Severity::Error));
        assert_eq!(out.severity_text(), Some("ERROR"));
        assert_eq!(out.target().map(|t| t.as_ref()), Some("payments::charge"));
        let cx = out.trace_context().unwrap();
        assert_eq!((cx.trace_id, cx.span_id), (trace, span));
        assert_eq!(cx.trace_flags, Some(TraceFlags::SAMPLED));
    }

    #[test]
    fn a_clean_record_gains_no_redaction_count() {
        let mut record = blank();
        record.set_body("courses ready".into());
        record.add_attribute("lessons", 12_i64);
        let out = redact_log_record(&record, &blank());
        assert_eq!(
            out.body(),
            Some(&AnyValue::from("courses ready".to_owned()))
        );
        assert_eq!(attribute(&out, "lessons"), Some(&AnyValue::Int(12)));
        assert_eq!(attribute(&out, REDACTED_ATTRIBUTES), None);
    }
}
