//! Process lifecycle as a platform sees it: SIGTERM drains in-flight
//! requests and flushes spans; a crash is reported, not ignored; and the
//! metric catalogue in docs/ lists everything the services export.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use otlp_sink::span::SpanKind;

use crate::support::{Otlp, TestSystem, trace_id_of};

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
    let checkout = tokio::spawn(sys.checkout(&token, "c0001", "drain-1").send());
    // Once the charge is at the provider (its pool slot taken), stop payments.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sys
        .scrape("payments")
        .await
        .sum("payments_provider_pool_in_use", &[])
        < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the charge never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let trace_id = trace_id_of(&res);

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
        .checkout(&token, "c0001", "after-drain")
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
        .checkout(&token, "c0001", "catalogue")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let catalogue =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
            .unwrap();
    let documented = documented_metrics(&catalogue);
    assert!(
        documented.len() >= 10,
        "the catalogue tables parse: {documented:?}"
    );

    // Every exported family is documented, with exactly its labels (the
    // launcher's own families too)...
    let mut exported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut targets: Vec<String> = ["gateway", "users", "courses", "payments", "progress"]
        .iter()
        .map(|service| sys.url(service))
        .collect();
    targets.push(sys.control());
    for target in &targets {
        for sample in sys.scrape_url(target).await.samples {
            // Histogram and counter series share their family's entry.
            let family = ["_bucket", "_count", "_sum", "_created"]
                .iter()
                .find_map(|suffix| sample.name.strip_suffix(suffix))
                .unwrap_or(&sample.name)
                .to_owned();
            exported
                .entry(family)
                .or_default()
                .extend(sample.labels.into_keys().filter(|l| l != "le"));
        }
    }
    let mut missing = Vec::new();
    for (family, labels) in &exported {
        match documented.get(family) {
            None => missing.push(format!("{family} is exported but not documented")),
            Some(doc) if doc != labels => missing.push(format!(
                "{family}: exported labels {labels:?}, documented {doc:?}"
            )),
            Some(_) => {}
        }
    }
    // ...and every documented family is exported.
    for family in documented.keys() {
        if !exported.contains_key(family) {
            missing.push(format!("{family} is documented but not exported"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/metrics.md and /metrics disagree: {missing:#?}"
    );
    sys.stop().await;
}

/// `name -> labels` from the catalogue's tables: rows whose first cell is a
/// backticked metric name and whose fourth cell lists backticked labels.
fn documented_metrics(markdown: &str) -> BTreeMap<String, BTreeSet<String>> {
    let backticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    // The load generator's own families are served by `loadgen run`, not
    // by the system: the catalogue of the system ends where theirs starts.
    let system = markdown
        .split("\n## loadgen")
        .next()
        .expect("split yields at least one part");
    system
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // | name | type | unit | labels | answers |
            let name = backticked(cells.get(1)?).into_iter().next()?;
            let labels = backticked(cells.get(4)?).into_iter().collect();
            Some((name, labels))
        })
        .collect()
}
