//! A populated run summary and its captured traces, shared by the report
//! and schema tests: every kind of field filled, optional ones both set and
//! unset, and hostile strings where outside input reaches the report.

use std::collections::BTreeMap;

use load_engine::{ExecutorSummary, NamedStats, Percentiles, Sample, SeriesPoint, Stats};
use loadgen::summary::{
    CheckResult, Links, SCHEMA_VERSION, ScenarioInfo, Summary, TimelineRecord, Verdict,
};
use otlp_sink::CapturedTrace;
use otlp_sink::log::{CapturedLog, Severity};
use otlp_sink::span::{AttrValue, CapturedSpan, SpanKind, SpanStatus, StatusCode, Transport};

/// Captured: the slowest journey's trace.
pub const SLOW_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Slow too, but its spans were not captured.
pub const UNCAPTURED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
/// A failed journey's trace, captured, with an error span.
pub const FAILED_TRACE: &str = "5b8efff798038103d269b633813fc60c";
pub const JAEGER: &str = "http://localhost:16686";
/// A value an attacker could put in a span attribute.
pub const HOSTILE: &str = "<script>alert('owned')</script>";
/// The message of the error log record that explains the failed journey.
pub const FAILED_LOG: &str = "payment provider failed";

fn percentiles(base: f64) -> Percentiles {
    Percentiles {
        p50: base,
        p90: base * 2.0,
        p95: base * 2.5,
        p99: base * 4.0,
        p999: base * 6.0,
        max: base * 8.0,
        mean: base * 1.2,
    }
}

fn stats(
    count: u64,
    errors: u64,
    base: f64,
    kinds: &[(&str, u64)],
    statuses: &[(&str, u64)],
) -> Stats {
    Stats {
        count,
        errors,
        error_rate: if count == 0 {
            0.0
        } else {
            errors as f64 / count as f64
        },
        rate: count as f64 / 60.0,
        latency_ms: percentiles(base),
        uncorrected_latency_ms: percentiles(base * 0.9),
        errors_by_kind: kinds.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        status_counts: statuses
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
    }
}

