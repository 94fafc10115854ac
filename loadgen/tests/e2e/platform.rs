//! The `local` platform driver against the real launcher and services:
//! a rolling restart under traffic loses no request; a timeline's fault,
//! clear and scale reach the replicas through the control and admin
//! APIs, and expectations are judged from the services' own `/metrics`.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use loadgen::{
    expect::{Expectation, Watcher},
    platform::{LocalPlatform, Platform},
    timeline::{Event, TimelineRunner},
};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::time::Instant;

use crate::support::{Otlp, TestSystem};

const ADMIN_TOKEN: &str = "e2e-platform-admin-token";

async fn start(courses: usize, env: &[(&str, &str)]) -> (TestSystem, LocalPlatform) {
    let sys = TestSystem::start_with_options(Otlp::Grpc, &[], env, |options| {
        options.replicas.insert("courses", courses);
        options.admin_token = Some(ADMIN_TOKEN.into());
    })
    .await;
    let platform = LocalPlatform::new(sys.control(), Some(ADMIN_TOKEN.into()));
    (sys, platform)
}

/// The `service.instance.id` a replica reports in `build_info`.
async fn instance_id(sys: &TestSystem, url: &str) -> String {
    sys.scrape_url(url)
        .await
        .find("build_info", &[])
        .next()
        .and_then(|s| s.label("service_instance_id"))
        .expect("build_info carries service_instance_id")
        .to_owned()
}

