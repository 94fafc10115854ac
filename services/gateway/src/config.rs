//! Command line and environment; nothing else in the gateway reads the
//! environment.

use clap::Parser;

/// The LearnSphere API gateway: the public `/api`, in front of the services.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Where the users service's replicas are: a URL (its host is
    /// re-resolved, every address a replica), a comma-separated list of
    /// URLs, or `file_sd:PATH` (Prometheus file_sd JSON).
    #[arg(long, env = "USERS_URL", default_value = "http://127.0.0.1:8081")]
    pub users_url: String,

    /// Where the courses service's replicas are: a URL (its host is
    /// re-resolved, every address a replica), a comma-separated list of
    /// URLs, or `file_sd:PATH` (Prometheus file_sd JSON).
    #[arg(long, env = "COURSES_URL", default_value = "http://127.0.0.1:8082")]
    pub courses_url: String,

    /// Where the payments service's replicas are: a URL (its host is
    /// re-resolved, every address a replica), a comma-separated list of
    /// URLs, or `file_sd:PATH` (Prometheus file_sd JSON).
    #[arg(long, env = "PAYMENTS_URL", default_value = "http://127.0.0.1:8083")]
    pub payments_url: String,

    /// Where the progress service's replicas are: a URL (its host is
    /// re-resolved, every address a replica), a comma-separated list of
    /// URLs, or `file_sd:PATH` (Prometheus file_sd JSON).
    #[arg(long, env = "PROGRESS_URL", default_value = "http://127.0.0.1:8084")]
    pub progress_url: String,

    #[command(flatten)]
    pub auth: mesh::auth::AuthConfig,

    #[command(flatten)]
    pub rate_limit: RateLimitConfig,

    #[command(flatten)]
    pub client_concurrency: ClientConcurrencyConfig,

    #[command(flatten)]
    pub web: WebConfig,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}

/// The learner web app served at `/` (docs/web.md).
#[derive(Debug, Clone, clap::Args)]
pub struct WebConfig {
    /// Jaeger's UI as the learner's browser reaches it: the page links
    /// each action's trace id to `<URL>/trace/<id>`.
    #[arg(
        long = "web-jaeger-url",
        env = "WEB_JAEGER_URL",
        default_value = "http://localhost:16686",
        value_parser = parse_web_url
    )]
    pub jaeger_url: String,

    /// Where the page exports its spans: an OTLP/HTTP traces URL the
    /// browser can reach (`http://localhost:4318/v1/traces`), which must
    /// answer CORS for the page's origin. Unset or empty: the page still
    /// starts traces (every API call carries `traceparent`) but sends no
    /// spans.
    #[arg(long = "web-otlp-traces-url", env = "WEB_OTLP_TRACES_URL", value_parser = parse_optional_web_url)]
    pub otlp_traces_url: Option<String>,
}

/// An absolute `http` or `https` URL, as a page may be given one.
fn parse_web_url(s: &str) -> Result<String, String> {
    match mesh::web::origin_of(s) {
        Some(_) => Ok(s.trim_end_matches('/').to_owned()),
        None => Err(format!(
            "{s:?} is not an absolute http:// or https:// URL without credentials"
        )),
    }
}

/// [`parse_web_url`], or an empty string: none (how a Compose file or a
/// Kubernetes manifest unsets a variable).
fn parse_optional_web_url(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Ok(String::new())
    } else {
        parse_web_url(s)
    }
}

/// The per-client rate limit (a token bucket per client; see
/// `rate_limit.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct RateLimitConfig {
    /// Requests per second each client may make on average (fractions
    /// allowed: 0.5 is one every two seconds). 0 disables the limit.
    #[arg(long = "rate-limit-per-second", env = "RATE_LIMIT_PER_SECOND", value_name = "RATE", default_value_t = 50.0, value_parser = parse_rate)]
    pub per_second: f64,

    /// Requests a client may make at once above the average, after a quiet
    /// spell (the bucket's size). 0 disables the limit.
    #[arg(
        long = "rate-limit-burst",
        env = "RATE_LIMIT_BURST",
        value_name = "REQUESTS",
        default_value_t = 100
    )]
    pub burst: u32,

    /// Take an anonymous client's address from the last `X-Forwarded-For`
    /// entry instead of the connection. Only behind a proxy that sets it:
    /// otherwise any client picks its own bucket.
    #[arg(
        long = "rate-limit-trust-forwarded-for",
        env = "RATE_LIMIT_TRUST_FORWARDED_FOR"
    )]
    pub trust_forwarded_for: bool,

    /// The ceiling per client address, all its users' tokens together, as
    /// a multiple of the per-client rate and burst (10: 500 a second,
    /// bursts of 1000, by default): N tokens from one address do not buy
    /// N times the limit, while a NAT of ten busy users is never held
    /// back. 0 disables the ceiling.
    #[arg(
        long = "rate-limit-address-multiple",
        env = "RATE_LIMIT_ADDRESS_MULTIPLE",
        value_name = "FACTOR",
        default_value_t = 10
    )]
    pub address_multiple: u32,

    /// Sign-ups and logins (`POST /api/users`, `POST /api/sessions`) each
    /// client address may make per minute on average, whatever token it
    /// sends: credential stuffing tries many accounts from one place, so
    /// this bucket is per address, beside users' per-account limit on
    /// failed logins. 0 disables it.
    #[arg(
        long = "credentials-rate-limit-per-minute",
        env = "CREDENTIALS_RATE_LIMIT_PER_MINUTE",
        value_name = "RATE",
        default_value_t = 60.0,
        value_parser = parse_rate
    )]
    pub credentials_per_minute: f64,

    /// Sign-ups and logins a client address may make at once above that
    /// average. 0 disables the limit.
    #[arg(
        long = "credentials-rate-limit-burst",
        env = "CREDENTIALS_RATE_LIMIT_BURST",
        value_name = "REQUESTS",
        default_value_t = 30
    )]
    pub credentials_burst: u32,
}

impl RateLimitConfig {
    /// Whether requests are limited at all.
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0 && self.burst > 0
    }

    /// Whether each address has its ceiling (only with the per-client
    /// limit, whose multiple it is).
    pub fn address_enabled(&self) -> bool {
        self.enabled() && self.address_multiple > 0
    }

    /// Whether sign-ups and logins have their own per-address limit.
    pub fn credentials_enabled(&self) -> bool {
        self.credentials_per_minute > 0.0 && self.credentials_burst > 0
    }
}

/// A rate in requests per second: finite, not negative, and at most one
/// per nanosecond (the bucket refills in whole nanoseconds).
fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of requests per second"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err(format!(
            "{s:?} must be a rate of 0 or more requests per second"
        ));
    }
    if rate > 1e9 {
        return Err(format!("{s:?} is more than one request per nanosecond"));
    }
    Ok(rate)
}

/// The per-client cap on requests in flight (see `concurrency_limit.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct ClientConcurrencyConfig {
    /// Requests one client (a user, else an address, as for the rate
    /// limit) may have in flight at once; one more gets 429
    /// `concurrency_limited` with `Retry-After: 1`. 16 is twice what a
    /// browser opens to one host, and 1/32 of a replica's default
    /// `CONCURRENCY_LIMIT` (512): one client, however slow its requests,
    /// cannot hold the slots everyone else needs. 0 disables the cap.
    #[arg(
        long = "concurrency-limit-per-client",
        env = "CONCURRENCY_LIMIT_PER_CLIENT",
        value_name = "REQUESTS",
        default_value_t = 16
    )]
    pub per_client: usize,
}
