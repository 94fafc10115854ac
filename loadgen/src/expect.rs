//! Expectations: signals a scenario should make the system produce,
//! checked from the services' own `/metrics` (what an operator's
//! Prometheus would see), not from the load generator's side.
//!
//! ```toml
//! [[expect]]
//! name = "the gateway's breaker to payments opens"
//! service = "gateway"
//! metric = "http_client_circuit_breaker_transitions_total"
//! labels = { destination = "payments", state = "open" }
//! check = "increase >= 1"
//! during = ["10s", "40s"]
//! ```
//!
//! A [`Watcher`] scrapes every replica of the services the expectations
//! name once a second while the run lasts, asking the platform for the
//! replicas each time (so replicas added by a scale are scraped too), and
//! keeps only the series the expectations select. [`Observations::evaluate`]
//! then judges each one:
//!
//! - `increase`: the sum over series of the counter's increase within the
//!   window. A value that went down is a reset (the replica restarted):
//!   its new value is all increase. A series that was not there at the
//!   first scrape (a replica started during the run, a label set seen for
//!   the first time, a restarted process with a new `service_instance_id`)
//!   counts from 0.
//! - `max` / `min`: over every scrape in the window and every series.
//! - `last`: the sum across series at the last scrape in the window.
//!
//! `observations.rs` keeps and judges what the scrapes saw; `watcher.rs`
//! scrapes.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use crate::{
    check::{Op, split},
    human::{HumanDuration, scale_duration},
};

mod observations;
#[cfg(test)]
mod tests;
mod watcher;

pub use self::{observations::Observations, watcher::Watcher};

/// One `[[expect]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawExpectation")]
pub struct Expectation {
    pub name: Option<String>,
    /// Whose replicas are scraped.
    pub service: String,
    /// The sample name as exposed (`..._total` for a counter).
    pub metric: String,
    /// Every series carrying all of these (a subset match).
    pub labels: BTreeMap<String, String>,
    pub check: Check,
    /// `None`: the whole run.
    pub during: Option<Window>,
}

/// `increase >= 1`, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub aggregate: Aggregate,
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Increase,
    Max,
    Min,
    Last,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Increase => "increase",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Last => "last",
        }
    }
}

impl std::str::FromStr for Check {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (subject, op, value) = split(text)?;
        let aggregate = match subject {
            "increase" => Aggregate::Increase,
            "max" => Aggregate::Max,
            "min" => Aggregate::Min,
            "last" => Aggregate::Last,
            other => {
                return Err(format!(
                    "{text:?}: unknown aggregate {other:?} (use increase, max, min or last)"
                ));
            }
        };
        let value = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{text:?}: {value:?} is not a number"))?;
        Ok(Self {
            aggregate,
            op,
            value,
        })
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.aggregate.as_str(), self.op, self.value)
    }
}

/// From `start` to `end`, offsets from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Duration,
    pub end: Duration,
}

impl Window {
    pub(super) fn contains(self, t: f64) -> bool {
        t >= self.start.as_secs_f64() && t <= self.end.as_secs_f64()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    name: Option<String>,
    service: String,
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    check: String,
    during: Option<[HumanDuration; 2]>,
}

impl TryFrom<RawExpectation> for Expectation {
    type Error = String;

    fn try_from(raw: RawExpectation) -> Result<Self, String> {
        let valid_name = |s: &str| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        if !valid_name(&raw.metric) {
            return Err(format!(
                "{:?} is not a metric name (letters, digits, `_`, `:`), e.g. \"http_server_requests_total\"",
                raw.metric
            ));
        }
        if raw.service.trim().is_empty() {
            return Err("`service` must not be empty".into());
        }
        let check = raw.check.parse()?;
        let during = match raw.during {
            Some([start, end]) if start.0 >= end.0 => {
                return Err(format!(
                    "`during` must end after it starts, not [{:?}, {:?}]",
                    start.0, end.0
                ));
            }
            Some([start, end]) => Some(Window {
                start: start.0,
                end: end.0,
            }),
            None => None,
        };
        Ok(Self {
            name: raw.name,
            service: raw.service,
            metric: raw.metric,
            labels: raw.labels,
            check,
            during,
        })
    }
}

impl Expectation {
    /// The window multiplied by `k` (`--duration-scale`).
    pub fn scaled(&self, k: f64) -> Self {
        let mut scaled = self.clone();
        scaled.during = self.during.map(|w| Window {
            start: scale_duration(w.start, k),
            end: scale_duration(w.end, k),
        });
        scaled
    }

    /// `metric{a="x",b="y"}`, as PromQL would select it.
    pub fn selector(&self) -> String {
        selector(&self.metric, &self.labels)
    }

    /// Its `name`, else `gateway: metric{labels} increase >= 1`.
    pub fn title(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}: {} {}", self.service, self.selector(), self.check))
    }
}

pub(super) fn selector(metric: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return metric.to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{metric}{{{}}}", pairs.join(","))
}
