//! Command line and environment; nothing else in the service reads the
//! environment.

use std::{num::NonZeroUsize, time::Duration};

use clap::Parser;

pub use mesh::auth::{DEV_JWT_SECRET, JwtSecret};

/// The LearnSphere users service: accounts, login, and access tokens.
#[derive(Debug, Clone, Parser)]
#[command(name = "users", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8081)]
    pub port: u16,

    /// `sqlite://path/to/file.db` (created on first start) or a
    /// `postgres://` URL of this service's own database.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/users.db")]
    pub database_url: String,

    /// Secret that signs access tokens (HS256, at least 32 bytes). The
    /// gateway must be given the same one. The default is for development
    /// only: set a random secret anywhere else.
    #[arg(long, env = "JWT_SECRET", default_value = DEV_JWT_SECRET, hide_env_values = true)]
    pub jwt_secret: JwtSecret,

    /// How long an access token stays valid (`15m`, `1h`, ...).
    #[arg(long, env = "TOKEN_TTL", default_value = "1h", value_parser = parse_ttl)]
    pub token_ttl: Duration,

    /// Password hashes allowed to run at once, each holding 19 MiB for tens
    /// of milliseconds of CPU (default: the number of CPUs).
    #[arg(long, env = "MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<NonZeroUsize>,

    #[command(flatten)]
    pub events: mesh::events::EventsConfig,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}

impl Config {
    /// The hash concurrency bound, defaulting to the number of CPUs.
    pub fn hash_concurrency(&self) -> NonZeroUsize {
        self.max_concurrent_hashes
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }
}

/// A humantime duration of at least one second: tokens carry whole
/// seconds, and a zero lifetime would issue tokens already expired.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::try_parse_from(["users"]).expect("defaults parse");
        assert_eq!(config.token_ttl, Duration::from_secs(3600));
        assert!(!format!("{config:?}").contains(DEV_JWT_SECRET));
    }

    #[test]
    fn ttl_must_be_positive() {
        assert!(Config::try_parse_from(["users", "--token-ttl", "0s"]).is_err());
        assert!(Config::try_parse_from(["users", "--token-ttl", "soon"]).is_err());
        let config = Config::try_parse_from(["users", "--token-ttl", "15m"]).expect("15m parses");
        assert_eq!(config.token_ttl, Duration::from_secs(900));
    }
}
