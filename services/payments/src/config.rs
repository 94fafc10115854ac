//! Command line and environment; nothing else in the service reads the
//! environment.

use std::time::Duration;

use clap::{Args, Parser};

/// The LearnSphere payments service: idempotent charges against a
/// simulated card processor.
#[derive(Debug, Clone, Parser)]
#[command(name = "payments", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8083)]
    pub port: u16,

    /// `sqlite://path/to/file.db` (created on first start) or a
    /// `postgres://` URL of this service's own database.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/payments.db"
    )]
    pub database_url: String,

    /// How long a request whose Idempotency-Key is still being processed
    /// by another request waits for that result before answering 409. Long
    /// enough to cover a slow provider call, so a client's eager retry gets
    /// the original answer instead of an error.
    #[arg(long, env = "IDEMPOTENCY_WAIT", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub idempotency_wait: Duration,

    /// Where the courses service's replicas are (a URL whose host is
    /// re-resolved, a comma-separated list, or `file_sd:PATH`): every
    /// charge is priced from its catalog.
    #[arg(long, env = "COURSES_URL", default_value = "http://127.0.0.1:8082")]
    pub courses_url: String,

    /// The currencies charges may be in (ISO 4217 codes); any other is
    /// refused before the catalog or the provider is asked.
    #[arg(
        long,
        env = "CURRENCIES",
        value_delimiter = ',',
        default_value = "USD,EUR,GBP",
        value_parser = parse_currency
    )]
    pub currencies: Vec<String>,

    #[command(flatten)]
    pub provider: ProviderConfig,

    #[command(flatten)]
    pub auth: mesh::auth::AuthConfig,

    #[command(flatten)]
    pub events: mesh::events::EventsConfig,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}

/// The simulated card processor: how slow, how often it declines or fails,
/// and how many calls one replica may have in flight.
#[derive(Debug, Clone, Args)]
pub struct ProviderConfig {
    /// Median latency of a provider call. Latencies are log-normal, like
    /// real network services: most calls near the median, a long tail.
    #[arg(long = "provider-latency-median", value_name = "DURATION", env = "PROVIDER_LATENCY_MEDIAN", default_value = "40ms", value_parser = humantime::parse_duration)]
    pub latency_median: Duration,

    /// 99th percentile latency of a provider call (at least the median).
    #[arg(long = "provider-latency-p99", value_name = "DURATION", env = "PROVIDER_LATENCY_P99", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub latency_p99: Duration,

    /// Fraction (0.0–1.0) of answered charges the provider declines
    /// (insufficient_funds, card_declined or expired_card).
    #[arg(long = "provider-decline-rate", value_name = "FRACTION", env = "PROVIDER_DECLINE_RATE", default_value_t = 0.02, value_parser = parse_probability)]
    pub decline_rate: f64,

    /// Fraction (0.0–1.0) of charges that fail with a provider error
    /// (answered 502 `provider_unavailable`; the client may retry).
    #[arg(long = "provider-error-rate", value_name = "FRACTION", env = "PROVIDER_ERROR_RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub error_rate: f64,

    /// Provider calls one replica may have in flight; more wait for a slot.
    /// Like a real processor's connection pool, this caps the charges per
    /// second one replica can make, so scaling payments out shows.
    #[arg(long = "provider-concurrency", value_name = "CALLS", env = "PROVIDER_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
}

/// A currency code of the allow-list: three uppercase letters.
fn parse_currency(s: &str) -> Result<String, String> {
    crate::domain::Currency::parse(s.trim())
        .map(|c| c.as_str().to_owned())
        .map_err(|e| e.to_string())
}

/// A probability: a number from 0.0 to 1.0.
fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not between 0.0 and 1.0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let config = Config::try_parse_from(["payments"]).expect("defaults are valid");
        assert_eq!(config.provider.latency_median, Duration::from_millis(40));
        assert_eq!(config.provider.concurrency, 16);
    }

    #[test]
    fn probabilities_are_bounded() {
        assert_eq!(parse_probability("0.5"), Ok(0.5));
        assert!(parse_probability("1.5").is_err());
        assert!(parse_probability("-0.1").is_err());
        assert!(parse_probability("NaN").is_err());
        assert!(parse_probability("often").is_err());
    }
}
