//! OpenTelemetry (OTLP) traces as loadgen keeps them, apart from how they
//! arrive ([`crate::receiver`]) and where they are held ([`crate::capture`]).

pub mod span;