pub fn summary() -> Summary {
    Summary {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: "checkout <under> faults".into(),
            description: "Checkout at 50/s while payments fails & recovers".into(),
            file: "scenarios/checkout-faults.toml".into(),
            duration_scale: 0.5,
            platform: "local".into(),
            target: "http://127.0.0.1:8080".into(),
            system: vec!["courses: 1 → 2 replicas".into()],
        },
        started_at: "2026-11-20T10:00:00Z".into(),
        duration_s: 60.0,
        verdict: Verdict {
            passed: false,
            aborted: None,
            failures: vec!["checkout: p99 < 800ms (p99 = 912.3 ms, limit 800 ms)".into()],
        },
        overall: stats(
            3000,
            12,
            40.0,
            &[("503 dependency_unavailable", 10), ("timeout", 2)],
            &[],
        ),
        journeys: vec![
            NamedStats {
                name: "checkout".into(),
                stats: stats(
                    1000,
                    12,
                    120.0,
                    &[("503 dependency_unavailable", 10), ("timeout", 2)],
                    &[],
                ),
            },
            NamedStats {
                name: "browse".into(),
                stats: stats(2000, 0, 15.0, &[], &[]),
            },
        ],
        requests: vec![
            NamedStats {
                name: "POST /api/payments".into(),
                stats: stats(
                    1000,
                    12,
                    90.0,
                    &[("503 dependency_unavailable", 10), ("timeout", 2)],
                    &[("201", 988), ("503", 10)],
                ),
            },
            NamedStats {
                name: "GET /api/courses".into(),
                stats: stats(3000, 0, 12.0, &[], &[("200", 3000)]),
            },
        ],
        executors: vec![ExecutorSummary {
            name: "steady".into(),
            kind: "constant-arrival-rate".into(),
            start_s: 0.0,
            duration_s: 60.0,
            scheduled: 3000,
            started: 2990,
            dropped: 10,
            late: 4,
            max_lateness_ms: 23.5,
            target_rate: 50.0,
            achieved_rate: 49.8,
        }],
        timeline: vec![
            TimelineRecord {
                at_s: 20.0,
                fired_s: 20.01,
                action: "fault".into(),
                service: "payments".into(),
                detail: "error 503 on 50% of POST /payments".into(),
                ok: true,
                error: None,
                took_ms: 3.2,
            },
            TimelineRecord {
                at_s: 40.0,
                fired_s: 40.2,
                action: "scale".into(),
                service: "payments".into(),
                detail: "payments → 3 replicas".into(),
                ok: false,
                error: Some("control API answered 409: already scaling".into()),
                took_ms: 180.0,
            },
        ],
        thresholds: vec![
            CheckResult {
                name: "checkout: p99 < 800ms".into(),
                passed: false,
                observed: Some(912.3),
                detail: "p99 = 912.3 ms, limit 800 ms".into(),
            },
            CheckResult {
                name: "error_rate < 2%".into(),
                passed: true,
                observed: Some(0.004),
                detail: "0.40%, limit 2%".into(),
            },
        ],
        expectations: vec![CheckResult {
            name: "increase(breaker_opened_total{service=\"payments\"}) >= 1".into(),
            passed: true,
            observed: None,
            detail: "no samples: the metric was never scraped".into(),
        }],
        series: (1..=60)
            .map(|t| {
                let quiet = t == 30; // nothing completed in this second
                SeriesPoint {
                    t_s: f64::from(t),
                    target_rate: 50.0,
                    achieved_rate: if t == 45 { 40.0 } else { 50.0 },
                    completed: if quiet { 0 } else { 50 },
                    errors: if (20..25).contains(&t) { 2 } else { 0 },
                    p50_ms: if quiet { 0.0 } else { 40.0 },
                    p99_ms: if quiet { 0.0 } else { 160.0 + f64::from(t) },
                    max_ms: if quiet { 0.0 } else { 320.0 },
                    in_flight: 3,
                    dropped: if t == 45 { 10 } else { 0 },
                }
            })
            .collect(),
        slowest: vec![
            Sample {
                journey: "checkout".into(),
                request: Some("POST /api/payments".into()),
                trace_id: Some(SLOW_TRACE.into()),
                start_s: 21.4,
                latency_ms: 1260.0,
                uncorrected_latency_ms: 1190.0,
                status: Some(201),
                error: None,
            },
            Sample {
                journey: "checkout".into(),
                request: Some("POST /api/payments".into()),
                trace_id: Some(UNCAPTURED_TRACE.into()),
                start_s: 22.0,
                latency_ms: 1100.0,
                uncorrected_latency_ms: 1000.0,
                status: Some(201),
                error: None,
            },
        ],
        failed: vec![
            Sample {
                journey: "checkout".into(),
                request: Some("POST /api/payments".into()),
                trace_id: Some(FAILED_TRACE.into()),
                start_s: 20.3,
                latency_ms: 35.0,
                uncorrected_latency_ms: 34.0,
                status: Some(503),
                error: Some("503 dependency_unavailable".into()),
            },
            Sample {
                journey: "checkout".into(),
                request: Some("POST /api/payments".into()),
                trace_id: None,
                start_s: 24.9,
                latency_ms: 10_000.0,
                uncorrected_latency_ms: 10_000.0,
                status: None,
                error: Some("timeout".into()),
            },
        ],
        links: Links {
            jaeger: Some(JAEGER.into()),
        },
    }
}

fn attrs(pairs: &[(&str, AttrValue)]) -> BTreeMap<String, AttrValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn s(value: &str) -> AttrValue {
    AttrValue::String(value.to_owned())
}

#[allow(clippy::too_many_arguments)]
fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    service: &str,
    name: &str,
    start_ms: u64,
    end_ms: u64,
    attributes: BTreeMap<String, AttrValue>,
) -> CapturedSpan {
    const T0: u64 = 1_790_000_000_000_000_000;
    CapturedSpan {
        service_name: service.into(),
        resource: attrs(&[("service.name", s(service))]),
        scope_name: "mesh".into(),
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: parent.map(Into::into),
        name: name.into(),
        kind: SpanKind::Server,
        attributes,
        status: SpanStatus::default(),
        start_unix_nano: T0 + start_ms * 1_000_000,
        end_unix_nano: T0 + end_ms * 1_000_000,
        events: Vec::new(),
        links: Vec::new(),
        transport: Transport::Grpc,
    }
}

