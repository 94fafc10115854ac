//! The load engine against a real HTTP server on loopback, in real time:
//! does it hold its rate, does the corrected latency show a stall that
//! the uncorrected one hides, are ramps, closed-model users and the
//! shortfall counted as the plan says.
//!
//! The assertions leave room for a loaded two-core machine: counts are
//! exact where the schedule decides them and within 1% where the system
//! does; latencies are compared against gaps of an order of magnitude.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, extract::State, routing::get};
use load_engine::{
    ExecutorPlan, Iteration, Journey, JourneyFuture, Model, Outcome, Plan, Pool, Run, RunOptions,
    RunStats, Stage, ThinkTime, TraceEvent, WeightedJourney,
    bench::{BenchArgs, bench},
};
use prometheus_client::{encoding::text::encode, registry::Registry};

/// A server answering `GET /work` after `latency`; requests arriving
/// during the stall window wait until it ends.
struct Server {
    latency: Duration,
    stall: Mutex<Option<(Instant, Instant)>>,
}

async fn work(State(server): State<Arc<Server>>) -> &'static str {
    let now = Instant::now();
    let until = server
        .stall
        .lock()
        .unwrap()
        .filter(|(from, to)| now >= *from && now < *to)
        .map(|(_, to)| to);
    if let Some(until) = until {
        tokio::time::sleep_until(until.into()).await;
    }
    tokio::time::sleep(server.latency).await;
    "ok"
}

async fn serve(latency: Duration) -> (SocketAddr, Arc<Server>) {
    let server = Arc::new(Server {
        latency,
        stall: Mutex::new(None),
    });
    let app = Router::new()
        .route("/work", get(work))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, server)
}

/// One `GET /work`.
struct Work {
    http: reqwest::Client,
    url: String,
}

impl Work {
    fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            http: reqwest::Client::new(),
            url: format!("http://{addr}/work"),
        })
    }
}

impl Journey for Work {
    fn run<'a>(&'a self, it: &'a mut Iteration) -> JourneyFuture<'a> {
        Box::pin(async move {
            let _ = it
                .request(
                    "GET /work",
                    async {
                        let response = self.http.get(&self.url).send().await?;
                        let status = response.status();
                        response.bytes().await?;
                        Ok::<_, reqwest::Error>(status)
                    },
                    |r| match r {
                        Ok(s) if s.is_success() => Outcome::ok(s.as_u16()),
                        Ok(s) => Outcome::failed(Some(s.as_u16()), s.as_str()),
                        Err(_) => Outcome::failed(None, "transport"),
                    },
                )
                .await;
        })
    }
}

fn executor(name: &str, model: Model, journey: Arc<dyn Journey>) -> ExecutorPlan {
    ExecutorPlan {
        name: name.into(),
        start: Duration::ZERO,
        model,
        journeys: vec![WeightedJourney {
            name: "work",
            weight: 1,
            journey,
        }],
    }
}

fn quiet() -> RunOptions {
    RunOptions {
        progress: false,
        ..RunOptions::default()
    }
}

