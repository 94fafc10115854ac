//! Inline SVG time-series charts for report.html: a few lines and bars over
//! the run's seconds, with the timeline's events as labelled vertical
//! markers. Drawn here rather than by a charting script so the report is one
//! file that opens anywhere, offline, and shows the same thing everywhere.

use std::fmt::Write as _;

use super::format::escape;

/// Drawing area inside the `viewBox`; the SVG scales to its container, so
/// everything below is in `viewBox` units whatever the page's width.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 12.0;
/// The plot's own height; the rows of marker labels come on top of it.
const PLOT_HEIGHT: f64 = 186.0;
/// Room above the plot when there are few marker labels: the unit of the
/// y axis is written there.
const MIN_TOP: f64 = 30.0;
const BOTTOM: f64 = 24.0;

/// Marker labels longer than this are cut (the full text is in the tooltip).
const MARKER_LABEL_CHARS: usize = 28;
/// The page's `.chart text` font size, in `viewBox` units.
const LABEL_FONT: f64 = 11.0;
/// Baseline of the first row of marker labels, and the distance between
/// rows: a line of 11-unit text with room for descenders.
const LABEL_FIRST_BASELINE: f64 = 11.0;
const LABEL_ROW: f64 = 13.0;
/// Between a marker's line and its label, and between two labels on a row.
const LABEL_PAD: f64 = 3.0;
const LABEL_GAP: f64 = 6.0;
/// Between the last row of labels and the top of the plot.
const LABELS_TO_PLOT: f64 = 6.0;
/// An SVG drawn taller than this many pixels per `viewBox` unit of height
/// is squeezed (the chart stays on screen); more label rows raise the cap
/// with the height, so the plot keeps its size.
const MAX_PX_PER_UNIT: f64 = 1.25;

pub struct Chart<'a> {
    /// Also the `aria-label`.
    pub title: &'a str,
    /// Unit of the y axis, shown beside its ticks (`ms`, `/s`).
    pub unit: &'a str,
    /// The x axis runs from 0 to this many seconds.
    pub x_max: f64,
    pub series: Vec<Series>,
    pub markers: &'a [Marker],
}

pub struct Series {
    pub name: String,
    /// A CSS colour; ours, never from input.
    pub colour: &'static str,
    pub style: Style,
    /// `(seconds, value)`; `None` breaks a line (nothing measured then).
    pub points: Vec<(f64, Option<f64>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Dashed,
    /// One bar per point, one second wide.
    Bars,
}

/// A timeline event drawn across the chart.
pub struct Marker {
    pub at_s: f64,
    pub label: String,
    /// Shown on hover.
    pub detail: String,
    pub failed: bool,
}

/// A `<figure>` with the title, an HTML legend and the SVG.
pub fn render(chart: &Chart<'_>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<figure class=\"chart\"><figcaption><span class=\"chart-title\">{}</span><span class=\"legend\">",
        escape(chart.title)
    );
    for series in &chart.series {
        let swatch = if series.style == Style::Bars {
            "swatch bar"
        } else {
            "swatch"
        };
        let _ = write!(
            out,
            "<span><i class=\"{swatch}\" style=\"background:{}\"></i>{}</span>",
            series.colour,
            escape(&series.name)
        );
    }
    out.push_str("</span></figcaption>");

    let values = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite());
    let y_top = values.fold(0.0_f64, f64::max);
    if chart.series.iter().all(|s| s.points.is_empty()) {
        out.push_str("<p class=\"muted\">No data.</p></figure>");
        return out;
    }
    let y_step = nice_step(y_top / 4.0);
    let y_max = (y_top / y_step).ceil().max(1.0) * y_step;
    let x_max = if chart.x_max.is_finite() && chart.x_max > 0.0 {
        chart.x_max
    } else {
        1.0
    };
    let labels = layout_labels(chart.markers, x_max);
    let rows = labels
        .iter()
        .flatten()
        .map(|l| l.row + 1)
        .max()
        .unwrap_or(0);
    let top = (LABEL_FIRST_BASELINE + rows.saturating_sub(1) as f64 * LABEL_ROW + LABELS_TO_PLOT)
        .max(MIN_TOP);
    let plot = Plot { x_max, y_max, top };
    let height = plot.height();

    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {height}\" style=\"max-height:{:.0}px\" role=\"img\" \
         aria-label=\"{}\" preserveAspectRatio=\"none\">",
        height * MAX_PX_PER_UNIT,
        escape(chart.title)
    );
    axes(&mut out, &plot, y_step, chart.unit);
    for series in &chart.series {
        match series.style {
            Style::Bars => bars(&mut out, &plot, series),
            Style::Line | Style::Dashed => line(&mut out, &plot, series),
        }
    }
    markers(&mut out, &plot, chart.markers, &labels);
    hover_columns(&mut out, &plot, chart);
    out.push_str("</svg></figure>");
    out
}

