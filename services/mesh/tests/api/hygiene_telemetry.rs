//! Telemetry hygiene as an operator would check it: what leaves the
//! process (exported spans, exemplars) carries no passwords, tokens, email
//! addresses or card numbers, and every span attribute the code emits is on
//! the exporter's allow-list (`mesh::redact`).

use std::path::{Path, PathBuf};

use axum::{Router, body::Body, routing::get};
use http::Request;
use mesh::{
    Mesh, Readiness,
    exporter::RedactingExporter,
    redact::{self, REDACTED_ATTRIBUTES},
};
use opentelemetry::{
    Value, global,
    propagation::TextMapCompositePropagator,
    trace::{Status, TracerProvider as _},
};
use opentelemetry_sdk::{
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{
    self, Telemetry, call, get as get_request, identity, scrape, serve_config, str_attr,
};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiIsImVtYWlsIjoiYWxpY2VAZXhhbXBsZS5jb20ifQ.c2lnbmF0dXJlLWJ5dGVz";
const SECRETS: [&str; 5] = [
    "alice@example.com",
    "hunter2",
    "4111",
    "eyJ",
    "s3cr3t-t0k3n",
];

/// A handler that does everything it should not: logs a password, a card
/// number and an email inside the request span, and puts an email on the
/// span as an attribute nobody allow-listed.
async fn careless() -> &'static str {
    tracing::info!(
        password = "hunter2",
        card = "4111 1111 1111 1111",
        "receipt for alice@example.com, Bearer s3cr3t-t0k3n"
    );
    tracing::Span::current().set_attribute("enduser.email", "alice@example.com");
    "done"
}

fn app() -> Router {
    let api = Router::new()
        .route("/items/{id}", get(careless))
        .route("/plain/{id}", get(|| async { "plain" }));
    let readiness = Readiness::new(None);
    readiness.mark_started();
    Mesh::new(identity("items"), &serve_config()).router(api, readiness)
}

/// Every string an exported span carries: name, attribute values, events
/// (names and fields), status message.
fn strings(span: &SpanData) -> Vec<String> {
    let mut all = vec![span.name.to_string()];
    all.extend(span.attributes.iter().map(|kv| kv.value.to_string()));
    for event in span.events.iter() {
        all.push(event.name.to_string());
        all.extend(event.attributes.iter().map(|kv| kv.value.to_string()));
    }
    if let Status::Error { description } = &span.status {
        all.push(description.to_string());
    }
    all
}

#[tokio::test]
async fn spans_leave_the_process_without_secrets() {
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    // The exporter chain `telemetry::init` builds, minus the network.
    let exported = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(RedactingExporter::new(exported.clone()))
        .build();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
    );

    let req = Request::get("/items/alice@example.com")
        .header("user-agent", format!("evil/1.0 (Bearer {JWT})"))
        .header("x-request-id", format!("card 4111-1111-1111-1111 {JWT}"))
        .body(Body::empty())
        .unwrap();
    let res = call(&app(), req).await;
    assert_eq!(res.status(), 200);

    let spans = exported.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "GET /items/{id}");
    assert_eq!(str_attr(span, "http.route").as_deref(), Some("/items/{id}"));
    assert_eq!(
        str_attr(span, "url.path").as_deref(),
        Some("/items/[REDACTED:email]")
    );
    assert_eq!(
        str_attr(span, "user_agent.original").as_deref(),
        Some("evil/1.0 (Bearer [REDACTED:bearer])")
    );
    assert_eq!(
        str_attr(span, "http.request.header.x-request-id").as_deref(),
        Some("card [REDACTED:card] [REDACTED:jwt]")
    );
    // The attribute nobody allow-listed is gone, and counted; nothing
    // else the stack emits was dropped.
    assert_eq!(str_attr(span, "enduser.email"), None);
    assert_eq!(
        helpers::attr(span, REDACTED_ATTRIBUTES),
        Some(&Value::I64(1))
    );
    let event = &span.events[0];
    assert_eq!(
        event.name,
        "receipt for [REDACTED:email], Bearer [REDACTED:bearer]"
    );
    for text in strings(span) {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret:?} exported in {text:?}");
        }
    }

    // A span with nothing to hide is exported as it was.
    exported.reset();
    let res = call(&app(), get_request("/plain/7")).await;
    assert_eq!(res.status(), 200);
    let spans = exported.get_finished_spans().unwrap();
    assert_eq!(helpers::attr(&spans[0], REDACTED_ATTRIBUTES), None);
    assert_eq!(str_attr(&spans[0], "url.path").as_deref(), Some("/plain/7"));
}

