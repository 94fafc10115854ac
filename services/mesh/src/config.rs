//! Settings every service shares, as `clap` argument groups the services
//! flatten into their own `Config`. Each flag also reads an environment
//! variable; the OpenTelemetry ones use the standard `OTEL_*` names so the
//! services behave like any other OpenTelemetry-instrumented program.

use std::{net::IpAddr, time::Duration};

use clap::{Args, ValueEnum};

/// How the service listens and stops.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// How long in-flight requests may take to finish after SIGTERM/Ctrl-C
    /// before the service exits anyway.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Requests served at once; one more gets 503 and `Retry-After: 1`
    /// at once instead of queueing behind them (0: no limit). A replica
    /// that answers "busy" quickly lets the caller try another; a queue
    /// only makes every request slow.
    #[arg(long, env = "CONCURRENCY_LIMIT", default_value_t = 512)]
    pub concurrency_limit: usize,

    /// Longest a client may take to send a request's head (request line
    /// and headers), from its first byte; slower, the connection is
    /// closed. A real client sends its head at once (at most 32 KiB, one
    /// round trip); 10 s is room for a congested mobile link, and a
    /// half-sent head (slowloris) holds a connection no longer than that.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,

    /// Longest a connection is kept with no request in flight and no
    /// bytes moving (keep-alive between requests, or a response its
    /// client stopped reading); then it is closed. Longer than the mesh
    /// client keeps idle connections (30 s), so callers drop a pooled
    /// connection before the server does and never send a request into
    /// one being closed; behind a proxy, set it above the proxy's own
    /// upstream keep-alive (ingress-nginx: 60 s).
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,

    /// Longest a request's body may take to arrive in full, counted from
    /// its head; later, reading it fails with 408 `body_timeout` and the
    /// connection is closed. 30 s for `MAX_BODY_BYTES` (64 KiB) is about
    /// 2 KiB/s, slower than any real link; a client that sends a few
    /// bytes and stops holds a request (and its concurrency slot) no
    /// longer. Raise it with `MAX_BODY_BYTES`.
    #[arg(long, env = "BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub body_read_timeout: Duration,

    /// Per-request metrics: `false` leaves the inbound RED layer
    /// (`http_server_request_duration_seconds`, `http_server_active_requests`)
    /// and the outbound per-edge layer (`http_client_request_duration_seconds`)
    /// out of the stacks, so those families stay empty and a request pays
    /// nothing for them; `/metrics` still answers with everything else.
    /// For measuring what metrics cost (with `OTEL_SDK_DISABLED=true`, a
    /// telemetry-off baseline); never for production. It sits here, not in
    /// `TelemetryConfig`, because the stacks are built from this struct.
    #[arg(
        long,
        env = "METRICS_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub metrics_enabled: bool,

    /// Bearer token for the `/admin/*` routes (faults, crash, drain).
    /// Unset: those routes do not exist.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<AdminToken>,

    /// `development` or `production`. In production the service refuses
    /// to start with a development secret: the built-in `JWT_SECRET`, a
    /// value still holding `.env.example`'s `CHANGE-ME`, or an admin
    /// token shorter than 16 bytes.
    #[arg(long, env = "LEARNSPHERE_ENV", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    #[command(flatten)]
    pub outbound: OutboundConfig,
}

/// Where a service runs, for the checks that differ: development accepts
/// the built-in secrets (with a warning), production does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Shortest admin token accepted in production: 16 bytes is 128 bits of a
/// random hex or base64 string, beyond guessing over the network.
pub const MIN_PRODUCTION_ADMIN_TOKEN_BYTES: usize = 16;

