//! `report.html`: one self-contained page for people, from the same
//! [`Summary`] as `summary.json` plus the traces captured during the run,
//! their spans and log records.
//!
//! Self-contained means no external script, stylesheet, font or image: the
//! file can be mailed, attached to a CI run or opened offline years later
//! and look the same. Charts are inline SVG drawn by [`super::chart`];
//! waterfalls are HTML rows positioned with CSS; the only script opens a
//! collapsed waterfall when a link points at it.
//!
//! Every string from outside (scenario names, errors, span names and
//! attributes, log messages and fields, the Jaeger address) goes through
//! [`escape`]; links are built only from an `http(s)` Jaeger base and hex
//! trace ids.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use load_engine::{NamedStats, Sample, SeriesPoint, Stats};
use otlp_sink::CapturedTrace;

use super::chart::{self, Chart, Marker, Series, Style};
use super::format::{self, BLUE, GREEN, GREY, ORANGE, PURPLE, RED, escape};
use super::{logs, waterfall};
use crate::summary::{CheckResult, Summary};

/// Waterfalls open when the page loads; the rest open on click (or when a
/// trace link points at them).
const OPEN_WATERFALLS: usize = 3;

/// Renders the report. `traces` maps lowercase hex trace ids to their
/// spans and log records (as [`otlp_sink::Receiver::traces`] returns
/// them); samples whose trace is there get a waterfall.
pub fn render(summary: &Summary, traces: &BTreeMap<String, CapturedTrace>) -> String {
    let jaeger = summary.links.jaeger.as_deref().and_then(jaeger_base);
    let page = Page {
        summary,
        traces,
        jaeger: jaeger.as_deref(),
    };
    let mut out = String::with_capacity(64 * 1024);
    page.head(&mut out);
    out.push_str("<body><main>");
    page.header(&mut out);
    page.nav(&mut out);
    page.checks(&mut out);
    page.charts(&mut out);
    page.stats_tables(&mut out);
    page.errors(&mut out);
    page.executors(&mut out);
    page.timeline(&mut out);
    page.samples(&mut out, "slowest", "Slowest journeys", &summary.slowest);
    page.samples(&mut out, "failed", "Failed journeys", &summary.failed);
    page.waterfalls(&mut out);
    let _ = write!(
        out,
        "<footer>loadgen · summary.json schema version {}</footer></main>{SCRIPT}</body></html>",
        summary.schema_version
    );
    out
}

/// The Jaeger base URL without its trailing slash, if it is `http(s)`:
/// anything else (`javascript:`, a relative path) is not linked.
fn jaeger_base(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    (!rest.is_empty()).then(|| trimmed.to_owned())
}

/// A W3C trace id: 32 hex digits, not all zero.
fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0')
}

struct Page<'a> {
    summary: &'a Summary,
    traces: &'a BTreeMap<String, CapturedTrace>,
    jaeger: Option<&'a str>,
}

