//! End to end: the Grafana dashboards and the Prometheus rules against a
//! real Prometheus scraping the real system.
//!
//! The test starts the system (payments scaled to two) with its spans sent
//! to this test's OTLP receiver, and Debian's `prometheus` with
//! `observability/prometheus/prometheus-local.yml` (exemplar storage on),
//! pointed at the launcher's `file_sd` targets and at loadgen's metrics.
//! It runs a short scenario with a payments fault (`scenarios/dashboards.toml`)
//! through the `loadgen` binary, then, at the moment the run ended:
//!
//! - every PromQL expression of every dashboard panel and annotation, once
//!   per value of the `service` template variable, must parse and
//!   evaluate, and the core ones (observability/dashboard-queries.json) must return data;
//! - every recording and alerting rule must be healthy in Prometheus, and
//!   its expression must evaluate; the per-service and per-edge RED rules
//!   must return data;
//! - Prometheus must hold an exemplar whose trace id is one this test's
//!   receiver captured spans of.
//!
//! Without a `prometheus` binary the test is skipped, except under CI
//! (`CI` set), where `.ci/run` installs it and a missing one fails. It runs
//! on the SQLite pass only: Prometheus and the dashboards do not change
//! with the database.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use crate::support::{Otlp, TestSystem};

const ADMIN_TOKEN: &str = "e2e-dashboards-admin-token";
const SERVICES: [&str; 5] = ["gateway", "users", "courses", "payments", "progress"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn prometheus_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `prometheus-local.yml` with its three local paths and addresses pointed
/// at this test's: each must be in the file exactly once, so a change to
/// the shipped config that this test would silently miss fails it instead.
fn local_config(targets_file: &Path, loadgen_metrics: &str) -> String {
    let dir = repo().join("observability/prometheus");
    let mut text = std::fs::read_to_string(dir.join("prometheus-local.yml"))
        .expect("observability/prometheus/prometheus-local.yml");
    let replacements = [
        (
            "files: [../../data/targets.json]".to_owned(),
            format!("files: [{}]", targets_file.display()),
        ),
        (
            "targets: [\"127.0.0.1:9464\"]".to_owned(),
            format!("targets: [\"{loadgen_metrics}\"]"),
        ),
        (
            "  - rules/*.yml".to_owned(),
            format!("  - {}/rules/*.yml", dir.display()),
        ),
    ];
    for (from, to) in replacements {
        assert_eq!(
            text.matches(&from).count(),
            1,
            "prometheus-local.yml should contain `{from}` once"
        );
        text = text.replace(&from, &to);
    }
    text
}

struct Prometheus {
    // Killed on drop.
    _child: tokio::process::Child,
    url: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Prometheus {
    async fn start(binary: &Path, dir: &Path, config: &str) -> Self {
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg("--enable-feature=exemplar-storage")
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Self {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::new(),
        };
        for _ in 0..150 {
            let ready = prometheus
                .http
                .get(format!("{}/-/ready", prometheus.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        prometheus.fail("Prometheus was not ready within 30 s")
    }

    fn fail(&self, message: &str) -> ! {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{message}\n--- prometheus log (last lines)\n{}",
            tail.join("\n")
        );
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .await
            .unwrap_or_else(|e| self.fail(&format!("{path}: {e}")));
        res.json()
            .await
            .unwrap_or_else(|e| self.fail(&format!("{path}: not JSON: {e}")))
    }

    /// An instant query at `at`: the result vector, or Prometheus' error.
    async fn query(&self, expr: &str, at: f64) -> Result<Vec<Value>, String> {
        let body = self
            .api(
                "/api/v1/query",
                &[("query", expr.to_owned()), ("time", format!("{at:.3}"))],
            )
            .await;
        if body["status"] == "success" {
            Ok(match &body["data"]["result"] {
                Value::Array(items) => items.clone(),
                // A scalar or string result is data too.
                other => vec![other.clone()],
            })
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// Healthy targets per job.
    async fn up_targets(&self) -> BTreeMap<String, usize> {
        let res = self
            .http
            .get(format!("{}/api/v1/targets?state=active", self.url))
            .send()
            .await
            .unwrap_or_else(|e| self.fail(&format!("targets: {e}")));
        let body: Value = res.json().await.unwrap();
        let mut up = BTreeMap::new();
        for t in body["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if t["health"] == "up" {
                let job = t["labels"]["job"].as_str().unwrap_or_default().to_owned();
                *up.entry(job).or_default() += 1;
            }
        }
        up
    }
}

/// Every dashboard expression with `service` set to `service`, from the
/// dashboards' own linter (the one that knows which are core).
fn dashboard_queries(service: &str) -> Vec<Value> {
    let lint = repo().join("dashboards/lint.py");
    let output = std::process::Command::new("python3")
        .arg(&lint)
        .arg("--list-queries")
        .arg("--var")
        .arg(format!("service={service}"))
        .output()
        .expect("python3 runs dashboards/lint.py");
    assert!(
        output.status.success(),
        "lint.py --list-queries failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_slice(&output.stdout).expect("lint.py prints JSON") {
        Value::Array(queries) => queries,
        other => panic!("lint.py --list-queries printed {other}"),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_and_rule_evaluates_against_a_real_prometheus() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is not installed; .ci/run installs Debian's `prometheus`"
        );
        eprintln!("skipped: no `prometheus` on PATH (apt-get install prometheus)");
        return;
    };
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        eprintln!("skipped on the PostgreSQL pass: it runs once, on SQLite");
        return;
    }

    let sys = TestSystem::start_with_options(Otlp::Grpc, &[], &[], |options| {
        options.replicas.insert("payments", 2);
        options.admin_token = Some(ADMIN_TOKEN.into());
    })
    .await;
    let targets_file = sys.dir.path().join("data/targets.json");
    assert!(
        targets_file.is_file(),
        "the launcher writes its targets file"
    );
    let loadgen_metrics = format!("127.0.0.1:{}", free_port());
    let prom_dir = sys.dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prometheus = Prometheus::start(
        &binary,
        &prom_dir,
        &local_config(&targets_file, &loadgen_metrics),
    )
    .await;

    // Every replica scraped before the load starts: two for payments.
    let mut up = BTreeMap::new();
    for _ in 0..60 {
        up = prometheus.up_targets().await;
        let all = SERVICES
            .iter()
            .all(|s| up.get(*s).copied().unwrap_or(0) >= if *s == "payments" { 2 } else { 1 });
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        up.get("payments"),
        Some(&2),
        "healthy targets per job: {up:?}"
    );
    for service in SERVICES {
        assert!(up.contains_key(service), "{service} is scraped: {up:?}");
    }

    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/dashboards.toml"
    );
    let started = unix_now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("run")
        .arg(scenario)
        .args(["--target", &sys.gateway()])
        .args(["--control", &sys.control()])
        .args(["--admin-token", ADMIN_TOKEN])
        .args(["--metrics-addr", &loadgen_metrics])
        .arg("--out")
        .arg(sys.dir.path().join("run"))
        .arg("--no-progress")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", sys.receiver.grpc_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the scenario finishes within 3 minutes")
        .expect("loadgen runs");
    // Just before loadgen stopped serving its metrics: every series,
    // loadgen's included, is fresh at that moment.
    let at = unix_now() - 1.0;
    assert!(
        output.status.success(),
        "the dashboards scenario passes:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Let the last scrapes and rule evaluations before `at` land.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut problems = Vec::new();

    // Every dashboard expression, for every value of `service`.
    let mut evaluated = BTreeSet::new();
    let mut core_with_data = 0;
    let mut empty = BTreeSet::new();
    for service in SERVICES {
        for q in dashboard_queries(service) {
            let expr = q["expr"].as_str().expect("expr").to_owned();
            let core = q["core"].as_bool().unwrap_or(false);
            let label = format!(
                "{} panel {} ({}) {} [service={service}]",
                q["file"].as_str().unwrap_or("?"),
                q["panel_id"],
                q["panel"].as_str().unwrap_or("?"),
                q["ref_id"].as_str().unwrap_or("?"),
            );
            if !evaluated.insert(expr.clone()) && !core {
                continue;
            }
            match prometheus.query(&expr, at).await {
                Err(e) => problems.push(format!("{label}: {e}\n    {expr}")),
                Ok(result) if core && result.is_empty() => {
                    problems.push(format!("{label}: core query returned no data\n    {expr}"))
                }
                Ok(_) if core => core_with_data += 1,
                Ok(result) if result.is_empty() => {
                    empty.insert(label);
                }
                Ok(_) => {}
            }
        }
    }
    assert!(
        evaluated.len() >= 50,
        "the dashboards hold {} distinct expressions; lint.py --list-queries lost some",
        evaluated.len()
    );

    // Every rule: healthy in Prometheus (it has evaluated them for the
    // whole run), and its expression evaluates here too.
    let rules = prometheus.api("/api/v1/rules", &[]).await;
    let mut recording = 0;
    let mut alerting = 0;
    for group in rules["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["name"].as_str().unwrap_or("?");
            let expr = rule["query"].as_str().unwrap_or_default();
            let kind = rule["type"].as_str().unwrap_or("?");
            match kind {
                "recording" => recording += 1,
                _ => alerting += 1,
            }
            if rule["health"] != "ok" {
                problems.push(format!(
                    "rule {name} ({kind}) is {}: {}",
                    rule["health"], rule["lastError"]
                ));
            }
            let must_have_data =
                kind == "recording" && (name.starts_with("service:") || name.starts_with("edge:"));
            match prometheus.query(expr, at).await {
                Err(e) => problems.push(format!("rule {name}: {e}\n    {expr}")),
                Ok(result) if must_have_data && result.is_empty() => {
                    problems.push(format!("rule {name}: no data\n    {expr}"))
                }
                Ok(_) => {}
            }
            if must_have_data {
                match prometheus.query(name, at).await {
                    Ok(result) if !result.is_empty() => {}
                    other => problems.push(format!("recorded series {name}: {other:?}")),
                }
            }
        }
    }
    assert!(
        recording >= 20 && alerting >= 4,
        "Prometheus loaded {recording} recording and {alerting} alerting rules: {rules}"
    );

    // An exemplar on a latency histogram whose trace this test received.
    let exemplars = prometheus
        .api(
            "/api/v1/query_exemplars",
            &[
                (
                    "query",
                    "http_server_request_duration_seconds_bucket".into(),
                ),
                ("start", format!("{:.3}", started - 30.0)),
                ("end", format!("{:.3}", unix_now())),
            ],
        )
        .await;
    let exemplar_traces: BTreeSet<String> = exemplars["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["exemplars"].as_array().into_iter().flatten())
        .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
        .collect();
    let received: BTreeSet<String> = sys
        .receiver
        .spans()
        .into_iter()
        .map(|s| s.trace_id)
        .collect();
    let linked = exemplar_traces.intersection(&received).count();
    if linked == 0 {
        problems.push(format!(
            "no exemplar's trace id was received: {} exemplar trace ids, {} traces received \
             (exemplars: {exemplars})",
            exemplar_traces.len(),
            received.len()
        ));
    }

    if !problems.is_empty() {
        prometheus.fail(&format!(
            "{} problem(s) evaluating the dashboards and rules:\n{}",
            problems.len(),
            problems.join("\n")
        ));
    }
    // Not a failure: a panel for something the scenario did not do may
    // have no series at all. Listed so that a dead panel gets noticed.
    if !empty.is_empty() {
        eprintln!("empty, not core:\n  {}", Vec::from_iter(empty).join("\n  "));
    }
    eprintln!(
        "{} distinct dashboard expressions evaluated ({core_with_data} core with data), \
         {recording} recording and {alerting} alerting rules healthy, \
         {linked} of {} exemplar trace ids received",
        evaluated.len(),
        exemplar_traces.len()
    );
    drop(prometheus);
    sys.stop().await;
}
