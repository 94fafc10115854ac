//! How long a client may take over each part of its connection: the
//! settings of the connection's clock ([`super::connection`]) and of the
//! body's deadline ([`super::body`]), apart from the mechanisms.

use std::time::Duration;

use crate::config::ServeConfig;

/// How long a client may take over each part of its connection (see the
/// module's comment). Defaults, and the reasons for them, are on the
/// `ServeConfig` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `HEADER_READ_TIMEOUT`: a request head, from its first byte.
    pub header_read: Duration,
    /// `IDLE_TIMEOUT`: a connection with nothing in flight, nothing moving.
    pub idle: Duration,
    /// `BODY_READ_TIMEOUT`: a request body, in full, from its head.
    pub body_read: Duration,
}

impl From<&ServeConfig> for Timeouts {
    fn from(serve: &ServeConfig) -> Self {
        Self {
            header_read: serve.header_read_timeout,
            idle: serve.idle_timeout,
            body_read: serve.body_read_timeout,
        }
    }
}

impl Default for Timeouts {
    /// The documented defaults, those of `ServeConfig` (a test keeps the
    /// two in step); written out rather than parsed, so that binding a
    /// server never reads the environment.
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body_read: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timeouts_are_the_configured_defaults() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeConfig,
        }
        let serve = <Cli as clap::Parser>::try_parse_from(["svc"])
            .unwrap()
            .serve;
        assert_eq!(Timeouts::default(), Timeouts::from(&serve));
    }
}