impl ServeConfig {
    /// Refuses, in production, the admin token and the `secrets` given
    /// (`(setting name, value)`: the token secret, a database URL holding
    /// a password) when they are development values. Returns every
    /// problem at once, so one restart fixes them all.
    pub fn refuse_development_secrets(&self, secrets: &[(&str, &[u8])]) -> anyhow::Result<()> {
        if self.environment != Environment::Production {
            return Ok(());
        }
        let mut problems = Vec::new();
        let is_placeholder = |value: &[u8]| {
            value
                .windows(b"change-me".len())
                .any(|w| w.eq_ignore_ascii_case(b"change-me"))
        };
        for (name, value) in secrets {
            if *value == crate::auth::DEV_JWT_SECRET.as_bytes() {
                problems.push(format!("{name} is the built-in development secret"));
            } else if is_placeholder(value) {
                problems.push(format!("{name} still holds a CHANGE-ME placeholder"));
            }
        }
        if let Some(token) = &self.admin_token {
            let token = token.expose().as_bytes();
            if is_placeholder(token) {
                problems.push("ADMIN_TOKEN still holds a CHANGE-ME placeholder".to_owned());
            } else if token.len() < MIN_PRODUCTION_ADMIN_TOKEN_BYTES {
                problems.push(format!(
                    "ADMIN_TOKEN is shorter than {MIN_PRODUCTION_ADMIN_TOKEN_BYTES} bytes"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "LEARNSPHERE_ENV=production refuses development secrets: {}; generate new ones (openssl rand -hex 32)",
                problems.join("; ")
            )
        }
    }
}

/// The admin API's bearer token. Never printed: `Debug` says only
/// whether one is set.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl std::str::FromStr for AdminToken {
    type Err = &'static str;

    /// Empty is refused (it would match `Bearer ` with nothing after it),
    /// and so is anything but visible ASCII: a token no client could put
    /// in an `Authorization` header would lock the admin API for good.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("the admin token must not be empty");
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the admin token must be visible ASCII, without spaces");
        }
        Ok(Self(s.to_owned()))
    }
}

impl Default for ServeConfig {
    /// The documented defaults, as a service started without flags would
    /// have them (environment variables still apply, as they do there).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeConfig,
        }
        <Defaults as clap::Parser>::parse_from(["defaults"]).serve
    }
}

/// How calls to other services behave: deadlines, retries, the circuit
/// breaker, discovery. Defaults follow Linkerd's and Finagle's.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Outbound calls")]
pub struct OutboundConfig {
    /// Deadline for an outbound call, retries included.
    #[arg(long, env = "OUTBOUND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub outbound_timeout: Duration,

    /// Deadlines per destination or per route, overriding
    /// `OUTBOUND_TIMEOUT`: comma-separated `destination=duration` or
    /// `destination:/route/{template}=duration`, e.g.
    /// `payments=3s,courses:/courses/{course_id}=500ms`.
    #[arg(long, env = "OUTBOUND_TIMEOUTS", value_delimiter = ',', value_parser = parse_timeout_override)]
    pub outbound_timeouts: Vec<TimeoutOverride>,

    /// How often destinations' replicas are looked up again (DNS names,
    /// `file_sd` files).
    #[arg(long, env = "DISCOVERY_REFRESH", default_value = "2s", value_parser = humantime::parse_duration)]
    pub discovery_refresh: Duration,

    /// How long a replica that refuses connections is left out of
    /// balancing at first (doubled while it keeps refusing, up to 16x).
    #[arg(long, env = "EJECTION_TIME", default_value = "5s", value_parser = humantime::parse_duration)]
    pub ejection_time: Duration,

    /// Retries allowed as a fraction of calls, per destination.
    #[arg(long, env = "RETRY_BUDGET_RATIO", default_value_t = 0.2)]
    pub retry_budget_ratio: f32,

    /// Retries allowed per second per destination whatever the call rate.
    #[arg(long, env = "RETRY_MIN_PER_SECOND", default_value_t = 10)]
    pub retry_min_per_second: u32,

    /// Attempts per idempotent call, the first included (1 disables retries).
    #[arg(long, env = "RETRY_MAX_ATTEMPTS", default_value_t = 3)]
    pub retry_max_attempts: u32,

    /// First wait before a retry; doubled per attempt, with jitter.
    #[arg(long, env = "RETRY_BACKOFF", default_value = "10ms", value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,

