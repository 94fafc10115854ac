//! Scenario runs started from the console: `loadgen run <scenario>
//! --target <gateway> --control <this listener> --progress-json --out
//! <dir>` as a child process, the same run a terminal starts, watched
//! through its progress lines and judged from its `summary.json`. A child
//! keeps a run's telemetry setup, its memory and a crash of its own out of
//! the process supervising the system. One run at a time: two scenarios
//! on one system would judge each other's load.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use mesh::{
    error::error_response,
    extract::{Json as JsonBody, Path},
};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::{
    run_view::{Background, CheckView, KEPT_RUNS, RunView, VerdictView, lock},
    state::{Console, Refusal, Settings, Target},
};
use crate::{
    report,
    run::ProgressLine,
    scenario::{SHIPPED, Scenario},
    summary::Summary,
};

/// Lines of a run's stderr kept to explain a run that could not be made.
const STDERR_LINES: usize = 20;
fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// `GET /console/api/scenarios`.
pub(super) async fn scenarios() -> Response {
    let list: Vec<_> = SHIPPED
        .iter()
        .filter_map(|(name, text)| Scenario::parse(text, name).ok())
        .map(|s| {
            json!({
                "name": s.name,
                "description": s.description,
                "duration_seconds": s.duration.as_secs_f64(),
            })
        })
        .collect();
    Json(json!({ "scenarios": list })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartRun {
    scenario: String,
    #[serde(default = "full_length")]
    duration_scale: f64,
}

fn full_length() -> f64 {
    1.0
}

/// `POST /console/api/runs`.
pub(super) async fn start(
    State(console): State<Console>,
    JsonBody(body): JsonBody<StartRun>,
) -> Response {
    let (target, _) = match console.target() {
        Ok(t) => t,
        Err(refusal) => return refusal.into_response(),
    };
    if !SHIPPED.iter().any(|(name, _)| *name == body.scenario) {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_scenario",
            format!(
                "no shipped scenario named {:?}: one of {}",
                body.scenario,
                SHIPPED
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if !(body.duration_scale.is_finite()
        && body.duration_scale > 0.0
        && body.duration_scale <= 100.0)
    {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "duration_scale is above 0 and at most 100 (0.1 runs the story ten times faster)",
        );
    }
    let settings = &console.inner.settings;
    let id = format!("{:032x}", rand::random::<u128>());
    let out = settings.runs_dir.join(&id);
    let view = Arc::new(Mutex::new(RunView {
        id: id.clone(),
        scenario: body.scenario.clone(),
        duration_scale: body.duration_scale,
        state: "running",
        started_at: now(),
        finished_at: None,
        progress: None,
        verdict: None,
        report_url: None,
        message: None,
        pid: None,
        out: out.clone(),
        stop_asked: false,
    }));
    if let Err(refused) = claim(&console.inner.runs, view.clone()) {
        return refused.into_response();
    }

    // The background load makes way first: two runs would judge each
    // other's load.
    let runs = &console.inner.runs;
    runs.paused.send_replace(true);
    stop_background(runs).await;
    let spawned = exe(settings).and_then(|exe| {
        run_command(
            exe,
            settings,
            target,
            &body.scenario,
            body.duration_scale,
            Some(&out),
        )
        .spawn()
        .map_err(|e| format!("starting loadgen run: {e}"))
    });
    let child = match spawned {
        Ok(child) => child,
        Err(message) => {
            {
                let mut v = lock(&view);
                v.state = "error";
                v.finished_at = Some(now());
                v.message = Some(message.clone());
            }
            runs.paused.send_replace(false);
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "start_failed", message);
        }
    };
    lock(&view).pid = child.id();
    tracing::info!(target: "loadgen::console", scenario = %body.scenario, run.id = %id, "scenario started from the console");
    watch(console.clone(), child, view.clone());
    (StatusCode::ACCEPTED, Json(lock(&view).clone())).into_response()
}

/// Puts `view` first in the list unless a run is on: checked and claimed
/// under one lock, so of two starts at once one gets 409.
fn claim(runs: &super::run_view::Runs, view: Arc<Mutex<RunView>>) -> Result<(), Refusal> {
    let mut list = lock(&runs.runs);
    if let Some(running) = list.iter().find(|r| lock(r).state == "running") {
        let running = lock(running);
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "run_in_progress",
            format!(
                "scenario {} is running (run {}); stop it or wait for its verdict",
                running.scenario, running.id
            ),
        ));
    }
    list.push_front(view);
    while list.len() > KEPT_RUNS {
        list.pop_back();
    }
    Ok(())
}

