//! End to end: `loadgen run` as a user runs it — the real binary starting
//! the real system — for every shipped scenario in short form, and for
//! scenarios built to fail.
//!
//! Each run exports its spans (loadgen's and the services') to this
//! test's OTLP receiver, so the report's trace ids can be checked against
//! what was really exported.
//!
//! On the SQLite pass `loadgen run` starts its own system, as a user's
//! first run does. On the PostgreSQL pass the stories that move money and
//! events (promotion-surge, broker-outage, slow-payment-provider) run
//! against a system on PostgreSQL started for the test with the
//! scenario's own `[system]` settings, as Compose and Kubernetes run it,
//! and end by balancing the books (`support::reconcile`). They run one at
//! a time (`.config/nextest.toml`), since their thresholds are about
//! latency on a two-core machine.

use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use loadgen::summary::Summary;
use otlp_sink::{
    Receiver, RunningReceiver,
    span::{CapturedSpan, SpanKind},
};
use serde_json::Value;

use crate::support::{
    self, Otlp, TestSystem,
    up::{Up, running, service_children},
};

/// Every duration and offset of the shipped scenarios times this: each
/// runs in 9–14 s instead of a minute or more.
const SCALE: &str = "0.15";

/// One run at a time, also under `cargo test` (nextest runs this binary's
/// tests one at a time through its test group anyway).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn postgres_pass() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty())
}

async fn receiver() -> RunningReceiver {
    Receiver::with_max_spans(500_000)
        .start(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("the test's OTLP receiver starts")
}

/// Runs `loadgen run <args>` with its spans (and the services') sent to
/// `otlp`.
async fn loadgen_run(otlp: &RunningReceiver, args: &[&str]) -> Output {
    let _turn = ONE_AT_A_TIME.lock().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("run")
        .args(args)
        .arg("--no-progress")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.grpc_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("ADMIN_TOKEN")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(240), output)
        .await
        .expect("a short scenario finishes within 4 minutes")
        .expect("loadgen runs")
}

fn text_of(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn schema_validator() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/summary.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

/// `summary.json` from `dir`, validated against its published schema.
fn read_summary(dir: &Path) -> Summary {
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
            .expect("summary.json is JSON");
    let errors: Vec<String> = schema_validator()
        .iter_errors(&raw)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "summary.json breaks its schema: {errors:#?}"
    );
    serde_json::from_value(raw).expect("summary.json reads back as a Summary")
}

/// Waits until the receiver holds a root span of every trace in `ids`.
async fn wait_for_traces(otlp: &RunningReceiver, ids: &[String]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| {
                !otlp
                    .receiver()
                    .trace(id)
                    .iter()
                    .any(|s| s.is_root() && s.service_name == "loadgen")
            })
            .cloned()
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a shipped scenario in short form and checks everything a user is
/// promised: exit 0, every check passed and reported, the timeline
/// fired, `summary.json` valid, `report.html` naming the slowest traces,
/// each of which was really exported.
async fn shipped(name: &str, scale: &str, capture: bool) -> (Summary, RunningReceiver) {
    shipped_with(name, scale, capture, &[]).await
}

