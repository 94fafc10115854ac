//! A trace's waterfall in `report.html`: its spans in tree order, each a
//! row positioned with CSS by its start and duration, coloured by service,
//! errors marked, with the attributes that say where a request went and
//! what answered.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::format::{self, RED, escape};
use load_engine::Sample;
use otlp_sink::CapturedTrace;
use otlp_sink::span::{AttrValue, CapturedSpan, StatusCode};

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

fn attr_text(value: &AttrValue) -> String {
    match value {
        AttrValue::String(s) => s.clone(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Double(d) => d.to_string(),
        AttrValue::Empty => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn service_colour(service: &str) -> &'static str {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = service.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    SERVICE_COLOURS[hash as usize % SERVICE_COLOURS.len()]
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
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_unix_nano.max(s.start_unix_nano))
        .max()
        .unwrap_or(start);
    let total = end.saturating_sub(start).max(1) as f64;
    let errors = spans.iter().filter(|s| is_error(s)).count();
    let mut services: Vec<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
    services.sort_unstable();
    services.dedup();

    let _ = write!(
        out,
        "<details class=\"trace\" id=\"trace-{id}\"{}><summary><b>{}</b> <code>{id}</code> \
         <span class=\"muted\">{} ms journey · {} spans over {} ms · {}</span>{}</summary>",
        if open { " open" } else { "" },
        escape(&sample.journey),
        format::ms(sample.latency_ms),
        spans.len(),
        format::ms(total / 1e6),
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
    for row in rows.iter().take(MAX_WATERFALL_ROWS) {
        let span = row.span;
        let offset = span.start_unix_nano.saturating_sub(start) as f64;
        let duration = span.end_unix_nano.saturating_sub(span.start_unix_nano) as f64;
        let left = offset / total * 100.0;
        // At least a sliver, so an instant span is still visible.
        let width = (duration / total * 100.0)
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
    if rows.len() > MAX_WATERFALL_ROWS {
        let _ = write!(
            out,
            "<p class=\"muted\">{} more spans not shown.</p>",
            rows.len() - MAX_WATERFALL_ROWS
        );
    }
    out.push_str("</div></details>");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use otlp_sink::span::{SpanKind, SpanStatus, Transport};

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
}