struct Plot {
    x_max: f64,
    y_max: f64,
    /// Where the plot starts: below the marker labels.
    top: f64,
}

impl Plot {
    fn x(&self, seconds: f64) -> f64 {
        x_at(seconds, self.x_max)
    }

    fn y(&self, value: f64) -> f64 {
        self.bottom() - (value / self.y_max).clamp(0.0, 1.0) * PLOT_HEIGHT
    }

    fn bottom(&self) -> f64 {
        self.top + PLOT_HEIGHT
    }

    fn height(&self) -> f64 {
        self.bottom() + BOTTOM
    }

    /// Width of one second on the x axis.
    fn second(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.x_max
    }
}

fn x_at(seconds: f64, x_max: f64) -> f64 {
    LEFT + (seconds / x_max).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
}

/// The 1-2-5 step at or above `raw`, so ticks land on round numbers.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn tick_label(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1_000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

fn axes(out: &mut String, plot: &Plot, y_step: f64, unit: &str) {
    out.push_str("<g class=\"axis\">");
    let mut value = 0.0;
    while value <= plot.y_max + y_step / 2.0 {
        let y = plot.y(value);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick_label(value)
        );
        value += y_step;
    }
    let _ = write!(
        out,
        "<text x=\"4\" y=\"{:.1}\">{}</text>",
        plot.top - 6.0,
        escape(unit)
    );
    let x_step = nice_step(plot.x_max / 8.0).max(1.0);
    let mut second = 0.0;
    while second <= plot.x_max + 1e-9 {
        let x = plot.x(second);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            plot.height() - 6.0,
            tick_label(second)
        );
        second += x_step;
    }
    let bottom = plot.bottom();
    let _ = write!(
        out,
        "<line class=\"base\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom}\" y2=\"{bottom}\"/></g>",
        WIDTH - RIGHT
    );
}

fn line(out: &mut String, plot: &Plot, series: &Series) {
    let dash = if series.style == Style::Dashed {
        " stroke-dasharray=\"6 4\""
    } else {
        ""
    };
    // One polyline per unbroken run of points.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in &series.points {
        match (y.filter(|v| v.is_finite()), runs.last_mut()) {
            (Some(y), Some(run)) => run.push((x, y)),
            (None, Some(run)) if !run.is_empty() => runs.push(Vec::new()),
            _ => {}
        }
    }
    for run in runs.iter().filter(|r| !r.is_empty()) {
        if let [(x, y)] = run[..] {
            // A single point has no line to draw: a dot instead.
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                plot.x(x),
                plot.y(y),
                series.colour
            );
            continue;
        }
        let points: Vec<String> = run
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", plot.x(x), plot.y(y)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"{dash} points=\"{}\"/>",
            series.colour,
            points.join(" ")
        );
    }
}

fn bars(out: &mut String, plot: &Plot, series: &Series) {
    let width = (plot.second() * 0.8).max(1.0);
    let bottom = plot.y(0.0);
    let _ = write!(out, "<g fill=\"{}\" opacity=\"0.75\">", series.colour);
    for &(x, y) in &series.points {
        let Some(y) = y.filter(|v| v.is_finite() && *v > 0.0) else {
            continue;
        };
        // The point is the end of its second: the bar covers that second.
        let top = plot.y(y);
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\"/>",
            plot.x(x) - plot.second() + (plot.second() - width) / 2.0,
            (bottom - top).max(0.5)
        );
    }
    out.push_str("</g>");
}