/// The `loadgen` runs are started with: [`Settings::exe`], or this one.
fn exe(settings: &Settings) -> Result<PathBuf, String> {
    match &settings.exe {
        Some(exe) => Ok(exe.clone()),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find loadgen's own executable: {e}")),
    }
}

/// `loadgen run <scenario>` against this system. `out`: an operator's
/// run, which writes its report there and whose progress the console
/// reads; `None`: the background run, whose output is this process's.
fn run_command(
    exe: PathBuf,
    settings: &Settings,
    target: &Target,
    scenario: &str,
    duration_scale: f64,
    out: Option<&std::path::Path>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("run")
        .arg(scenario)
        .args(["--target", &target.gateway_url])
        .args(&target.run_flags)
        .args(["--duration-scale", &duration_scale.to_string()])
        .args(["--jaeger-url", &settings.jaeger_url])
        .arg("--no-progress")
        .env("ADMIN_TOKEN", &settings.admin_token)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(addr) = settings.metrics_addr {
        command.args(["--metrics-addr", &addr.to_string()]);
    }
    match out {
        Some(out) => {
            command
                .arg("--out")
                .arg(out)
                .arg("--progress-json")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        None => {
            command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
    }
    command
}

/// Runs `scenario` again and again while no operator run is on; an
/// operator's run stops the current one first ([`stop_background`]).
pub(super) async fn background(console: Console, scenario: String, duration_scale: f64) {
    let runs = &console.inner.runs;
    let mut paused = runs.paused.subscribe();
    loop {
        // Read through a function: a guard must not live across an await.
        let claimed = || {
            let mut state = lock(&runs.background);
            let free = !*runs.paused.borrow();
            if free {
                *state = Background::Starting;
            }
            free
        };
        if !claimed() {
            if paused.changed().await.is_err() {
                return;
            }
            continue;
        }
        let Ok((target, _)) = console.target() else {
            return;
        };
        let settings = &console.inner.settings;
        let spawned = exe(settings).and_then(|exe| {
            run_command(exe, settings, target, &scenario, duration_scale, None)
                .spawn()
                .map_err(|e| e.to_string())
        });
        match spawned {
            Ok(mut child) => {
                *lock(&runs.background) = child.id().map_or(Background::Idle, Background::Running);
                let status = child.wait().await;
                *lock(&runs.background) = Background::Idle;
                if let Ok(status) = status
                    && status.code() == Some(crate::run::UNABLE)
                {
                    tracing::warn!(target: "loadgen::console", %scenario, "the background run could not be made; again in a few seconds");
                }
            }
            Err(e) => {
                *lock(&runs.background) = Background::Idle;
                tracing::warn!(target: "loadgen::console", %scenario, error = %e, "cannot start the background run");
            }
        }
        // As the loop it replaces did: a breath between runs, and no spin
        // when runs cannot be made.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Waits for the background run to be gone, with `paused` already set:
/// one being started is waited for, one running gets SIGTERM (it is
/// judged and restores what it changed) and SIGKILL after 30 s.
async fn stop_background(runs: &super::run_view::Runs) {
    // Read through a function: a guard must not live across an await.
    let state = || *lock(&runs.background);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut signalled = None;
    loop {
        match state() {
            Background::Idle => return,
            Background::Starting => {}
            Background::Running(pid) => {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                if signalled != Some(pid) {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                    signalled = Some(pid);
                }
                if tokio::time::Instant::now() >= deadline {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows `child`'s progress lines into `view`, keeps its last words,
/// and judges it when it exits.
fn watch(console: Console, mut child: tokio::process::Child, view: Arc<Mutex<RunView>>) {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let progress = async {
            if let Some(stdout) = stdout {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(Update { progress }) = serde_json::from_str::<Update>(&line) {
                        lock(&view).progress = Some(progress);
                    }
                }
            }
        };
        let errors = async {
            let mut kept = VecDeque::new();
            if let Some(stderr) = stderr {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    kept.push_back(line);
                    if kept.len() > STDERR_LINES {
                        kept.pop_front();
                    }
                }
            }
            kept
        };
        let ((), stderr) = tokio::join!(progress, errors);
        let status = child.wait().await;
        finish(&view, status.ok().and_then(|s| s.code()), stderr);
        console.inner.runs.paused.send_replace(false);
    });
}

#[derive(Deserialize)]
struct Update {
    progress: ProgressLine,
}

/// The run's verdict from its exit and its `summary.json`.
fn finish(view: &Mutex<RunView>, code: Option<i32>, stderr: VecDeque<String>) {
    let mut v = lock(view);
    v.finished_at = Some(now());
    let summary = std::fs::read_to_string(v.out.join(report::SUMMARY_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<Summary>(&text).ok());
    match summary {
        Some(summary) => {
            let checks = summary
                .thresholds
                .iter()
                .chain(&summary.expectations)
                .map(|c| CheckView {
                    name: c.name.clone(),
                    passed: c.passed,
                    detail: c.detail.clone(),
                })
                .collect();
            v.state = match (summary.verdict.passed, v.stop_asked) {
                (_, true) => "stopped",
                (true, false) => "passed",
                (false, false) => "failed",
            };
            v.message = Some(if summary.verdict.passed {
                format!("{} passed", v.scenario)
            } else {
                format!(
                    "{} failed: {}",
                    v.scenario,
                    summary
                        .verdict
                        .aborted
                        .iter()
                        .chain(&summary.verdict.failures)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            });
            v.verdict = Some(VerdictView {
                passed: summary.verdict.passed,
                aborted: summary.verdict.aborted,
                checks,
            });
            if v.out.join(report::HTML_FILE).is_file() {
                v.report_url = Some(format!("/console/runs/{}/report.html", v.id));
            }
        }
        None => {
            v.state = if v.stop_asked { "stopped" } else { "error" };
            let said: Vec<String> = stderr.into_iter().collect();
            v.message = Some(format!(
                "the run could not be made (exit {}): {}",
                code.map_or("by a signal".into(), |c| c.to_string()),
                if said.is_empty() {
                    "it said nothing".into()
                } else {
                    said.join("\n")
                }
            ));
        }
    }
}

fn find(console: &Console, id: &str) -> Option<Arc<Mutex<RunView>>> {
    lock(&console.inner.runs.runs)
        .iter()
        .find(|r| lock(r).id == id)
        .cloned()
}

fn no_such_run(id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "unknown_run",
        format!("no run {id:?} (the console remembers the last {KEPT_RUNS})"),
    )
}

/// `GET /console/api/runs`: newest first.
pub(super) async fn list(State(console): State<Console>) -> Response {
    let runs: Vec<RunView> = lock(&console.inner.runs.runs)
        .iter()
        .map(|r| lock(r).clone())
        .collect();
    Json(json!({ "runs": runs })).into_response()
}

/// `GET /console/api/runs/{id}`.
pub(super) async fn get(State(console): State<Console>, Path(id): Path<String>) -> Response {
    match find(&console, &id) {
        Some(run) => Json(lock(&run).clone()).into_response(),
        None => no_such_run(&id),
    }
}

/// `DELETE /console/api/runs/{id}`: SIGTERM, which `loadgen run` takes as
/// "stop the schedule now": it still judges what ran, restores the
/// system and writes its report.
pub(super) async fn stop(State(console): State<Console>, Path(id): Path<String>) -> Response {
    let Some(run) = find(&console, &id) else {
        return no_such_run(&id);
    };
    let mut v = lock(&run);
    if v.state != "running" {
        return error_response(
            StatusCode::CONFLICT,
            "run_finished",
            format!("run {id} has already finished ({})", v.state),
        );
    }
    if let Some(pid) = v.pid {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM) {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "stop_failed",
                format!("signalling the run: {e}"),
            );
        }
    }
    v.stop_asked = true;
    let scenario = v.scenario.clone();
    drop(v);
    Json(json!({ "message": format!("stopping {scenario}: it is judged on what ran so far") }))
        .into_response()
}

/// `GET /console/runs/{id}/report.html`.
pub(super) async fn report(State(console): State<Console>, Path(id): Path<String>) -> Response {
    let Some(run) = find(&console, &id) else {
        return no_such_run(&id);
    };
    let path = lock(&run).out.join(report::HTML_FILE);
    match tokio::fs::read(&path).await {
        Ok(html) => {
            let mut response = Response::new(Body::from(html));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(_) => error_response(
            StatusCode::NOT_FOUND,
            "no_report",
            format!("run {id} has no report (yet)"),
        ),
    }
}
