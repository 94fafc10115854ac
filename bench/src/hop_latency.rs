//! Latency at low load, for `per-hop.sh`: one keep-alive connection, one
//! request at a time, each timed from the first byte written to the last
//! byte of the body read, into an HdrHistogram (microsecond resolution,
//! three significant digits).
//!
//! Why not `wrk -c1`: wrk reports percentiles rounded to 10 µs steps at
//! this scale and mixes in its own event loop; a blocking socket with a
//! fixed request is the least a client can add, and it adds the same to
//! every mode, so the differences between modes are the servers' own.
//!
//! Prints one line: `requests p50_us p90_us p99_us mean_us`.
#![forbid(unsafe_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use hdrhistogram::Histogram;

#[derive(Debug, Parser)]
struct Args {
    /// `http://HOST:PORT/PATH`; loopback only.
    #[arg(long)]
    url: String,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Requests sent first and not recorded (connection, caches, pools).
    #[arg(long, default_value_t = 500)]
    warmup: u32,
    /// Stop after this many recorded requests even if time is left.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
}

/// `http://HOST:PORT/PATH` split into the address and the path.
fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        bail!("{url}: this client only talks to loopback");
    }
    Ok((authority.to_owned(), format!("/{path}")))
}

/// One keep-alive HTTP/1.1 connection with its request prepared.
struct Connection {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    body: Vec<u8>,
}

impl Connection {
    fn open(authority: &str, path: &str) -> anyhow::Result<Self> {
        let stream =
            TcpStream::connect(authority).with_context(|| format!("connecting to {authority}"))?;
        // Without it the request could wait on Nagle's algorithm.
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\naccept: application/json\r\n\r\n")
                .into_bytes();
        Ok(Self {
            reader: BufReader::with_capacity(64 * 1024, stream),
            request,
            body: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends the request and reads the whole response; the status is
    /// checked so an error page is never timed as a success.
    fn round_trip(&mut self) -> anyhow::Result<()> {
        self.reader.get_mut().write_all(&self.request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("expected 200, got {:?}", line.trim_end());
        }
        let mut length = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the connection closed inside the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked responses are not supported here");
                }
            }
        }
        let length = length.context("the response has no content-length")?;
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body)?;
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (authority, path) = parse_url(&args.url)?;
    let mut connection = Connection::open(&authority, &path)?;
    for _ in 0..args.warmup {
        connection.round_trip()?;
    }
    // 1 µs to 10 s, three significant digits.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3)?;
    let end = Instant::now() + args.duration;
    while Instant::now() < end && histogram.len() < args.max_requests {
        let start = Instant::now();
        connection.round_trip()?;
        histogram.saturating_record(start.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
    }
    println!(
        "{} {} {} {} {:.1}",
        histogram.len(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.9),
        histogram.value_at_quantile(0.99),
        histogram.mean()
    );
    Ok(())
}
