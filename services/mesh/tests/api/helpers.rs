//! What the mesh's integration tests share: a service identity and serve
//! settings, a tracer that keeps finished spans in memory, request
//! helpers for router-level tests, and a reader for the `/metrics` text
//! that asserts on samples the way a Prometheus query would.

use std::time::Duration;

use axum::{Router, body::Body};
use http::{Request, Response, header};
use http_body_util::BodyExt as _;
use mesh::{ServeConfig, ServiceIdentity};
use opentelemetry::{
    Value, global,
    propagation::TextMapCompositePropagator,
    trace::{SpanId, SpanKind, TraceId, TracerProvider as _},
};
use opentelemetry_sdk::{
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

pub fn identity(name: &str) -> ServiceIdentity {
    ServiceIdentity {
        name: name.into(),
        version: "0.0.0-test",
        instance_id: format!("{name}-test-instance").into(),
    }
}

/// Serve settings for tests: a small body limit so 413 is cheap to reach.
pub fn serve_config() -> ServeConfig {
    ServeConfig {
        host: [127, 0, 0, 1].into(),
        shutdown_grace: Duration::from_secs(1),
        max_body_bytes: 1024,
        concurrency_limit: 0,
        admin_token: None,
        ..ServeConfig::default()
    }
}

/// A real tracer for the current thread only (`set_default`, not global),
/// so tests in one process never see each other's spans. `#[tokio::test]`
/// runs on one thread, so spawned tasks (servers) are traced too.
pub struct Telemetry {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: Option<tracing::dispatcher::DefaultGuard>,
}

impl Telemetry {
    pub fn install() -> Self {
        // What `telemetry::init` installs; process-wide, and the same value
        // for every test, so setting it again is harmless.
        global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
        let exporter = InMemorySpanExporter::default();
        // The simple processor exports when a span ends, so a span is in
        // `spans()` as soon as the request that made it has been answered.
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        // Process-wide when this is the process's first (nextest runs each
        // test in its own process): a thread-local default alone loses
        // spans whose callsites another thread registered first, under the
        // no-op global dispatcher. Under `cargo test`, later tests in the
        // process fall back to the thread-local default.
        let dispatch = tracing::Dispatch::new(subscriber);
        let guard = match tracing::dispatcher::set_global_default(dispatch.clone()) {
            Ok(()) => None,
            Err(_) => Some(tracing::dispatcher::set_default(&dispatch)),
        };
        Self {
            exporter,
            _provider: provider,
            _guard: guard,
        }
    }

    pub fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter readable")
    }

    /// The finished spans called `name`, once there are `count` of them
    /// (at most five seconds). A database span can end a moment after its
    /// operation has answered: sqlx's SQLite worker thread holds a clone
    /// of the caller's span while it runs the command and drops it after
    /// sending the result, and the span ends (and is exported) when its
    /// last clone is dropped.
    pub fn spans_named(&self, name: &str, count: usize) -> Vec<SpanData> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let named: Vec<SpanData> = self
                .spans()
                .into_iter()
                .filter(|s| s.name == name)
                .collect();
            if named.len() >= count || std::time::Instant::now() >= deadline {
                return named;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The one finished span called `name`.
    pub fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let mut named: Vec<SpanData> = spans.iter().filter(|s| s.name == name).cloned().collect();
        assert_eq!(
            named.len(),
            1,
            "expected one span named {name:?}, got: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        named.remove(0)
    }

    /// The one finished span called `name` of kind `kind` (a client span
    /// and the server span it called are named alike).
    pub fn span_of_kind(&self, name: &str, kind: SpanKind) -> SpanData {
        let spans = self.spans();
        let mut found: Vec<SpanData> = spans
            .iter()
            .filter(|s| s.name == name && s.span_kind == kind)
            .cloned()
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {kind:?} span named {name:?} in {spans:#?}"
        );
        found.remove(0)
    }

    pub fn reset(&self) {
        self.exporter.reset();
    }
}

pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

pub fn str_attr(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// A W3C `traceparent` (or `traceresponse`) split into its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub flags: u8,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>` strictly (lower-case hex, as
    /// the spec requires of what we send).
    pub fn parse(value: &str) -> Self {
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4, "traceparent {value:?} has four parts");
        assert_eq!(parts[0], "00", "version of {value:?}");
        let lower_hex = |s: &str, len: usize| {
            s.len() == len
                && s.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        };
        assert!(lower_hex(parts[1], 32), "trace id of {value:?}");
        assert!(lower_hex(parts[2], 16), "span id of {value:?}");
        assert!(lower_hex(parts[3], 2), "flags of {value:?}");
        let parsed = Self {
            trace_id: TraceId::from_hex(parts[1]).unwrap(),
            span_id: SpanId::from_hex(parts[2]).unwrap(),
            flags: u8::from_str_radix(parts[3], 16).unwrap(),
        };
        assert_ne!(parsed.trace_id, TraceId::INVALID, "{value:?}");
        assert_ne!(parsed.span_id, SpanId::INVALID, "{value:?}");
        parsed
    }
}

