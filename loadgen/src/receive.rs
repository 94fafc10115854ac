//! `loadgen receive`: a stand-in OpenTelemetry Collector for benchmarks
//! and quick looks without Jaeger. It takes spans and log records over
//! OTLP (gRPC and HTTP), keeps the latest of each within a bound, counts
//! the spans every few seconds, and prints each log record as it arrives:
//!
//! ```text
//! payments   ERROR 4bf92f35 payment provider failed destination=provider error="connection refused"
//! ```
//!
//! (service, severity, the first 8 digits of the trace id or `-`, the
//! message, then the event's fields). Optionally it serves the receiver's
//! read-only query API (`--query`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use otlp_sink::Receiver;
use otlp_sink::log::{CapturedLog, Severity};
use otlp_sink::span::AttrValue;
use tokio::sync::{broadcast, oneshot};

use crate::report::format::attr_text;

/// `loadgen receive`'s options.
#[derive(Debug, clap::Args)]
pub struct ReceiveArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub http: SocketAddr,
    /// Spans kept in memory (oldest dropped first).
    #[arg(long, default_value_t = 10_000)]
    pub keep: usize,
    /// Log records kept in memory (oldest dropped first).
    #[arg(long, default_value_t = 10_000)]
    pub keep_logs: usize,
    /// Which log records to print as they arrive: `all`, those of a
    /// severity and above (`trace`, `debug`, `info`, `warn`, `error`,
    /// `fatal`), or `off`.
    #[arg(long, default_value = "all", value_name = "SEVERITY")]
    pub print_logs: PrintLogs,
    /// Also serve the read-only query API here: `GET
    /// /api/traces/{trace_id}`, `/api/stats` and `/metrics` (what the
    /// Compose smoke test asks and Prometheus scrapes).
    #[arg(long)]
    pub query: Option<SocketAddr>,
}

/// Which arriving log records `loadgen receive` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintLogs {
    /// Every one, of unspecified severity too.
    All,
    /// Those of this severity and above.
    AtLeast(Severity),
    /// None (they are still counted and kept).
    Off,
}

impl PrintLogs {
    fn prints(self, log: &CapturedLog) -> bool {
        match self {
            Self::All => true,
            Self::AtLeast(least) => log.severity >= least,
            Self::Off => false,
        }
    }
}

impl FromStr for PrintLogs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Self::All),
            "off" | "none" => Ok(Self::Off),
            other => match Severity::from_text(other) {
                Severity::Unspecified => Err(format!(
                    "{s:?}: expected all, trace, debug, info, warn, error, fatal or off"
                )),
                least => Ok(Self::AtLeast(least)),
            },
        }
    }
}

/// How often the span and log-record counts are printed.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Runs the receiver until Ctrl-C or SIGTERM.
pub async fn receive(args: ReceiveArgs) -> anyhow::Result<()> {
    let receiver = Receiver::with_max_records(args.keep, args.keep_logs);
    // Subscribed before the ports open, so the first record is printed too;
    // not at all when nothing is printed, as a subscriber costs the
    // receiver a copy of every record.
    let feed = (args.print_logs != PrintLogs::Off).then(|| receiver.subscribe_logs());
    let running = receiver.start(args.grpc, args.http).await?;
    println!(
        "receiving OTLP on {} (gRPC) and {} (HTTP); Ctrl-C stops",
        running.grpc_endpoint(),
        running.http_endpoint()
    );
    if let Some(addr) = args.query {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "query API on http://{}/api/traces/{{trace_id}}",
            listener.local_addr()?
        );
        let router = running.query_router();
        // Ends with the process; nothing to drain in a read-only API.
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    let (stop_printing, stopped) = oneshot::channel();
    let printer = feed.map(|feed| tokio::spawn(print_logs(feed, args.print_logs, stopped)));

    let (mut spans_before, mut logs_before) = (0, 0);
    let mut tick = tokio::time::interval(COUNT_EVERY);
    let shutdown = mesh::server::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {
                let stats = running.stats();
                print_count("spans", stats.received_spans, &mut spans_before);
                print_count("log records", stats.received_logs, &mut logs_before);
            }
        }
    }
    let stats = running.stats();
    running.shutdown().await?;
    // Nothing arrives any more: the printer finishes what was announced.
    let _ = stop_printing.send(());
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    println!("{} spans received in all", stats.received_spans);
    println!("{} log records received in all", stats.received_logs);
    Ok(())
}

/// Prints how many `what` have been received in all and since the last
/// count, when that changed.
fn print_count(what: &str, received: u64, before: &mut u64) {
    if received != *before {
        println!(
            "{received} {what} received ({} in the last {} s)",
            received - *before,
            COUNT_EVERY.as_secs()
        );
        *before = received;
    }
}

/// Prints the records `feed` announces that `which` selects, until `stop`,
/// then those still queued. Lines are written in batches of whatever has
/// arrived, one flush each, so a burst costs few writes.
async fn print_logs(
    mut feed: broadcast::Receiver<CapturedLog>,
    which: PrintLogs,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        // `None` once stopped: what is still queued is written, then no more.
        let arrival = tokio::select! {
            biased;
            arrival = feed.recv() => Some(arrival),
            _ = &mut stop => None,
        };
        let mut out = io::stdout().lock();
        let open = arrival.is_some_and(|arrival| write_arrival(&mut out, arrival, which));
        write_queued(&mut out, &mut feed, which);
        let _ = out.flush();
        if !open {
            return;
        }
    }
}

