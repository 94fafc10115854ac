//! Reading a service's `/metrics` (OpenMetrics or Prometheus text) into
//! samples, exemplars included: how tests and scenario expectations check
//! what an operator would see.
//!
//! Only the sample lines are parsed (`# TYPE`/`# HELP` are skipped); that
//! is all a check against a scrape needs.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value # {exemplar labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub exemplar: Option<Exemplar>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether every `(key, value)` pair is among the labels.
    pub fn has_labels(&self, want: &[(&str, &str)]) -> bool {
        want.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses exposition text; malformed lines are an error naming the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).ok_or_else(|| format!("cannot parse metrics line: {l}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { samples })
    }

    /// Samples named `name` carrying all of `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && s.has_labels(labels))
    }

    /// The sum of the values of the matching samples (0 if none match).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map(|s| s.value).sum()
    }
}

/// `{a="x",b="y"}` starting at `s[0] == '{'`; returns labels and the rest.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{')?;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key, value);
        rest = &rest[end + 1..];
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        v => v.parse().ok(),
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_owned();
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let (sample_part, exemplar_part) = match rest.split_once(" # ") {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let value = parse_value(sample_part.split_whitespace().next()?)?;
    let exemplar = match exemplar_part {
        Some(e) => {
            let (labels, rest) = parse_labels(e.trim_start())?;
            let value = parse_value(rest.split_whitespace().next()?)?;
            Some(Exemplar { labels, value })
        }
        None => None,
    };
    Some(Sample {
        name,
        labels,
        value,
        exemplar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_and_exemplars() {
        let text = r#"# TYPE x histogram
x_bucket{le="0.005",service="gateway",route="/api/{id}"} 3 # {trace_id="abc"} 0.0012
x_count{service="gateway"} 3
process_cpu_seconds_total 0.08
weird{msg="a \"quoted\" \\ value"} +Inf
# EOF
"#;
        let scrape = Scrape::parse(text).unwrap();
        assert_eq!(scrape.samples.len(), 4);
        let b = &scrape.samples[0];
        assert_eq!(b.name, "x_bucket");
        assert_eq!(b.label("route"), Some("/api/{id}"));
        assert_eq!(b.value, 3.0);
        let e = b.exemplar.as_ref().unwrap();
        assert_eq!(e.labels["trace_id"], "abc");
        assert_eq!(e.value, 0.0012);
        assert_eq!(scrape.sum("x_count", &[("service", "gateway")]), 3.0);
        assert_eq!(scrape.samples[2].value, 0.08);
        assert_eq!(
            scrape.samples[3].label("msg"),
            Some(r#"a "quoted" \ value"#)
        );
        assert!(scrape.samples[3].value.is_infinite());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Scrape::parse("x{a=\"1\" 3").is_err());
        assert!(Scrape::parse("x notanumber").is_err());
    }
}
