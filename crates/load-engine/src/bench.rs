//! A benchmark of one URL: GET over a fixed set of HTTP/1.1 keep-alive
//! connections — as fast as they answer (closed model, like wrk) or at a
//! fixed rate (open model, like wrk2) — through the same engine and
//! recorder as any plan. It answers two questions: how much the engine
//! itself can push on this machine (so a plan's shortfall can be told
//! from the engine's own), and what a single endpoint's
//! coordinated-omission corrected latency looks like at a given rate.
//!
//! The client is hyper's bare HTTP/1.1 connection: no pool, no
//! middleware, no tracing. Each journey takes a connection from a small
//! free list, makes one request, reads the body and puts it back.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, Uri, client::conn::http1::SendRequest, header::HOST};
use hyper_util::rt::TokioIo;

use crate::{
    ExecutorPlan, Iteration, Journey, JourneyFuture, Model, Outcome, Plan, Pool, Run, RunOptions,
    RunStats, ThinkTime, WeightedJourney,
};

/// What to benchmark, as command-line flags: a command line flattens them
/// into its own (`#[command(flatten)]`, or as a subcommand's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The URL to GET (http only), e.g. http://127.0.0.1:18090/items/c0001.
    pub url: String,
    /// Keep-alive connections, opened before the clock starts.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// How long to send requests, e.g. 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Requests per second, scheduled against the clock (open model, like
    /// wrk2); latency counts from each request's scheduled time. Without
    /// it, every connection sends its next request as soon as the last one
    /// is answered (closed model, like wrk).
    #[arg(long)]
    pub rate: Option<f64>,
}

/// Where the requests go.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port`, to connect to.
    address: String,
    /// The `Host` header.
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("{url}: only http:// is supported, not {other}://"),
            None => bail!("{url}: give the whole URL, e.g. http://127.0.0.1:8080/"),
        }
        let authority = uri.authority().with_context(|| format!("{url}: no host"))?;
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            address,
            authority: authority.as_str().to_owned(),
            path,
        })
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("cannot connect to {}", self.address))?;
        // Small requests and answers: Nagle would only add delay.
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP/1.1 handshake with {}", self.address))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; the
            // next request on it fails and is counted.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// One GET on a connection from the free list.
struct Get {
    target: Target,
    /// `GET /path`: the request type in the results.
    name: &'static str,
    /// Idle connections. At most `connections` journeys run at once (the
    /// pool size or the number of users), so one is always free; a lock
    /// held for a push or a pop is cheaper here than anything cleverer.
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
}

impl Get {
    fn take(&self) -> Option<SendRequest<Empty<Bytes>>> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, connection: SendRequest<Empty<Bytes>>) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}

fn classify(result: &Result<u16, String>) -> Outcome {
    match result {
        Ok(status) if (200..300).contains(status) => Outcome::ok(*status),
        Ok(status) => Outcome::failed(Some(*status), status.to_string()),
        Err(kind) => Outcome::failed(None, kind.clone()),
    }
}

impl Journey for Get {
    fn run<'a>(&'a self, it: &'a mut Iteration) -> JourneyFuture<'a> {
        Box::pin(async move {
            let mut connection = self.take();
            let result = it
                .request(
                    self.name,
                    async {
                        // A connection lost to an earlier error is replaced
                        // here, inside the timing: reconnecting is part of
                        // what that request cost.
                        let sender = match &mut connection {
                            Some(sender) => sender,
                            None => connection.insert(
                                self.target
                                    .connect()
                                    .await
                                    .map_err(|_| "connect".to_owned())?,
                            ),
                        };
                        sender.ready().await.map_err(|_| "closed".to_owned())?;
                        let request = Request::get(self.target.path.as_str())
                            .header(HOST, self.target.authority.as_str())
                            .body(Empty::new())
                            .map_err(|_| "request".to_owned())?;
                        let response = sender
                            .send_request(request)
                            .await
                            .map_err(|_| "transport".to_owned())?;
                        let status = response.status().as_u16();
                        let mut body = response.into_body();
                        while let Some(frame) = body.frame().await {
                            frame.map_err(|_| "body".to_owned())?;
                        }
                        Ok(status)
                    },
                    classify,
                )
                .await;
            // After a transport error the connection is not trusted again;
            // the next journey to find none opens a new one.
            if let (Ok(_), Some(sender)) = (result, connection) {
                self.give_back(sender);
            }
        })
    }
}

/// What the benchmark measured; `Display` prints it for people, ending
/// with one `bench: rps=...` line for scripts.
pub struct BenchReport {
    pub args: BenchArgs,
    pub stats: RunStats,
}

impl BenchReport {
    /// Answered requests per second over the run.
    pub fn requests_per_second(&self) -> f64 {
        self.stats.rate(self.stats.overall())
    }
}

