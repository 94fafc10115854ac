//! Comparisons shared by thresholds and expectations: `p99 < 800ms`,
//! `increase >= 1`.

use std::{fmt, str::FromStr};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => (observed - limit).abs() <= f64::EPSILON * limit.abs().max(1.0),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" | "=" => Op::Eq,
            other => {
                return Err(format!(
                    "unknown comparison {other:?} (use <, <=, >, >= or ==)"
                ));
            }
        })
    }
}

/// `<subject> <op> <value>` split into its three parts, the value left
/// as text for the caller to read in its unit (`800ms`, `2%`, `1`).
pub fn split(expr: &str) -> Result<(&str, Op, &str), String> {
    let expr = expr.trim();
    let at = expr.find(['<', '>', '=']).ok_or_else(|| {
        format!("{expr:?}: expected `<subject> <op> <value>`, e.g. `p99 < 800ms`")
    })?;
    let subject = expr[..at].trim();
    let rest = &expr[at..];
    let op_len = if rest[1..].starts_with('=') { 2 } else { 1 };
    let op: Op = rest[..op_len].parse()?;
    let value = rest[op_len..].trim();
    if subject.is_empty() || value.is_empty() || value.starts_with(['<', '>', '=']) {
        return Err(format!(
            "{expr:?}: expected `<subject> <op> <value>`, e.g. `p99 < 800ms`"
        ));
    }
    Ok((subject, op, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_subject_operator_and_value() {
        assert_eq!(split("p99 < 800ms").unwrap(), ("p99", Op::Lt, "800ms"));
        assert_eq!(split("increase>=1").unwrap(), ("increase", Op::Ge, "1"));
        assert_eq!(
            split(" error_rate <= 2% ").unwrap(),
            ("error_rate", Op::Le, "2%")
        );
        assert!(split("p99 800ms").is_err());
        assert!(split("< 1").is_err());
        assert!(split("p99 <").is_err());
        assert!(split("p99 <> 1").is_err());
    }

    #[test]
    fn operators_compare() {
        assert!(Op::Lt.holds(1.0, 2.0));
        assert!(!Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0));
        assert!(Op::Ge.holds(1.0, 1.0));
        assert!(!Op::Gt.holds(1.0, 1.0));
        assert!(Op::Eq.holds(3.0, 3.0));
    }
}