impl Page<'_> {
    fn head(&self, out: &mut String) {
        let _ = write!(
            out,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} · loadgen report</title><style>{STYLE}</style></head>",
            escape(&self.summary.scenario.name)
        );
    }

    fn header(&self, out: &mut String) {
        let s = self.summary;
        let verdict = &s.verdict;
        let (class, word) = match (&verdict.aborted, verdict.passed) {
            (Some(_), _) => ("fail", "ABORTED"),
            (None, true) => ("ok", "PASSED"),
            (None, false) => ("fail", "FAILED"),
        };
        let _ = write!(
            out,
            "<header><div class=\"title\"><h1>{}</h1><span class=\"verdict {class}\">{word}</span></div>",
            escape(&s.scenario.name)
        );
        if !s.scenario.description.is_empty() {
            let _ = write!(
                out,
                "<p class=\"lead\">{}</p>",
                escape(&s.scenario.description)
            );
        }
        if let Some(reason) = &verdict.aborted {
            let _ = write!(
                out,
                "<p class=\"banner fail\">Aborted: {}</p>",
                escape(reason)
            );
        }
        if !verdict.failures.is_empty() {
            out.push_str("<ul class=\"failures\">");
            for failure in &verdict.failures {
                let _ = write!(out, "<li>✗ {}</li>", escape(failure));
            }
            out.push_str("</ul>");
        }
        out.push_str("<dl class=\"facts\">");
        let mut fact = |name: &str, value: String| {
            let _ = write!(out, "<div><dt>{name}</dt><dd>{}</dd></div>", escape(&value));
        };
        fact("Started", s.started_at.clone());
        fact("Duration", format::seconds(s.duration_s));
        fact("Platform", s.scenario.platform.clone());
        fact("Target", s.scenario.target.clone());
        fact("Scenario file", s.scenario.file.clone());
        if s.scenario.duration_scale != 1.0 {
            fact("Time scale", format!("×{}", s.scenario.duration_scale));
        }
        fact(
            "Journeys",
            format!(
                "{} · {}/s · {} errors",
                s.overall.count,
                format::rate(s.overall.rate),
                format::percent(s.overall.error_rate)
            ),
        );
        out.push_str("</dl></header>");
    }

    fn nav(&self, out: &mut String) {
        out.push_str(
            "<nav><a href=\"#checks\">Checks</a><a href=\"#charts\">Charts</a>\
             <a href=\"#journeys\">Journeys</a><a href=\"#requests\">Requests</a>\
             <a href=\"#errors\">Errors</a><a href=\"#executors\">Executors</a>\
             <a href=\"#timeline\">Timeline</a><a href=\"#slowest\">Slowest</a>\
             <a href=\"#failed\">Failed</a>",
        );
        if !self.traces.is_empty() {
            out.push_str("<a href=\"#traces\">Traces</a>");
        }
        out.push_str("</nav>");
    }

    fn checks(&self, out: &mut String) {
        out.push_str("<section id=\"checks\"><h2>Thresholds and expectations</h2>");
        for (title, checks) in [
            ("Thresholds", &self.summary.thresholds),
            ("Expectations", &self.summary.expectations),
        ] {
            let _ = write!(out, "<h3>{title}</h3>");
            if checks.is_empty() {
                out.push_str("<p class=\"muted\">None declared.</p>");
                continue;
            }
            out.push_str(
                "<div class=\"scroll\"><table><thead><tr><th></th><th>Check</th>\
                 <th class=\"num\">Observed</th><th>Detail</th></tr></thead><tbody>",
            );
            for check in checks {
                check_row(out, check);
            }
            out.push_str("</tbody></table></div>");
        }
        out.push_str("</section>");
    }

    fn markers(&self) -> Vec<Marker> {
        self.summary
            .timeline
            .iter()
            .map(|event| {
                let mut detail = format!(
                    "{} s: {} {} — {}",
                    format::observed(Some(event.fired_s)),
                    event.action,
                    event.service,
                    event.detail
                );
                if let Some(error) = &event.error {
                    let _ = write!(detail, " (failed: {error})");
                }
                Marker {
                    at_s: event.fired_s,
                    label: format!("{} {}", event.action, event.service),
                    detail,
                    failed: !event.ok,
                }
            })
            .collect()
    }

    fn charts(&self, out: &mut String) {
        let s = self.summary;
        let markers = self.markers();
        out.push_str("<section id=\"charts\"><h2>Over time</h2>");
        if s.series.is_empty() {
            out.push_str("<p class=\"muted\">No per-second data.</p></section>");
            return;
        }
        let x_max = s.series.iter().map(|p| p.t_s).fold(s.duration_s, f64::max);
        let points = |f: &dyn Fn(&SeriesPoint) -> Option<f64>| {
            s.series.iter().map(|p| (p.t_s, f(p))).collect::<Vec<_>>()
        };
        // A second in which nothing completed has no latency: a gap, not 0.
        let latency = |f: fn(&SeriesPoint) -> f64| points(&|p| (p.completed > 0).then(|| f(p)));
        let charts = [
            Chart {
                title: "Journey latency (corrected) per second",
                unit: "ms",
                x_max,
                series: vec![
                    series("p50", BLUE, Style::Line, latency(|p| p.p50_ms)),
                    series("p99", ORANGE, Style::Line, latency(|p| p.p99_ms)),
                    series("max", GREY, Style::Dashed, latency(|p| p.max_ms)),
                ],
                markers: &markers,
            },
            Chart {
                title: "Throughput",
                unit: "/s",
                x_max,
                series: vec![
                    series(
                        "target",
                        GREY,
                        Style::Dashed,
                        points(&|p| Some(p.target_rate)),
                    ),
                    series(
                        "started",
                        BLUE,
                        Style::Line,
                        points(&|p| Some(p.achieved_rate)),
                    ),
                    series(
                        "completed",
                        GREEN,
                        Style::Line,
                        points(&|p| Some(p.completed as f64)),
                    ),
                    series(
                        "errors",
                        RED,
                        Style::Bars,
                        points(&|p| Some(p.errors as f64)),
                    ),
                ],
                markers: &markers,
            },
            Chart {
                title: "In flight and dropped arrivals",
                unit: "journeys",
                x_max,
                series: vec![
                    series(
                        "in flight",
                        PURPLE,
                        Style::Line,
                        points(&|p| Some(p.in_flight as f64)),
                    ),
                    series(
                        "dropped",
                        RED,
                        Style::Bars,
                        points(&|p| Some(p.dropped as f64)),
                    ),
                ],
                markers: &markers,
            },
        ];
        for chart in &charts {
            out.push_str(&chart::render(chart));
        }
        out.push_str("</section>");
    }

    fn stats_tables(&self, out: &mut String) {
        let s = self.summary;
        out.push_str(
            "<section id=\"journeys\"><h2>Journeys</h2>\
             <p class=\"muted\">Latency in ms, corrected for coordinated omission (from the \
             intended start); the grey figure is uncorrected (from the moment of sending).</p>",
        );
        stats_table(out, "Journey", &s.journeys, Some(&s.overall), false);
        out.push_str("</section><section id=\"requests\"><h2>Requests</h2>");
        stats_table(out, "Request", &s.requests, None, true);
        out.push_str("</section>");
    }

    fn errors(&self, out: &mut String) {
        let s = self.summary;
        out.push_str("<section id=\"errors\"><h2>Errors</h2>");
        let mut kinds: BTreeMap<&str, ErrorKind<'_>> = BTreeMap::new();
        for journey in &s.journeys {
            for (kind, &n) in &journey.stats.errors_by_kind {
                let entry = kinds.entry(kind.as_str()).or_default();
                entry.journeys += n;
                entry.in_journeys.push((journey.name.as_str(), n));
            }
        }
        for request in &s.requests {
            for (kind, &n) in &request.stats.errors_by_kind {
                let entry = kinds.entry(kind.as_str()).or_default();
                entry.in_requests.push((request.name.as_str(), n));
            }
        }
        if kinds.is_empty() {
            out.push_str("<p class=\"ok-text\">No errors.</p></section>");
            return;
        }
        let mut rows: Vec<_> = kinds.into_iter().collect();
        rows.sort_by_key(|(_, kind)| std::cmp::Reverse(kind.journeys));
        let total: u64 = rows.iter().map(|(_, kind)| kind.journeys).sum();
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th>Kind</th><th class=\"num\">Journeys</th>\
             <th class=\"num\">Share</th><th>By journey</th><th>By request</th></tr></thead><tbody>",
        );
        let places = |list: &[(&str, u64)]| {
            let mut list = list.to_vec();
            list.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
            list.iter()
                .map(|(name, n)| format!("{} ×{n}", escape(name)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        for (name, kind) in &rows {
            let n = kind.journeys;
            let share = if total > 0 {
                n as f64 / total as f64
            } else {
                0.0
            };
            let _ = write!(
                out,
                "<tr><td class=\"err-text\">{}</td><td class=\"num\">{n}</td><td class=\"num\">{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                escape(name),
                format::percent(share),
                places(&kind.in_journeys),
                places(&kind.in_requests)
            );
        }
        out.push_str("</tbody></table></div></section>");
    }

    fn executors(&self, out: &mut String) {
        out.push_str("<section id=\"executors\"><h2>Executors</h2>");
        if self.summary.executors.is_empty() {
            out.push_str("<p class=\"muted\">None.</p></section>");
            return;
        }
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th>Executor</th><th>Kind</th>\
             <th class=\"num\">Start</th><th class=\"num\">Duration</th>\
             <th class=\"num\">Scheduled</th><th class=\"num\">Started</th>\
             <th class=\"num\">Dropped</th><th class=\"num\">Late</th>\
             <th class=\"num\">Max lateness ms</th><th class=\"num\">Target /s</th>\
             <th class=\"num\">Achieved /s</th></tr></thead><tbody>",
        );
        for e in &self.summary.executors {
            let dropped_class = if e.dropped > 0 { " err-text" } else { "" };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num{dropped_class}\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td></tr>",
                escape(&e.name),
                escape(&e.kind),
                format::seconds(e.start_s),
                format::seconds(e.duration_s),
                e.scheduled,
                e.started,
                e.dropped,
                e.late,
                format::ms(e.max_lateness_ms),
                format::rate(e.target_rate),
                format::rate(e.achieved_rate)
            );
        }
        out.push_str("</tbody></table></div></section>");
    }

    fn timeline(&self, out: &mut String) {
        out.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
        if self.summary.timeline.is_empty() {
            out.push_str("<p class=\"muted\">No timeline events.</p></section>");
            return;
        }
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th></th><th class=\"num\">Due</th>\
             <th class=\"num\">Fired</th><th>Action</th><th>Service</th><th>Detail</th>\
             <th class=\"num\">Took ms</th></tr></thead><tbody>",
        );
        for e in &self.summary.timeline {
            let mark = tick(e.ok);
            let error = e
                .error
                .as_deref()
                .map(|err| format!("<div class=\"err-text\">{}</div>", escape(err)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td>{mark}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>\
                 <td>{}</td><td>{}{error}</td><td class=\"num\">{}</td></tr>",
                format::seconds(e.at_s),
                format::seconds(e.fired_s),
                escape(&e.action),
                escape(&e.service),
                escape(&e.detail),
                format::ms(e.took_ms)
            );
        }
        out.push_str("</tbody></table></div></section>");
    }

    fn samples(&self, out: &mut String, id: &str, title: &str, samples: &[Sample]) {
        let _ = write!(out, "<section id=\"{id}\"><h2>{title}</h2>");
        if samples.is_empty() {
            out.push_str("<p class=\"muted\">None.</p></section>");
            return;
        }
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th class=\"num\">#</th><th>Journey</th>\
             <th>Request</th><th class=\"num\">Start</th><th class=\"num\">Latency ms</th>\
             <th class=\"num\">Status</th><th>Error</th><th>Trace</th></tr></thead><tbody>",
        );
        for (i, sample) in samples.iter().enumerate() {
            let status = sample.status.map(|s| s.to_string()).unwrap_or_default();
            let mut error = sample.error.as_deref().map(escape).unwrap_or_default();
            error.push_str(&self.explanation(sample.trace_id.as_deref()));
            let _ = write!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}<span class=\"unc\">{}</span></td><td class=\"num\">{status}</td>\
                 <td class=\"err-text\">{error}</td><td>{}</td></tr>",
                i + 1,
                escape(&sample.journey),
                escape(sample.request.as_deref().unwrap_or("")),
                format::seconds(sample.start_s),
                format::ms(sample.latency_ms),
                format::ms(sample.uncorrected_latency_ms),
                self.trace_cell(sample.trace_id.as_deref())
            );
        }
        out.push_str("</tbody></table></div></section>");
    }

    /// The log lines that explain a journey, from its captured trace (its
    /// ERROR records, else its WARN ones), beside its error.
    fn explanation(&self, trace_id: Option<&str>) -> String {
        trace_id
            .and_then(|id| self.traces.get(&id.to_ascii_lowercase()))
            .map(logs::explanation)
            .unwrap_or_default()
    }

    /// The trace id, with a link to its waterfall when captured and to
    /// Jaeger when configured.
    fn trace_cell(&self, trace_id: Option<&str>) -> String {
        let Some(raw) = trace_id else {
            return "<span class=\"muted\">—</span>".to_owned();
        };
        let id = raw.to_ascii_lowercase();
        if !is_trace_id(&id) {
            return format!("<code>{}</code>", escape(raw));
        }
        let mut cell = if self.traces.get(&id).is_some_and(|t| !t.is_empty()) {
            format!("<a class=\"trace-id\" href=\"#trace-{id}\"><code>{id}</code></a>")
        } else {
            format!("<code>{id}</code>")
        };
        if let Some(base) = self.jaeger {
            let _ = write!(
                cell,
                " <a class=\"jaeger\" href=\"{}/trace/{id}\" target=\"_blank\" rel=\"noopener\">Jaeger ↗</a>",
                escape(base)
            );
        }
        cell
    }

    fn waterfalls(&self, out: &mut String) {
        // In the order the samples appear (slowest first, then failed),
        // each trace once.
        let mut seen = HashSet::new();
        let wanted: Vec<(&Sample, String)> = self
            .summary
            .slowest
            .iter()
            .chain(&self.summary.failed)
            .filter_map(|sample| {
                let id = sample.trace_id.as_deref()?.to_ascii_lowercase();
                (is_trace_id(&id) && self.traces.get(&id).is_some_and(|t| !t.is_empty()))
                    .then_some((sample, id))
            })
            .filter(|(_, id)| seen.insert(id.clone()))
            .collect();
        if wanted.is_empty() {
            return;
        }
        out.push_str(
            "<section id=\"traces\"><h2>Traces</h2>\
             <p class=\"muted\">Captured spans of the journeys above: where the time went; \
             under each span, the log lines made in it (errors and warnings marked).</p>",
        );
        for (i, (sample, id)) in wanted.iter().enumerate() {
            let trace = &self.traces[id];
            waterfall::render(out, sample, id, trace, i < OPEN_WATERFALLS, self.jaeger);
        }
        out.push_str("</section>");
    }
}