/// Writes what is queued without waiting for more.
fn write_queued(
    out: &mut impl io::Write,
    feed: &mut broadcast::Receiver<CapturedLog>,
    which: PrintLogs,
) {
    loop {
        let arrival = match feed.try_recv() {
            Ok(log) => Ok(log),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                Err(broadcast::error::RecvError::Lagged(n))
            }
            Err(_) => return,
        };
        write_arrival(out, arrival, which);
    }
}

/// Writes one arrival; `false` once the feed has closed.
fn write_arrival(
    out: &mut impl io::Write,
    arrival: Result<CapturedLog, broadcast::error::RecvError>,
    which: PrintLogs,
) -> bool {
    match arrival {
        Ok(log) => {
            if which.prints(&log) {
                let _ = writeln!(out, "{}", log_line(&log));
            }
            true
        }
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            let _ = writeln!(
                out,
                "({missed} log records arrived faster than they could be printed: not shown)"
            );
            true
        }
        Err(broadcast::error::RecvError::Closed) => false,
    }
}

/// One log record as `loadgen receive` prints it: service, severity, the
/// trace id's first 8 digits (`-` outside a trace), the message, then the
/// fields as `key=value` (quoted when they hold spaces). Control
/// characters are escaped: a record is remote input and must not move the
/// terminal's cursor or change its colours.
pub fn log_line(log: &CapturedLog) -> String {
    let service = if log.service_name.is_empty() {
        "-"
    } else {
        &log.service_name
    };
    let severity = match log.severity {
        Severity::Unspecified if !log.severity_text.is_empty() => &log.severity_text,
        Severity::Unspecified => "-",
        known => known.as_str(),
    };
    let trace = log
        .trace_id
        .as_deref()
        .map_or("-", |id| id.get(..8).unwrap_or(id));
    let mut line = format!(
        "{:<10} {:<5} {trace:<8} {}",
        printable(service),
        printable(severity),
        printable(&log.body_text())
    );
    for (key, value) in &log.attributes {
        let _ = write!(line, " {}={}", printable(key), field_value(value));
    }
    line
}

/// A field's value in logfmt style: bare when it is one word, quoted
/// otherwise.
fn field_value(value: &AttrValue) -> String {
    let text = attr_text(value);
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
    if bare {
        text.into_owned()
    } else {
        // Debug quoting escapes quotes and control characters alike.
        format!("{text:?}")
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`).
fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use otlp_sink::span::Transport;

    fn record(severity: Severity, body: &str) -> CapturedLog {
        CapturedLog {
            service_name: "payments".into(),
            resource: BTreeMap::new(),
            scope_name: String::new(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            span_id: Some("00f067aa0ba902b7".into()),
            flags: 1,
            severity,
            severity_number: 17,
            severity_text: severity.to_string(),
            body: AttrValue::String(body.into()),
            attributes: BTreeMap::from([
                (
                    "error".into(),
                    AttrValue::String("connection refused".into()),
                ),
                ("destination".into(), AttrValue::String("provider".into())),
                ("attempt".into(), AttrValue::Int(3)),
            ]),
            event_name: String::new(),
            time_unix_nano: 1,
            observed_time_unix_nano: 1,
            transport: Transport::Grpc,
        }
    }

    #[test]
    fn a_line_shows_service_severity_short_trace_body_and_fields() {
        assert_eq!(
            log_line(&record(Severity::Error, "payment provider failed")),
            "payments   ERROR 4bf92f35 payment provider failed attempt=3 \
             destination=provider error=\"connection refused\""
        );
        let mut outside = record(Severity::Info, "listening");
        outside.trace_id = None;
        outside.attributes.clear();
        outside.service_name.clear();
        assert_eq!(log_line(&outside), "-          INFO  -        listening");
        outside.severity = Severity::Unspecified;
        outside.severity_text = "notice".into();
        assert!(log_line(&outside).contains(" notice "));
    }

    #[test]
    fn a_line_cannot_drive_the_terminal() {
        let mut log = record(Severity::Warn, "red \u{1b}[31m\nsecond line");
        log.attributes = BTreeMap::from([("k\u{7}".into(), AttrValue::String("a\rb".into()))]);
        let line = log_line(&log);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains(r"red \u{1b}[31m\nsecond line"), "{line}");
        assert!(line.ends_with(r#"k\u{7}="a\rb""#), "{line}");
    }

    #[test]
    fn which_records_are_printed() {
        let parse = |s: &str| s.parse::<PrintLogs>();
        assert_eq!(parse("all"), Ok(PrintLogs::All));
        assert_eq!(parse("WARN"), Ok(PrintLogs::AtLeast(Severity::Warn)));
        assert_eq!(parse("off"), Ok(PrintLogs::Off));
        assert!(parse("loud").unwrap_err().contains("expected all"));

        let warn = PrintLogs::AtLeast(Severity::Warn);
        assert!(warn.prints(&record(Severity::Error, "")));
        assert!(warn.prints(&record(Severity::Warn, "")));
        assert!(!warn.prints(&record(Severity::Info, "")));
        assert!(PrintLogs::All.prints(&record(Severity::Unspecified, "")));
        assert!(!PrintLogs::Off.prints(&record(Severity::Fatal, "")));

        let mut out = Vec::new();
        assert!(write_arrival(
            &mut out,
            Err(broadcast::error::RecvError::Lagged(7)),
            PrintLogs::All
        ));
        assert!(!write_arrival(
            &mut out,
            Err(broadcast::error::RecvError::Closed),
            PrintLogs::All
        ));
        assert!(
            String::from_utf8(out)
                .unwrap()
                .starts_with("(7 log records")
        );
    }
}
