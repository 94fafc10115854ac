//! `loadgen run`: a scenario from file to verdict.
//!
//! 1. Read the scenario (errors name file, line and column).
//! 2. Find the system: start it locally (the launcher) or use `--target`.
//! 3. Prepare the data (the catalog's ranking, registered learners).
//! 4. Start the engine, the timeline, the expectation watcher and, if
//!    asked, the trace capture, all on one clock.
//! 5. Judge thresholds and expectations, print the summary, write
//!    `summary.json` and `report.html`, and exit 0 (passed), 1 (a check
//!    failed) or 2 (the run could not be made).

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use clap::Args;
use gateway::client::GatewayClient;
use load_engine::{EngineMetrics, Live, Run, RunOptions, TraceEvent, TraceListener};
use mesh::{Mesh, ServeConfig, ServiceIdentity, TelemetryConfig};
use otlp_sink::{CaptureLimits, Receiver, RunningReceiver};
use prometheus_client::registry::Registry;
use tokio::{sync::watch, task::JoinHandle};

use launcher::{Databases, LaunchOptions, Logs, System, services::parse_replicas};

use crate::{
    expect::{Observations, Watcher},
    journeys::World,
    platform::{LocalPlatform, Platform},
    report,
    scenario::{Scenario, Threshold},
    summary::{Links, SCHEMA_VERSION, ScenarioInfo, Summary, Verdict},
    timeline::TimelineRunner,
    verdict,
};

mod progress;

pub use self::progress::ProgressLine;
pub use crate::platform::args::{PlatformArgs, PlatformKind};

/// Exit codes.
pub const PASSED: i32 = 0;
pub const FAILED: i32 = 1;
pub const UNABLE: i32 = 2;

/// `loadgen run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A scenario file, or the name of a shipped scenario (`loadgen
    /// scenarios` lists them).
    pub scenario: String,

    /// Multiply every duration and offset in the scenario by this: 0.2
    /// runs the same story five times faster.
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub duration_scale: f64,

    /// The gateway to drive. Without it, the run starts the whole system
    /// locally (free ports, SQLite in a temporary directory) and stops it
    /// afterwards.
    #[arg(long)]
    pub target: Option<String>,

    /// Where the system runs (`--platform` and its driver's settings).
    #[command(flatten)]
    pub on: PlatformArgs,

    /// Write `summary.json` and `report.html` into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Receive the services' spans and log records in this process and
    /// keep the complete traces of the slowest and failed journeys, with
    /// their log lines, for `report.html`.
    #[arg(long)]
    pub capture_traces: bool,

    /// Jaeger's UI, to link trace ids to (e.g. http://localhost:16686).
    #[arg(long, env = "LOADGEN_JAEGER_URL")]
    pub jaeger_url: Option<String>,

    /// Serve loadgen's own Prometheus /metrics here while running.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,

    /// No live progress line (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,

    /// Print the live progress as one JSON object per line on stdout,
    /// once a second (`{"progress": {...}}`, the fields of
    /// [`ProgressLine`]): for a program watching the run, such as the
    /// operator console.
    #[arg(long)]
    pub progress_json: bool,

    /// The deadline of each request loadgen sends.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// A system this run starts keeps its data and logs here (default: a
    /// temporary directory, removed afterwards unless the run failed).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// A system this run starts uses PostgreSQL through this URL instead
    /// of SQLite: a database per service, `loadgen_<random>_<service>`,
    /// created for the run and left for inspection afterwards.
    #[arg(long, env = "LEARNSPHERE_POSTGRES_URL")]
    pub postgres: Option<String>,

    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    let k: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if k.is_finite() && k > 0.0 && k <= 100.0 {
        Ok(k)
    } else {
        Err("the scale is above 0 and at most 100".into())
    }
}

/// Why a run could not be made (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct Unable(anyhow::Error);