pub fn traceresponse<B>(res: &Response<B>) -> TraceParent {
    let value = res
        .headers()
        .get("traceresponse")
        .expect("response has a traceresponse header")
        .to_str()
        .expect("traceresponse is ASCII");
    TraceParent::parse(value)
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub async fn call(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone()
        .oneshot(req)
        .await
        .expect("routers are infallible")
}

/// Runs the request on its own task, as hyper would: the test can look at
/// the service while the request is in progress, or abort it.
pub fn spawn_call(app: &Router, req: Request<Body>) -> tokio::task::JoinHandle<Response<Body>> {
    let app = app.clone();
    tokio::spawn(async move { app.oneshot(req).await.expect("routers are infallible") })
}

pub async fn body_text(res: Response<Body>) -> String {
    let bytes = res
        .into_body()
        .collect()
        .await
        .expect("body readable")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("body is UTF-8")
}

pub async fn body_json(res: Response<Body>) -> serde_json::Value {
    let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
    let text = body_text(res).await;
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "JSON content type for {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is JSON ({e}): {text}"))
}

/// `GET /metrics` in the default (OpenMetrics) format.
pub async fn scrape(app: &Router) -> Exposition {
    let res = call(app, get("/metrics")).await;
    assert_eq!(res.status(), 200);
    Exposition::parse(&body_text(res).await)
}

/// One sample line of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// The exemplar's label set, as written (`trace_id="..."`).
    pub exemplar: Option<Vec<(String, String)>>,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn has_labels(&self, wanted: &[(&str, &str)]) -> bool {
        wanted.iter().all(|(k, v)| self.label(k) == Some(v))
    }
}

/// A scraped exposition, parsed; keeps the raw text for messages.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unparseable sample line {l:?}")))
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// Every sample of metric `name` whose labels include `labels`.
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.has_labels(labels))
            .collect()
    }

    /// The value of the one sample of `name` with `labels`, if there is one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.matching(name, labels);
        assert!(
            found.len() <= 1,
            "{name}{labels:?} matches several series: {found:#?}"
        );
        found.first().map(|s| s.value)
    }
}

/// `name{k="v",...} value [# {k="v",...} value [timestamp]]`.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(rest)?;
        labels = parsed;
        rest = after;
    }
    let rest = rest.trim_start();
    let (value, exemplar) = match rest.split_once(" # ") {
        Some((value, exemplar)) => (value, Some(parse_labels(exemplar.trim_start())?.0)),
        None => (rest, None),
    };
    let value = value.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
        exemplar,
    })
}

/// Parses `{k="v",...}` at the start of `s` (values may hold `{`, `}` and
/// escaped quotes), returning the pairs and what follows the `}`.
fn parse_labels(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut chars = s.strip_prefix('{')?.char_indices();
    let body_start = 1;
    let mut labels = Vec::new();
    loop {
        // A key, or the closing brace.
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' if key.is_empty() => return Some((labels, &s[body_start + i + 1..])),
                '=' => break,
                ',' if key.is_empty() => {}
                c => key.push(c),
            }
        }
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key, value));
    }
}