/// Where a marker's label goes: which row above the plot, which side of the
/// marker's line, and the box its text takes (estimated, in `viewBox`
/// units).
#[derive(Debug)]
struct LabelPlace {
    text: String,
    /// Row 0 is the top one; the marker's line starts under its label and
    /// crosses the rows below it.
    row: usize,
    /// The label ends at the line (an event near the right edge) rather
    /// than starting there.
    before_line: bool,
    left: f64,
    right: f64,
}

impl LabelPlace {
    fn baseline(&self) -> f64 {
        LABEL_FIRST_BASELINE + self.row as f64 * LABEL_ROW
    }
}

/// A generous estimate of how wide `text` is drawn at [`LABEL_FONT`]: the
/// browser picks the font, so a label is given more room than common
/// sans-serif faces take. Chromium with DejaVu Sans, a wide default, drew
/// labels like `crash payments` at 0.48–0.57 em a character; this gives
/// them about 0.66.
fn label_width(text: &str) -> f64 {
    let ems: f64 = text
        .chars()
        .map(|c| match c {
            'm' | 'w' | 'M' | 'W' => 0.95,
            c if c.is_ascii_uppercase() => 0.78,
            c if c.is_ascii() => 0.64,
            // CJK, emoji, `…`: about a full em.
            _ => 1.0,
        })
        .sum();
    ems * LABEL_FONT
}

/// Places every marker's label so that no two overlap, however close the
/// events: left to right, each label goes on the first row (from the top)
/// where it clears the labels already there; a label that would run past
/// the right edge is drawn on the other side of its line. Deterministic:
/// the same markers give the same layout on every chart of a report.
fn layout_labels(markers: &[Marker], x_max: f64) -> Vec<Option<LabelPlace>> {
    let mut order: Vec<usize> = (0..markers.len())
        .filter(|&i| markers[i].at_s.is_finite())
        .collect();
    order.sort_by(|&a, &b| markers[a].at_s.total_cmp(&markers[b].at_s).then(a.cmp(&b)));

    let mut places: Vec<Option<LabelPlace>> = markers.iter().map(|_| None).collect();
    // The (left, right) extents taken on each row so far.
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    for i in order {
        let marker = &markers[i];
        let mut text: String = marker.label.chars().take(MARKER_LABEL_CHARS).collect();
        if marker.label.chars().count() > MARKER_LABEL_CHARS {
            text.push('…');
        }
        let x = x_at(marker.at_s, x_max);
        let width = label_width(&text);
        let before_line = x + LABEL_PAD + width > WIDTH;
        let (left, right) = if before_line {
            (x - LABEL_PAD - width, x - LABEL_PAD)
        } else {
            (x + LABEL_PAD, x + LABEL_PAD + width)
        };
        let clear = |taken: &Vec<(f64, f64)>| {
            taken
                .iter()
                .all(|&(l, r)| right + LABEL_GAP <= l || r + LABEL_GAP <= left)
        };
        let row = match rows.iter().position(clear) {
            Some(row) => row,
            None => {
                rows.push(Vec::new());
                rows.len() - 1
            }
        };
        rows[row].push((left, right));
        places[i] = Some(LabelPlace {
            text,
            row,
            before_line,
            left,
            right,
        });
    }
    places
}

/// Every line first, then every label, so a line that crosses another
/// marker's label runs under the text (whose halo, in the page's CSS, keeps
/// it readable).
fn markers(out: &mut String, plot: &Plot, markers: &[Marker], labels: &[Option<LabelPlace>]) {
    let class = |marker: &Marker| {
        if marker.failed {
            "marker failed"
        } else {
            "marker"
        }
    };
    out.push_str("<g class=\"marker-lines\">");
    for (marker, label) in markers.iter().zip(labels) {
        let Some(label) = label else { continue };
        let x = plot.x(marker.at_s);
        let _ = write!(
            out,
            "<line class=\"{}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            class(marker),
            label.baseline() + 3.0,
            plot.bottom(),
        );
    }
    out.push_str("</g>");
    for (marker, label) in markers.iter().zip(labels) {
        let Some(label) = label else { continue };
        let (x, anchor) = if label.before_line {
            (label.right, "end")
        } else {
            (label.left, "start")
        };
        let _ = write!(
            out,
            "<g class=\"{}\"><title>{}</title>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
            class(marker),
            escape(&marker.detail),
            label.baseline(),
            escape(&label.text)
        );
    }
}