/// Runs the scenario; returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
    match run_inner(args).await {
        Ok(code) => code,
        Err(Unable(e)) => {
            eprintln!("error: {e:#}");
            UNABLE
        }
    }
}

/// The system under load, and how to put it away.
struct Target {
    gateway: String,
    platform: Arc<dyn Platform>,
    system: Option<System>,
    data_dir: Option<(PathBuf, bool)>,
    /// The scenario's `[system]` given to a system this run did not start,
    /// to take back afterwards.
    stage: Option<crate::stage::Stage>,
}

async fn run_inner(mut args: RunArgs) -> Result<i32, Unable> {
    let unable = |e: anyhow::Error| Unable(e);
    let scenario = Scenario::load(&args.scenario)
        .map_err(|e| unable(e.into()))?
        .scaled(args.duration_scale);

    // Trace capture: our own receiver, the services' exporters (spans and
    // log records) and ours pointed at it.
    let capture = if args.capture_traces {
        let running = Receiver::with_capture(CaptureLimits::default())
            .start(
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            )
            .await
            .map_err(|e| unable(anyhow::anyhow!("starting the trace receiver: {e}")))?;
        args.telemetry.export_endpoint = Some(running.grpc_endpoint());
        args.telemetry.otlp_protocol = mesh::config::OtlpProtocol::Grpc;
        args.telemetry.otlp_traces_protocol = None;
        Some(running)
    } else {
        None
    };
    let identity = ServiceIdentity::resolve("loadgen", env!("CARGO_PKG_VERSION"), &args.telemetry);
    let telemetry = mesh::telemetry::init(&args.telemetry, &identity).map_err(unable)?;

    let mut target = find_target(&args, &scenario, capture.as_ref()).await?;
    let stage_notes = set_stage(&mut target, &scenario).await;
    let result = drive(
        &args,
        &scenario,
        &identity,
        capture.as_ref(),
        &target,
        stage_notes,
    )
    .await;
    // Our own spans (the journeys' roots) are flushed before the traces
    // are read from the capture or the caller's receiver.
    telemetry.shutdown(Duration::from_secs(5)).await;
    // Whatever happened, the system gets back what the stage changed.
    if let Some(stage) = target.stage.take() {
        for line in stage.undo(target.platform.as_ref()).await {
            eprintln!("  restored {line}");
        }
    }
    let summary = result?;
    let Target {
        system, data_dir, ..
    } = target;
    if let Some(mut system) = system {
        // A graceful stop: each service flushes its spans on the way out.
        system.stop(Duration::from_secs(10)).await;
    }

    let traces = match &capture {
        Some(running) => {
            let ids = report::sample_trace_ids(&summary);
            wait_for_roots(running, &ids).await;
            running.receiver().traces(ids)
        }
        None => BTreeMap::new(),
    };
    if let Some(running) = capture {
        let _ = running.shutdown().await;
    }
    print!("{}", report::table::render(&summary));
    if let Some(out) = &args.out {
        report::write(out, &summary, &traces).map_err(|e| unable(e.into()))?;
        println!(
            "wrote {} and {}",
            out.join(report::SUMMARY_FILE).display(),
            out.join(report::HTML_FILE).display()
        );
    }
    if let Some((dir, remove)) = data_dir {
        if remove && summary.verdict.passed {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            println!("the system's data and logs: {}", dir.display());
        }
    }
    Ok(if summary.verdict.passed {
        PASSED
    } else {
        FAILED
    })
}