/// One row of the error breakdown.
#[derive(Default)]
struct ErrorKind<'a> {
    /// Journeys that failed with it.
    journeys: u64,
    /// Where it happened: journey or request name, count.
    in_journeys: Vec<(&'a str, u64)>,
    in_requests: Vec<(&'a str, u64)>,
}

fn series(
    name: &str,
    colour: &'static str,
    style: Style,
    points: Vec<(f64, Option<f64>)>,
) -> Series {
    Series {
        name: name.to_owned(),
        colour,
        style,
        points,
    }
}

fn tick(ok: bool) -> &'static str {
    if ok {
        "<span class=\"ok-text\">✓</span>"
    } else {
        "<span class=\"err-text\">✗</span>"
    }
}

fn check_row(out: &mut String, check: &CheckResult) {
    let _ = write!(
        out,
        "<tr class=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        if check.passed { "" } else { "failed" },
        tick(check.passed),
        escape(&check.name),
        format::observed(check.observed),
        escape(&check.detail)
    );
}

fn stats_table(
    out: &mut String,
    what: &str,
    rows: &[NamedStats],
    overall: Option<&Stats>,
    statuses: bool,
) {
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">None ran.</p>");
        return;
    }
    let _ = write!(
        out,
        "<div class=\"scroll\"><table><thead><tr><th>{what}</th><th class=\"num\">Count</th>\
         <th class=\"num\">Rate /s</th><th class=\"num\">Errors</th><th class=\"num\">p50</th>\
         <th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">max</th>\
         <th>Errors by kind</th>{}</tr></thead><tbody>",
        if statuses { "<th>Statuses</th>" } else { "" }
    );
    for row in rows {
        stats_row(out, &escape(&row.name), &row.stats, statuses, "");
    }
    if let Some(overall) = overall {
        stats_row(out, "All journeys", overall, statuses, "total");
    }
    out.push_str("</tbody></table></div>");
}