/// [`shipped`] with more arguments for `loadgen run`.
async fn shipped_with(
    name: &str,
    scale: &str,
    capture: bool,
    extra: &[&str],
) -> (Summary, RunningReceiver) {
    let otlp = receiver().await;
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let mut args = vec![name, "--duration-scale", scale, "--out", out_dir];
    args.extend_from_slice(extra);
    if capture {
        args.push("--capture-traces");
    }
    let output = loadgen_run(&otlp, &args).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{name} passes\n{}",
        text_of(&output)
    );
    let summary = read_summary(out.path());
    assert!(summary.verdict.passed, "{:#?}", summary.verdict);
    assert_eq!(summary.scenario.name, name);
    let scenario = loadgen::scenario::Scenario::load(name).unwrap();
    assert_eq!(summary.thresholds.len(), scenario.thresholds.len());
    assert_eq!(summary.expectations.len(), scenario.expectations.len());
    assert!(
        summary
            .thresholds
            .iter()
            .chain(&summary.expectations)
            .all(|c| c.passed)
    );
    assert_eq!(
        summary.timeline.len(),
        scenario.timeline.len(),
        "every timeline event fired: {:#?}",
        summary.timeline
    );
    assert!(
        summary.timeline.iter().all(|r| r.ok),
        "{:#?}",
        summary.timeline
    );
    assert!(summary.overall.count > 0, "journeys ran");
    for journey in scenario.journeys() {
        let stats = summary
            .journeys
            .iter()
            .find(|j| j.name == journey)
            .unwrap_or_else(|| panic!("{journey} is in the summary"));
        assert!(stats.stats.count > 0, "{journey} ran");
    }
    // The terminal table says what the file says.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("PASSED"), "{stdout}");
    for check in summary.thresholds.iter().chain(&summary.expectations) {
        assert!(stdout.contains(&check.name), "{} in the table", check.name);
    }

    // The report links the slowest journeys to traces that exist.
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let slowest: Vec<String> = summary
        .slowest
        .iter()
        .map(|s| s.trace_id.clone().expect("journeys are traced"))
        .collect();
    assert!(!slowest.is_empty());
    for id in &slowest {
        assert!(html.contains(id.as_str()), "report.html names trace {id}");
    }
    if capture {
        // loadgen kept them itself: each is drawn as a waterfall that
        // starts at loadgen's root and reaches the gateway.
        for id in &slowest {
            let anchor = format!("id=\"trace-{id}\"");
            let at = html
                .find(&anchor)
                .unwrap_or_else(|| panic!("report.html draws trace {id}"));
            let waterfall = &html[at..html[at..].find("</details>").map_or(html.len(), |e| at + e)];
            assert!(
                waterfall.contains("gateway"),
                "{id}: the waterfall reaches the gateway"
            );
        }
        return (summary, otlp);
    }
    let missing = wait_for_traces(&otlp, &slowest).await;
    assert!(
        missing.is_empty(),
        "{} of the report's slowest traces never reached the receiver: {missing:?}",
        missing.len()
    );
    (summary, otlp)
}

fn parent<'a>(spans: &'a [CapturedSpan], span: &CapturedSpan) -> Option<&'a CapturedSpan> {
    let id = span.parent_span_id.as_deref()?;
    spans.iter().find(|s| s.span_id == id)
}

#[tokio::test(flavor = "multi_thread")]
async fn steady_passes_and_its_traces_start_in_loadgen() {
    if postgres_pass() {
        return;
    }
    let (summary, otlp) = shipped("steady", SCALE, false).await;
    // A checkout is the deepest journey: one trace from loadgen's root
    // through the gateway to every service it calls.
    let checkout = summary
        .slowest
        .iter()
        .chain(&summary.failed)
        .find(|s| s.journey == "checkout")
        .map(|s| s.trace_id.clone().unwrap())
        .unwrap_or_else(|| {
            // Not among the slowest: any checkout trace will do.
            otlp.receiver()
                .spans()
                .into_iter()
                .find(|s| s.name == "journey checkout")
                .expect("a checkout journey was exported")
                .trace_id
        });
    let spans = otlp.receiver().trace(&checkout);
    let root = spans
        .iter()
        .find(|s| s.is_root())
        .expect("the trace has a root");
    assert_eq!(root.service_name, "loadgen");
    assert_eq!(root.name, "journey checkout");
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.service_name.as_str()).collect();
    for service in ["loadgen", "gateway", "courses", "progress"] {
        assert!(services.contains(service), "{service} in {services:?}");
    }
    // The gateway's checkout span continues loadgen's client span, and
    // carries the baggage loadgen sent.
    let server = spans
        .iter()
        .find(|s| {
            s.service_name == "gateway"
                && s.kind == SpanKind::Server
                && s.attr_str("http.route") == Some("/api/checkout")
        })
        .expect("the gateway's checkout span");
    let client = parent(&spans, server).expect("the gateway span has a parent in the trace");
    assert_eq!(client.service_name, "loadgen");
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(
        parent(&spans, client).map(|s| &s.span_id),
        Some(&root.span_id)
    );
    assert_eq!(server.attr_str("baggage.scenario"), Some("steady"));
    assert_eq!(server.attr_str("baggage.journey"), Some("checkout"));
    assert_eq!(server.attr_str("baggage.synthetic"), Some("true"));
    // Deeper services saw the same baggage.
    assert!(
        spans
            .iter()
            .filter(|s| s.service_name == "progress" && s.kind == SpanKind::Server)
            .all(|s| s.attr_str("baggage.journey") == Some("checkout")),
        "baggage reaches progress"
    );
}