/// Spans reach the capture a little after their journeys ended (batch
/// exporters): wait, briefly, until each kept trace has its root. Log
/// records travel in batches on the same schedule, so they are there by
/// then too, or nearly.
async fn wait_for_roots(running: &RunningReceiver, ids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        let traces = running.receiver().traces(ids.iter().copied());
        let complete = ids.iter().all(|id| {
            traces
                .get(*id)
                .is_some_and(|trace| trace.spans.iter().any(|s| s.is_root()))
        });
        if complete {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn find_target(
    args: &RunArgs,
    scenario: &Scenario,
    capture: Option<&RunningReceiver>,
) -> Result<Target, Unable> {
    if let Some(gateway) = &args.target {
        return Ok(Target {
            gateway: gateway.trim_end_matches('/').to_owned(),
            platform: args.on.platform(),
            system: None,
            data_dir: None,
            stage: None,
        });
    }
    if args.on.platform != PlatformKind::Local {
        return Err(Unable(anyhow::anyhow!(
            "--platform {:?} needs --target: only the local platform can be started by a run",
            args.on.platform
        )));
    }
    let (dir, remove) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "loadgen-{}-{}-{:08x}",
                scenario.name,
                std::process::id(),
                rand::random::<u32>()
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Unable(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let admin_token = args
        .on
        .admin_token
        .clone()
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let options = launch_options(args, scenario, capture, &dir, &admin_token)?;
    eprintln!(
        "starting LearnSphere locally (logs in {})...",
        dir.join("logs").display()
    );
    let system = System::start(options).await.map_err(|e| {
        Unable(e.context(format!(
            "starting the system (logs in {})",
            dir.join("logs").display()
        )))
    })?;
    let control = system
        .control_addr()
        .map(|a| format!("http://{a}"))
        .ok_or_else(|| Unable(anyhow::anyhow!("the launcher started no control API")))?;
    let gateway = system
        .url("gateway")
        .ok_or_else(|| Unable(anyhow::anyhow!("the launcher started no gateway")))?;
    Ok(Target {
        gateway,
        platform: Arc::new(LocalPlatform::new(control, Some(admin_token))),
        system: Some(system),
        data_dir: Some((dir, remove)),
        stage: None,
    })
}

/// The platform that runs a system given with `--target`.
/// How a run launches its own system in `dir`: the scenario's replicas
/// and settings, its spans and log records to the run's receiver, its own
/// databases.
fn launch_options(
    args: &RunArgs,
    scenario: &Scenario,
    capture: Option<&RunningReceiver>,
    dir: &Path,
    admin_token: &str,
) -> Result<LaunchOptions, Unable> {
    let mut options = LaunchOptions::local(dir);
    options.auto_ports = true;
    options.logs = Logs::Files(dir.join("logs"));
    options.control_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    options.admin_token = Some(admin_token.to_owned());
    // The run's system and its events go away together.
    options.delete_streams_on_stop = true;
    if !scenario.system.replicas.is_empty() {
        let spec: Vec<String> = scenario
            .system
            .replicas
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        options.replicas =
            parse_replicas(&spec.join(",")).map_err(|e| Unable(anyhow::anyhow!(e)))?;
    }
    let mut env: BTreeMap<String, String> = scenario.system.env.clone();
    // Each synthetic visitor is its own client for the rate limit, as
    // real visitors behind a load balancer would be.
    env.entry("RATE_LIMIT_TRUST_FORWARDED_FOR".into())
        .or_insert_with(|| "true".into());
    if let Some(running) = capture {
        export_to_capture(&mut env, &running.grpc_endpoint());
    }
    options.env = env;
    if let Some(admin_url) = &args.postgres {
        options.databases = Databases::Postgres {
            admin_url: admin_url.clone(),
            prefix: format!("loadgen_{:08x}", rand::random::<u32>()),
        };
    }
    Ok(options)
}

/// Loadgen's own client of the gateway: the mesh's client stack without
/// retries or a breaker (loadgen reports failures; it does not hide or
/// prevent them) and without edge metrics (loadgen has its own).
fn gateway_client(
    identity: &ServiceIdentity,
    gateway: &str,
    timeout: Duration,
) -> anyhow::Result<GatewayClient> {
    let mut serve = ServeConfig {
        metrics_enabled: false,
        ..ServeConfig::default()
    };
    serve.outbound.outbound_timeout = timeout;
    serve.outbound.retry_max_attempts = 1;
    serve.outbound.breaker_consecutive_failures = u32::MAX;
    serve.outbound.breaker_failure_rate = 1.1;
    let mesh = Mesh::new(identity.clone(), &serve);
    Ok(GatewayClient::new(
        mesh.client(GatewayClient::DESTINATION, gateway)?,
    ))
}

/// Serves `registry` as OpenMetrics (exemplars need it) until dropped.
async fn serve_metrics(
    addr: SocketAddr,
    registry: Arc<Registry>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::{Router, http::header, routing::get};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: {e}"))?;
    eprintln!(
        "loadgen's metrics: http://{}/metrics",
        listener.local_addr()?
    );
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response(),
                    Err(e) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("encoding metrics: {e}"),
                    )
                        .into_response(),
                }
            }
        }),
    );
    use axum::response::IntoResponse as _;
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

