//! A trace's waterfall in `report.html`: its spans in tree order, each a
//! row positioned with CSS by its start and duration, coloured by service,
//! errors marked, with the attributes that say where a request went and
//! what answered; under each span, the log lines made in it
//! ([`super::logs`]), and after them those whose span was not captured.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::format::{self, RED, attr_text, escape};
use super::logs::{self, MAX_LOG_ROWS, Scale};
use load_engine::Sample;
use otlp_sink::CapturedTrace;
use otlp_sink::span::{CapturedSpan, StatusCode};

/// Rows drawn per waterfall; the rest are counted, not drawn, so a trace
/// with thousands of spans cannot make the page unusable.
const MAX_WATERFALL_ROWS: usize = 400;

/// Span attributes shown beside the operation: where the request went,
/// what answered, what failed, and whether a fault was injected on purpose
/// (OTel HTTP semantic conventions plus the mesh's own `fault.*`/`retry.*`).
const KEY_ATTRIBUTES: &[&str] = &[
    "http.request.method",
    "http.route",
    "url.template",
    "http.response.status_code",
    "error.type",
    "peer.service",
    "server.address",
    "fault.injected",
    "fault.kind",
    "retry.attempt",
    "db.operation.name",
    "db.collection.name",
];

/// Service colours in the waterfall, picked by a hash of the name so a
/// service keeps its colour across traces and runs.
const SERVICE_COLOURS: &[&str] = &[
    "#1c7ed6", "#7048e8", "#0ca678", "#f08c00", "#c2255c", "#1098ad", "#5c940d", "#ae3ec9",
];

/// A span's row in a waterfall, in tree order.
struct Row<'a> {
    span: &'a CapturedSpan,
    depth: usize,
}

/// Depth-first by start time, children under their parent. Spans whose
/// parent was not captured (the caller's span, or one lost on the way) start
/// their own subtree; a malformed cycle cannot loop (each span is visited
/// once).
fn tree_order(spans: &[CapturedSpan]) -> Vec<Row<'_>> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_span_id.as_deref() {
            Some(parent) if ids.contains(parent) && parent != span.span_id => {
                children.entry(parent).or_default().push(i);
            }
            _ => roots.push(i),
        }
    }
    let by_start = |list: &mut Vec<usize>| {
        list.sort_by_key(|&i| {
            (
                spans[i].start_unix_nano,
                std::cmp::Reverse(spans[i].end_unix_nano),
            )
        });
    };
    by_start(&mut roots);
    children.values_mut().for_each(by_start);

    let mut visited = vec![false; spans.len()];
    let mut rows = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    loop {
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            rows.push(Row {
                span: &spans[i],
                depth,
            });
            if let Some(kids) = children.get(spans[i].span_id.as_str()) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
        // Spans only reachable through a cycle: draw them at the top level.
        match visited.iter().position(|v| !v) {
            Some(i) => stack.push((i, 0)),
            None => break,
        }
    }
    rows
}

fn is_error(span: &CapturedSpan) -> bool {
    span.status.code == StatusCode::Error
        || span
            .attr_i64("http.response.status_code")
            .is_some_and(|s| s >= 500)
}

fn service_colour(service: &str) -> &'static str {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = service.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    SERVICE_COLOURS[hash as usize % SERVICE_COLOURS.len()]
}

/// The trace's first instant and length: its spans' extent, widened to
/// the log lines that fall outside it (clocks of different services
/// differ a little).
fn scale(trace: &CapturedTrace) -> Scale {
    let instants = trace
        .spans
        .iter()
        .flat_map(|s| [s.start_unix_nano, s.end_unix_nano.max(s.start_unix_nano)])
        .chain(
            trace
                .logs
                .iter()
                .map(|l| l.timestamp_unix_nano())
                .filter(|&t| t > 0),
        );
    let (start, end) = instants.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let start = start.min(end);
    Scale {
        start,
        total: end.saturating_sub(start).max(1) as f64,
    }
}