    /// Consecutive failed calls that open a destination's circuit breaker.
    #[arg(long, env = "BREAKER_CONSECUTIVE_FAILURES", default_value_t = 5)]
    pub breaker_consecutive_failures: u32,

    /// Failure rate over `BREAKER_WINDOW` that opens the breaker, once
    /// `BREAKER_MIN_REQUESTS` calls were made in it.
    #[arg(long, env = "BREAKER_FAILURE_RATE", default_value_t = 0.5)]
    pub breaker_failure_rate: f64,

    #[arg(long, env = "BREAKER_MIN_REQUESTS", default_value_t = 20)]
    pub breaker_min_requests: u32,

    #[arg(long, env = "BREAKER_WINDOW", default_value = "10s", value_parser = humantime::parse_duration)]
    pub breaker_window: Duration,

    /// How long an open breaker fails calls fast before probing (doubled
    /// after each failed probe, up to 8x).
    #[arg(long, env = "BREAKER_OPEN_FOR", default_value = "5s", value_parser = humantime::parse_duration)]
    pub breaker_open_for: Duration,

    /// Calls a breaker lets through at once when its open time is over
    /// (half-open); each one that succeeds lets one more through, this
    /// many successes close it, and any failure opens it again. A single
    /// probe failed the first burst after an outage almost whole; 10 is a
    /// small ramp that a recovered destination takes easily.
    #[arg(long, env = "BREAKER_HALF_OPEN_PROBES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_half_open_probes: u32,
}

/// A duration above zero: a timeout of zero would refuse everything.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{s:?}: must be above zero"));
    }
    Ok(duration)
}

/// One entry of `OUTBOUND_TIMEOUTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutOverride {
    pub destination: String,
    /// A route template, or `None` for the whole destination.
    pub route: Option<String>,
    pub timeout: Duration,
}