/// Gives a system the run did not start the scenario's `[system]`;
/// returns what was done and what could not be, for `summary.json`.
async fn set_stage(target: &mut Target, scenario: &Scenario) -> Vec<String> {
    if target.system.is_some() || scenario.system.is_empty() {
        return Vec::new();
    }
    eprintln!(
        "{}: giving {} the scenario's [system] (taken back after the run)...",
        scenario.name, target.gateway
    );
    let stage = crate::stage::set(target.platform.as_ref(), &scenario.system).await;
    for line in &stage.notes {
        eprintln!("  {line}");
    }
    let notes = stage.notes.clone();
    target.stage = Some(stage);
    notes
}

/// Points a launched system's spans and log records at the run's capture
/// (OTLP/gRPC on `endpoint`). The signal-specific settings are set as
/// well as the general ones: the launcher passes the caller's environment
/// on, where an `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `..._LOGS_ENDPOINT`
/// would otherwise send that signal elsewhere (the OTLP exporter
/// specification gives them precedence). Whether log records are exported
/// at all (`OTEL_LOGS_EXPORTER`) is left to the scenario and the caller,
/// as `OTEL_TRACES_EXPORTER` is.
fn export_to_capture(env: &mut BTreeMap<String, String>, endpoint: &str) {
    for signal in ["", "TRACES_", "LOGS_"] {
        env.insert(
            format!("OTEL_EXPORTER_OTLP_{signal}ENDPOINT"),
            endpoint.to_owned(),
        );
        env.insert(
            format!("OTEL_EXPORTER_OTLP_{signal}PROTOCOL"),
            "grpc".into(),
        );
    }
}