/// Exemplars link a latency bucket to a trace, and carry nothing else: a
/// caller's path, headers or baggage never become exemplar labels.
#[tokio::test]
async fn exemplars_carry_only_a_trace_id() {
    let _telemetry = Telemetry::install();
    let app = app();
    let req = Request::get("/plain/alice@example.com")
        .header("baggage", "user.email=alice@example.com")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.status(), 200);

    let metrics = scrape(&app).await;
    let exemplars: Vec<_> = metrics
        .samples
        .iter()
        .filter_map(|s| s.exemplar.as_ref())
        .collect();
    assert!(!exemplars.is_empty(), "{}", metrics.text);
    for exemplar in exemplars {
        assert_eq!(exemplar.len(), 1, "{exemplar:?}");
        let (key, value) = &exemplar[0];
        assert_eq!(key, "trace_id");
        assert!(
            value.len() == 32 && value.bytes().all(|c| c.is_ascii_hexdigit()),
            "{value}"
        );
    }
    assert!(!metrics.text.contains("alice"), "{}", metrics.text);
}

// === the allow-list against the code ===

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text between the `(` at `open` and its matching `)`, skipping
/// string and char literals.
fn balanced(src: &str, open: usize) -> Option<&str> {
    let b = src.as_bytes();
    let mut depth = 0;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&src[open + 1..i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits macro arguments at top-level commas.
fn arguments(args: &str) -> Vec<&str> {
    let b = args.as_bytes();
    let (mut depth, mut start, mut i) = (0, 0, 0);
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&args[start..]);
    out
}

/// The field name a span macro argument declares, if it declares one:
/// `a.b = v`, `"a.b-c" = v`, or the shorthand `a`, `%a`, `?a`.
fn field_name(arg: &str) -> Option<String> {
    let arg = arg.trim();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    let eq = arg.char_indices().find(|&(i, c)| {
        c == '='
            && !arg[i + 1..].starts_with(['=', '>'])
            && !arg[..i].ends_with(['=', '!', '<', '>'])
    });
    match eq {
        Some((i, _)) => {
            let key = arg[..i].trim();
            match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
                Some(quoted) => Some(quoted.to_owned()),
                None => is_name(key).then(|| key.to_owned()),
            }
        }
        None => {
            let bare = arg.trim_start_matches(['%', '?']);
            (is_name(bare) && !bare.contains("::")).then(|| bare.to_owned())
        }
    }
}