macro_rules! shipped_scenario {
    ($test:ident, $name:literal) => {
        shipped_scenario!($test, $name, SCALE, false);
    };
    ($test:ident, $name:literal, $scale:expr, $capture:expr) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            if postgres_pass() {
                return;
            }
            shipped($name, $scale, $capture).await;
        }
    };
}

// A queue that builds up and drains takes real seconds however short
// the story: this one is run at twice the others' scale.
shipped_scenario!(promotion_surge_passes, "promotion-surge", "0.3", false);
shipped_scenario!(course_redeploy_passes, "course-redeploy");
// With loadgen's own trace capture instead of the test's receiver.
shipped_scenario!(payments_outage_passes, "payments-outage", SCALE, true);
shipped_scenario!(slow_payment_provider_passes, "slow-payment-provider");
shipped_scenario!(progress_down_passes, "progress-down");

/// `loadgen run <name>` against `sys`, through its control API, at
/// `scale`; asserts the verdict passed. Returns the summary.
async fn shipped_against(sys: &TestSystem, name: &str, scale: &str) -> Summary {
    let otlp = receiver().await;
    let out = tempfile::tempdir().unwrap();
    let output = loadgen_run(
        &otlp,
        &[
            name,
            "--duration-scale",
            scale,
            "--target",
            &sys.gateway(),
            "--control",
            &sys.control(),
            "--admin-token",
            STORY_ADMIN_TOKEN,
            "--out",
            out.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{name} passes against a system on PostgreSQL\n{}",
        text_of(&output)
    );
    let summary = read_summary(out.path());
    assert!(summary.verdict.passed, "{:#?}", summary.verdict);
    summary
}

const STORY_ADMIN_TOKEN: &str = "e2e-stories-admin-token";

/// A system on PostgreSQL (the pass's `TEST_DATABASE_URL`) with the
/// shipped scenario's `[system]` replicas and environment, as `loadgen
/// run` would start it itself.
async fn system_for(name: &str) -> TestSystem {
    let scenario = loadgen::scenario::Scenario::load(name).unwrap();
    let mut env: Vec<(&str, &str)> = scenario
        .system
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // What a run's own system trusts: each synthetic visitor its own client.
    env.push(("RATE_LIMIT_TRUST_FORWARDED_FOR", "true"));
    env.push(("OTEL_TRACES_SAMPLER", "always_off"));
    let replicas = scenario.system.replicas.clone();
    TestSystem::start_with_options(Otlp::Grpc, &[], &env, |options| {
        options.admin_token = Some(STORY_ADMIN_TOKEN.into());
        for (service, n) in replicas {
            let (name, _) = launcher::services::parse_replicas(&format!("{service}={n}"))
                .unwrap()
                .pop_first()
                .unwrap();
            options.replicas.insert(name, n);
        }
    })
    .await
}

macro_rules! story_on_postgres {
    ($test:ident, $name:literal, $scale:expr) => {
        /// The story on PostgreSQL, then the books balanced.
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            if !postgres_pass() {
                return;
            }
            let sys = system_for($name).await;
            let summary = shipped_against(&sys, $name, $scale).await;
            assert!(summary.overall.count > 0, "journeys ran");
            let books =
                support::reconcile::assert_balanced_within(&sys, Duration::from_secs(30)).await;
            assert!(books.captured() > 0, "{books}");
            eprintln!("{}: {books}", $name);
            sys.stop().await;
        }
    };
}

