//! Inline SVG time-series charts for report.html: a few lines and bars over
//! the run's seconds, with the timeline's events as labelled vertical
//! markers. Drawn here rather than by a charting script so the report is one
//! file that opens anywhere, offline, and shows the same thing everywhere.

use std::fmt::Write as _;

use super::html::escape;

/// Drawing area inside the `viewBox`; the SVG scales to its container.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 12.0;
/// Room above the plot for two staggered rows of marker labels.
const TOP: f64 = 30.0;
const BOTTOM: f64 = 24.0;

/// Marker labels longer than this are cut (the full text is in the tooltip).
const MARKER_LABEL_CHARS: usize = 28;

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
    let plot = Plot { x_max, y_max };

    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"none\">",
        escape(chart.title)
    );
    axes(&mut out, &plot, y_step, chart.unit);
    for series in &chart.series {
        match series.style {
            Style::Bars => bars(&mut out, &plot, series),
            Style::Line | Style::Dashed => line(&mut out, &plot, series),
        }
    }
    markers(&mut out, &plot, chart.markers);
    hover_columns(&mut out, &plot, chart);
    out.push_str("</svg></figure>");
    out
}

struct Plot {
    x_max: f64,
    y_max: f64,
}

impl Plot {
    fn x(&self, seconds: f64) -> f64 {
        LEFT + (seconds / self.x_max).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        let bottom = HEIGHT - BOTTOM;
        bottom - (value / self.y_max).clamp(0.0, 1.0) * (bottom - TOP)
    }

    /// Width of one second on the x axis.
    fn second(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / self.x_max
    }
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
        TOP - 6.0,
        escape(unit)
    );
    let x_step = nice_step(plot.x_max / 8.0).max(1.0);
    let mut second = 0.0;
    while second <= plot.x_max + 1e-9 {
        let x = plot.x(second);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            HEIGHT - 6.0,
            tick_label(second)
        );
        second += x_step;
    }
    let bottom = HEIGHT - BOTTOM;
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

fn markers(out: &mut String, plot: &Plot, markers: &[Marker]) {
    for (i, marker) in markers.iter().enumerate() {
        if !marker.at_s.is_finite() {
            continue;
        }
        let x = plot.x(marker.at_s);
        let class = if marker.failed {
            "marker failed"
        } else {
            "marker"
        };
        // Alternate rows so neighbouring events do not print over each other.
        let label_y = if i % 2 == 0 { 11.0 } else { 23.0 };
        let anchor = if x > WIDTH * 0.8 { "end" } else { "start" };
        let mut label: String = marker.label.chars().take(MARKER_LABEL_CHARS).collect();
        if marker.label.chars().count() > MARKER_LABEL_CHARS {
            label.push('…');
        }
        let _ = write!(
            out,
            "<g class=\"{class}\"><title>{}</title>\
             <line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{label_y}\" text-anchor=\"{anchor}\">{}</text></g>",
            escape(&marker.detail),
            label_y + 3.0,
            HEIGHT - BOTTOM,
            if anchor == "end" { x - 3.0 } else { x + 3.0 },
            escape(&label)
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
            "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
            plot.x(x) - plot.second(),
            HEIGHT - BOTTOM - TOP,
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
}
