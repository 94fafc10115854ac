//! Values as people write and read them: durations the way scenario files
//! write them (and scaled by `--duration-scale`), errors with every cause
//! they carry. The timeline, the expectations and the platforms share them.

use std::time::Duration;

use serde::Deserialize;

/// A duration written for people (`"20s"`, `"1m30s"`, `"250ms"`), as
/// scenario files write every duration and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(Self)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration like \"20s\", \"1m30s\" or \"250ms\": {e}"
                ))
            })
    }
}

/// `d` times `k` (`--duration-scale`). `k` is meant to be positive and
/// finite (the caller checks it); anything else gives zero rather than
/// a panic, and an overflow the longest duration.
pub fn scale_duration(d: Duration, k: f64) -> Duration {
    let secs = d.as_secs_f64() * k;
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// reqwest's error with its causes (`error sending request: connection
/// refused`), which its `Display` leaves out.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