/// Runs the scenario against `target`: the data prepared, the engine,
/// timeline, expectation watcher and abort-on-fail thresholds on one
/// clock, then everything judged into the summary.
async fn drive(
    args: &RunArgs,
    scenario: &Scenario,
    identity: &ServiceIdentity,
    capture: Option<&RunningReceiver>,
    target: &Target,
    stage_notes: Vec<String>,
) -> Result<Summary, Unable> {
    let unable = |e: anyhow::Error| Unable(e);
    let started_at = SystemTime::now();
    let world = prepare_world(args, scenario, identity, target).await?;

    let mut registry = registry_of(scenario);
    // `loadgen_*`, catalogued in docs/metrics.md ("loadgen"): keep the two
    // in step. The services' buckets, so the latency offered and the
    // latency served share buckets on one dashboard.
    let metrics = EngineMetrics::register(
        registry.sub_registry_with_prefix("loadgen"),
        &mesh::metrics::LATENCY_BUCKETS,
    );
    let timeline = TimelineRunner::new(target.platform.clone(), &mut registry);
    let registry = Arc::new(registry);
    let metrics_server = match args.metrics_addr {
        Some(addr) => Some(
            serve_metrics(addr, registry.clone())
                .await
                .map_err(unable)?,
        ),
        None => None,
    };

    let options = RunOptions {
        progress: !args.no_progress,
        seed: scenario.seed,
        metrics: Some(metrics),
        on_trace: capture.map(keep_traces),
        ..RunOptions::default()
    };
    let run = Run::start(scenario.plan(&world), options).map_err(|e| unable(e.into()))?;
    let live = run.live();
    let watchers = progress::Watchers::start(&live, args.progress_json);
    let t0 = tokio::time::Instant::from_std(Instant::now() - live.elapsed());
    let (stop_tx, stop_rx) = watch::channel(false);

    let timeline_live = live.clone();
    let timeline = timeline.on_phase(move |phase| timeline_live.set_phase(phase));
    let events = scenario.timeline.clone();
    let timeline_task = {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { timeline.run(&events, t0, stop).await })
    };
    let watcher_task = watch_expectations(scenario, target, t0, stopped(stop_rx.clone()));
    let aborted: Arc<Mutex<Option<String>>> = Arc::default();
    let abort_task = abort_on_fail(
        live.clone(),
        &scenario.thresholds,
        aborted.clone(),
        stop_rx.clone(),
    );

    let stats = run.finish().await;
    watchers.abort();
    let _ = stop_tx.send(true);
    let timeline_records = timeline_task.await.unwrap_or_default();
    let observations = watcher_task.await.ok();
    abort_task.abort();
    if let Some(server) = metrics_server {
        server.abort();
    }

    let thresholds = verdict::judge_all(&stats, &scenario.thresholds);
    let expectations = observations.map(|o| o.evaluate()).unwrap_or_default();
    let aborted = aborted.lock().expect("abort lock").clone();
    let failures = verdict::failures(
        thresholds.iter().chain(&expectations),
        &timeline_records,
        &scenario.timeline,
        stats.elapsed(),
        aborted.as_deref(),
    );
    let parts = stats.summary_parts();
    Ok(Summary {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: scenario.source.clone(),
            duration_scale: scenario.duration_scale,
            platform: target.platform.name().to_owned(),
            target: target.gateway.clone(),
            system: stage_notes,
        },
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        duration_s: stats.elapsed().as_secs_f64(),
        verdict: Verdict {
            passed: failures.is_empty(),
            aborted,
            failures,
        },
        overall: parts.overall,
        journeys: parts.journeys,
        requests: parts.requests,
        executors: parts.executors,
        timeline: timeline_records,
        thresholds,
        expectations,
        series: parts.series,
        slowest: parts.slowest,
        failed: parts.failed,
        links: Links {
            jaeger: args.jaeger_url.clone(),
        },
    })
}

/// The scenario's data (the catalog's ranking, registered learners),
/// prepared through the target's gateway.
async fn prepare_world(
    args: &RunArgs,
    scenario: &Scenario,
    identity: &ServiceIdentity,
    target: &Target,
) -> Result<Arc<World>, Unable> {
    let unable = |e: anyhow::Error| Unable(e);
    let client = gateway_client(identity, &target.gateway, args.request_timeout).map_err(unable)?;
    eprintln!(
        "{}: preparing {} learners through {}...",
        scenario.name, scenario.data.learners, target.gateway
    );
    World::prepare(client, &scenario.name, &scenario.data, scenario.seed, true)
        .await
        .map_err(|e| {
            unable(e.context(format!(
                "preparing the scenario's data through {}",
                target.gateway
            )))
        })
}

/// Pins the traces the engine samples (the slowest and the failed
/// journeys) in the capture until the end of the run, and lets go of
/// those it drops.
fn keep_traces(running: &RunningReceiver) -> TraceListener {
    let receiver = running.receiver().clone();
    Arc::new(move |event: &TraceEvent| match event {
        TraceEvent::Keep { trace_id, .. } => {
            receiver.keep(trace_id);
        }
        TraceEvent::Release { trace_id } => receiver.release(trace_id),
    })
}

