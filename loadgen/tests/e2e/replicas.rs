//! Replicas under the local launcher, through the real binaries: several
//! replicas of a service, each in the discovery targets once ready; a
//! killed replica restarted as a new process (a new `service.instance.id`)
//! and counted by the launcher; scaling through the control API.

use std::{collections::BTreeSet, future::Future, time::Duration};

use launcher::{ReplicaState, TargetGroup, read_targets};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Otlp, TestSystem};

/// payments with `replicas` replicas, the rest with one.
async fn start_with_payments(replicas: usize) -> TestSystem {
    TestSystem::start_with_options(Otlp::Grpc, &[], &[], |options| {
        options.replicas.insert("payments", replicas);
    })
    .await
}

fn targets(sys: &TestSystem) -> Vec<TargetGroup> {
    read_targets(sys.system.targets_file().expect("a targets file")).expect("targets parse")
}

/// `(replica, "host:port")` of every payments group in the targets file.
fn payments_targets(sys: &TestSystem) -> Vec<(String, String)> {
    targets(sys)
        .into_iter()
        .filter(|g| g.label("service") == Some("payments"))
        .map(|g| {
            assert_eq!(g.targets.len(), 1, "one target per group: {g:?}");
            assert_eq!(g.label("job"), Some("payments"));
            (
                g.label("replica").expect("a replica label").to_owned(),
                g.targets[0].clone(),
            )
        })
        .collect()
}

/// Polls `check` until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

async fn launcher_metric(sys: &TestSystem, name: &str) -> f64 {
    sys.scrape_url(&sys.control())
        .await
        .sum(name, &[("service", "payments")])
}