/// One invisible column per second whose tooltip lists every series' value
/// then: exact numbers without a script.
fn hover_columns(out: &mut String, plot: &Plot, chart: &Chart<'_>) {
    let Some(longest) = chart.series.iter().max_by_key(|s| s.points.len()) else {
        return;
    };
    let width = plot.second().max(0.5);
    out.push_str("<g class=\"hover\">");
    for (i, &(x, _)) in longest.points.iter().enumerate() {
        let mut tip = format!("t = {} s", tick_label(x));
        for series in &chart.series {
            if let Some((_, value)) = series.points.get(i) {
                let value = value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"));
                let _ = write!(tip, "\n{}: {value}", series.name);
            }
        }
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{PLOT_HEIGHT}\"><title>{}</title></rect>",
            plot.x(x) - plot.second(),
            plot.top,
            escape(&tip)
        );
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(230.0), 500.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn a_gap_breaks_the_line_and_markers_are_escaped() {
        let markers = [Marker {
            at_s: 5.0,
            label: "fault <payments>".into(),
            detail: "error 503 on <payments>".into(),
            failed: true,
        }];
        let svg = render(&Chart {
            title: "Latency",
            unit: "ms",
            x_max: 10.0,
            series: vec![Series {
                name: "p99".into(),
                colour: "#d9480f",
                style: Style::Line,
                points: vec![
                    (1.0, Some(5.0)),
                    (2.0, Some(6.0)),
                    (3.0, None),
                    (4.0, Some(7.0)),
                    (5.0, Some(8.0)),
                ],
            }],
            markers: &markers,
        });
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("fault &lt;payments&gt;"));
        assert!(!svg.contains("<payments>"));
        assert!(svg.contains("class=\"marker failed\""));
    }

    fn marker(at_s: f64, label: &str) -> Marker {
        Marker {
            at_s,
            label: label.into(),
            detail: format!("{label} at {at_s} s"),
            failed: false,
        }
    }

    fn chart_with(markers: &[Marker], x_max: f64) -> String {
        render(&Chart {
            title: "Throughput",
            unit: "/s",
            x_max,
            series: vec![Series {
                name: "completed".into(),
                colour: "#2f9e44",
                style: Style::Line,
                points: (1..=x_max as u32)
                    .map(|t| (f64::from(t), Some(50.0)))
                    .collect(),
            }],
            markers,
        })
    }

    /// A drawn marker label: its text and the box it takes in `viewBox`
    /// units, read back from the SVG.
    #[derive(Debug)]
    struct Drawn {
        #[allow(dead_code, reason = "read through Debug, in failure messages")]
        text: String,
        left: f64,
        right: f64,
        top: f64,
        bottom: f64,
    }

    fn attribute(tag: &str, name: &str) -> f64 {
        let start = tag.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        let end = tag[start..].find('"').expect("quoted") + start;
        tag[start..end].parse().expect("a number")
    }

    /// The labels of `svg` and the top of its plot (the hover columns start
    /// there).
    fn drawn_labels(svg: &str) -> (Vec<Drawn>, f64) {
        let labels = svg
            .split("<g class=\"marker")
            .skip(1)
            // Not the group of lines, `marker-lines`.
            .filter(|group| !group.starts_with('-'))
            .map(|group| {
                let tag_start = group.find("<text ").expect("a label");
                let tag_end = group[tag_start..].find('>').expect("tag ends") + tag_start;
                let tag = &group[tag_start..tag_end];
                let text_end = group[tag_end..].find("</text>").expect("text ends") + tag_end;
                let text = group[tag_end + 1..text_end].to_owned();
                let (x, y) = (attribute(tag, "x"), attribute(tag, "y"));
                let width = label_width(&text);
                let (left, right) = if tag.contains("text-anchor=\"end\"") {
                    (x - width, x)
                } else {
                    (x, x + width)
                };
                Drawn {
                    text,
                    left,
                    right,
                    // Ascenders and descenders of an 11-unit font.
                    top: y - 0.8 * LABEL_FONT,
                    bottom: y + 0.25 * LABEL_FONT,
                }
            })
            .collect();
        let hover = svg
            .find("<g class=\"hover\"><rect ")
            .expect("hover columns");
        (labels, attribute(&svg[hover..], "y"))
    }

    /// Every label is drawn, inside the chart, above the plot, and clear of
    /// every other label.
    fn assert_readable(markers: &[Marker], x_max: f64) {
        let svg = chart_with(markers, x_max);
        let (labels, plot_top) = drawn_labels(&svg);
        assert_eq!(labels.len(), markers.len(), "{svg}");
        for label in &labels {
            assert!(
                label.left >= 0.0 && label.right <= WIDTH,
                "{label:?} runs off the chart"
            );
            assert!(
                label.top >= 0.0 && label.bottom <= plot_top,
                "{label:?} is not above the plot (top {plot_top})"
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

    #[test]
    fn a_fault_and_a_crash_three_seconds_apart_are_both_readable() {
        // With a restart between them, as reported: alternating two rows
        // put the fault and the crash on the same one.
        let events = [
            marker(42.0, "fault payments"),
            marker(43.5, "restart users"),
            marker(45.0, "crash payments"),
        ];
        assert_readable(&events, 60.0);
        // Long runs squeeze seconds closer: the same events, ten minutes in.
        assert_readable(&events, 600.0);
    }

    #[test]
    fn five_close_events_with_long_names_at_the_right_edge_are_all_readable() {
        let close = [
            marker(57.0, "phase ramp to peak load with promotions"),
            marker(57.5, "fault payments"),
            marker(58.0, "kill-replica users"),
            marker(59.0, "restart gateway"),
            marker(60.0, "clear-fault payments"),
        ];
        assert_readable(&close, 60.0);
        let svg = chart_with(&close, 60.0);
        assert!(
            svg.contains("text-anchor=\"end\">clear-fault payments<"),
            "the last label ends at its line: {svg}"
        );
        assert!(svg.contains(">phase ramp to peak load with…<"));
    }

    #[test]
    fn many_events_in_the_same_second_each_get_a_row() {
        let same: Vec<Marker> = (0..12)
            .map(|i| marker(30.0, &format!("scale users-{i}")))
            .collect();
        assert_readable(&same, 60.0);
    }

    #[test]
    fn labels_never_overlap_whatever_the_events() {
        // A fixed pseudo-random walk (xorshift) over event counts, times,
        // name lengths and run lengths: deterministic, and wide enough to
        // meet the corners (same second, edges, truncated names).
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let names = ["fault", "crash users", "W", "restart notifications", "é"];
        for _ in 0..200 {
            let x_max = 1.0 + next(900) as f64;
            let markers: Vec<Marker> = (0..next(12))
                .map(|_| {
                    let name = names[next(names.len() as u64) as usize];
                    let label = name.repeat(1 + next(4) as usize);
                    marker(next(x_max as u64 * 10 + 1) as f64 / 10.0, &label)
                })
                .collect();
            assert_readable(&markers, x_max);
        }
    }

    #[test]
    fn more_label_rows_make_the_chart_taller_not_the_plot_smaller() {
        let height = |svg: &str| {
            let start = svg.find("viewBox=\"0 0 960 ").expect("viewBox") + 17;
            let end = svg[start..].find('"').expect("quoted") + start;
            svg[start..end].parse::<f64>().expect("a number")
        };
        let one = chart_with(&[marker(10.0, "fault payments")], 60.0);
        let five: Vec<Marker> = (0..5)
            .map(|i| marker(10.0 + f64::from(i) * 0.5, "fault payments"))
            .collect();
        let five = chart_with(&five, 60.0);
        assert_eq!(height(&one), MIN_TOP + PLOT_HEIGHT + BOTTOM);
        assert_eq!(height(&five), height(&one) + 3.0 * LABEL_ROW);
    }
}
