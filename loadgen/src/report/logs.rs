//! Log records in `report.html`: each under the span it was made in, in
//! that trace's waterfall, and the ones that explain a journey beside it
//! in the tables of slowest and failed journeys. ERROR and FATAL read as
//! errors, WARN as warnings; every text from a record goes through
//! [`escape`].

use std::fmt::Write as _;

use otlp_sink::CapturedTrace;
use otlp_sink::log::{CapturedLog, Severity};

use super::format::{self, attr_text, escape};

/// Log lines drawn per waterfall; the rest are counted, not drawn, as
/// spans are.
pub(super) const MAX_LOG_ROWS: usize = 400;

/// Lines shown beside a journey in the samples tables.
const MAX_EXPLAINING: usize = 3;

/// The row class of a record: `log-error` (ERROR, FATAL), `log-warn`
/// (WARN) or none.
fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Error | Severity::Fatal => " log-error",
        Severity::Warn => " log-warn",
        _ => "",
    }
}

/// A record's severity, message and fields, escaped:
/// `<b class="sev">ERROR</b> <span class="msg">...</span><span class="attr">k=v</span>...`.
fn content(log: &CapturedLog) -> String {
    let severity = match log.severity {
        Severity::Unspecified if !log.severity_text.is_empty() => log.severity_text.as_str(),
        severity => severity.as_str(),
    };
    let mut html = format!(
        "<b class=\"sev\">{}</b> <span class=\"msg\">{}</span>",
        escape(severity),
        escape(&log.body_text())
    );
    for (key, value) in &log.attributes {
        let _ = write!(
            html,
            "<span class=\"attr\">{}={}</span>",
            escape(key),
            escape(&attr_text(value))
        );
    }
    html
}

/// Where and when to draw a trace's log lines: its first instant and its
/// length in nanoseconds, as the waterfall's bars use them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    pub start: u64,
    pub total: f64,
}

/// One log line as a waterfall row: under its span's name (indented one
/// level deeper), its time from the trace's start, and a tick in the lane
/// where it happened. `service` fills the first column for a record whose
/// span is not drawn.
pub(super) fn row(
    out: &mut String,
    log: &CapturedLog,
    depth: usize,
    service: Option<&str>,
    scale: Scale,
) {
    let at = log.timestamp_unix_nano();
    // Unknown (0) times get no tick and no offset rather than one at the
    // trace's start.
    let (offset, tick) = if at == 0 {
        ("–".to_owned(), String::new())
    } else {
        let offset = at.saturating_sub(scale.start) as f64;
        let left = (offset / scale.total * 100.0).clamp(0.0, 99.7);
        (
            format::ms(offset / 1e6),
            format!("<span class=\"tick\" style=\"left:{left:.2}%\"></span>"),
        )
    };
    let _ = write!(
        out,
        "<div class=\"wf-row wf-log{}\"><span class=\"svc\">{}</span>\
         <span class=\"log\" style=\"padding-left:{}em\">{}</span><span class=\"num\">{offset}</span>\
         <span class=\"lane\">{tick}</span><span></span></div>",
        severity_class(log.severity),
        service.map(escape).unwrap_or_default(),
        (depth as f64 * 0.9).min(9.9),
        content(log),
    );
}

/// The records that explain what went wrong in a trace: those at ERROR or
/// above, or if there are none, the WARN ones; earliest first.
pub(super) fn explaining(trace: &CapturedTrace) -> Vec<&CapturedLog> {
    let at_least = |least: Severity| -> Vec<&CapturedLog> {
        trace.logs.iter().filter(|l| l.severity >= least).collect()
    };
    let errors = at_least(Severity::Error);
    if errors.is_empty() {
        at_least(Severity::Warn)
    } else {
        errors
    }
}

/// A journey's explaining log lines for its row in a samples table, each
/// with its service; empty when its trace has none.
pub(super) fn explanation(trace: &CapturedTrace) -> String {
    let lines = explaining(trace);
    let mut html = String::new();
    for log in lines.iter().take(MAX_EXPLAINING) {
        let _ = write!(
            html,
            "<div class=\"logline{}\"><span class=\"muted\">{}</span> {}</div>",
            severity_class(log.severity),
            escape(&log.service_name),
            content(log)
        );
    }
    if lines.len() > MAX_EXPLAINING {
        let _ = write!(
            html,
            "<div class=\"muted\">{} more in its trace</div>",
            lines.len() - MAX_EXPLAINING
        );
    }
    html
}