/// `name` is already escaped (the total row's label is ours).
fn stats_row(out: &mut String, name: &str, stats: &Stats, statuses: bool, class: &str) {
    let latency = |corrected: f64, uncorrected: f64| {
        format!(
            "<td class=\"num\">{}<span class=\"unc\" title=\"uncorrected\">{}</span></td>",
            format::ms(corrected),
            format::ms(uncorrected)
        )
    };
    let (c, u) = (&stats.latency_ms, &stats.uncorrected_latency_ms);
    let error_class = if stats.errors > 0 { " err-text" } else { "" };
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num{error_class}\">{} <small>({})</small></td>{}{}{}{}<td>{}</td>",
        stats.count,
        format::rate(stats.rate),
        stats.errors,
        format::percent(stats.error_rate),
        latency(c.p50, u.p50),
        latency(c.p90, u.p90),
        latency(c.p99, u.p99),
        latency(c.max, u.max),
        escape(&format::kinds(&stats.errors_by_kind))
    );
    if statuses {
        let _ = write!(
            out,
            "<td>{}</td>",
            escape(&format::kinds(&stats.status_counts))
        );
    }
    out.push_str("</tr>");
}

/// Opens a collapsed waterfall when the address points at it (a click on a
/// trace id, or a shared link): `<details>` does not open by itself.
const SCRIPT: &str = "<script>function openTarget(){var e=document.getElementById(\
decodeURIComponent(location.hash.slice(1)));if(e&&e.tagName==='DETAILS'){e.open=true;}}\
addEventListener('hashchange',openTarget);openTarget();</script>";