story_on_postgres!(
    promotion_surge_balances_on_postgres,
    "promotion-surge",
    "0.3"
);
story_on_postgres!(broker_outage_balances_on_postgres, "broker-outage", "0.5");
// At half its length. At SCALE (0.15) about 26 charges meet the slow
// provider, and with 9 % of them past the 1 s deadline about one run in
// twelve saw none, failing the expectation that the deadline cut some;
// at 0.5, about 87 charges, one in several thousand.
story_on_postgres!(
    slow_payment_provider_balances_on_postgres,
    "slow-payment-provider",
    "0.5"
);

/// A count from one of the run's SQLite files.
async fn count(data_dir: &Path, service: &str, sql: &'static str) -> i64 {
    sqlx::any::install_default_drivers();
    let path = data_dir.join(format!("{service}.db"));
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// broker-outage passes its thresholds and expectations (the outbox grew
/// while NATS was unreachable, then drained), and no event was lost: as
/// many payment.captured events processed as payments captured, and every
/// purchase's enrollment active.
#[tokio::test(flavor = "multi_thread")]
async fn broker_outage_passes_and_loses_no_event() {
    if postgres_pass() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    shipped_with("broker-outage", "0.5", false, &["--data-dir", data_dir]).await;
    let captured = count(
        data.path(),
        "payments",
        "SELECT COUNT(*) FROM payments WHERE status = 'captured'",
    )
    .await;
    let processed = count(
        data.path(),
        "progress",
        "SELECT COUNT(*) FROM processed_events WHERE consumer = 'progress-payment-captured'",
    )
    .await;
    let pending = count(
        data.path(),
        "progress",
        "SELECT COUNT(*) FROM enrollments WHERE payment_id IS NOT NULL AND status <> 'active'",
    )
    .await;
    assert!(captured > 0);
    assert_eq!(
        processed, captured,
        "every captured payment's event processed"
    );
    assert_eq!(pending, 0, "no bought enrollment left pending");
}

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("custom.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a scenario written for the test; returns the output and the
/// `summary.json` it wrote.
async fn run_custom(text: &str) -> (Output, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), text);
    let otlp = receiver().await;
    let out = dir.path().join("out");
    let output = loadgen_run(
        &otlp,
        &[file.to_str().unwrap(), "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text_of(&output));
    (output, read_summary(&out))
}

const SMALL: &str = r#"
name = "small"
description = "a few seconds of browsing"
duration = "3s"

[data]
learners = 1

[[executor]]
name = "visitors"
type = "constant-arrival-rate"
rate = 10
journeys = { browse = 1 }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_impossible_threshold_fails_the_run_and_says_which() {
    if postgres_pass() {
        return;
    }
    let (output, summary) = run_custom(&format!(
        "{SMALL}
[[threshold]]
journey = \"browse\"
check = \"error_rate < 5%\"

[[threshold]]
journey = \"browse\"
check = \"p50 < 1us\"
"
    ))
    .await;
    assert!(!summary.verdict.passed);
    assert!(summary.thresholds[0].passed, "the possible one passed");
    assert!(!summary.thresholds[1].passed);
    assert_eq!(
        summary.verdict.failures.len(),
        1,
        "{:?}",
        summary.verdict.failures
    );
    assert!(summary.verdict.failures[0].starts_with("browse: p50 < 1us"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("✗"), "{stdout}");
    assert!(stdout.contains("browse: p50 < 1us"), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expected_signal_that_never_appears_fails_the_run() {
    if postgres_pass() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Nothing injects a fault, so payments counts none.
    let file = write_scenario(
        dir.path(),
        &format!(
            "{SMALL}
[[expect]]
name = \"payments failed on purpose\"
service = \"payments\"
metric = \"fault_injections_total\"
check = \"increase >= 1\"
"
        ),
    );
    let otlp = receiver().await;
    let out = dir.path().join("out");
    let output = loadgen_run(
        &otlp,
        &[file.to_str().unwrap(), "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text_of(&output));
    let summary = read_summary(&out);
    let expectation = &summary.expectations[0];
    assert!(!expectation.passed, "{expectation:?}");
    // Either payments exports the family with no injection counted (0),
    // or not at all yet (nothing observed): both fail.
    assert!(
        matches!(expectation.observed, None | Some(0.0)),
        "{expectation:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("payments failed on purpose"), "{stdout}");
}

#[tokio::test]
async fn a_broken_scenario_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), &SMALL.replace("browse = 1", "brows = 1"));
    let otlp = receiver().await;
    let output = loadgen_run(&otlp, &[file.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text_of(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:13:", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("unknown journey \"brows\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_abort_threshold_stops_the_run_after_its_grace() {
    if postgres_pass() {
        return;
    }
    let (output, summary) = run_custom(&format!(
        "{}
[[threshold]]
check = \"p50 < 1us\"
abort_on_fail = true
grace = \"2s\"
",
        SMALL.replace("duration = \"3s\"", "duration = \"60s\"")
    ))
    .await;
    let reason = summary
        .verdict
        .aborted
        .as_deref()
        .expect("the run was aborted");
    assert!(reason.contains("p50 < 1us"), "{reason}");
    assert!(
        summary.duration_s < 10.0,
        "stopped soon after the 2 s grace, not at 60 s: {}",
        summary.duration_s
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ABORTED"));
}

/// `loadgen up` runs its services with a token secret of its own, kept
/// in the data directory (0600) and reused when that directory is started
/// again, so a learner's token outlives a restart; one minted with the
/// public development secret is refused, and no service warns that it
/// runs with it. The control API asks for the admin token `up` wrote.
#[tokio::test(flavor = "multi_thread")]
async fn loadgen_up_signs_with_a_secret_of_its_own_kept_across_restarts() {
    use std::os::unix::fs::PermissionsExt as _;
    if postgres_pass() {
        return;
    }
    let up = Up::start().await;
    let http = reqwest::Client::new();
    let secret_file = up.dir.path().join("jwt-secret");
    let secret = std::fs::read_to_string(&secret_file)
        .expect("loadgen up keeps its token secret in the data directory")
        .trim()
        .to_owned();
    assert_eq!(secret.len(), 64);
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    let email = format!("up-{}@example.com", uuid::Uuid::new_v4().simple());
    let res = http
        .post(format!("{}/api/users", up.gateway))
        .json(&serde_json::json!({"email": email, "display_name": "Ada", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let user: Value = res.json().await.unwrap();
    let user_id = user["id"].as_str().unwrap().to_owned();
    let session: Value = http
        .post(format!("{}/api/sessions", up.gateway))
        .json(&serde_json::json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap().to_owned();
    let me = |gateway: String, token: String| {
        let http = http.clone();
        async move {
            http.get(format!("{gateway}/api/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(up.gateway.clone(), token.clone()).await, 200);
    let forged = support::token_for(&user_id);
    assert_eq!(
        me(up.gateway.clone(), forged.clone()).await,
        401,
        "a token signed with the development secret"
    );

    // The control API: the admin token, or nothing.
    let services = format!("{}/services", up.control);
    let status = http.get(&services).send().await.unwrap().status();
    assert_eq!(status, 401);
    let status = http
        .get(&services)
        .bearer_auth(&up.admin_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let printed = up.output();
    assert!(
        !printed.contains("JWT_SECRET is the development default"),
        "a service warned it runs with the development secret:\n{printed}"
    );
    assert!(!printed.contains(&secret), "the secret was printed");
    assert!(
        !printed.contains(&up.admin_token),
        "the admin token was printed"
    );
    assert!(
        printed.contains("authorization: Bearer $(cat "),
        "the control API's curl line shows how to pass the token:\n{printed}"
    );

    // Started again on the same directory: same secret, the token still
    // verifies; a new admin token.
    let old_admin_token = up.admin_token.clone();
    let dir = up.interrupt().await;
    let up = Up::start_in(dir).await;
    let again = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(again.trim(), secret, "the secret is kept");
    assert_eq!(
        me(up.gateway.clone(), token).await,
        200,
        "the token survived the restart"
    );
    assert_eq!(me(up.gateway.clone(), forged).await, 401);
    assert_ne!(up.admin_token, old_admin_token);
    up.interrupt().await;
}

/// The README's second way to run a scenario: the system started with
/// `loadgen up`, then `loadgen run <scenario> --target <gateway>
/// --admin-token "$(cat data/admin-token)"` for every shipped scenario.
/// Each passes: its setup signs learners up through the gateway's
/// credentials limit, and its `[system]` replicas and settings are given
/// to the running system for the run, then taken back, so the system ends
/// as it started.
#[tokio::test(flavor = "multi_thread")]
async fn every_shipped_scenario_passes_against_loadgen_up() {
    if postgres_pass() {
        return;
    }
    let mut up = Up::start().await;
    let http = reqwest::Client::new();
    let services = || async {
        let body: Value = http
            .get(format!("{}/services", up.control))
            .bearer_auth(&up.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["desired"].clone(),
                    s["env"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = services().await;
    for (name, _) in loadgen::scenario::SHIPPED {
        // Some events take real seconds whatever the scale: a rolling
        // restart of two replicas, a crashed replica's restart (its 1 s
        // delay and start-up) before the fault that must reach it.
        let scale = match *name {
            "course-redeploy" => "0.25",
            "progress-down" => "0.3",
            _ => SCALE,
        };
        let otlp = receiver().await;
        let out = tempfile::tempdir().unwrap();
        let output = loadgen_run(
            &otlp,
            &[
                name,
                "--duration-scale",
                scale,
                "--target",
                &up.gateway,
                "--control",
                &up.control,
                "--admin-token",
                &up.admin_token,
                "--out",
                out.path().to_str().unwrap(),
            ],
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name} passes against loadgen up\n{}",
            text_of(&output)
        );
        let summary = read_summary(out.path());
        assert!(summary.verdict.passed, "{name}: {:#?}", summary.verdict);
        let scenario = loadgen::scenario::Scenario::load(name).unwrap();
        assert_eq!(
            summary.scenario.system.is_empty(),
            scenario.system.is_empty(),
            "{name}: the stage is reported when the scenario has one: {:?}",
            summary.scenario.system
        );
        assert!(
            !summary
                .scenario
                .system
                .iter()
                .any(|l| l.contains("not applied")),
            "{name}: everything was applied locally: {:?}",
            summary.scenario.system
        );
        assert_eq!(
            services().await,
            before,
            "{name} left the system as it found it"
        );
    }
    up.child.kill().await.unwrap();
}

/// `loadgen up` killed outright (SIGKILL: it cannot stop its children)
/// leaves no service running: each replica sees its launcher gone and
/// stops, instead of keeping its port and consuming events for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_loadgen_up_leaves_no_service_running() {
    if postgres_pass() {
        return;
    }
    let mut up = Up::start().await;
    let pid = up.child.id().unwrap();
    let services = service_children(pid);
    assert!(services.len() >= 5, "one process per service: {services:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    up.child.wait().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = services.iter().copied().filter(|p| running(*p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "services still running 5 s after loadgen up was killed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