/// `GET /api/courses` through the gateway until `stop`: the answers'
/// statuses (or errors), in order.
fn traffic(sys: &TestSystem, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<String>> {
    let http = sys.http.clone();
    let url = format!("{}/api/courses?per_page=3", sys.gateway());
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let answer = match http.get(&url).send().await {
                Ok(res) => res.status().as_u16().to_string(),
                Err(e) => format!("error: {e}"),
            };
            seen.push(answer);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        seen
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_traffic_loses_no_request() {
    let (sys, platform) = start(2, &[]).await;
    let before = sys.system.replicas("courses");
    let mut old_ids = BTreeSet::new();
    for replica in &before {
        old_ids.insert(instance_id(&sys, &replica.url).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let requests = traffic(&sys, stop.clone());
    let detail = platform
        .restart("courses")
        .await
        .expect("the restart succeeds");
    // A little traffic after the last replica is back, too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = requests.await.unwrap();

    assert!(
        answers.len() > 50,
        "traffic ran throughout: {}",
        answers.len()
    );
    let failed: Vec<&String> = answers.iter().filter(|a| *a != "200").collect();
    assert!(
        failed.is_empty(),
        "every request succeeded; failed: {failed:?}"
    );

    let after = sys.system.replicas("courses");
    assert_eq!(after.len(), 2);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(new.replica, old.replica);
        assert_ne!(new.pid, old.pid, "replica {} is a new process", old.replica);
        assert_eq!(new.url, old.url, "on its old port");
        assert_eq!(new.restarts, 0, "a restart asked for is not a crash");
        let id = instance_id(&sys, &new.url).await;
        assert!(
            !old_ids.contains(&id),
            "replica {} has a new instance id",
            new.replica
        );
    }
    assert!(
        detail.starts_with("courses: 2 replicas restarted one by one (pids "),
        "{detail}"
    );
    assert_eq!(
        sys.scrape_url(&sys.control())
            .await
            .sum("launcher_restarts_total", &[("service", "courses")]),
        0.0
    );
    sys.stop().await;
}

#[derive(Deserialize)]
struct Scenario {
    timeline: Vec<Event>,
    expect: Vec<Expectation>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_reaches_the_replicas_and_expectations_read_their_metrics() {
    // The fault opens the gateway's breaker to courses; it must close
    // again soon after the fault is cleared.
    let (sys, platform) = start(1, &[("BREAKER_OPEN_FOR", "300ms")]).await;
    let platform: Arc<dyn Platform> = Arc::new(platform);
    let scenario: Scenario = toml::from_str(
        r#"
        [[timeline]]
        at = "0s"
        action = "fault"
        service = "courses"
        error = { rate = 1.0, status = 503 }
        expires_in = "1m"
        phase = "courses outage"

        [[timeline]]
        at = "3s"
        action = "clear-faults"
        service = "courses"

        [[timeline]]
        at = "3500ms"
        action = "scale"
        service = "courses"
        replicas = 2

        [[expect]]
        name = "courses injects errors"
        service = "courses"
        metric = "fault_injections_total"
        labels = { kind = "error" }
        check = "increase >= 1"

        [[expect]]
        name = "the gateway's breaker to courses opens"
        service = "gateway"
        metric = "http_client_circuit_breaker_transitions_total"
        labels = { destination = "courses", state = "open" }
        check = "increase >= 1"
        during = ["0s", "3s"]

        [[expect]]
        name = "two courses replicas at the end"
        service = "courses"
        metric = "build_info"
        check = "last == 2"

        [[expect]]
        service = "courses"
        metric = "fault_injection_total"
        check = "increase >= 1"
        "#,
    )
    .expect("the scenario parses");

    let mut registry = Registry::default();
    let phases = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = phases.clone();
    let runner = TimelineRunner::new(platform.clone(), &mut registry)
        .on_phase(move |p| seen.lock().unwrap().push(p.to_owned()));
    let watcher = Watcher::new(platform.clone(), scenario.expect);
    let (watch_stop, watch_stopped) = tokio::sync::oneshot::channel::<()>();
    let t0 = Instant::now();
    let watching = tokio::spawn(watcher.run(t0, async {
        let _ = watch_stopped.await;
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let requests = traffic(&sys, stop.clone());

    let records = runner
        .run(&scenario.timeline, t0, std::future::pending())
        .await;
    stop.store(true, Ordering::Relaxed);
    let answers = requests.await.unwrap();
    let _ = watch_stop.send(());
    let results = watching.await.unwrap().evaluate();

    assert_eq!(records.len(), 3);
    for record in &records {
        assert!(record.ok, "{record:?}");
    }
    assert!(
        records[0].detail.starts_with(
            "every route: error 100% 503 for 1m on 1 of 1 courses replicas (fault ids "
        ),
        "{}",
        records[0].detail
    );
    assert_eq!(
        records[1].detail,
        "faults cleared on 1 of 1 courses replicas"
    );
    assert_eq!(records[2].detail, "courses: 1 → 2 replicas");
    assert!(records[2].fired_s >= 3.5);
    // The named phase, then what happened for the unnamed events.
    assert_eq!(
        *phases.lock().unwrap(),
        ["courses outage", "clear-faults courses", "scale courses"]
    );
    assert!(
        answers.iter().any(|a| a != "200"),
        "the fault reached the traffic"
    );
    // Cleared: the replica lists no fault, and the gateway answers again
    // once its breaker to courses has closed (the breaker's open period
    // grew while the fault lasted).
    let listed: serde_json::Value = sys
        .http
        .get(format!(
            "{}/admin/faults",
            sys.system.replicas("courses")[0].url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"], serde_json::json!([]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = sys
            .http
            .get(format!("{}/api/courses?per_page=3", sys.gateway()))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway still answers {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(results.len(), 4);
    assert!(results[0].passed, "{:?}", results[0]);
    assert!(results[0].observed.unwrap() >= 1.0);
    assert!(results[1].passed, "{:?}", results[1]);
    assert!(results[2].passed, "{:?}", results[2]);
    assert!(
        results[2].detail.contains("2 replicas scraped"),
        "the replica added by the scale is scraped too: {}",
        results[2].detail
    );
    assert!(!results[3].passed);
    assert!(
        results[3].detail.starts_with(
            "no series matched `fault_injection_total` on courses: is the metric name right?"
        ),
        "{}",
        results[3].detail
    );

    // A crash through the control API: counted by the launcher as one.
    let detail = platform.crash("courses", Some(1)).await.unwrap();
    assert!(detail.starts_with("courses-1 (pid "), "{detail}");
    assert_eq!(sys.system.restarts("courses"), 1);
    sys.stop().await;
}
