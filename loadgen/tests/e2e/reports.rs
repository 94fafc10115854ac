//! report.html, the end-of-run table and the output directory, from a
//! populated summary and captured traces, through the public API.

use std::collections::BTreeMap;

use loadgen::{
    report::{self, html, table},
    summary::Summary,
};

use crate::report_fixture::{
    self, FAILED_LOG, FAILED_TRACE, HOSTILE, JAEGER, SLOW_TRACE, UNCAPTURED_TRACE,
};

fn page() -> String {
    html::render(&report_fixture::summary(), &report_fixture::traces())
}

/// The HTML of the waterfall anchored at `trace-<id>`.
fn waterfall(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"trace-{id}\""))
        .unwrap_or_else(|| panic!("no waterfall for {id}"));
    let end = page[start..].find("</details>").expect("waterfall ends") + start;
    page[start..end].to_owned()
}

#[test]
fn html_has_the_verdict_checks_and_tables() {
    let page = page();
    assert!(page.starts_with("<!doctype html>"));
    assert!(
        page.contains("checkout &lt;under&gt; faults"),
        "the title is escaped"
    );
    assert!(page.contains(">FAILED<"));
    assert!(page.contains("checkout: p99 &lt; 800ms"));
    assert!(page.contains("912.3"), "observed value");
    assert!(page.contains("✗") && page.contains("✓"));
    assert!(page.contains("503 dependency_unavailable ×10"));
    assert!(page.contains("201 ×988"), "request statuses");
    assert!(page.contains("control API answered 409: already scaling"));
    // Three charts, each with both timeline events as markers.
    assert_eq!(page.matches("<svg").count(), 3);
    assert_eq!(page.matches("<g class=\"marker\">").count(), 3);
    assert_eq!(page.matches("<g class=\"marker failed\">").count(), 3);
}

#[test]
fn samples_link_to_jaeger_and_to_captured_waterfalls() {
    let page = page();
    for id in [SLOW_TRACE, UNCAPTURED_TRACE, FAILED_TRACE] {
        assert!(
            page.contains(&format!("href=\"{JAEGER}/trace/{id}\"")),
            "Jaeger link for {id}"
        );
    }
    assert!(page.contains(&format!("href=\"#trace-{SLOW_TRACE}\"")));
    assert!(page.contains(&format!("href=\"#trace-{FAILED_TRACE}\"")));
    assert!(
        !page.contains(&format!("#trace-{UNCAPTURED_TRACE}")),
        "no waterfall link without captured spans"
    );
    assert!(!page.contains(&format!("id=\"trace-{UNCAPTURED_TRACE}\"")));
}

