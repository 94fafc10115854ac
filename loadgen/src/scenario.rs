//! Scenario files: what `loadgen run` reads (`docs/scenarios.md` is the
//! reference).
//!
//! A file is read in two steps: TOML into the shapes of `raw.rs` (syntax,
//! types, unknown keys), then into [`Scenario`] (`model.rs`), checking what
//! TOML cannot (a journey that exists, a stage list for a ramp, a
//! comparison that parses). Every error names the file, the line and the
//! column of the offending value. `plan.rs` turns a scenario into the
//! engine's plan.

use std::{ops::Range, path::Path};

mod model;
mod plan;
mod raw;
#[cfg(test)]
mod tests;

pub use self::model::{
    ExecutorKind, ExecutorSpec, MAX_DURATION, Scenario, ScenarioError, Scope, Stage, Stat,
    SystemSpec, Threshold,
};

/// The scenarios shipped with loadgen, embedded so `loadgen run steady`
/// works from any directory.
pub const SHIPPED: &[(&str, &str)] = &[
    ("steady", include_str!("../scenarios/steady.toml")),
    (
        "promotion-surge",
        include_str!("../scenarios/promotion-surge.toml"),
    ),
    (
        "course-redeploy",
        include_str!("../scenarios/course-redeploy.toml"),
    ),
    (
        "payments-outage",
        include_str!("../scenarios/payments-outage.toml"),
    ),
    (
        "slow-payment-provider",
        include_str!("../scenarios/slow-payment-provider.toml"),
    ),
    (
        "progress-down",
        include_str!("../scenarios/progress-down.toml"),
    ),
    (
        "broker-outage",
        include_str!("../scenarios/broker-outage.toml"),
    ),
];

impl Scenario {
    /// Reads a scenario: a path to a TOML file, or the name of a shipped
    /// one.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        let path = Path::new(name_or_path);
        if path.exists() || name_or_path.ends_with(".toml") {
            let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
                location: name_or_path.to_owned(),
                message: format!("cannot read it: {e}"),
            })?;
            return Self::parse(&text, name_or_path);
        }
        match SHIPPED.iter().find(|(name, _)| *name == name_or_path) {
            Some((name, text)) => Self::parse(text, &format!("shipped:{name}")),
            None => Err(ScenarioError {
                location: name_or_path.to_owned(),
                message: format!(
                    "no such file, and not a shipped scenario (those are: {})",
                    SHIPPED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// Parses and checks a scenario; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ScenarioError> {
        let at = |span: Option<Range<usize>>, message: String| ScenarioError {
            location: match span {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{source}:{line}:{col}")
                }
                None => source.to_owned(),
            },
            message,
        };
        let raw: raw::File = toml::from_str(text).map_err(|e| {
            // The crate's message is multi-line with a snippet; the first
            // line after the position header is what went wrong.
            let message = e.message().trim().to_owned();
            at(e.span(), message)
        })?;
        let mut scenario = raw.check().map_err(|(span, message)| at(span, message))?;
        scenario.source = source.to_owned();
        Ok(scenario)
    }
}

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