/// The registry of the run's own metrics, every series labelled with the
/// scenario.
fn registry_of(scenario: &Scenario) -> Registry {
    // `with_labels`, not `with_prefix_and_labels("", ..)`: an empty
    // prefix still joins with `_`, which named every series `_loadgen_*`.
    Registry::with_labels(
        [(
            std::borrow::Cow::Borrowed("scenario"),
            std::borrow::Cow::Owned(scenario.name.clone()),
        )]
        .into_iter(),
    )
}

/// Watches the scenario's expectations on the target's platform from
/// `t0` until `stop`.
fn watch_expectations(
    scenario: &Scenario,
    target: &Target,
    t0: tokio::time::Instant,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<Observations> {
    // A shorter story samples its gauges as often, relative to its
    // length, as the full one (1 s at scale 1; never below 100 ms).
    let scrape_every = Duration::from_secs(1)
        .mul_f64(scenario.duration_scale.min(1.0))
        .max(Duration::from_millis(100));
    let watcher = Watcher::new(target.platform.clone(), scenario.expectations.clone())
        .with_interval(scrape_every);
    tokio::spawn(watcher.run(t0, stop))
}

/// Resolves once the run says stop.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Judges the abort-on-fail thresholds once a second past their grace;
/// the first that fails is written to `aborted` and stops the run.
fn abort_on_fail(
    live: Live,
    thresholds: &[Threshold],
    aborted: Arc<Mutex<Option<String>>>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let watched: Vec<Threshold> = thresholds
        .iter()
        .filter(|t| t.abort_on_fail)
        .cloned()
        .collect();
    tokio::spawn(async move {
        if watched.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            let elapsed = live.elapsed();
            let failed = live.with_stats(|stats| {
                watched
                    .iter()
                    // A window is judged once it is over.
                    .filter(|t| elapsed >= t.grace && t.during.is_none_or(|(_, to)| elapsed >= to))
                    .map(|t| verdict::judge(t, verdict::view(stats, t).as_ref()))
                    .find(|r| !r.passed && r.observed.is_some())
            });
            if let Some(result) = failed {
                *aborted.lock().expect("abort lock") =
                    Some(format!("{} failed: {}", result.name, result.detail));
                live.stop();
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that captures traces gives its system the capture for both
    /// signals, over whatever the caller's environment or the scenario
    /// said about where they go, and leaves whether logs are exported to
    /// them.
    #[tokio::test]
    async fn a_captured_runs_system_sends_spans_and_logs_to_the_capture() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let args = <Cli as clap::Parser>::parse_from(["loadgen", "steady"]).run;
        let mut scenario = Scenario::load("steady").expect("a shipped scenario");
        scenario.system.env = BTreeMap::from([
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT".into(),
                "http://elsewhere:4317".into(),
            ),
            ("OTEL_LOGS_EXPORTER".into(), "none".into()),
        ]);
        let capture = Receiver::new()
            .start(
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            )
            .await
            .expect("receiver starts");
        let dir = tempfile::tempdir().expect("temporary directory");

        let options =
            launch_options(&args, &scenario, Some(&capture), dir.path(), "token").expect("options");
        let endpoint = capture.grpc_endpoint();
        for signal in ["", "TRACES_", "LOGS_"] {
            let var = |name: &str| {
                options
                    .env
                    .get(&format!("OTEL_EXPORTER_OTLP_{signal}{name}"))
            };
            assert_eq!(var("ENDPOINT"), Some(&endpoint), "{signal}");
            assert_eq!(
                var("PROTOCOL").map(String::as_str),
                Some("grpc"),
                "{signal}"
            );
        }
        assert_eq!(
            options.env.get("OTEL_LOGS_EXPORTER").map(String::as_str),
            Some("none"),
            "the scenario's choice to export no logs stands"
        );

        let options = launch_options(&args, &scenario, None, dir.path(), "token").expect("options");
        assert_eq!(
            options
                .env
                .get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
                .map(String::as_str),
            Some("http://elsewhere:4317"),
            "without a capture, the scenario's settings as they are"
        );
    }
}
