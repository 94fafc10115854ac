//! The end-of-run summary printed to the terminal: what an operator reads
//! first, before opening report.html. Plain aligned text, so it survives
//! CI logs, `tee` and copy-paste into an issue.

use std::fmt::Write as _;

use load_engine::{NamedStats, Stats};

use super::format;
use crate::summary::{CheckResult, Summary};

/// Renders the summary as aligned plain-text tables, ending with the
/// verdict line.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let s = summary;
    let _ = writeln!(
        out,
        "Scenario {} — {} on {} ({}, {})",
        s.scenario.name,
        format::seconds(s.duration_s),
        s.scenario.target,
        s.scenario.platform,
        s.started_at
    );

    out.push_str("\nJourneys (latency in ms, corrected for coordinated omission)\n");
    stats_table(&mut out, "journey", &s.journeys, Some(&s.overall));
    if !s.requests.is_empty() {
        out.push_str("\nRequests\n");
        stats_table(&mut out, "request", &s.requests, None);
    }

    if !s.executors.is_empty() {
        out.push_str("\nExecutors\n");
        let mut table = Table::new(&[
            ("executor", Align::Left),
            ("kind", Align::Left),
            ("scheduled", Align::Right),
            ("started", Align::Right),
            ("dropped", Align::Right),
            ("shortfall", Align::Right),
            ("late", Align::Right),
            ("max late ms", Align::Right),
            ("target/s", Align::Right),
            ("achieved/s", Align::Right),
        ]);
        for e in &s.executors {
            let shortfall = if e.scheduled > 0 {
                e.scheduled.saturating_sub(e.started) as f64 / e.scheduled as f64
            } else {
                0.0
            };
            table.row(vec![
                e.name.clone(),
                e.kind.clone(),
                e.scheduled.to_string(),
                e.started.to_string(),
                e.dropped.to_string(),
                format::percent(shortfall),
                e.late.to_string(),
                format::ms(e.max_lateness_ms),
                format::rate(e.target_rate),
                format::rate(e.achieved_rate),
            ]);
        }
        out.push_str(&table.render());
    }

    checks(&mut out, "Thresholds", &s.thresholds);
    checks(&mut out, "Expectations", &s.expectations);

    if !s.timeline.is_empty() {
        // Every event, so a story that happened late or slowly shows too.
        out.push_str("\nTimeline\n");
        for e in &s.timeline {
            let _ = writeln!(
                out,
                "  {} {:>7} {} {}: {} (due {}, took {} ms)",
                if e.ok { "✓" } else { "✗" },
                format::seconds(e.fired_s),
                e.action,
                e.service,
                e.error.as_deref().unwrap_or(&e.detail),
                format::seconds(e.at_s),
                format::ms(e.took_ms),
            );
        }
    }

    out.push('\n');
    let verdict = &s.verdict;
    match (&verdict.aborted, verdict.passed) {
        (Some(reason), _) => {
            let _ = writeln!(out, "ABORTED: {reason}");
        }
        (None, true) => out.push_str("PASSED\n"),
        (None, false) => {
            let n = verdict.failures.len();
            let _ = writeln!(
                out,
                "FAILED: {n} check{} failed",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    for failure in &verdict.failures {
        let _ = writeln!(out, "  ✗ {failure}");
    }
    out
}

fn stats_table(out: &mut String, what: &str, rows: &[NamedStats], overall: Option<&Stats>) {
    if rows.is_empty() {
        out.push_str("  (none ran)\n");
        return;
    }
    let mut table = Table::new(&[
        (what, Align::Left),
        ("count", Align::Right),
        ("rate/s", Align::Right),
        ("p50", Align::Right),
        ("p90", Align::Right),
        ("p99", Align::Right),
        ("max", Align::Right),
        ("errors", Align::Right),
        ("error kinds", Align::Left),
    ]);
    let mut add = |name: &str, stats: &Stats| {
        let l = &stats.latency_ms;
        table.row(vec![
            name.to_owned(),
            stats.count.to_string(),
            format::rate(stats.rate),
            format::ms(l.p50),
            format::ms(l.p90),
            format::ms(l.p99),
            format::ms(l.max),
            if stats.errors > 0 {
                format!("{} ({})", stats.errors, format::percent(stats.error_rate))
            } else {
                "0".to_owned()
            },
            format::kinds(&stats.errors_by_kind),
        ]);
    };
    for row in rows {
        add(&row.name, &row.stats);
    }
    if let Some(overall) = overall.filter(|_| rows.len() > 1) {
        add("all", overall);
    }
    out.push_str(&table.render());
}

fn checks(out: &mut String, title: &str, checks: &[CheckResult]) {
    if checks.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    let mut table = Table::new(&[
        ("", Align::Left),
        ("check", Align::Left),
        ("observed", Align::Right),
        ("detail", Align::Left),
    ]);
    for check in checks {
        table.row(vec![
            if check.passed { "✓" } else { "✗" }.to_owned(),
            check.name.clone(),
            format::observed(check.observed),
            check.detail.clone(),
        ]);
    }
    out.push_str(&table.render());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns padded to their widest cell, two spaces apart, indented by two.
struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[(&str, Align)]) -> Self {
        Self {
            headers: headers.iter().map(|(h, a)| ((*h).to_owned(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        // Names come from scenario files: a newline or tab would break the
        // alignment of every row below it.
        let cells = cells
            .into_iter()
            .map(|c| c.replace(['\n', '\r', '\t'], " "))
            .collect();
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let widths: Vec<usize> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, (h, _))| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| width(c))
                    .chain([width(h)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let headers: Vec<String> = self.headers.iter().map(|(h, _)| h.clone()).collect();
        let mut out = String::new();
        for cells in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::from("  ");
            for (i, ((_, align), w)) in self.headers.iter().zip(&widths).enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(width(cell));
                if i > 0 {
                    line.push_str("  ");
                }
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let mut table = Table::new(&[("name", Align::Left), ("n", Align::Right)]);
        table.row(vec!["checkout".into(), "7".into()]);
        table.row(vec!["browse\tcatalog".into(), "1234".into()]);
        assert_eq!(
            table.render(),
            "  name               n\n  checkout           7\n  browse catalog  1234\n"
        );
    }
}
