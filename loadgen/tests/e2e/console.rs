//! The operator console's API on a launched system with two progress
//! replicas: a fault reaches every replica and is listed, removed and
//! cleared; a bad fault is refused with the admin API's own message and
//! leaves nothing behind; a scenario starts as `loadgen run`, reports its
//! progress, refuses a second run meanwhile, and ends with a verdict and a
//! report. (The page itself is driven by the browser tests in `web/e2e`.)

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use loadgen::{
    console::{Console, Settings, Target},
    platform::LocalPlatform,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Otlp, TestSystem, token_for};

const ADMIN_TOKEN: &str = "console-test-admin-token-0123456789";

async fn system_with_console() -> (TestSystem, tempfile::TempDir) {
    system_with_background(None).await
}

async fn system_with_background(
    background: Option<(String, f64)>,
) -> (TestSystem, tempfile::TempDir) {
    let runs = tempfile::tempdir().unwrap();
    let console = Console::new(Settings {
        grafana_url: "http://grafana.test:3000".into(),
        jaeger_url: "http://jaeger.test:16686".into(),
        admin_token: ADMIN_TOKEN.into(),
        runs_dir: runs.path().to_owned(),
        exe: Some(env!("CARGO_BIN_EXE_loadgen").into()),
        metrics_addr: None,
        background,
    });
    let extension = console.extension();
    let sys = TestSystem::start_with_options(Otlp::Grpc, &[], &[], |options| {
        options.admin_token = Some(ADMIN_TOKEN.into());
        options.replicas.insert("progress", 2);
        options.control_extension = Some(extension);
    })
    .await;
    console.attach(
        Target {
            gateway_url: sys.gateway(),
            run_flags: vec![
                "--platform".into(),
                "local".into(),
                "--control".into(),
                sys.control().into(),
            ],
            launcher: true,
        },
        Arc::new(LocalPlatform::new(sys.control(), Some(ADMIN_TOKEN.into()))),
    );
    (sys, runs)
}

