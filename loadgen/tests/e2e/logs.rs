//! Logs, the third signal, end to end: the five services as real
//! processes export their log records over OTLP to the test's receiver,
//! each inside the trace and span it happened in, and a log flood stays
//! bounded.

use std::time::{Duration, Instant};

use otlp_sink::{
    log::{CapturedLog, Severity},
    span::{CapturedSpan, SpanKind},
};
use serde_json::{Value, json};

use crate::support::{Otlp, TestSystem, trace_id_of};

const ADMIN_TOKEN: &str = "e2e-logs-admin-token";

/// The trace's spans and log records once `done` holds for them.
async fn trace_with_logs(
    sys: &TestSystem,
    trace_id: &str,
    done: impl Fn(&[CapturedSpan], &[CapturedLog]) -> bool,
) -> (Vec<CapturedSpan>, Vec<CapturedLog>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans: Vec<CapturedSpan> = sys
            .receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect();
        let logs: Vec<CapturedLog> = sys
            .receiver
            .logs()
            .into_iter()
            .filter(|l| l.trace_id.as_deref() == Some(trace_id))
            .collect();
        if done(&spans, &logs) {
            return (spans, logs);
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id}: {} spans, log records: {:#?}",
            spans.len(),
            logs
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn has(logs: &[CapturedLog], service: &str, body: &str) -> bool {
    logs.iter()
        .any(|l| l.service_name == service && l.body_text().contains(body))
}

#[tokio::test]
async fn a_checkouts_log_records_carry_its_trace_and_the_spans_they_happened_in() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    let (_user_id, token) = sys.signed_up_user().await;
    let course = sys.paid_course().await;
    let course_id = course["id"].as_str().unwrap();
    let res = sys
        .checkout(&token, course_id, &uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    let trace_id = trace_id_of(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["payment"]["status"], "captured", "{body}");
    let payment_id = body["payment"]["id"].as_str().unwrap();

    // payments records the charge; progress, on payments' event (NATS,
    // same trace), activates the enrollment.
    let (spans, logs) = trace_with_logs(&sys, &trace_id, |spans, logs| {
        has(logs, "payments", "payment recorded")
            && has(logs, "progress", "enrollment updated from its payments")
            && logs.iter().all(|l| {
                spans
                    .iter()
                    .any(|s| Some(s.span_id.as_str()) == l.span_id.as_deref())
            })
    })
    .await;

    for record in &logs {
        let span_id = record
            .span_id
            .as_deref()
            .expect("a record in a trace has its span");
        let span = spans
            .iter()
            .find(|s| s.span_id == span_id)
            .expect("the record's span is in the trace");
        assert_eq!(
            span.service_name, record.service_name,
            "a record belongs to a span of its own service: {record:#?}"
        );
        assert_eq!(record.flags & 1, 1, "sampled, like its trace");
        assert!(record.time_unix_nano > 0);
        assert_eq!(
            record.resource.get("service.instance.id"),
            span.resource.get("service.instance.id"),
            "the same resource as the replica's spans: {record:#?}"
        );
        assert!(record.resource.contains_key("service.instance.id"));
    }
    let recorded = logs
        .iter()
        .find(|l| l.body_text().contains("payment recorded"))
        .unwrap();
    assert_eq!(recorded.severity, Severity::Info);
    assert_eq!(recorded.severity_text, "INFO");
    assert_eq!(recorded.attr_str("payment.id"), Some(payment_id));
    assert_eq!(recorded.attr_str("status"), Some("captured"));
    // Inside payments' handling of POST /payments: its server span, or a
    // span under it.
    let server = spans
        .iter()
        .find(|s| s.service_name == "payments" && s.kind == SpanKind::Server)
        .expect("payments' server span");
    let mut at = recorded.span_id.clone();
    let mut chain = Vec::new();
    while let Some(id) = at.as_deref() {
        if id == server.span_id {
            break;
        }
        let span = spans
            .iter()
            .find(|s| s.span_id == id)
            .expect("every ancestor is in the trace");
        chain.push(span.name.clone());
        at = span.parent_span_id.clone();
    }
    assert!(
        at.is_some(),
        "\"payment recorded\" is not under {:?}: its spans, upwards: {chain:?}",
        server.name
    );
    sys.stop().await;
}

#[tokio::test]
async fn an_injected_error_is_an_error_record_inside_the_failing_span() {
    let sys =
        TestSystem::start_with_env(Otlp::HttpProtobuf, &[], &[("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let courses = sys.url("courses");
    let res = sys
        .http
        .post(format!("{courses}/admin/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"route": "/courses/{course_id}", "error": {"rate": 1, "status": 503}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let fault: Value = res.json().await.unwrap();

    let res = sys
        .http
        .get(format!("{courses}/courses/c0001"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let trace_id = trace_id_of(&res);

    let (spans, logs) = trace_with_logs(&sys, &trace_id, |spans, logs| {
        !spans.is_empty() && logs.iter().any(|l| l.severity == Severity::Error)
    })
    .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.service_name == "courses")
        .expect("courses' server span");
    let error = logs.iter().find(|l| l.severity == Severity::Error).unwrap();
    assert_eq!(error.service_name, "courses");
    assert_eq!(error.span_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(error.severity_text, "ERROR");
    assert_eq!(
        error.body_text(),
        "fault injected: answering 503 Service Unavailable"
    );
    assert_eq!(error.attr_str("fault.kind"), Some("error"));
    assert_eq!(error.attr_str("fault.id"), fault["id"].as_str());
    assert_eq!(error.attr_i64("http.response.status_code"), Some(503));
    sys.stop().await;
}

/// A collector that accepts connections and never answers: every export
/// waits for its timeout. Holds what it accepted until dropped.
async fn silent_collector() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("http://{addr}"), task)
}

/// Every request failing at a high rate for ten seconds, while the log
/// collector hangs: the error lines cannot leave, the ones that do not fit
/// the queue are dropped and counted, and memory stays where it was.
#[tokio::test]
async fn a_log_flood_is_bounded_and_its_drops_counted() {
    let (silent, _collector) = silent_collector().await;
    let sys = TestSystem::start_with_env(
        Otlp::Grpc,
        &[],
        &[
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            // Spans still go to the test's receiver; log records to the
            // collector that never answers.
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &silent),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "256"),
            ("CONCURRENCY_LIMIT_PER_CLIENT", "0"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    let courses = sys.url("courses");
    let res = sys
        .http
        .post(format!("{courses}/admin/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"error": {"rate": 1, "status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let url = format!("{courses}/courses/c0001");
    // Warm: connections, allocator arenas.
    for _ in 0..300 {
        sys.http.get(&url).send().await.unwrap();
    }
    let before = sys.scrape("courses").await;

    let flood_end = Instant::now() + Duration::from_secs(10);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url) = (sys.http.clone(), url.clone());
        tasks.spawn(async move {
            let mut failed = 0_u64;
            while Instant::now() < flood_end {
                let res = http.get(&url).send().await.unwrap();
                assert_eq!(res.status(), 500);
                failed += 1;
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(n) = tasks.join_next().await {
        failed += n.unwrap();
    }
    let after = sys.scrape("courses").await;
    let rss = |s: &loadgen::scrape::Scrape| s.sum("process_resident_memory_bytes", &[]);
    let dropped = |s: &loadgen::scrape::Scrape| {
        s.sum(
            "telemetry_log_records_dropped_total",
            &[("reason", "queue_full")],
        )
    };
    let dropped = dropped(&after) - dropped(&before);
    eprintln!(
        "log flood: {failed} failed requests in 10 s, {dropped} error lines dropped and counted, \
         courses' RSS {:.1} -> {:.1} MiB",
        rss(&before) / 1048576.0,
        rss(&after) / 1048576.0
    );
    assert!(failed > 2_000, "only {failed} requests in 10 s");
    // One error line per failed request; the queue holds 256 and the
    // first batch is stuck in its export: the rest are dropped, each
    // counted.
    assert!(
        dropped >= (failed - 600) as f64,
        "{dropped} counted as dropped of {failed} error lines"
    );
    assert!(
        rss(&after) < rss(&before) + 32.0 * 1024.0 * 1024.0,
        "courses grew from {:.0} to {:.0} MiB",
        rss(&before) / 1048576.0,
        rss(&after) / 1048576.0
    );
    sys.stop().await;
}