/// A log record of `trace`, made in span `span`, `at_ms` into the trace.
fn log(
    trace: &str,
    span: &str,
    service: &str,
    severity: Severity,
    body: &str,
    at_ms: u64,
    attributes: BTreeMap<String, AttrValue>,
) -> CapturedLog {
    const T0: u64 = 1_790_000_000_000_000_000;
    CapturedLog {
        service_name: service.into(),
        resource: attrs(&[("service.name", s(service))]),
        scope_name: service.into(),
        trace_id: Some(trace.into()),
        span_id: Some(span.into()),
        flags: 1,
        severity,
        severity_number: 0,
        severity_text: severity.as_str().into(),
        body: s(body),
        attributes,
        event_name: String::new(),
        time_unix_nano: T0 + at_ms * 1_000_000,
        observed_time_unix_nano: T0 + at_ms * 1_000_000,
        transport: Transport::Grpc,
    }
}

/// Captured traces for [`SLOW_TRACE`] (4 spans over three services, a
/// retry logged) and [`FAILED_TRACE`] (an injected fault, the error
/// logged, and a warning from a span that was not captured).
pub fn traces() -> BTreeMap<String, CapturedTrace> {
    let slow = vec![
        span(
            SLOW_TRACE,
            "1111111111111111",
            None,
            "gateway",
            "POST /api/checkout",
            0,
            1250,
            attrs(&[
                ("http.request.method", s("POST")),
                ("http.route", s("/api/checkout")),
                ("http.response.status_code", AttrValue::Int(201)),
            ]),
        ),
        span(
            SLOW_TRACE,
            "2222222222222222",
            Some("1111111111111111"),
            "gateway",
            "POST payments",
            5,
            1240,
            attrs(&[
                ("peer.service", s("payments")),
                ("retry.attempt", AttrValue::Int(2)),
            ]),
        ),
        span(
            SLOW_TRACE,
            "3333333333333333",
            Some("2222222222222222"),
            "payments",
            "POST /payments",
            900,
            1230,
            // Attribute values come from request data: they must not inject markup.
            attrs(&[("http.route", s(HOSTILE))]),
        ),
        span(
            SLOW_TRACE,
            "4444444444444444",
            Some("3333333333333333"),
            "payments",
            "INSERT payments",
            910,
            1220,
            attrs(&[("db.operation.name", s("INSERT"))]),
        ),
    ];
    let mut fault = span(
        FAILED_TRACE,
        "aaaaaaaaaaaaaaaa",
        None,
        "payments",
        "POST /payments",
        0,
        30,
        attrs(&[
            ("http.response.status_code", AttrValue::Int(503)),
            ("error.type", s("503")),
            ("fault.injected", AttrValue::Bool(true)),
        ]),
    );
    fault.status = SpanStatus {
        code: StatusCode::Error,
        message: "injected fault".into(),
    };
    let slow_logs = vec![log(
        SLOW_TRACE,
        "2222222222222222",
        "gateway",
        Severity::Info,
        "retrying payments",
        800,
        attrs(&[("attempt", AttrValue::Int(2))]),
    )];
    let failed_logs = vec![
        log(
            FAILED_TRACE,
            "aaaaaaaaaaaaaaaa",
            "payments",
            Severity::Error,
            FAILED_LOG,
            20,
            // Fields come from request data too.
            attrs(&[("error", s(HOSTILE)), ("destination", s("provider"))]),
        ),
        log(
            FAILED_TRACE,
            "bbbbbbbbbbbbbbbb",
            "gateway",
            Severity::Warn,
            "breaker half-open",
            25,
            BTreeMap::new(),
        ),
    ];
    BTreeMap::from([
        (SLOW_TRACE.to_owned(), CapturedTrace::new(slow, slow_logs)),
        (
            FAILED_TRACE.to_owned(),
            CapturedTrace::new(vec![fault], failed_logs),
        ),
    ])
}