/// Runs the benchmark and returns what it measured.
pub async fn bench(args: BenchArgs) -> anyhow::Result<BenchReport> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.duration.is_zero() {
        bail!("--duration must be above zero");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a number of requests per second above zero, not {rate}");
    }
    let target = Target::parse(&args.url)?;
    let mut idle = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        idle.push(target.connect().await?);
    }
    // One request type per invocation: leaking its name once is what
    // gives it the `'static` lifetime the engine's records want.
    let name: &'static str = Box::leak(format!("GET {}", target.path).into_boxed_str());
    let journey = Arc::new(Get {
        target,
        name,
        idle: Mutex::new(idle),
    });
    let model = match args.rate {
        Some(rate) => Model::ConstantArrivalRate {
            rate,
            duration: args.duration,
            pool: Pool {
                max_in_flight: args.connections,
                // Like wrk2: every request is sent, however late, so the
                // corrected latency shows the whole cost of falling
                // behind; the backlog holds at most the run's requests.
                max_lateness: args.duration,
                max_backlog: ((rate * args.duration.as_secs_f64()).ceil() as usize)
                    .clamp(1, 5_000_000),
            },
        },
        None => Model::ConstantVus {
            vus: u32::try_from(args.connections).unwrap_or(u32::MAX),
            duration: args.duration,
            think_time: ThinkTime::default(),
            iterations: None,
        },
    };
    let plan = Plan {
        executors: vec![ExecutorPlan {
            name: "bench".into(),
            start: Duration::ZERO,
            model,
            journeys: vec![WeightedJourney {
                name: "get",
                weight: 1,
                journey,
            }],
        }],
    };
    let options = RunOptions {
        grace: Duration::from_secs(2),
        slowest: 0,
        failed: 0,
        ..RunOptions::default()
    };
    let stats = Run::start(plan, options)?.finish().await;
    Ok(BenchReport { args, stats })
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let all = s.overall();
        let model = match self.args.rate {
            Some(rate) => format!("open model at {rate} req/s"),
            None => "closed model (next request when the last is answered)".to_owned(),
        };
        writeln!(
            f,
            "GET {}: {} connections, {:.2} s, {model}",
            self.args.url,
            self.args.connections,
            s.elapsed().as_secs_f64()
        )?;
        writeln!(
            f,
            "  requests     {} ({:.1} req/s), errors {} ({:.2}%)",
            all.count(),
            self.requests_per_second(),
            all.errors(),
            all.error_rate() * 100.0
        )?;
        for (kind, n) in all.errors_by_kind() {
            writeln!(f, "    {n:>10}  {kind}")?;
        }
        let executor = s.executors().first();
        if let (Some(rate), Some(e)) = (self.args.rate, executor) {
            writeln!(
                f,
                "  schedule     target {rate:.0}/s, started {:.1}/s ({:.4} of target), late (>10 ms) {}, dropped {}, max lateness {:.1} ms",
                e.achieved_rate(),
                e.achieved_rate() / rate,
                e.late(),
                e.dropped(),
                e.max_lateness().as_secs_f64() * 1e3
            )?;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let qs = [0.5, 0.9, 0.99, 0.999, 1.0];
        writeln!(
            f,
            "  latency (ms)      p50      p90      p99    p99.9      max"
        )?;
        for (label, q) in [
            (
                "corrected",
                &(|q| all.latency(q)) as &dyn Fn(f64) -> Duration,
            ),
            ("uncorrected", &|q| all.uncorrected_latency(q)),
        ] {
            write!(f, "  {label:<13}")?;
            for x in qs {
                write!(f, " {:>8.3}", ms(q(x)))?;
            }
            writeln!(f)?;
        }
        // One line for scripts.
        let ratio = match (self.args.rate, executor) {
            (Some(rate), Some(e)) => e.achieved_rate() / rate,
            _ => 1.0,
        };
        writeln!(
            f,
            "bench: rps={:.1} errors={} achieved_ratio={:.4} dropped={} p50_ms={:.3} p99_ms={:.3} p99_uncorrected_ms={:.3}",
            self.requests_per_second(),
            all.errors(),
            ratio,
            s.dropped(),
            ms(all.latency(0.5)),
            ms(all.latency(0.99)),
            ms(all.uncorrected_latency(0.99)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_into_address_host_and_path() {
        let t = Target::parse("http://127.0.0.1:18090/items/c0001?x=1").unwrap();
        assert_eq!(t.address, "127.0.0.1:18090");
        assert_eq!(t.authority, "127.0.0.1:18090");
        assert_eq!(t.path, "/items/c0001?x=1");
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!((t.address.as_str(), t.path.as_str()), ("localhost:80", "/"));
        assert!(
            Target::parse("https://example.com/")
                .unwrap_err()
                .to_string()
                .contains("only http://")
        );
        assert!(Target::parse("127.0.0.1:80/x").is_err());
    }
}