#[test]
fn waterfalls_show_each_span_in_tree_order_with_key_attributes() {
    let page = page();
    let slow = waterfall(&page, SLOW_TRACE);
    let rows: Vec<&str> = slow
        .split("<div class=\"wf-row")
        .skip(2)
        .filter(|row| !row.starts_with(" wf-log"))
        .collect();
    assert_eq!(rows.len(), 4, "one row per span: {slow}");
    let order: Vec<usize> = [
        "POST /api/checkout",
        "POST payments",
        "POST /payments",
        "INSERT payments",
    ]
    .iter()
    .map(|name| {
        slow.find(&format!(">{name}<"))
            .unwrap_or_else(|| panic!("{name} row"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "parents before children"
    );
    assert!(slow.contains("peer.service=payments"));
    assert!(slow.contains("retry.attempt=2"));
    assert!(slow.contains("http.response.status_code=201"));
    assert!(slow.contains("gateway") && slow.contains("payments"));
    assert!(
        slow.contains(">900.0<"),
        "start offset of the payments span"
    );

    let failed = waterfall(&page, FAILED_TRACE);
    assert!(failed.contains("wf-row err"), "the error span is marked");
    assert!(failed.contains("fault.injected=true"));
    assert!(failed.contains("error.type=503"));
    assert!(failed.contains("injected fault"), "the status message");
}

/// A failed journey's row shows the error line that explains it, and its
/// waterfall shows that line under the span that failed, marked as an
/// error, beside the other lines of the trace.
#[test]
fn failed_journeys_show_the_log_lines_that_explain_them() {
    let page = page();
    let failed_table = section(&page, "failed");
    assert!(failed_table.contains(FAILED_LOG), "{failed_table}");
    assert!(failed_table.contains("logline log-error"), "{failed_table}");
    assert!(
        !failed_table.contains("breaker half-open"),
        "a warning does not explain a journey that logged an error"
    );

    let failed = waterfall(&page, FAILED_TRACE);
    let rows: Vec<&str> = failed.split("<div class=\"wf-row").skip(2).collect();
    assert!(rows[0].contains("✗ POST /payments<"), "the span first");
    assert!(rows[1].starts_with(" wf-log log-error\""), "{}", rows[1]);
    assert!(rows[1].contains(FAILED_LOG) && rows[1].contains("destination=provider"));
    assert!(
        rows[2].starts_with(" wf-log log-warn\"") && rows[2].contains(">gateway<"),
        "a line from a span not captured, with its service: {}",
        rows[2]
    );

    let slow = waterfall(&page, SLOW_TRACE);
    assert!(slow.contains("retrying payments") && slow.contains("attempt=2"));
    assert!(
        !section(&page, "slowest").contains("retrying payments"),
        "an INFO line explains nothing"
    );
}

/// The `<section id="{id}">` of the page.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("section {id}"));
    let end = page[start..].find("</section>").expect("closed") + start;
    &page[start..end]
}

#[test]
fn outside_strings_cannot_inject_markup() {
    let page = page();
    assert!(!page.contains(HOSTILE));
    assert!(page.contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;"));
    // The only script is our own.
    assert_eq!(page.matches("<script").count(), 1);

    let mut summary = report_fixture::summary();
    summary.links.jaeger = Some("javascript:alert(1)".into());
    summary.slowest[0].trace_id = Some("\"><img src=x onerror=alert(1)>".into());
    let page = html::render(&summary, &BTreeMap::new());
    assert!(
        !page.contains("javascript:"),
        "a non-http Jaeger base is not linked"
    );
    assert!(!page.contains("<img"));
}

#[test]
fn the_page_loads_nothing_from_elsewhere() {
    let page = page();
    assert!(!page.contains("src="), "no external scripts or images");
    assert!(!page.contains("<link"), "no external stylesheets");
    assert!(
        !page.contains("@import") && !page.contains("url("),
        "no fetched CSS"
    );
    let external: Vec<&str> = page
        .match_indices("href=\"http")
        .map(|(at, _)| &page[at..at + page[at..].find('>').unwrap_or(0)])
        .filter(|link| !link.starts_with(&format!("href=\"{JAEGER}/trace/")))
        .collect();
    assert!(external.is_empty(), "{external:?}");

    let mut summary = report_fixture::summary();
    summary.links.jaeger = None;
    let page = html::render(&summary, &report_fixture::traces());
    assert!(!page.contains("href=\"http"), "no Jaeger, no outside links");
}

#[test]
fn table_has_journeys_executors_checks_and_the_verdict() {
    let text = table::render(&report_fixture::summary());
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // name, count, rate, p50, p90, p99, max (corrected), errors...
    assert_eq!(
        line("checkout")[..8],
        [
            "checkout", "1000", "16.7", "120.0", "240.0", "480.0", "960.0", "12"
        ]
    );
    assert_eq!(line("browse")[..3], ["browse", "2000", "33.3"]);
    assert!(line("all").contains(&"3000"));
    let executor = line("steady");
    assert!(executor.contains(&"10"), "dropped");
    assert!(
        executor.contains(&"0.33%"),
        "shortfall: 10 of 3000 not started"
    );
    assert!(text.contains("timeout ×2"));
    assert!(line("✗").contains(&"912.3"));
    assert!(text.contains("✓ "));
    assert!(text.contains("control API answered 409"));
    assert!(text.contains("FAILED: 1 check failed"));

    // Columns line up: every row of the journeys table has the count
    // right-aligned in the same place.
    let header = text
        .lines()
        .find(|l| l.contains("journey") && l.contains("count"))
        .unwrap();
    let count_end = header.find("count").unwrap() + "count".len();
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("checkout"))
        .unwrap();
    assert_eq!(&row[count_end - 4..count_end], "1000");
}

#[test]
fn write_creates_the_directory_and_both_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("runs/first");
    let summary = report_fixture::summary();
    report::write(&out, &summary, &report_fixture::traces()).expect("written");

    let json = std::fs::read_to_string(out.join(report::SUMMARY_FILE)).expect("summary.json");
    let back: Summary = serde_json::from_str(&json).expect("summary.json reads back");
    assert_eq!(back, summary);
    let page = std::fs::read_to_string(out.join(report::HTML_FILE)).expect("report.html");
    assert!(page.contains(&format!("id=\"trace-{SLOW_TRACE}\"")));
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("listable")
        .map(|e| e.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A path that cannot be a directory: a clear error naming it.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("written");
    let error = report::write(&file.join("out"), &summary, &BTreeMap::new()).expect_err("fails");
    assert!(error.to_string().contains("a-file"), "{error}");
}

#[test]
fn sample_trace_ids_lists_slowest_then_failed_once_each() {
    let mut summary = report_fixture::summary();
    summary.failed.push(summary.slowest[0].clone());
    assert_eq!(
        report::sample_trace_ids(&summary),
        [SLOW_TRACE, UNCAPTURED_TRACE, FAILED_TRACE]
    );
}

/// A marker label as drawn: its text's box in the chart's `viewBox` units.
#[derive(Debug)]
struct LabelBox {
    #[allow(dead_code, reason = "read through Debug, in failure messages")]
    text: String,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

/// The value of `name="..."` in a tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// Every marker label of every chart on the page, one list per chart, with
/// the chart's `viewBox` width and height. Text is measured at 0.6 em a
/// character of the page's 11px chart font: about what a sans-serif face
/// sets lowercase names in.
fn marker_labels(page: &str) -> Vec<(f64, f64, Vec<LabelBox>)> {
    const FONT: f64 = 11.0;
    page.split("<svg ")
        .skip(1)
        .map(|svg| {
            let svg = &svg[..svg.find("</svg>").expect("svg ends")];
            let view_box: Vec<f64> = attribute(&format!(" {svg}"), "viewBox")
                .expect("viewBox")
                .split(' ')
                .map(|n| n.parse().expect("number"))
                .collect();
            let labels = svg
                .split("<g class=\"marker")
                .skip(1)
                .filter_map(|marker| {
                    let tag_start = marker.find("<text ")?;
                    let tag_end = marker[tag_start..].find('>')? + tag_start;
                    let tag = &marker[tag_start..tag_end];
                    let text_end = marker[tag_end..].find("</text>")? + tag_end;
                    let text = marker[tag_end + 1..text_end]
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&amp;", "&");
                    let x: f64 = attribute(tag, "x")?.parse().ok()?;
                    let y: f64 = attribute(tag, "y")?.parse().ok()?;
                    let width = text.chars().count() as f64 * 0.6 * FONT;
                    let (left, right) = match attribute(tag, "text-anchor").as_deref() {
                        Some("end") => (x - width, x),
                        Some("middle") => (x - width / 2.0, x + width / 2.0),
                        _ => (x, x + width),
                    };
                    Some(LabelBox {
                        text,
                        left,
                        right,
                        top: y - 0.8 * FONT,
                        bottom: y + 0.2 * FONT,
                    })
                })
                .collect();
            (view_box[2], view_box[3], labels)
        })
        .collect()
}

#[test]
fn marker_labels_of_close_events_do_not_overlap() {
    use loadgen::summary::TimelineRecord;

    let event = |at_s: f64, action: &str, service: &str| TimelineRecord {
        at_s,
        fired_s: at_s,
        action: action.into(),
        service: service.into(),
        detail: String::new(),
        ok: true,
        error: None,
        took_ms: 1.0,
    };
    let mut summary = report_fixture::summary();
    summary.timeline = vec![
        // The case that was reported: a fault, then a crash 3 s later.
        event(42.0, "fault", "payments"),
        event(45.0, "crash", "payments"),
        // Five within two seconds, one with a long phase-like name.
        event(10.0, "scale", "users"),
        event(10.5, "restart", "gateway"),
        event(11.0, "phase", "ramp to peak load with promotions"),
        event(11.2, "fault", "courses"),
        event(12.0, "clear-fault", "courses"),
        // At the very end of the run.
        event(59.5, "stop", "notifications"),
        event(60.0, "restart", "payments"),
    ];
    let page = html::render(&summary, &report_fixture::traces());
    let charts = marker_labels(&page);
    assert_eq!(charts.len(), 3);
    for (width, height, labels) in charts {
        assert_eq!(labels.len(), summary.timeline.len(), "{labels:#?}");
        for label in &labels {
            assert!(
                label.left >= 0.0 && label.right <= width && label.top >= 0.0,
                "{label:?} is inside the {width}×{height} chart"
            );
        }
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                let apart = a.right <= b.left
                    || b.right <= a.left
                    || a.bottom <= b.top
                    || b.bottom <= a.top;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }
}
