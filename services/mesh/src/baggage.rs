//! The baggage keys copied onto server spans (`BAGGAGE_SPAN_ATTRIBUTES`,
//! docs/decisions.md §8): set once by [`crate::telemetry::init`], read by
//! the inbound trace layer (which copies them) and by the span redaction
//! (which lets their `baggage.<key>` attributes through).
//!
//! Neutral ground for the three: telemetry installs the exporter, the
//! exporter redacts, and redaction needs the keys, so the keys cannot
//! live in telemetry without an import circle.

use std::sync::OnceLock;

use opentelemetry::Key;

/// Each pair is the baggage key and its attribute name, made once here
/// rather than per request.
static SPAN_ATTRIBUTES: OnceLock<Vec<(String, Key)>> = OnceLock::new();

/// Sets the keys copied onto server spans. The first call in a process
/// wins (several services in one test binary share one allow-list).
pub(crate) fn set_span_attributes(keys: &[String]) {
    let _ = SPAN_ATTRIBUTES.set(
        keys.iter()
            .map(|key| (key.clone(), Key::new(format!("baggage.{key}"))))
            .collect(),
    );
}

/// The baggage keys the inbound stack copies onto server spans (none until
/// [`crate::telemetry::init`] runs).
pub fn span_attributes() -> impl Iterator<Item = &'static str> {
    attribute_keys().iter().map(|(key, _)| key.as_str())
}

/// `(baggage key, "baggage.<key>")` pairs.
pub(crate) fn attribute_keys() -> &'static [(String, Key)] {
    SPAN_ATTRIBUTES.get().map_or(&[], Vec::as_slice)
}