async fn ready(sys: &TestSystem, url: &str) -> bool {
    sys.http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

fn process_exists(pid: u32) -> bool {
    // Signal 0: only asks whether the process is there.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

async fn post(sys: &TestSystem, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = sys.control_request(reqwest::Method::POST, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn services(sys: &TestSystem) -> Value {
    sys.control_request(reqwest::Method::GET, "/services")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn service<'a>(services: &'a Value, name: &str) -> &'a Value {
    services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {services}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_in_the_targets_once_ready_and_listed_by_the_control_api() {
    let sys = start_with_payments(3).await;

    // Three payments groups, distinct ports, each replica ready.
    let payments = payments_targets(&sys);
    assert_eq!(
        payments.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    let addresses: BTreeSet<&str> = payments.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(addresses.len(), 3, "distinct ports: {payments:?}");
    for (_, address) in &payments {
        assert!(
            ready(&sys, &format!("http://{address}")).await,
            "{address} is ready"
        );
    }
    // One group for each other service, and the launcher for Prometheus.
    let all = targets(&sys);
    for name in ["gateway", "users", "courses", "progress"] {
        assert_eq!(
            all.iter()
                .filter(|g| g.label("service") == Some(name))
                .count(),
            1,
            "{name}: {all:?}"
        );
    }
    let launcher: Vec<_> = all
        .iter()
        .filter(|g| g.label("job") == Some("launcher"))
        .collect();
    assert_eq!(launcher.len(), 1);
    assert_eq!(
        launcher[0].targets,
        [sys.control().trim_start_matches("http://")]
    );

    // Each replica is its own process with its own identity.
    let mut ids = BTreeSet::new();
    for (_, address) in &payments {
        ids.insert(instance_id(&sys, &format!("http://{address}")).await);
    }
    assert_eq!(ids.len(), 3, "one service.instance.id per replica");

    // The control API says the same, with the pids the launcher knows.
    let listed = services(&sys).await;
    let listed_payments = service(&listed, "payments");
    assert_eq!(listed_payments["desired"], 3);
    let replicas = listed_payments["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    for (listed, known) in replicas.iter().zip(sys.system.replicas("payments")) {
        assert_eq!(listed["state"], "ready");
        assert_eq!(listed["restarts"], 0);
        assert_eq!(listed["replica"], known.replica);
        assert_eq!(listed["url"], known.url);
        assert_eq!(listed["pid"], known.pid.unwrap());
        assert!(addresses.contains(known.url.trim_start_matches("http://")));
    }
    assert_eq!(
        service(&listed, "gateway")["replicas"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(launcher_metric(&sys, "launcher_replicas").await, 3.0);
    assert_eq!(
        launcher_metric(&sys, "launcher_desired_replicas").await,
        3.0
    );
    assert_eq!(launcher_metric(&sys, "launcher_restarts_total").await, 0.0);

    // Bad requests get the JSON error body.
    let (status, body) = post(
        &sys,
        "/services/billing/scale",
        Some(json!({"replicas": 2})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("unknown_service"))
    );
    for bad in [json!({"replicas": 0}), json!({"replicas": 17})] {
        let (status, body) = post(&sys, "/services/payments/scale", Some(bad)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (422, &json!("invalid_replicas")),
            "{body}"
        );
    }
    let (status, body) = post(
        &sys,
        "/services/payments/scale",
        Some(json!({"replicas": -1})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].is_string());
    let (status, body) = post(&sys, "/services/payments/replicas/9/kill", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("unknown_replica"))
    );

    // What a web page the operator has open can send kills nothing: a
    // cross-site form POST (no token, a form's content type, a foreign
    // Origin), the same through DNS rebinding (the attacker's name as
    // Host), and even the right token with a form's body.
    let kill = format!("{}/services/payments/replicas/1/kill", sys.control());
    let port = sys.system.control_addr().unwrap().port();
    let token = sys.system.control_token().unwrap().to_owned();
    let attempts = [
        (
            sys.http
                .post(&kill)
                .header("origin", "http://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("x=1"),
            403,
        ),
        (
            sys.http
                .post(&kill)
                .header("content-type", "text/plain")
                .body("x"),
            401,
        ),
        (sys.http.post(&kill), 401),
        (
            sys.http
                .post(&kill)
                .header("host", format!("rebound.evil.example:{port}"))
                .bearer_auth(&token),
            421,
        ),
        (
            sys.http
                .post(&kill)
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body(""),
            415,
        ),
    ];
    for (i, (attempt, want)) in attempts.into_iter().enumerate() {
        let res = attempt.send().await.unwrap();
        let status = res.status().as_u16();
        assert_eq!(status, want, "attempt {i}: {}", res.text().await.unwrap());
    }
    let res = sys
        .http
        .get(format!("{}/services", sys.control()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "listing needs the token too");
    // Nothing changed.
    assert_eq!(payments_targets(&sys), payments);
    assert_eq!(sys.system.restarts("payments"), 0, "no replica was killed");
    sys.stop().await;
}

/// How a test kills a replica.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// `System::kill_replica`.
    SystemApi,
    /// `POST /services/payments/replicas/{replica}/kill` on the control API.
    ControlApi,
}

/// Kills `replica` of payments, then checks what an operator sees: out of
/// the targets at once, the exit reported, back within seconds as a new
/// process (new pid, new `service.instance.id`) on the same port, and
/// the launcher's restart counter at `restarts_after`.
async fn kill_and_watch_it_come_back(
    sys: &mut TestSystem,
    replica: usize,
    how: Kill,
    restarts_after: u64,
) {
    let before = sys.system.replicas("payments")[replica].clone();
    assert_eq!(before.state, ReplicaState::Ready);
    let old_pid = before.pid.expect("running");
    let old_id = instance_id(sys, &before.url).await;

    match how {
        Kill::SystemApi => sys
            .system
            .kill_replica("payments", replica)
            .await
            .expect("killed"),
        Kill::ControlApi => {
            let (status, body) = post(
                sys,
                &format!("/services/payments/replicas/{replica}/kill"),
                None,
            )
            .await;
            assert_eq!(status, 202, "{body}");
            assert_eq!(body["state"], "restarting");
        }
    }
    let label = replica.to_string();
    assert!(
        !payments_targets(sys).iter().any(|(r, _)| *r == label),
        "a dead replica is out of the targets at once"
    );
    let now = sys.system.replicas("payments")[replica].clone();
    assert_eq!((now.state, now.pid), (ReplicaState::Restarting, None));
    assert!(!process_exists(old_pid), "the old process is gone");
    let exit = tokio::time::timeout(Duration::from_secs(5), sys.system.next_exit())
        .await
        .expect("the exit is reported")
        .expect("an exit");
    assert_eq!((exit.service, exit.replica), ("payments", replica));
    assert!(!exit.status.expect("status known").success());

    eventually(Duration::from_secs(20), "the replica is back", || async {
        payments_targets(sys).iter().any(|(r, _)| *r == label)
    })
    .await;
    let after = sys.system.replicas("payments")[replica].clone();
    assert_eq!(after.state, ReplicaState::Ready);
    let new_pid = after.pid.expect("running again");
    assert_ne!(new_pid, old_pid, "a new process");
    assert_eq!(after.url, before.url, "it kept its port");
    assert!(ready(sys, &after.url).await);
    assert_ne!(
        instance_id(sys, &after.url).await,
        old_id,
        "a new service.instance.id"
    );
    assert_eq!(after.restarts, before.restarts + 1);
    assert_eq!(sys.system.restarts("payments"), restarts_after);
    assert_eq!(
        launcher_metric(sys, "launcher_restarts_total").await,
        restarts_after as f64
    );
    assert_eq!(launcher_metric(sys, "launcher_replicas").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_restarted_as_a_new_process_and_counted() {
    let mut sys = start_with_payments(3).await;
    kill_and_watch_it_come_back(&mut sys, 1, Kill::SystemApi, 1).await;
    kill_and_watch_it_come_back(&mut sys, 2, Kill::ControlApi, 2).await;
    // The others were left alone.
    let replicas = sys.system.replicas("payments");
    let restarts: Vec<u64> = replicas.iter().map(|r| r.restarts).collect();
    assert_eq!(restarts, [0, 1, 1]);
    let listed = services(&sys).await;
    assert_eq!(service(&listed, "payments")["restarts"], 2);
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_scales_up_and_down_through_the_control_api() {
    let sys = start_with_payments(3).await;
    let before: Vec<_> = sys.system.replicas("payments");

    // Up: answered once the new replica is ready, and in the targets.
    let (status, body) = post(
        &sys,
        "/services/payments/scale",
        Some(json!({"replicas": 4})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "payments");
    assert_eq!(body["desired"], 4);
    assert_eq!(body["stopped"], json!([]));
    let replicas = body["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 4);
    assert!(replicas.iter().all(|r| r["state"] == "ready"), "{body}");
    let new_url = replicas[3]["url"].as_str().unwrap();
    assert!(ready(&sys, new_url).await);
    let payments = payments_targets(&sys);
    assert_eq!(payments.len(), 4, "{payments:?}");
    assert!(payments.contains(&("3".into(), new_url.trim_start_matches("http://").into())));
    assert_eq!(launcher_metric(&sys, "launcher_replicas").await, 4.0);
    assert_eq!(
        launcher_metric(&sys, "launcher_desired_replicas").await,
        4.0
    );
    let new_pid = replicas[3]["pid"].as_u64().unwrap() as u32;
    assert!(process_exists(new_pid));

    // Down to one: the surplus replicas drained and exited cleanly.
    let (status, body) = post(
        &sys,
        "/services/payments/scale",
        Some(json!({"replicas": 1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["desired"], 1);
    assert_eq!(body["replicas"].as_array().unwrap().len(), 1);
    assert_eq!(body["replicas"][0]["pid"], before[0].pid.unwrap());
    let stopped = body["stopped"].as_array().unwrap();
    assert_eq!(
        stopped
            .iter()
            .map(|s| s["replica"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for s in stopped {
        assert_eq!(s["graceful"], true, "{s}");
        assert_eq!(s["exit_code"], 0, "SIGTERM drains, then exits 0: {s}");
    }
    assert_eq!(
        payments_targets(&sys),
        [(
            "0".to_owned(),
            before[0].url.trim_start_matches("http://").to_owned()
        )]
    );
    for gone in before[1..].iter().map(|r| r.pid.unwrap()).chain([new_pid]) {
        assert!(!process_exists(gone), "{gone} exited");
    }
    assert!(
        !ready(&sys, new_url).await,
        "nothing listens there any more"
    );
    assert_eq!(launcher_metric(&sys, "launcher_replicas").await, 1.0);
    assert_eq!(
        launcher_metric(&sys, "launcher_desired_replicas").await,
        1.0
    );
    // Scaling down is not a crash.
    assert_eq!(launcher_metric(&sys, "launcher_restarts_total").await, 0.0);
    assert_eq!(sys.system.replicas("payments").len(), 1);
    sys.stop().await;
}