async fn call(
    sys: &TestSystem,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = sys
        .http
        .request(method, format!("{}{path}", sys.control()))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("the console answers");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Each progress replica's faults, by replica name.
async fn progress_faults(sys: &TestSystem) -> Vec<(String, Vec<Value>)> {
    let (status, body) = call(sys, Method::GET, "/console/api/faults", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let progress = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "progress")
        .expect("progress is listed")
        .clone();
    progress["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["error"].is_null(), "{r}");
            (
                r["replica"].as_str().unwrap().to_owned(),
                r["faults"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn faults_reach_every_replica_and_go_again() {
    let (sys, _runs) = system_with_console().await;
    let user = "11111111-2222-3333-4444-555555555555";
    let route = "/users/{user_id}/enrollments";

    // Refused by the admin API: its message, and no fault anywhere.
    let (status, body) = call(
        &sys,
        Method::POST,
        "/console/api/faults/progress",
        Some(json!({"route": route, "error": {"rate": 1.5, "status": 503}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("error.rate"),
        "{body}"
    );
    let (status, body) = call(
        &sys,
        Method::POST,
        "/console/api/faults/nowhere",
        Some(json!({"error": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown_service");
    assert!(
        progress_faults(&sys)
            .await
            .iter()
            .all(|(_, f)| f.is_empty())
    );

    let (status, body) = call(
        &sys,
        Method::POST,
        "/console/api/faults/progress",
        Some(json!({"route": route, "method": "GET", "error": {"rate": 1.0, "status": 503}, "expires_in": "60s"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["injected"].as_array().unwrap().len(), 2, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("on 2 of 2 progress replicas"),
        "{body}"
    );

    // Every replica has it, and answers with it.
    let listed = progress_faults(&sys).await;
    assert_eq!(listed.len(), 2);
    for (_, faults) in &listed {
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0]["route"], route);
        assert!(faults[0]["expires_at"].is_string());
    }
    for replica in sys.system.replicas("progress") {
        let res = sys
            .http
            .get(format!("{}/users/{user}/enrollments", replica.url))
            .bearer_auth(token_for(user))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            replica.url
        );
    }

    // One replica's fault removed: the other keeps its own.
    let (first, faults) = &listed[0];
    let id = faults[0]["id"].as_str().unwrap();
    let (status, body) = call(
        &sys,
        Method::DELETE,
        &format!("/console/api/faults/progress/replicas/{first}/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after: Vec<usize> = progress_faults(&sys)
        .await
        .iter()
        .map(|(_, f)| f.len())
        .collect();
    assert_eq!(after, vec![0, 1]);

    let (status, body) = call(&sys, Method::DELETE, "/console/api/faults/progress", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        progress_faults(&sys)
            .await
            .iter()
            .all(|(_, f)| f.is_empty())
    );
    sys.stop().await;
}

#[tokio::test]
async fn a_scenario_runs_to_its_verdict_one_at_a_time() {
    let (sys, _runs) = system_with_console().await;

    let (status, body) = call(&sys, Method::GET, "/console/api/scenarios", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"steady"), "{names:?}");

    let (status, body) = call(
        &sys,
        Method::POST,
        "/console/api/runs",
        Some(json!({"scenario": "no-such-story"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unknown_scenario");

    let (status, run) = call(
        &sys,
        Method::POST,
        "/console/api/runs",
        Some(json!({"scenario": "steady", "duration_scale": 0.05})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["state"], "running");
    let id = run["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &sys,
        Method::POST,
        "/console/api/runs",
        Some(json!({"scenario": "steady"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "run_in_progress");

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut saw_progress = false;
    let run = loop {
        let (status, run) = call(&sys, Method::GET, &format!("/console/api/runs/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        saw_progress |= run["progress"]["planned_seconds"].as_f64().is_some();
        if run["state"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(run["state"], "passed", "{run}");
    assert!(saw_progress, "no progress was reported: {run}");
    assert_eq!(run["verdict"]["passed"], true);
    assert!(
        !run["verdict"]["checks"].as_array().unwrap().is_empty(),
        "{run}"
    );
    assert!(run["progress"]["completed"].as_u64().unwrap() > 0, "{run}");

    // The report needs no token (a link opens it), only this listener's name.
    let report = sys
        .http
        .get(format!(
            "{}{}",
            sys.control(),
            run["report_url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    assert!(report.text().await.unwrap().contains("steady"));
    sys.stop().await;
}

/// The scale of the background runs below: no other test uses it, so a
/// process with it in its arguments is this test's background run.
const BACKGROUND_SCALE: &str = "0.0517";

/// This process's children whose arguments contain every one of `words`.
fn children_with(words: &[&str]) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`: comm may hold spaces.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = args.split(|b| *b == 0).collect();
            ppid == Some(me) && words.iter().all(|w| args.contains(&w.as_bytes()))
        })
        .collect()
}

#[tokio::test]
async fn the_background_load_makes_way_for_an_operator_run() {
    let scale: f64 = BACKGROUND_SCALE.parse().unwrap();
    let (sys, _runs) = system_with_background(Some(("steady".into(), scale))).await;
    let background = || children_with(&["run", "steady", BACKGROUND_SCALE]);

    let deadline = Instant::now() + Duration::from_secs(60);
    while background().is_empty() {
        assert!(Instant::now() < deadline, "no background run started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Answered only once the background run has gone: never two at once.
    let (status, run) = call(
        &sys,
        Method::POST,
        "/console/api/runs",
        Some(json!({"scenario": "steady", "duration_scale": 0.05})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        // The snapshot first: the run is marked finished before the
        // background may resume, so a background run seen while the run
        // still reads "running" ran beside it.
        let beside = background();
        let (_, run) = call(&sys, Method::GET, &format!("/console/api/runs/{id}"), None).await;
        if run["state"] != "running" {
            break run;
        }
        assert!(
            beside.is_empty(),
            "a background run beside the operator's: {:?}",
            beside
                .iter()
                .map(|pid| String::from_utf8_lossy(
                    &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                )
                .replace('\0', " "))
                .collect::<Vec<_>>()
        );
        assert!(Instant::now() < deadline, "the run did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["state"], "passed", "{run}");

    // And it comes back after (its 5 s breath between runs included).
    let deadline = Instant::now() + Duration::from_secs(30);
    while background().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the background run did not resume"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sys.stop().await;
}