/// Every field of a log event (`info!(…)` and the other levels, `event!`)
/// in `src`: the arguments before the message literal.
fn emitted_log_keys(src: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for mac in [
        "trace!(", "debug!(", "info!(", "warn!(", "error!(", "event!(",
    ] {
        for (at, _) in src.match_indices(mac) {
            if src[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let Some(args) = balanced(src, at + mac.len() - 1) else {
                continue;
            };
            let args = arguments(args);
            // `event!` names its level first.
            let skip = usize::from(mac == "event!(");
            for arg in args.iter().skip(skip) {
                if arg.trim_start().starts_with('"') {
                    break;
                }
                keys.extend(field_name(arg));
            }
        }
    }
    keys
}

/// Every span field and recorded attribute named in `src`; instrumented
/// functions without `skip_all` are reported as `#[instrument] without
/// skip_all` (their arguments would become attributes).
fn emitted_keys(src: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (at, _) in src.match_indices("span!(") {
        if let Some(args) = balanced(src, at + "span!".len()) {
            // The first argument is the name (or level); fields follow.
            keys.extend(arguments(args).iter().skip(1).filter_map(|a| field_name(a)));
        }
    }
    for (at, _) in src.match_indices("instrument(") {
        if !src[..at].trim_end().ends_with("#[") && !src[..at].ends_with("tracing::") {
            continue;
        }
        let Some(args) = balanced(src, at + "instrument".len()) else {
            continue;
        };
        if !args.contains("skip_all") {
            keys.push("#[instrument] without skip_all".to_owned());
        }
        if let Some(fields) = args.find("fields(") {
            let inner = balanced(args, fields + "fields".len()).unwrap_or_default();
            keys.extend(arguments(inner).iter().filter_map(|a| field_name(a)));
        }
    }
    for pattern in [".record(", "set_attribute("] {
        for (at, _) in src.match_indices(pattern) {
            let rest = src[at + pattern.len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                keys.extend(literal.split('"').next().map(str::to_owned));
            }
        }
    }
    keys
}

#[test]
fn every_log_field_the_code_emits_is_allow_listed() {
    let root = workspace_root();
    let mut files = Vec::new();
    // What runs under `telemetry::init`: the services and `loadgen run`.
    for dir in ["services", "loadgen/src", "crates/load-engine/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.retain(|f| f.components().any(|c| c.as_os_str() == "src"));
    let mut seen = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests log what they like; only the code above them ships.
        let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
        let src: String = shipped
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for key in emitted_log_keys(&src) {
            if !redact::is_allowed_log_attribute(&key) {
                missing.push(format!(
                    "{key} ({})",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
            seen.insert(key);
        }
    }
    assert!(
        seen.len() >= 20,
        "the scan should find the services' own fields: {seen:?}"
    );
    assert!(
        missing.is_empty(),
        "log fields the log pipeline would drop; add them to \
         redact::ALLOWED_LOG_ATTRIBUTES if they carry no caller data:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_span_attribute_the_code_emits_is_allow_listed() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["services", "loadgen/src", "bench/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    // Sources only: integration tests make spans of their own.
    files.retain(|f| f.components().any(|c| c.as_os_str() == "src"));
    assert!(
        files.len() > 50,
        "found {} files under {root:?}",
        files.len()
    );

    let mut seen = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    for file in &files {
        // Comment lines out: docs may show examples.
        let src: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        // loadgen's `.record(` calls are its observations, not spans.
        let in_loadgen = file.components().any(|c| c.as_os_str() == "loadgen");
        let keys = if in_loadgen {
            let mut keys = emitted_keys(&src);
            keys.retain(|k| k.contains('.') || k.starts_with('#'));
            keys
        } else {
            emitted_keys(&src)
        };
        for key in keys {
            if !redact::is_allowed_attribute(&key) {
                missing.push(format!(
                    "{key} ({})",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
            seen.insert(key);
        }
    }
    assert!(
        seen.len() >= 40,
        "the scan should find the mesh's own fields: {seen:?}"
    );
    assert!(
        missing.is_empty(),
        "span attributes the exporter would drop; add them to \
         redact::ALLOWED_SPAN_ATTRIBUTES if they carry no caller data:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_source_scan_reads_span_fields() {
    let src = r#"
        let span = tracing::info_span!(
            "HTTP call",
            otel.name = format!("{} {}", a, b),
            http.request.method = m.as_str(),
            "http.request.header.x-request-id" = id,
            peer.service = &*self.destination,
            %shorthand,
            error.type = Empty,
        );
        span.record("http.response.status_code", 200);
        #[tracing::instrument(name = "seed", skip_all, fields(courses = n.len()))]
        #[instrument(name = "leaky")]
    "#;
    assert_eq!(
        emitted_keys(src),
        [
            "otel.name",
            "http.request.method",
            "http.request.header.x-request-id",
            "peer.service",
            "shorthand",
            "error.type",
            "courses",
            "#[instrument] without skip_all",
            "http.response.status_code",
        ]
    );
}
