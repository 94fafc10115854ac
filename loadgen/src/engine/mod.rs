//! The load engine: executors schedule journeys against the clock and a
//! recorder keeps what happened.

pub mod journey;

pub use journey::{Iteration, Journey, JourneyFuture, Outcome, RequestRecord};
