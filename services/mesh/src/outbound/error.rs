//! Why an outbound call failed: [`OutboundError`] when no response came
//! (what every layer of the stack speaks), [`CallError`] for a typed
//! client's call (no response, an error status, or a body that is not
//! what the contract says).

use std::{sync::Arc, time::Duration};

use http::StatusCode;
use tower::BoxError;

/// Why an outbound call got no response.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The destination did not answer before the deadline.
    #[error("{destination} did not answer in time")]
    Timeout {
        destination: Arc<str>,
        /// The deadline, when known (not for a body that stalled after
        /// the headers came).
        timeout: Option<Duration>,
    },
    /// No connection could be made: the replica is down or unknown.
    #[error("cannot connect to {destination}: {source}")]
    Connect {
        destination: Arc<str>,
        #[source]
        source: BoxError,
    },
    /// The connection broke or the request could not be sent.
    #[error("call to {destination} failed: {source}")]
    Transport {
        destination: Arc<str>,
        #[source]
        source: BoxError,
    },
    /// Discovery knows no replica of the destination.
    #[error("{destination} has no known replicas")]
    NoEndpoints { destination: Arc<str> },
    /// The destination's circuit breaker is open: the call was not made.
    #[error("{destination} is failing; calls are paused (circuit breaker open)")]
    CircuitOpen {
        destination: Arc<str>,
        /// Until the breaker lets a probe through.
        retry_after: Duration,
    },
}

impl OutboundError {
    /// The destination that did not answer.
    pub fn destination(&self) -> &str {
        match self {
            Self::Timeout { destination, .. }
            | Self::Connect { destination, .. }
            | Self::Transport { destination, .. }
            | Self::NoEndpoints { destination }
            | Self::CircuitOpen { destination, .. } => destination,
        }
    }

    /// The `error.type` span attribute for this failure.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Transport { .. } => "transport",
            Self::NoEndpoints { .. } => "no_endpoints",
            Self::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// How long a caller should wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Why a typed client call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No response (down, timed out, connection broken).
    #[error(transparent)]
    Unavailable(#[from] OutboundError),
    /// The destination answered with an error status.
    #[error("{destination} answered {status}: {message}")]
    Status {
        destination: Arc<str>,
        status: StatusCode,
        code: String,
        message: String,
        /// The whole error body when it was JSON, with any fields beyond
        /// `code` and `message` (a decline's `reason`), for callers that
        /// pass the answer on.
        /// (Boxed: a `Result<_, CallError>` should stay small.)
        body: Option<Box<serde_json::Value>>,
        /// `Retry-After`, when the destination sent one.
        retry_after: Option<String>,
    },
    /// The destination's response body was not what its contract says.
    #[error("{destination} sent an unreadable response: {message}")]
    Decode {
        destination: Arc<str>,
        message: String,
    },
}

impl CallError {
    /// The status the destination answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The destination's error code (`not_found`, ...), if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}