async fn run(plan: Plan, options: RunOptions) -> RunStats {
    Run::start(plan, options).unwrap().finish().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_constant_arrival_rate_holds_2000_per_second() {
    let (addr, _server) = serve(Duration::from_millis(1)).await;
    let plan = Plan {
        executors: vec![executor(
            "steady",
            Model::ConstantArrivalRate {
                rate: 2_000.0,
                duration: Duration::from_secs(10),
                pool: Pool::new(500),
            },
            Work::new(addr),
        )],
    };
    let mut registry = Registry::default();
    let metrics = load_engine::EngineMetrics::register(
        registry.sub_registry_with_prefix("loadgen"),
        &[0.001, 0.01, 0.1, 1.0, 10.0],
    );
    let started = Run::start(
        plan,
        RunOptions {
            metrics: Some(metrics),
            ..quiet()
        },
    )
    .unwrap();
    let live = started.live();
    let watcher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        live.recent(Duration::from_secs(3))
    });
    let stats = started.finish().await;
    let recent = watcher.await.unwrap();

    let e = stats.executor("steady").unwrap();
    assert_eq!(e.scheduled(), 20_000, "the schedule itself is exact");
    let within_1_percent = |n: u64| n.abs_diff(20_000) <= 200;
    assert!(within_1_percent(e.started()), "started {}", e.started());
    let completed = stats.overall().count();
    assert!(within_1_percent(completed), "completed {completed}");
    assert_eq!(stats.overall().errors(), 0);
    assert!(
        (e.achieved_rate() - 2_000.0).abs() <= 20.0,
        "{}",
        e.achieved_rate()
    );
    assert_eq!(stats.request("GET /work").unwrap().count(), completed);

    // The live view saw the rate while it ran.
    assert!(
        (1_500.0..2_500.0).contains(&recent.target_rate),
        "{recent:?}"
    );
    assert!(
        recent.completed > 0 && recent.p99 > Duration::ZERO,
        "{recent:?}"
    );

    // The summary: ten one-second points of about 2,000 each.
    let parts = stats.summary_parts();
    let full: Vec<_> = parts.series.iter().take(10).collect();
    assert!(full.iter().all(|p| p.target_rate == 2_000.0), "{full:?}");
    assert_eq!(parts.executors[0].scheduled, 20_000);

    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let started_line = format!(
        "loadgen_arrivals_total{{executor=\"steady\",outcome=\"started\"}} {}",
        e.started()
    );
    assert!(text.contains(&started_line), "{text}");
    assert!(
        text.contains(
            "loadgen_request_duration_seconds_count{request=\"GET /work\",outcome=\"ok\"}"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stall_shows_in_corrected_latency_and_not_in_uncorrected() {
    let (addr, server) = serve(Duration::from_millis(1)).await;
    let plan = Plan {
        executors: vec![executor(
            "stalled",
            Model::ConstantArrivalRate {
                rate: 500.0,
                duration: Duration::from_secs(8),
                // A small pool: only these are stuck in the server; every
                // later arrival waits in the backlog and starts late.
                pool: Pool {
                    max_lateness: Duration::from_secs(5),
                    ..Pool::new(8)
                },
            },
            Work::new(addr),
        )],
    };
    let now = Instant::now();
    *server.stall.lock().unwrap() =
        Some((now + Duration::from_secs(3), now + Duration::from_secs(4)));
    let stats = run(plan, quiet()).await;

    let e = stats.executor("stalled").unwrap();
    assert_eq!(e.dropped(), 0);
    assert_eq!(e.started(), 4_000);
    assert!(
        e.late() >= 300,
        "about half a second of arrivals started late: {}",
        e.late()
    );
    assert!(
        e.max_lateness() >= Duration::from_millis(800),
        "{:?}",
        e.max_lateness()
    );

    let work = stats.journey("work").unwrap();
    let corrected = work.latency(0.99);
    let uncorrected = work.uncorrected_latency(0.99);
    assert!(
        corrected >= Duration::from_millis(500),
        "corrected p99 {corrected:?}"
    );
    assert!(
        uncorrected < Duration::from_millis(200),
        "uncorrected p99 {uncorrected:?}"
    );
    // The stuck few are in the uncorrected maximum, not its p99.
    assert!(work.uncorrected_latency(1.0) >= Duration::from_millis(500));
    // The second of the stall stands out in the series.
    let series = stats.summary_parts().series;
    let worst = series
        .iter()
        .max_by(|a, b| a.max_ms.total_cmp(&b.max_ms))
        .unwrap();
    assert!((4.0..=5.0).contains(&worst.t_s), "{worst:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ramping_stages_schedule_the_area_under_the_ramp() {
    let (addr, _server) = serve(Duration::from_millis(1)).await;
    let stage = |s, target| Stage {
        duration: Duration::from_secs(s),
        target,
    };
    let plan = Plan {
        executors: vec![executor(
            "ramp",
            Model::RampingArrivalRate {
                start_rate: 0.0,
                stages: vec![stage(2, 100.0), stage(2, 100.0), stage(2, 0.0)],
                pool: Pool::new(50),
            },
            Work::new(addr),
        )],
    };
    let stats = run(plan, quiet()).await;
    let e = stats.executor("ramp").unwrap();
    // 0→100/s over 2 s (100), 2 s at 100/s (200), 100→0/s over 2 s (100).
    assert_eq!(e.scheduled(), 400);
    assert_eq!(e.started(), 400);
    assert_eq!(stats.overall().count(), 400);
    let hold = stats
        .window(Duration::from_secs(2), Duration::from_secs(4), None)
        .unwrap();
    assert_eq!(hold.scheduled, 200);
    let first = stats
        .window(Duration::ZERO, Duration::from_secs(1), None)
        .unwrap();
    assert_eq!(first.scheduled, 25, "N(1) = 25 on a ramp to 100/s over 2 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_model_users_run_their_iterations_with_think_time() {
    let (addr, _server) = serve(Duration::from_millis(1)).await;
    let plan = Plan {
        executors: vec![executor(
            "users",
            Model::ConstantVus {
                vus: 4,
                duration: Duration::from_secs(30),
                think_time: ThinkTime {
                    min: Duration::from_millis(50),
                    max: Duration::from_millis(60),
                },
                iterations: Some(5),
            },
            Work::new(addr),
        )],
    };
    let begun = Instant::now();
    let stats = run(plan, quiet()).await;
    let took = begun.elapsed();
    let e = stats.executor("users").unwrap();
    assert_eq!(e.started(), 20);
    assert_eq!(stats.overall().count(), 20);
    assert_eq!(stats.overall().errors(), 0);
    // Four think times between each user's five journeys...
    assert!(took >= Duration::from_millis(200), "{took:?}");
    // ...and the run ends when the users are done, not at 30 s.
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(!stats.stopped_early());
}

#[tokio::test(flavor = "multi_thread")]
async fn arrivals_beyond_the_pool_and_too_late_are_dropped_and_counted() {
    let (addr, _server) = serve(Duration::from_millis(100)).await;
    let plan = Plan {
        executors: vec![executor(
            "overloaded",
            Model::ConstantArrivalRate {
                rate: 200.0,
                duration: Duration::from_secs(2),
                // Two at a time, 100 ms each: room for about 20 a second.
                pool: Pool {
                    max_lateness: Duration::from_millis(100),
                    ..Pool::new(2)
                },
            },
            Work::new(addr),
        )],
    };
    let stats = run(plan, quiet()).await;
    let e = stats.executor("overloaded").unwrap();
    assert_eq!(e.scheduled(), 400);
    assert_eq!(e.started() + e.dropped(), 400);
    assert!(e.dropped() >= 300, "dropped {}", e.dropped());
    assert!(
        e.max_lateness() <= Duration::from_millis(100),
        "{:?}",
        e.max_lateness()
    );
    assert_eq!(stats.overall().count(), e.started());
    let dropped: u64 = stats.summary_parts().series.iter().map(|p| p.dropped).sum();
    assert_eq!(dropped, e.dropped());
}

/// Fails at once, with a trace id.
struct Failing;

impl Journey for Failing {
    fn run<'a>(&'a self, it: &'a mut Iteration) -> JourneyFuture<'a> {
        Box::pin(async move {
            let n: u64 = rand::Rng::random(it.rng());
            it.set_trace_id(format!("{n:032x}"));
            it.fail("no course to buy");
        })
    }
}

/// Never finishes.
struct Hanging;

impl Journey for Hanging {
    fn run<'a>(&'a self, _it: &'a mut Iteration) -> JourneyFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_traces_are_announced_and_a_stopped_run_abandons_what_hangs() {
    let events = Arc::new(Mutex::new(Vec::<TraceEvent>::new()));
    let listener = {
        let events = events.clone();
        Arc::new(move |e: &TraceEvent| events.lock().unwrap().push(e.clone()))
    };
    let open = |rate| Model::ConstantArrivalRate {
        rate,
        duration: Duration::from_secs(60),
        pool: Pool::new(1_000),
    };
    let plan = Plan {
        executors: vec![
            executor("failing", open(100.0), Arc::new(Failing)),
            ExecutorPlan {
                journeys: vec![WeightedJourney {
                    name: "hanging",
                    weight: 1,
                    journey: Arc::new(Hanging),
                }],
                ..executor("hanging", open(10.0), Arc::new(Hanging))
            },
        ],
    };
    let options = RunOptions {
        grace: Duration::from_millis(200),
        failed: 5,
        slowest: 0,
        on_trace: Some(listener),
        ..quiet()
    };
    let running = Run::start(plan, options).unwrap();
    let live = running.live();
    live.set_phase("about to stop");
    assert_eq!(live.phase(), "about to stop");
    tokio::time::sleep(Duration::from_secs(1)).await;
    live.stop();
    let begun = Instant::now();
    let stats = running.finish().await;
    assert!(begun.elapsed() < Duration::from_secs(5), "grace, then gone");

    assert!(stats.stopped_early());
    let hanging = stats.executor("hanging").unwrap();
    assert!(hanging.started() >= 5, "{}", hanging.started());
    assert_eq!(hanging.abandoned(), hanging.started());
    assert_eq!(stats.journey("hanging").unwrap().count(), 0);

    let failing = stats.journey("work").unwrap();
    assert!(failing.count() >= 50);
    assert_eq!(failing.error_rate(), 1.0);
    assert_eq!(
        failing.errors_by_kind()["no course to buy"],
        failing.count()
    );

    // The listener heard of exactly the traces the sample ended with.
    let failed = stats.summary_parts().failed;
    assert_eq!(failed.len(), 5);
    let mut kept: Vec<String> = Vec::new();
    for event in events.lock().unwrap().iter() {
        match event {
            TraceEvent::Keep { trace_id, .. } => kept.push(trace_id.clone()),
            TraceEvent::Release { trace_id } => kept.retain(|t| t != trace_id),
        }
    }
    let mut sampled: Vec<String> = failed.iter().map(|f| f.trace_id.clone().unwrap()).collect();
    kept.sort();
    sampled.sort();
    assert_eq!(kept, sampled);
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_measures_one_url_closed_and_open() {
    let (addr, _server) = serve(Duration::ZERO).await;
    let args = |rate| BenchArgs {
        url: format!("http://{addr}/work"),
        connections: 4,
        duration: Duration::from_secs(1),
        rate,
    };
    let closed = bench(args(None)).await.unwrap();
    assert!(
        closed.stats.overall().count() >= 100,
        "{}",
        closed.stats.overall().count()
    );
    assert_eq!(closed.stats.overall().errors(), 0);
    let open = bench(args(Some(200.0))).await.unwrap();
    assert_eq!(open.stats.executors()[0].scheduled(), 200);
    assert_eq!(open.stats.overall().count(), 200);
    let printed = open.to_string();
    assert!(printed.contains("bench: rps="), "{printed}");
    assert!(printed.contains("achieved_ratio="), "{printed}");

    let refused = bench(BenchArgs {
        url: "http://127.0.0.1:1/".into(),
        ..args(None)
    })
    .await;
    let Err(refused) = refused else {
        panic!("nothing listens on port 1");
    };
    assert!(refused.to_string().contains("cannot connect"), "{refused}");
}
