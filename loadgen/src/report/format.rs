//! How values read in both reports: the terminal table and report.html
//! print the same values the same way, and report.html escapes every text
//! it did not write itself.

use std::borrow::Cow;
use std::collections::BTreeMap;

use otlp_sink::span::AttrValue;

/// The report's palette: series and markers in charts, errors in waterfalls.
pub(super) const BLUE: &str = "#1c7ed6";
pub(super) const ORANGE: &str = "#e8590c";
pub(super) const GREY: &str = "#868e96";
pub(super) const GREEN: &str = "#2f9e44";
pub(super) const RED: &str = "#e03131";
pub(super) const PURPLE: &str = "#7048e8";

/// Milliseconds with precision that shrinks as they grow: `0.84`, `12.3`,
/// `912`. Non-finite values (nothing measured) print as `–`.
pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    let abs = value.abs();
    if abs < 10.0 {
        format!("{value:.2}")
    } else if abs < 1_000.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A rate per second, one decimal.
pub fn rate(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "–".to_owned()
    }
}

/// A ratio as a percentage: `0.0123` → `1.23%`.
pub fn percent(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:.2}%", ratio * 100.0)
    } else {
        "–".to_owned()
    }
}

/// Seconds, one decimal: `60.0 s`.
pub fn seconds(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1} s")
    } else {
        "–".to_owned()
    }
}

/// A check's observed value, in whatever unit the check uses: up to four
/// significant digits, without trailing zeros.
pub fn observed(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => {
            let digits = if v == 0.0 {
                0
            } else {
                (3 - v.abs().log10().floor() as i32).clamp(0, 6)
            };
            let text = format!("{v:.prec$}", prec = digits as usize);
            if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                text
            }
        }
        _ => "—".to_owned(),
    }
}

/// Counts by kind, most frequent first (ties by name): `timeout ×12, 503 ×3`.
pub fn kinds(counts: &BTreeMap<String, u64>) -> String {
    by_count(counts)
        .iter()
        .map(|(kind, n)| format!("{kind} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Entries sorted by count, largest first; the map's own (name) order
/// breaks ties, so the output is stable.
pub fn by_count(counts: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut entries: Vec<(&str, u64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    entries.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    entries
}

/// An attribute's value as text: strings as they are, lists and maps as
/// JSON. Not escaped (the report escapes it for HTML, `loadgen receive`
/// quotes it for a terminal).
pub fn attr_text(value: &AttrValue) -> Cow<'_, str> {
    match value {
        AttrValue::String(s) => Cow::Borrowed(s),
        AttrValue::Bool(b) => Cow::Owned(b.to_string()),
        AttrValue::Int(i) => Cow::Owned(i.to_string()),
        AttrValue::Double(d) => Cow::Owned(d.to_string()),
        AttrValue::Empty => Cow::Borrowed(""),
        other => Cow::Owned(serde_json::to_string(other).unwrap_or_default()),
    }
}

/// Escapes text for HTML element content and quoted attribute values:
/// the web pages' own (`mesh::web`).
pub use mesh::web::escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_keep_about_three_significant_digits() {
        assert_eq!(ms(0.842), "0.84");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(912.34), "912.3");
        assert_eq!(ms(12_345.6), "12346");
        assert_eq!(ms(f64::NAN), "–");
    }

    #[test]
    fn observed_values_drop_trailing_zeros() {
        assert_eq!(observed(Some(912.3)), "912.3");
        assert_eq!(observed(Some(0.0123)), "0.0123");
        assert_eq!(observed(Some(2.0)), "2");
        assert_eq!(observed(Some(0.0)), "0");
        assert_eq!(observed(Some(123_456.0)), "123456");
        assert_eq!(observed(None), "—");
    }

    #[test]
    fn kinds_list_the_most_frequent_first() {
        let counts = BTreeMap::from([
            ("503 dependency_unavailable".to_owned(), 3),
            ("timeout".to_owned(), 12),
            ("connect".to_owned(), 3),
        ]);
        assert_eq!(
            kinds(&counts),
            "timeout ×12, 503 dependency_unavailable ×3, connect ×3"
        );
    }

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
