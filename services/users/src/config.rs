//! Command line and environment; nothing else in the service reads the
//! environment.

use std::{num::NonZeroUsize, time::Duration};

use clap::Parser;

pub use mesh::auth::{AuthConfig, DEV_JWT_SECRET, JwtSecret};

use crate::lockout::LoginLimits;

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

    /// `--jwt-secret` / `JWT_SECRET`: signs the access tokens issued at
    /// login, and verifies the ones `GET /users/{user_id}` requires;
    /// `--token-ttl` / `TOKEN_TTL`: how long the tokens issued live.
    #[command(flatten)]
    pub auth: AuthConfig,

    /// Password hashes allowed to run at once, each holding 19 MiB for tens
    /// of milliseconds of CPU (default: the number of CPUs).
    #[arg(long, env = "MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<NonZeroUsize>,

    /// Failed logins an account may have at once from one source (the
    /// client's address) before `POST /sessions` answers 429 to that
    /// source for it (0: no failed-login limit at all, the account ceiling
    /// included). Counted per replica, in memory.
    #[arg(long, env = "LOGIN_FAILURES_BURST", default_value_t = 5)]
    pub login_failures_burst: u32,

    /// After the burst, one more failed login per account and source each
    /// this long (`1m`, `30s`, ...).
    #[arg(long, env = "LOGIN_FAILURE_REPLENISH", default_value = "1m", value_parser = parse_replenish)]
    pub login_failure_replenish: Duration,

    /// Failed logins an account may have at once from all sources
    /// together; past it, only sources the account logged in from in the
    /// last 30 days may try (0: no ceiling). Ten sources' bursts: a
    /// distributed guesser is held to this, the owner at home never is.
    #[arg(long, env = "LOGIN_ACCOUNT_FAILURES_BURST", default_value_t = 50)]
    pub login_account_failures_burst: u32,

    /// After that ceiling, one more failed login per account each this
    /// long, whatever the source: 10 s is 8,640 guesses a day per
    /// account, however many addresses make them.
    #[arg(long, env = "LOGIN_ACCOUNT_FAILURE_REPLENISH", default_value = "10s", value_parser = parse_replenish)]
    pub login_account_failure_replenish: Duration,

    #[command(flatten)]
    pub events: mesh::events::EventsConfig,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}

impl Config {
    /// The failed-login limits.
    pub fn login_limits(&self) -> LoginLimits {
        LoginLimits {
            burst: self.login_failures_burst,
            replenish: self.login_failure_replenish,
            account_burst: self.login_account_failures_burst,
            account_replenish: self.login_account_failure_replenish,
        }
    }

    /// The hash concurrency bound, defaulting to the number of CPUs.
    pub fn hash_concurrency(&self) -> NonZeroUsize {
        self.max_concurrent_hashes
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }
}

/// A humantime duration above zero: the failure bucket must refill.
fn parse_replenish(s: &str) -> Result<Duration, String> {
    let every = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if every.is_zero() {
        return Err("must be above 0".to_owned());
    }
    Ok(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::try_parse_from(["users"]).expect("defaults parse");
        assert_eq!(config.auth.token_ttl, Duration::from_secs(3600));
        assert!(!format!("{config:?}").contains(DEV_JWT_SECRET));
        assert_eq!(config.login_failures_burst, 5);
        assert_eq!(config.login_failure_replenish, Duration::from_secs(60));
        assert_eq!(config.login_account_failures_burst, 50);
        assert_eq!(
            config.login_account_failure_replenish,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn the_login_limit_parses() {
        let config = Config::try_parse_from([
            "users",
            "--login-failures-burst",
            "0",
            "--login-failure-replenish",
            "200ms",
        ])
        .expect("parses");
        assert_eq!(config.login_failures_burst, 0);
        assert_eq!(config.login_failure_replenish, Duration::from_millis(200));
        assert!(Config::try_parse_from(["users", "--login-failure-replenish", "0s"]).is_err());
    }

    #[test]
    fn ttl_must_be_positive() {
        assert!(Config::try_parse_from(["users", "--token-ttl", "0s"]).is_err());
        assert!(Config::try_parse_from(["users", "--token-ttl", "soon"]).is_err());
        let config = Config::try_parse_from(["users", "--token-ttl", "15m"]).expect("15m parses");
        assert_eq!(config.auth.token_ttl, Duration::from_secs(900));
    }
}