fn parse_timeout_override(s: &str) -> Result<TimeoutOverride, String> {
    let (key, value) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: expected destination[:route]=duration"))?;
    let timeout = humantime::parse_duration(value.trim()).map_err(|e| format!("{s:?}: {e}"))?;
    if timeout.is_zero() {
        return Err(format!("{s:?}: a deadline must be positive"));
    }
    let (destination, route) = match key.trim().split_once(':') {
        Some((d, r)) if r.starts_with('/') => (d, Some(r.to_owned())),
        Some(_) => return Err(format!("{s:?}: a route starts with '/'")),
        None => (key.trim(), None),
    };
    if destination.is_empty() {
        return Err(format!("{s:?}: no destination"));
    }
    Ok(TimeoutOverride {
        destination: destination.to_owned(),
        route,
        timeout,
    })
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Which trace exporter to use (`OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TracesExporter {
    /// OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    Otlp,
    /// Spans are created (trace ids still propagate and appear in logs and
    /// `traceresponse`) but not exported.
    None,
}

/// Which log record exporter to use (`OTEL_LOGS_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogsExporter {
    /// OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`, like the spans.
    Otlp,
    /// Console lines only.
    None,
}

/// OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC, port 4317 by convention.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, port 4318 by convention.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The log filter when `RUST_LOG` is unset: INFO, with chatty targets held
/// to WARN. `sqlx::postgres::notice` is PostgreSQL's NOTICE messages, which
/// sqlx logs at INFO: every start on an existing database says `relation
/// "…" already exists, skipping` once per `CREATE ... IF NOT EXISTS` (sqlx's
/// migrations table, the events tables). Its WARNINGs and errors still show.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn,\
     opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";

/// Logs and traces. The exporter endpoint, headers, timeout and the
/// sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`) and
/// `OTEL_RESOURCE_ATTRIBUTES` are read by the OpenTelemetry SDK itself,
/// exactly as the specification describes them.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter (`tracing_subscriber::EnvFilter` syntax). It filters log
    /// lines only: spans are exported whatever it says, so a quiet log never
    /// breaks trace propagation.
    #[arg(long, env = "RUST_LOG", default_value = DEFAULT_LOG_FILTER)]
    pub log_filter: String,

    /// Baggage entries copied onto every server span as `baggage.<key>`
    /// attributes, so Jaeger can search by them (the load generator tags
    /// each request with its scenario and journey). Only these keys:
    /// baggage comes from callers and is not trusted.
    #[arg(
        long,
        env = "BAGGAGE_SPAN_ATTRIBUTES",
        value_delimiter = ',',
        default_value = "scenario,journey,synthetic"
    )]
    pub baggage_span_attributes: Vec<String>,

    /// Overrides `service.name` (default: the service's own name).
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub service_name: Option<String>,

    /// Disables span export. Trace context is still continued and
    /// forwarded, so this service does not break the traces of others.
    #[arg(long, env = "OTEL_SDK_DISABLED")]
    pub otel_sdk_disabled: bool,

    /// Trace exporter.
    #[arg(long, env = "OTEL_TRACES_EXPORTER", value_enum, default_value = "otlp")]
    pub traces_exporter: TracesExporter,

    /// OTLP transport for traces.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        value_enum,
        hide = true
    )]
    pub otlp_traces_protocol: Option<OtlpProtocol>,

    /// Log record exporter: the `tracing` events that make the console
    /// lines, as OpenTelemetry log records with their trace and span ids.
    #[arg(long, env = "OTEL_LOGS_EXPORTER", value_enum, default_value = "otlp")]
    pub logs_exporter: LogsExporter,

    /// OTLP transport for log records.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        value_enum,
        hide = true
    )]
    pub otlp_logs_protocol: Option<OtlpProtocol>,

    /// Log records waiting for export at most; more are dropped and
    /// counted (`telemetry_log_records_dropped_total`).
    #[arg(long, env = "OTEL_BLRP_MAX_QUEUE_SIZE", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    pub log_queue_size: u32,

    /// Log records per export at most.
    #[arg(long, env = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    pub log_batch_size: u32,

    /// Milliseconds a log record waits for its batch to fill.
    #[arg(
        long,
        env = "OTEL_BLRP_SCHEDULE_DELAY",
        default_value_t = 1000,
        hide = true
    )]
    pub log_schedule_delay_ms: u64,

    /// OTLP transport.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        default_value = "grpc"
    )]
    pub otlp_protocol: OtlpProtocol,

    /// Where spans go, overriding `OTEL_EXPORTER_OTLP_ENDPOINT`: set by a
    /// program that runs its own receiver (the load generator capturing
    /// traces), never from the command line.
    #[arg(skip)]
    pub export_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// The transport for traces: the signal-specific variable wins, as the
    /// OTLP exporter specification says.
    pub fn traces_protocol(&self) -> OtlpProtocol {
        self.otlp_traces_protocol.unwrap_or(self.otlp_protocol)
    }

    /// The transport for log records, likewise.
    pub fn logs_protocol(&self) -> OtlpProtocol {
        self.otlp_logs_protocol.unwrap_or(self.otlp_protocol)
    }

    /// The log pipeline's queue and batches (`OTEL_BLRP_*`).
    pub fn log_bounds(&self) -> crate::logs::LogBounds {
        crate::logs::LogBounds {
            max_queue: self.log_queue_size as usize,
            max_batch: self.log_batch_size.min(self.log_queue_size) as usize,
            delay: Duration::from_millis(self.log_schedule_delay_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn production_refuses_development_secrets_and_development_allows_them() {
        use super::Environment;
        let parse = |args: &[&str]| {
            let mut all = vec!["svc"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap().serve
        };
        let dev = crate::auth::DEV_JWT_SECRET.as_bytes();
        let serve = parse(&["--admin-token", "short"]);
        assert_eq!(serve.environment, Environment::Development);
        serve
            .refuse_development_secrets(&[("JWT_SECRET", dev)])
            .unwrap();

        let serve = parse(&["--environment", "production", "--admin-token", "short"]);
        let err = serve
            .refuse_development_secrets(&[
                ("JWT_SECRET", dev),
                ("DATABASE_URL", b"postgres://u:CHANGE-ME-users@db/u"),
            ])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_SECRET is the built-in development secret"),
            "{err}"
        );
        assert!(
            err.contains("DATABASE_URL still holds a CHANGE-ME"),
            "{err}"
        );
        assert!(err.contains("ADMIN_TOKEN is shorter"), "{err}");
        // The secrets themselves are not repeated in the message.
        assert!(
            !err.contains("short\"") && !err.contains("learnsphere-dev-secret"),
            "{err}"
        );

        let serve = parse(&[
            "--environment",
            "production",
            "--admin-token",
            "0123456789abcdef0123",
        ]);
        serve
            .refuse_development_secrets(&[(
                "JWT_SECRET",
                b"a-real-random-secret-of-32-bytes-or-more",
            )])
            .unwrap();
    }

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn the_concurrency_limit_defaults_to_512_and_zero_means_none() {
        let cli = Cli::try_parse_from(["svc"]).unwrap();
        assert_eq!(cli.serve.concurrency_limit, 512);
        assert!(cli.serve.admin_token.is_none());
        let cli = Cli::try_parse_from(["svc", "--concurrency-limit", "0"]).unwrap();
        assert_eq!(cli.serve.concurrency_limit, 0);
    }

    #[test]
    fn connection_timeouts_default_to_10s_60s_30s_and_must_be_positive() {
        let cli = Cli::try_parse_from(["svc"]).unwrap();
        assert_eq!(cli.serve.header_read_timeout, Duration::from_secs(10));
        assert_eq!(cli.serve.idle_timeout, Duration::from_secs(60));
        assert_eq!(cli.serve.body_read_timeout, Duration::from_secs(30));
        let cli = Cli::try_parse_from(["svc", "--header-read-timeout", "300ms"]).unwrap();
        assert_eq!(cli.serve.header_read_timeout, Duration::from_millis(300));
        for flag in [
            "--header-read-timeout",
            "--idle-timeout",
            "--body-read-timeout",
        ] {
            for bad in ["0s", "soon"] {
                assert!(
                    Cli::try_parse_from(["svc", flag, bad]).is_err(),
                    "{flag} {bad}"
                );
            }
        }
    }

    #[test]
    fn per_request_metrics_are_on_unless_switched_off() {
        let cli = Cli::try_parse_from(["svc"]).unwrap();
        assert!(cli.serve.metrics_enabled);
        for off in ["false", "0", "off", "no"] {
            let cli = Cli::try_parse_from(["svc", "--metrics-enabled", off]).unwrap();
            assert!(!cli.serve.metrics_enabled, "{off}");
        }
        assert!(Cli::try_parse_from(["svc", "--metrics-enabled", "maybe"]).is_err());
    }

    #[test]
    fn the_admin_token_is_never_shown() {
        let cli = Cli::try_parse_from(["svc", "--admin-token", "t0p-s3cret"]).unwrap();
        assert_eq!(
            cli.serve.admin_token.as_ref().map(AdminToken::expose),
            Some("t0p-s3cret")
        );
        assert!(!format!("{cli:?}").contains("t0p-s3cret"));
        for bad in ["", "two words", "caf\u{e9}"] {
            assert!(
                Cli::try_parse_from(["svc", "--admin-token", bad]).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn timeout_overrides_parse_destination_and_route() {
        assert_eq!(
            parse_timeout_override("payments=3s").unwrap(),
            TimeoutOverride {
                destination: "payments".into(),
                route: None,
                timeout: Duration::from_secs(3)
            }
        );
        let route = parse_timeout_override("courses:/courses/{course_id}=500ms").unwrap();
        assert_eq!(route.route.as_deref(), Some("/courses/{course_id}"));
        assert_eq!(route.timeout, Duration::from_millis(500));
        for bad in ["payments", "=1s", "payments=0s", "payments=soon", "a:b=1s"] {
            assert!(parse_timeout_override(bad).is_err(), "{bad}");
        }
    }
}
