//! Resilience through the real binaries, with payments scaled to three
//! replicas that the gateway discovers from the launcher's `file_sd`
//! targets: traffic spreads over all three; a killed replica costs
//! idempotent calls nothing; a replica slowed by an injected fault gets
//! less traffic; `/admin/crash` brings a replica back as a new process.

use std::time::Duration;

use launcher::ReplicaState;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Otlp, TestSystem};

const ADMIN_TOKEN: &str = "e2e-admin-token";

/// payments ×3; the simulated provider never declines, so every checkout
/// that fails is the system's doing.
async fn start() -> TestSystem {
    TestSystem::start_with_options(
        Otlp::Grpc,
        &[],
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("PROVIDER_DECLINE_RATE", "0")],
        |options| {
            options.replicas.insert("payments", 3);
        },
    )
    .await
}

/// `POST /api/checkout` for a fresh course per call; returns the status.
async fn checkout(sys: &TestSystem, token: &str, n: usize) -> u16 {
    let course = format!("c{:04}", n % 250 + 1);
    let key = uuid::Uuid::new_v4().to_string();
    sys.checkout(token, &course, &key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `GET /api/users/{user}/payments` (idempotent: gateway → payments GET).
async fn list_payments(sys: &TestSystem, user: &str, token: &str) -> u16 {
    sys.http
        .get(format!("{}/api/users/{user}/payments", sys.gateway()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How many requests for `route` each payments replica served.
async fn served_per_replica(sys: &TestSystem, method: &str, route: &str) -> Vec<f64> {
    let mut counts = Vec::new();
    for replica in sys.system.replicas("payments") {
        let scrape = sys.scrape_url(&replica.url).await;
        counts.push(scrape.sum(
            "http_server_request_duration_seconds_count",
            &[("method", method), ("route", route)],
        ));
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_spreads_over_replicas_and_a_killed_one_costs_idempotent_calls_nothing() {
    let sys = start().await;
    let (user, token) = sys.signed_up_user().await;

    // Checkouts: POST /payments with an Idempotency-Key, balanced.
    for n in 0..30 {
        assert_eq!(checkout(&sys, &token, n).await, 201, "checkout {n}");
    }
    let served = served_per_replica(&sys, "POST", "/payments").await;
    assert_eq!(served.iter().sum::<f64>(), 30.0, "{served:?}");
    assert!(
        served.iter().all(|n| *n >= 1.0),
        "every replica took charges: {served:?}"
    );
    let gateway = sys.scrape("gateway").await;
    assert_eq!(
        gateway.sum("http_client_endpoints", &[("destination", "payments")]),
        3.0
    );

    // Kill one replica: until the launcher restarts it, its port refuses
    // connections. Reads (GET) and keyed checkouts are retried on the
    // others; the client sees no error.
    sys.system.kill_replica("payments", 1).await.unwrap();
    let mut statuses = Vec::new();
    for n in 0..20 {
        statuses.push(list_payments(&sys, &user, &token).await);
        statuses.push(checkout(&sys, &token, 100 + n).await);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "client-visible errors after a replica died: {statuses:?}"
    );
    let gateway = sys.scrape("gateway").await;
    let errors = gateway.sum(
        "http_client_request_duration_seconds_count",
        &[("destination", "payments"), ("outcome", "error")],
    );
    assert_eq!(errors, 0.0, "no call failed as the gateway saw it");
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_slowed_by_an_injected_fault_gets_less_traffic() {
    let sys = start().await;
    let (user, token) = sys.signed_up_user().await;
    let slow = sys.system.replicas("payments")[2].url.clone();
    let res = sys
        .http
        .post(format!("{slow}/admin/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "route": "/users/{user_id}/payments",
            "latency": {"fixed_ms": 150},
            "expires_in": "2m",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // A few calls in parallel at a time, as real traffic comes.
    for _ in 0..15 {
        let calls = (0..4).map(|_| list_payments(&sys, &user, &token));
        for status in futures::future::join_all(calls).await {
            assert_eq!(status, 200);
        }
    }
    let served = served_per_replica(&sys, "GET", "/users/{user_id}/payments").await;
    assert_eq!(served.iter().sum::<f64>(), 60.0, "{served:?}");
    assert!(
        served[2] * 2.0 < served[0].min(served[1]),
        "the slowed replica got {} calls, its peers {served:?}",
        served[2]
    );
    // And it is marked as injected where a dashboard can tell.
    let faults = sys
        .scrape_url(&slow)
        .await
        .sum("fault_injections_total", &[("kind", "latency")]);
    assert_eq!(faults, served[2]);
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_crash_restarts_the_replica_as_a_new_instance() {
    let mut sys = start().await;
    let before = sys.system.replicas("payments")[0].clone();
    let instance = |scrape: loadgen::scrape::Scrape| {
        scrape
            .find("build_info", &[])
            .next()
            .and_then(|s| s.label("service_instance_id"))
            .map(str::to_owned)
            .expect("build_info has service_instance_id")
    };
    let old_id = instance(sys.scrape_url(&before.url).await);

    let crash = |token: Option<&str>| {
        let mut req = sys.http.post(format!("{}/admin/crash", before.url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(crash(None).await.unwrap().status(), 401);
    assert_eq!(crash(Some("wrong")).await.unwrap().status(), 401);
    let res = crash(Some(ADMIN_TOKEN)).await.unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert!(body.is_object(), "{body}");

    let exit = tokio::time::timeout(Duration::from_secs(5), sys.system.next_exit())
        .await
        .expect("the exit is reported")
        .expect("an exit");
    assert_eq!((exit.service, exit.replica), ("payments", 0));
    assert_eq!(exit.status.and_then(|s| s.code()), Some(70));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = sys.system.replicas("payments")[0].clone();
        if now.state == ReplicaState::Ready {
            assert_ne!(now.pid, before.pid);
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = sys.system.replicas("payments")[0].clone();
    assert_ne!(instance(sys.scrape_url(&after.url).await), old_id);
    assert_eq!(sys.system.restarts("payments"), 1);
    let launcher = sys.scrape_url(&sys.control()).await;
    assert_eq!(
        launcher.sum("launcher_restarts_total", &[("service", "payments")]),
        1.0
    );
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dependency_opens_the_breaker_and_the_gateway_answers_503_without_calling_it() {
    let sys = TestSystem::start_with_env(
        Otlp::Grpc,
        &[],
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("BREAKER_OPEN_FOR", "500ms")],
    )
    .await;
    let courses = sys.url("courses");
    let course = format!("{}/api/courses/c0001", sys.gateway());
    let reads_served = || async {
        sys.scrape("courses").await.sum(
            "http_server_request_duration_seconds_count",
            &[("route", "/courses/{course_id}")],
        )
    };
    let breaker = || async {
        sys.scrape("gateway").await.sum(
            "http_client_circuit_breaker_state",
            &[("destination", "courses")],
        )
    };

    // Courses fails every course read (injected, so it is told apart).
    let res = sys
        .http
        .post(format!("{courses}/admin/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"route": "/courses/{course_id}", "error": {"rate": 1, "status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let fault: Value = res.json().await.unwrap();

    // Five failures in a row (a 500 is an answer: not retried) ...
    for _ in 0..5 {
        let res = sys.http.get(&course).send().await.unwrap();
        assert_eq!(res.status(), 502);
    }
    assert_eq!(breaker().await, 2.0, "open");

    // ... and the gateway stops calling: 503 with Retry-After, courses
    // sees nothing.
    let served = reads_served().await;
    for _ in 0..10 {
        let res = sys.http.get(&course).send().await.unwrap();
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "dependency_unavailable");
    }
    assert_eq!(reads_served().await, served, "no call reached courses");
    let gateway = sys.scrape("gateway").await;
    assert_eq!(
        gateway.sum(
            "http_client_request_duration_seconds_count",
            &[("destination", "courses"), ("outcome", "circuit_open")],
        ),
        10.0
    );

    // Courses recovers; after the open period the breaker is half-open,
    // and its probes (`BREAKER_HALF_OPEN_PROBES`, 10) succeeding close it.
    let res = sys
        .http
        .delete(format!(
            "{courses}/admin/faults/{}",
            fault["id"].as_str().unwrap()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..10 {
        assert_eq!(sys.http.get(&course).send().await.unwrap().status(), 200);
    }
    assert_eq!(breaker().await, 0.0, "closed");
    sys.stop().await;
}