pub(super) fn render(
    out: &mut String,
    sample: &Sample,
    id: &str,
    trace: &CapturedTrace,
    open: bool,
    jaeger: Option<&str>,
) {
    let spans = &trace.spans;
    let scale = scale(trace);
    let errors = spans.iter().filter(|s| is_error(s)).count();
    let mut services: Vec<&str> = spans
        .iter()
        .map(|s| s.service_name.as_str())
        .chain(trace.logs.iter().map(|l| l.service_name.as_str()))
        .collect();
    services.sort_unstable();
    services.dedup();
    let logs = match trace.logs.len() {
        0 => String::new(),
        1 => " · 1 log line".to_owned(),
        n => format!(" · {n} log lines"),
    };

    let _ = write!(
        out,
        "<details class=\"trace\" id=\"trace-{id}\"{}><summary><b>{}</b> <code>{id}</code> \
         <span class=\"muted\">{} ms journey · {} spans over {} ms{logs} · {}</span>{}</summary>",
        if open { " open" } else { "" },
        escape(&sample.journey),
        format::ms(sample.latency_ms),
        spans.len(),
        format::ms(scale.total / 1e6),
        escape(&services.join(", ")),
        if errors > 0 {
            format!(" <span class=\"err-text\">✗ {errors} failed</span>")
        } else {
            String::new()
        }
    );
    if let Some(base) = jaeger {
        let _ = write!(
            out,
            "<p><a class=\"jaeger\" href=\"{}/trace/{id}\" target=\"_blank\" rel=\"noopener\">Open in Jaeger ↗</a></p>",
            escape(base)
        );
    }
    out.push_str(
        "<div class=\"wf\"><div class=\"wf-row wf-head\"><span>Service</span><span>Operation</span>\
         <span class=\"num\">Start ms</span><span></span><span class=\"num\">Duration ms</span></div>",
    );
    let rows = tree_order(spans);
    let mut log_rows = 0;
    for row in rows.iter().take(MAX_WATERFALL_ROWS) {
        span_row(out, row, scale);
        for log in trace.logs_of(&row.span.span_id) {
            if log_rows < MAX_LOG_ROWS {
                logs::row(out, log, row.depth + 1, None, scale);
            }
            log_rows += 1;
        }
    }
    if rows.len() > MAX_WATERFALL_ROWS {
        let _ = write!(
            out,
            "<p class=\"muted\">{} more spans not shown.</p>",
            rows.len() - MAX_WATERFALL_ROWS
        );
    }
    // Made outside any drawn span: its span was not captured (or not
    // drawn), or the record names none.
    let drawn: HashSet<&str> = rows
        .iter()
        .take(MAX_WATERFALL_ROWS)
        .map(|r| r.span.span_id.as_str())
        .collect();
    for log in trace
        .logs
        .iter()
        .filter(|l| !l.span_id.as_deref().is_some_and(|id| drawn.contains(id)))
    {
        if log_rows < MAX_LOG_ROWS {
            logs::row(out, log, 0, Some(&log.service_name), scale);
        }
        log_rows += 1;
    }
    if log_rows > MAX_LOG_ROWS {
        let _ = write!(
            out,
            "<p class=\"muted\">{} more log lines not shown.</p>",
            log_rows - MAX_LOG_ROWS
        );
    }
    out.push_str("</div></details>");
}

