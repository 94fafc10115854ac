//! Process lifecycle as a platform sees it: SIGTERM drains in-flight
//! requests and flushes spans; a crash is reported, not ignored; and the
//! metric catalogue in docs/ lists everything the services export.

mod support;

use std::{collections::BTreeSet, time::Duration};

use loadgen::receiver::SpanKind;
use serde_json::json;
use support::{Otlp, TestSystem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_flushes_spans() {
    // Spans would wait a minute in the batch queue: only the flush at
    // shutdown can deliver them in time. The provider takes ~600 ms, so
    // the checkout is still in flight when payments gets SIGTERM.
    let mut sys = TestSystem::start_with_env(
        Otlp::Grpc,
        &[(
            "payments",
            &[
                "--provider-decline-rate",
                "0",
                "--provider-latency-median",
                "600ms",
                "--provider-latency-p99",
                "700ms",
            ],
        )],
        &[("OTEL_BSP_SCHEDULE_DELAY", "60000")],
    )
    .await;
    let (_, token) = sys.signed_up_user().await;
    let gateway = sys.gateway();
    let http = sys.http.clone();
    let checkout = tokio::spawn(async move {
        http.post(format!("{gateway}/api/checkout"))
            .bearer_auth(token)
            .header("idempotency-key", "drain-1")
            .json(&json!({"course_id": "c0001"}))
            .send()
            .await
    });
    // Let the charge reach the provider, then stop payments.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let status = sys
        .system
        .terminate("payments", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        status.success(),
        "payments exits cleanly on SIGTERM: {status}"
    );

    let res = checkout.await.unwrap().unwrap();
    assert_eq!(
        res.status(),
        201,
        "the in-flight charge completed during the drain"
    );
    let trace_id = res.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .split('-')
        .nth(1)
        .unwrap()
        .to_owned();

    // payments' spans of that checkout were exported at shutdown, although
    // the batch delay is a minute.
    let spans = sys
        .receiver
        .wait_for(Duration::from_secs(10), |spans| {
            spans.iter().any(|s| {
                s.trace_id == trace_id && s.service_name == "payments" && s.kind == SpanKind::Server
            })
        })
        .await
        .expect("payments flushed its spans on SIGTERM");
    assert!(
        spans
            .iter()
            .any(|s| s.trace_id == trace_id
                && s.attr_str("peer.service") == Some("payment-provider"))
    );

    // After the drain nothing listens any more: the next charge fails fast
    // as a 503 from the gateway, not a hang.
    let (_, token) = sys.signed_up_user().await;
    let res = sys
        .http
        .post(format!("{}/api/checkout", sys.gateway()))
        .bearer_auth(token)
        .header("idempotency-key", "after-drain")
        .json(&json!({"course_id": "c0001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_service_is_reported() {
    let mut sys = TestSystem::start(Otlp::Grpc, &[]).await;
    let pid = sys.system.pid("courses").await.expect("courses runs");
    // Killed from outside the launcher, as the OOM killer would.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), sys.system.next_exit())
        .await
        .expect("the launcher notices within seconds")
        .expect("an exit is reported");
    assert_eq!(exit.service, "courses");
    assert!(!exit.status.expect("exit status known").success());
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exported_metric_is_in_the_catalogue() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    // Exercise every service so each family has samples.
    let (_, token) = sys.signed_up_user().await;
    let res = sys
        .http
        .post(format!("{}/api/checkout", sys.gateway()))
        .bearer_auth(&token)
        .header("idempotency-key", "catalogue")
        .json(&json!({"course_id": "c0001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let catalogue =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
            .unwrap();
    let mut missing = BTreeSet::new();
    for service in ["gateway", "users", "courses", "payments", "progress"] {
        for sample in sys.scrape(service).await.samples {
            // Histogram and counter series share their family's entry.
            let family = ["_bucket", "_count", "_sum", "_created"]
                .iter()
                .find_map(|suffix| sample.name.strip_suffix(suffix))
                .unwrap_or(&sample.name);
            if !catalogue.contains(&format!("`{family}")) {
                missing.insert(format!("{service}: {}", sample.name));
            }
            for label in sample.labels.keys().filter(|l| *l != "le") {
                if !catalogue.contains(&format!("`{label}`")) {
                    missing.insert(format!("{service}: label {label} of {}", sample.name));
                }
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:#?}");
    sys.stop().await;
}