const STYLE: &str = r#"
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--ok:#1a7f37;--err:#cf222e;--warn:#9a6700;--accent:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--bg:#0d1117;--soft:#161b22;--ok:#3fb950;--err:#f85149;--warn:#d29922;--accent:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:1.7em;margin:0}
h2{font-size:1.25em;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:1em;margin:18px 0 8px}
a{color:var(--accent)}
code{font:0.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.title{display:flex;align-items:center;gap:14px;flex-wrap:wrap}
.verdict{font-weight:700;letter-spacing:.05em;padding:3px 12px;border-radius:999px;color:#fff}
.verdict.ok{background:var(--ok)}.verdict.fail{background:var(--err)}
.lead{color:var(--muted);margin:6px 0 0}
.banner.fail{border-left:4px solid var(--err);background:var(--soft);padding:8px 12px}
.failures{color:var(--err);padding-left:18px;list-style:none}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:8px 20px;margin:16px 0 0}
.facts div{background:var(--soft);padding:8px 12px;border-radius:6px}
.facts dt{font-size:.78em;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.facts dd{margin:0;word-break:break-all}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:8px 0;margin-top:20px;display:flex;gap:16px;flex-wrap:wrap;z-index:2}
nav a{text-decoration:none;font-size:.92em}
.muted{color:var(--muted)}.ok-text{color:var(--ok)}.err-text{color:var(--err)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.failed td{background:color-mix(in srgb,var(--err) 8%,transparent)}
tr.total td{font-weight:600;border-top:2px solid var(--line)}
.unc{display:block;font-size:.8em;color:var(--muted);font-weight:400}
.chart{margin:16px 0 24px}
.chart figcaption{display:flex;justify-content:space-between;flex-wrap:wrap;gap:8px;margin-bottom:4px}
.chart-title{font-weight:600}
.legend{display:flex;gap:14px;font-size:.85em;color:var(--muted)}
.swatch{display:inline-block;width:14px;height:3px;margin-right:5px;vertical-align:middle}
.swatch.bar{height:10px;width:8px}
.chart svg{width:100%;height:auto;display:block;overflow:visible}
.chart text{font-size:11px;fill:var(--muted)}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .base{stroke:var(--muted);stroke-width:1}
line.marker{stroke:var(--fg);stroke-dasharray:3 3;opacity:.55}
line.marker.failed{stroke:var(--err);opacity:.9}
.marker text{fill:var(--fg);paint-order:stroke;stroke:var(--bg);stroke-width:3px;stroke-linejoin:round}
.marker.failed text{fill:var(--err)}
.hover rect{fill:transparent}.hover rect:hover{fill:var(--fg);opacity:.06}
details.trace{border:1px solid var(--line);border-radius:8px;margin:12px 0;padding:6px 12px}
details.trace summary{cursor:pointer;padding:4px 0}
details.trace:target{outline:2px solid var(--accent)}
.wf{font-size:.85em;margin:8px 0}
.wf-row{display:grid;grid-template-columns:minmax(90px,12%) minmax(180px,34%) 70px 1fr 80px;gap:8px;align-items:center;padding:3px 0;border-bottom:1px solid var(--line)}
.wf-head{color:var(--muted);font-weight:600}
.wf-row.err .op{color:var(--err)}
.svc{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.svc i{display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:6px}
.op{overflow-wrap:anywhere}
.attr{display:inline-block;margin:1px 0 1px 6px;padding:0 5px;border-radius:4px;background:var(--soft);color:var(--muted);font:0.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.lane{position:relative;height:12px;background:var(--soft);border-radius:3px}
.lane .bar{position:absolute;top:1px;bottom:1px;border-radius:2px;min-width:2px}
.wf .num{text-align:right;font-variant-numeric:tabular-nums}
.wf-log{border-bottom:1px dashed var(--line);color:var(--muted)}
.wf-log .log{overflow-wrap:anywhere}
.wf-log .lane{background:none}
.wf-log .tick{position:absolute;top:2px;bottom:2px;width:2px;background:var(--muted)}
.sev{display:inline-block;min-width:3.6em;padding:0 4px;border-radius:3px;background:var(--soft);color:var(--muted);font:0.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;text-align:center}
.msg{color:var(--fg)}
.log-warn{background:color-mix(in srgb,var(--warn) 10%,transparent)}
.log-warn .sev,.log-warn .tick{background:var(--warn);color:#fff}
.log-error{background:color-mix(in srgb,var(--err) 10%,transparent)}
.log-error .sev,.log-error .tick{background:var(--err);color:#fff}
.log-error .msg{color:var(--err);font-weight:600}
.logline{margin-top:4px;color:var(--fg);font-weight:400;padding:1px 4px;border-radius:4px}
footer{margin-top:40px;color:var(--muted);font-size:.85em}
@media (max-width:720px){.wf-row{grid-template-columns:1fr 1fr;}.wf-row .lane{grid-column:1/-1}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_jaeger_bases_are_linked() {
        assert_eq!(
            jaeger_base("http://localhost:16686/").as_deref(),
            Some("http://localhost:16686")
        );
        assert_eq!(
            jaeger_base(" HTTPS://jaeger.example ").as_deref(),
            Some("HTTPS://jaeger.example")
        );
        assert_eq!(jaeger_base("javascript:alert(1)"), None);
        assert_eq!(jaeger_base("/jaeger"), None);
        assert_eq!(jaeger_base("http://"), None);
    }
}