/// One span's row: service, name with its key attributes (and its error
/// message if it failed), start, bar and duration.
fn span_row(out: &mut String, row: &Row<'_>, scale: Scale) {
    let span = row.span;
    let offset = span.start_unix_nano.saturating_sub(scale.start) as f64;
    let duration = span.end_unix_nano.saturating_sub(span.start_unix_nano) as f64;
    let left = offset / scale.total * 100.0;
    // At least a sliver, so an instant span is still visible.
    let width = (duration / scale.total * 100.0)
        .max(0.3)
        .min(100.0 - left.min(99.7));
    let error = is_error(span);
    let colour = if error {
        RED
    } else {
        service_colour(&span.service_name)
    };
    let attrs: String = KEY_ATTRIBUTES
        .iter()
        .filter_map(|key| {
            let value = span.attr(key)?;
            Some(format!(
                "<span class=\"attr\">{}={}</span>",
                escape(key),
                escape(&attr_text(value))
            ))
        })
        .collect();
    let message = if error && !span.status.message.is_empty() {
        format!(
            "<span class=\"attr err-text\">{}</span>",
            escape(&span.status.message)
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<div class=\"wf-row{}\"><span class=\"svc\"><i style=\"background:{}\"></i>{}</span>\
         <span class=\"op\" style=\"padding-left:{}em\">{}{}{attrs}{message}</span>\
         <span class=\"num\">{}</span><span class=\"lane\"><span class=\"bar\" \
         style=\"left:{left:.2}%;width:{width:.2}%;background:{colour}\"></span></span>\
         <span class=\"num\">{}</span></div>",
        if error { " err" } else { "" },
        service_colour(&span.service_name),
        escape(&span.service_name),
        (row.depth as f64 * 0.9).min(9.0),
        if error { "✗ " } else { "" },
        escape(&span.name),
        format::ms(offset / 1e6),
        format::ms(duration / 1e6)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use otlp_sink::log::{CapturedLog, Severity};
    use otlp_sink::span::{AttrValue, SpanKind, SpanStatus, Transport};

    fn span(id: &str, parent: Option<&str>, name: &str, start: u64, end: u64) -> CapturedSpan {
        CapturedSpan {
            service_name: "svc".into(),
            resource: BTreeMap::new(),
            scope_name: String::new(),
            trace_id: "ab".repeat(16),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: name.into(),
            kind: SpanKind::Internal,
            attributes: BTreeMap::new(),
            status: SpanStatus::default(),
            start_unix_nano: start,
            end_unix_nano: end,
            events: Vec::new(),
            links: Vec::new(),
            transport: Transport::Grpc,
        }
    }

    #[test]
    fn tree_order_puts_children_under_parents_and_survives_cycles() {
        let spans = [
            span("c", Some("a"), "child-late", 30, 40),
            span("a", None, "root", 0, 100),
            span("b", Some("a"), "child-early", 10, 20),
            span("d", Some("zz"), "orphan", 50, 60),
            span("x", Some("y"), "cycle-1", 1, 2),
            span("y", Some("x"), "cycle-2", 1, 2),
        ];
        let rows: Vec<(&str, usize)> = tree_order(&spans)
            .iter()
            .map(|r| (r.span.name.as_str(), r.depth))
            .collect();
        assert_eq!(
            &rows[..4],
            [
                ("root", 0),
                ("child-early", 1),
                ("child-late", 1),
                ("orphan", 0)
            ]
        );
        assert_eq!(rows.len(), 6, "cycle members are still drawn once each");
    }

    fn log(span: &str, severity: Severity, body: &str, at_ms: u64) -> CapturedLog {
        CapturedLog {
            service_name: "svc".into(),
            resource: BTreeMap::new(),
            scope_name: String::new(),
            trace_id: Some("ab".repeat(16)),
            span_id: Some(span.into()),
            flags: 1,
            severity,
            severity_number: 0,
            severity_text: severity.as_str().into(),
            body: AttrValue::String(body.into()),
            attributes: BTreeMap::new(),
            event_name: String::new(),
            time_unix_nano: at_ms * 1_000_000,
            observed_time_unix_nano: at_ms * 1_000_000,
            transport: Transport::Grpc,
        }
    }

    fn sample() -> Sample {
        Sample {
            journey: "checkout".into(),
            request: None,
            trace_id: Some("ab".repeat(16)),
            start_s: 0.0,
            latency_ms: 100.0,
            uncorrected_latency_ms: 100.0,
            status: Some(503),
            error: Some("503".into()),
        }
    }

    /// The waterfall of `sample()`'s trace made of `spans` and `logs`.
    fn rendered(spans: Vec<CapturedSpan>, logs: Vec<CapturedLog>, open: bool) -> String {
        let mut out = String::new();
        let trace = CapturedTrace::new(spans, logs);
        render(&mut out, &sample(), &"ab".repeat(16), &trace, open, None);
        out
    }

    #[test]
    fn a_spans_log_lines_sit_under_it_errors_marked_and_escaped() {
        let ms = 1_000_000;
        let spans = vec![
            span("a", None, "root", 0, 100 * ms),
            span("b", Some("a"), "charge", 10 * ms, 90 * ms),
        ];
        let mut declined = log("b", Severity::Error, "<script>x()</script> declined", 50);
        declined
            .attributes
            .insert("error".into(), AttrValue::String("card & <b>".into()));
        let logs = vec![
            declined,
            log("a", Severity::Info, "checkout started", 1),
            log("zz", Severity::Warn, "retrying", 60),
        ];
        let out = rendered(spans, logs, true);

        let rows: Vec<&str> = out.split("<div class=\"wf-row").skip(2).collect();
        assert_eq!(rows.len(), 5, "{out}");
        assert!(rows[0].contains(">root<"), "{}", rows[0]);
        assert!(rows[1].starts_with(" wf-log\""), "{}", rows[1]);
        assert!(rows[1].contains("checkout started") && rows[1].contains(">INFO<"));
        assert!(
            rows[1].contains("padding-left:0.9em"),
            "one level under root"
        );
        assert!(rows[2].contains(">charge<"), "{}", rows[2]);

        let error = rows[3];
        assert!(
            error.starts_with(" wf-log log-error\""),
            "highlighted: {error}"
        );
        assert!(error.contains(">ERROR<"), "{error}");
        assert!(
            error.contains("&lt;script&gt;x()&lt;/script&gt; declined"),
            "{error}"
        );
        assert!(error.contains("error=card &amp; &lt;b&gt;"), "{error}");
        assert!(error.contains("padding-left:1.8em"), "under its span");
        assert!(error.contains(">50.0<"), "its time from the trace's start");
        assert!(error.contains("left:50.00%"), "its tick in the lane");

        let elsewhere = rows[4];
        assert!(elsewhere.starts_with(" wf-log log-warn\""), "{elsewhere}");
        assert!(
            elsewhere.contains("<span class=\"svc\">svc</span>"),
            "a line whose span is not drawn names its service: {elsewhere}"
        );
        assert!(!out.contains("<script>") && !out.contains("card & <b>"));
        assert!(out.contains("3 log lines"), "counted in the summary");
    }

    #[test]
    fn log_lines_are_bounded_like_spans() {
        let spans = vec![span("a", None, "root", 0, 10)];
        let logs = (0..MAX_LOG_ROWS + 5)
            .map(|i| log("a", Severity::Info, &format!("line {i}"), 0))
            .collect();
        let out = rendered(spans, logs, false);
        assert_eq!(out.matches("wf-row wf-log").count(), MAX_LOG_ROWS);
        assert!(out.contains("5 more log lines not shown."));
    }
}
