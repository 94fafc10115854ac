//! A scenario's timeline: what happens to the system while the load
//! runs (a fault at 20 s, a scale at 40 s, a rolling restart at 60 s),
//! read from `[[timeline]]` tables and fired on a [`Platform`].
//!
//! ```toml
//! [[timeline]]
//! at = "20s"
//! action = "fault"
//! service = "payments"
//! route = "/payments"
//! method = "POST"
//! error = { rate = 1.0, status = 503 }
//! expires_in = "30s"
//! phase = "payments outage"
//! ```
//!
//! Each event fires at the run's start plus `at`, in its own task: a
//! rolling restart that takes a minute does not hold up the next event.
//! Every event is recorded ([`TimelineRecord`]), counted in
//! `loadgen_events_total{action, service}`, and an event with a `phase`
//! announces it to the run (which marks it in the report).

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use mesh::fault::{AbortSpec, ErrorSpec, LatencySpec};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use serde::Deserialize;
use tokio::{task::JoinSet, time::Instant};

use crate::{
    human::{HumanDuration, scale_duration},
    platform::{
        Platform,
        faults::{AdminClient, FaultSpec},
    },
    summary::TimelineRecord,
};

// === the events ===

/// One `[[timeline]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub struct Event {
    /// From the start of the run.
    pub at: Duration,
    /// A name for what this event starts (`payments outage`), handed to
    /// the run's phase callback when it fires.
    pub phase: Option<String>,
    pub action: Action,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Injects a fault on every current replica (admin API).
    Fault {
        service: String,
        fault: FaultSpec,
    },
    /// Removes every fault from every current replica.
    ClearFaults {
        service: String,
    },
    Scale {
        service: String,
        replicas: usize,
    },
    /// A hard kill of one replica (`None`: any running one).
    Crash {
        service: String,
        replica: Option<usize>,
    },
    /// A rolling redeploy.
    Restart {
        service: String,
    },
}

impl Action {
    /// As written in `action = "..."`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Fault { .. } => "fault",
            Action::ClearFaults { .. } => "clear-faults",
            Action::Scale { .. } => "scale",
            Action::Crash { .. } => "crash",
            Action::Restart { .. } => "restart",
        }
    }

    pub fn service(&self) -> &str {
        match self {
            Action::Fault { service, .. }
            | Action::ClearFaults { service }
            | Action::Scale { service, .. }
            | Action::Crash { service, .. }
            | Action::Restart { service } => service,
        }
    }
}

impl Event {
    /// The event with its offset (and a fault's `expires_in`) multiplied
    /// by `k`. Fault latencies are not scaled: they are how slow the
    /// system is, not how long the scenario lasts.
    pub fn scaled(&self, k: f64) -> Self {
        let mut event = self.clone();
        event.at = scale_duration(self.at, k);
        if let Action::Fault { fault, .. } = &mut event.action {
            fault.expires_in = fault
                .lifetime()
                .map(|d| mesh::fault::expires_in(scale_duration(d, k)));
        }
        event
    }
}

/// The table as written; [`Event`] checks which fields the action takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: HumanDuration,
    action: String,
    service: String,
    phase: Option<String>,
    route: Option<String>,
    method: Option<String>,
    latency: Option<LatencySpec>,
    error: Option<ErrorSpec>,
    abort: Option<AbortSpec>,
    expires_in: Option<HumanDuration>,
    replicas: Option<usize>,
    replica: Option<usize>,
}

const ACTIONS: &str = "fault, clear-faults, scale, crash or restart";

impl TryFrom<RawEvent> for Event {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<Self, String> {
        let action = raw.action.as_str();
        // Fields given, and the actions each belongs to.
        let present: [(&str, bool, &str); 8] = [
            ("route", raw.route.is_some(), "fault"),
            ("method", raw.method.is_some(), "fault"),
            ("latency", raw.latency.is_some(), "fault"),
            ("error", raw.error.is_some(), "fault"),
            ("abort", raw.abort.is_some(), "fault"),
            ("expires_in", raw.expires_in.is_some(), "fault"),
            ("replicas", raw.replicas.is_some(), "scale"),
            ("replica", raw.replica.is_some(), "crash"),
        ];
        if !ACTIONS
            .split(", ")
            .flat_map(|a| a.split(" or "))
            .any(|a| a == action)
        {
            return Err(format!("unknown action {action:?} (use {ACTIONS})"));
        }
        if let Some((field, _, owner)) = present
            .iter()
            .find(|(_, given, owner)| *given && *owner != action)
        {
            return Err(format!(
                "`{field}` is not a field of a `{action}` event (it belongs to `{owner}`)"
            ));
        }
        let service = raw.service;
        if service.trim().is_empty() {
            return Err("`service` must not be empty".into());
        }
        let action = match action {
            "fault" => {
                if raw.latency.is_none() && raw.error.is_none() && raw.abort.is_none() {
                    return Err(
                        "a `fault` event needs at least one of `latency`, `error`, `abort`".into(),
                    );
                }
                Action::Fault {
                    service,
                    fault: FaultSpec {
                        route: raw.route,
                        method: raw.method,
                        latency: raw.latency,
                        error: raw.error,
                        abort: raw.abort,
                        expires_in: raw.expires_in.map(|d| mesh::fault::expires_in(d.0)),
                    },
                }
            }
            "clear-faults" => Action::ClearFaults { service },
            "scale" => Action::Scale {
                service,
                replicas: raw.replicas.ok_or("a `scale` event needs `replicas`")?,
            },
            "crash" => Action::Crash {
                service,
                replica: raw.replica,
            },
            _ => Action::Restart { service },
        };
        Ok(Event {
            at: raw.at.0,
            phase: raw.phase,
            action,
        })
    }
}

// === the runner ===

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    action: &'static str,
    service: String,
}

/// What the run hears when an event with a `phase` fires.
pub type PhaseCallback = Arc<dyn Fn(&str) + Send + Sync>;

/// Fires a timeline's events on a platform.
pub struct TimelineRunner {
    platform: Arc<dyn Platform>,
    admin: AdminClient,
    events_total: Family<EventLabels, Counter>,
    on_phase: Option<PhaseCallback>,
}

impl std::fmt::Debug for TimelineRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimelineRunner")
            .field("platform", &self.platform.name())
            .finish_non_exhaustive()
    }
}

/// What one action did.
struct Done {
    detail: String,
    error: Option<String>,
}

impl TimelineRunner {
    /// Registers `loadgen_events` (exposed as `loadgen_events_total`) in
    /// `registry`. Faults use the platform's admin token.
    pub fn new(platform: Arc<dyn Platform>, registry: &mut Registry) -> Self {
        let events_total = Family::<EventLabels, Counter>::default();
        // prometheus-client appends `_total` to counters.
        registry.register(
            "loadgen_events",
            "Timeline events fired, by action and service (whether or not they succeeded)",
            events_total.clone(),
        );
        Self {
            admin: AdminClient::new(platform.admin_token().map(str::to_owned)),
            platform,
            events_total,
            on_phase: None,
        }
    }

    /// Calls `callback` with an event's `phase` when it fires.
    pub fn on_phase(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_phase = Some(Arc::new(callback));
        self
    }

    /// Fires each event at `t0 + at` until every event has fired and
    /// finished, or `stop` completes: then events not yet due never fire,
    /// and those still running are abandoned and recorded as cut short.
    /// Returns a record per fired event, by due time.
    pub async fn run(
        &self,
        events: &[Event],
        t0: Instant,
        stop: impl Future<Output = ()>,
    ) -> Vec<TimelineRecord> {
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].at);
        let mut due = order.into_iter().peekable();
        let mut running: JoinSet<(usize, Done)> = JoinSet::new();
        // Fired and not finished: when each fired, by event index.
        let mut in_flight: BTreeMap<usize, Instant> = BTreeMap::new();
        let mut records: Vec<(usize, TimelineRecord)> = Vec::new();
        let record = |i: usize, fired: Instant, done: Done| {
            let event: &Event = &events[i];
            TimelineRecord {
                at_s: event.at.as_secs_f64(),
                fired_s: fired.saturating_duration_since(t0).as_secs_f64(),
                action: event.action.name().into(),
                service: event.action.service().into(),
                detail: done.detail,
                ok: done.error.is_none(),
                error: done.error,
                took_ms: fired.elapsed().as_secs_f64() * 1000.0,
            }
        };
        tokio::pin!(stop);
        loop {
            let next_due = due.peek().map(|&i| t0 + events[i].at);
            if next_due.is_none() && running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = &mut stop => break,
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if let Ok((i, done)) = joined
                        && let Some(fired) = in_flight.remove(&i)
                    {
                        records.push((i, record(i, fired, done)));
                    }
                }
                () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                    let Some(i) = due.next() else { continue };
                    self.fire(&events[i], i, &mut running);
                    in_flight.insert(i, Instant::now());
                }
            }
        }
        // Dropping the set aborts what still runs.
        running.abort_all();
        for (i, fired) in in_flight {
            let done = Done {
                detail: "cut short".into(),
                error: Some("the run ended before it finished".into()),
            };
            records.push((i, record(i, fired, done)));
        }
        records.sort_by_key(|(i, _)| (events[*i].at, *i));
        records.into_iter().map(|(_, r)| r).collect()
    }

    fn fire(&self, event: &Event, index: usize, running: &mut JoinSet<(usize, Done)>) {
        let action = event.action.clone();
        self.events_total
            .get_or_create(&EventLabels {
                action: action.name(),
                service: action.service().to_owned(),
            })
            .inc();
        if let Some(callback) = &self.on_phase {
            // Without a name of its own, the phase is what just happened.
            match &event.phase {
                Some(phase) => callback(phase),
                None => callback(&format!("{} {}", action.name(), action.service())),
            }
        }
        tracing::info!(action = action.name(), service = action.service(), at = ?event.at, "timeline event");
        let platform = self.platform.clone();
        let admin = self.admin.clone();
        running.spawn(async move { (index, execute(platform.as_ref(), &admin, action).await) });
    }
}

async fn execute(platform: &dyn Platform, admin: &AdminClient, action: Action) -> Done {
    let failed = |error: String| Done {
        detail: String::new(),
        error: Some(error),
    };
    let result = match &action {
        Action::Fault { service, fault } => {
            return match platform.replicas(service).await {
                Ok(replicas) => {
                    let injected = admin.inject(service, replicas, fault).await;
                    Done {
                        detail: injected.describe(fault),
                        error: injected.failures(),
                    }
                }
                Err(e) => failed(e.to_string()),
            };
        }
        Action::ClearFaults { service } => {
            return match platform.replicas(service).await {
                Ok(replicas) => {
                    let cleared = admin.clear(service, replicas).await;
                    Done {
                        detail: cleared.describe(),
                        error: cleared.failures(),
                    }
                }
                Err(e) => failed(e.to_string()),
            };
        }
        Action::Scale { service, replicas } => platform.scale(service, *replicas).await,
        Action::Crash { service, replica } => platform.crash(service, *replica).await,
        Action::Restart { service } => platform.restart(service).await,
    };
    match result {
        Ok(detail) => Done {
            detail,
            error: None,
        },
        Err(e) => failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::platform::{PlatformError, PlatformFuture, Replica};

    #[derive(Deserialize)]
    struct File {
        timeline: Vec<Event>,
    }

    fn parse(text: &str) -> Result<Vec<Event>, String> {
        toml::from_str::<File>(text)
            .map(|f| f.timeline)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_action_reads_from_toml() {
        let events = parse(
            r#"
            [[timeline]]
            at = "20s"
            action = "fault"
            service = "payments"
            route = "/payments"
            method = "POST"
            error = { rate = 0.5 }
            latency = { median_ms = 50, p99_ms = 800 }
            expires_in = "30s"
            phase = "payments outage"

            [[timeline]]
            at = "50s"
            action = "clear-faults"
            service = "payments"

            [[timeline]]
            at = "1m"
            action = "scale"
            service = "payments"
            replicas = 3

            [[timeline]]
            at = "1m10s"
            action = "crash"
            service = "payments"
            replica = 1

            [[timeline]]
            at = "90s"
            action = "restart"
            service = "courses"
            "#,
        )
        .unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].at, Duration::from_secs(20));
        assert_eq!(events[0].phase.as_deref(), Some("payments outage"));
        let Action::Fault { service, fault } = &events[0].action else {
            panic!("{:?}", events[0]);
        };
        assert_eq!(service, "payments");
        assert_eq!(
            fault.error.as_ref().unwrap().status,
            503,
            "the admin API's default"
        );
        assert_eq!(fault.latency.as_ref().unwrap().p99_ms, Some(800));
        assert_eq!(fault.lifetime(), Some(Duration::from_secs(30)));
        assert_eq!(
            events[2].action,
            Action::Scale {
                service: "payments".into(),
                replicas: 3
            }
        );
        assert_eq!(events[3].at, Duration::from_secs(70));
        assert_eq!(
            events[3].action,
            Action::Crash {
                service: "payments".into(),
                replica: Some(1)
            }
        );
        assert_eq!(events[4].action.name(), "restart");
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                r#"at = "1s"
                action = "explode"
                service = "payments""#,
                "unknown action \"explode\"",
            ),
            (
                r#"at = "1s"
                action = "scale"
                service = "payments""#,
                "a `scale` event needs `replicas`",
            ),
            (
                r#"at = "1s"
                action = "crash"
                service = "payments"
                replicas = 2"#,
                "`replicas` is not a field of a `crash` event (it belongs to `scale`)",
            ),
            (
                r#"at = "1s"
                action = "fault"
                service = "payments""#,
                "at least one of `latency`, `error`, `abort`",
            ),
            (
                r#"at = "soon"
                action = "restart"
                service = "payments""#,
                "\"soon\" is not a duration",
            ),
            (
                r#"at = "1s"
                action = "restart"
                service = "payments"
                replcas = 2"#,
                "unknown field `replcas`",
            ),
            (
                r#"at = "1s"
                action = "fault"
                service = "payments"
                error = { rate = 1.0, staus = 500 }"#,
                "unknown field `staus`",
            ),
        ];
        for (table, expected) in cases {
            let err = parse(&format!("[[timeline]]\n{table}")).unwrap_err();
            assert!(err.contains(expected), "{table}\n→ {err}");
        }
    }

    #[test]
    fn scaling_shortens_offsets_and_expiries_but_not_latencies() {
        let events = parse(
            r#"
            [[timeline]]
            at = "20s"
            action = "fault"
            service = "payments"
            latency = { fixed_ms = 200 }
            expires_in = "30s"
            "#,
        )
        .unwrap();
        let scaled = events[0].scaled(0.1);
        assert_eq!(scaled.at, Duration::from_secs(2));
        let Action::Fault { fault, .. } = &scaled.action else {
            panic!()
        };
        assert_eq!(fault.lifetime(), Some(Duration::from_secs(3)));
        assert_eq!(fault.latency.as_ref().unwrap().fixed_ms, Some(200));
        assert_eq!(scale_duration(Duration::from_secs(1), -1.0), Duration::ZERO);
        assert_eq!(
            scale_duration(Duration::from_secs(1), f64::NAN),
            Duration::ZERO
        );
    }

    /// A platform that takes `restart_takes` to restart and records when
    /// each call started (time since the test's start).
    struct Recorder {
        t0: Instant,
        restart_takes: Duration,
        calls: Mutex<Vec<(String, Duration)>>,
    }

    impl Recorder {
        fn new(restart_takes: Duration) -> Arc<Self> {
            Arc::new(Self {
                t0: Instant::now(),
                restart_takes,
                calls: Mutex::new(Vec::new()),
            })
        }

        fn called(&self, what: String) {
            self.calls.lock().unwrap().push((what, self.t0.elapsed()));
        }
    }

    impl Platform for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }

        fn admin_token(&self) -> Option<&str> {
            Some("t")
        }

        fn scale<'a>(&'a self, service: &'a str, replicas: usize) -> PlatformFuture<'a, String> {
            self.called(format!("scale {service} {replicas}"));
            Box::pin(async move {
                if service == "billing" {
                    return Err(PlatformError::UnknownService(service.into()));
                }
                Ok(format!("{service} → {replicas} replicas"))
            })
        }

        fn crash<'a>(&'a self, service: &'a str, _: Option<usize>) -> PlatformFuture<'a, String> {
            self.called(format!("crash {service}"));
            Box::pin(async { Ok("killed".into()) })
        }

        fn restart<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, String> {
            self.called(format!("restart {service}"));
            Box::pin(async move {
                tokio::time::sleep(self.restart_takes).await;
                Ok("restarted".into())
            })
        }

        fn replicas<'a>(&'a self, _: &'a str) -> PlatformFuture<'a, Vec<Replica>> {
            Box::pin(async {
                // Nothing listens there: the fault fails on it.
                Ok(vec![Replica {
                    name: "payments-1".into(),
                    base_url: "http://127.0.0.1:9".into(),
                }])
            })
        }
    }

    fn event(at: u64, action: Action) -> Event {
        Event {
            at: Duration::from_secs(at),
            phase: None,
            action,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_restart_does_not_delay_the_next_event() {
        let platform = Recorder::new(Duration::from_secs(30));
        let mut registry = Registry::default();
        let phases = Arc::new(Mutex::new(Vec::new()));
        let seen = phases.clone();
        let runner = TimelineRunner::new(platform.clone(), &mut registry)
            .on_phase(move |p| seen.lock().unwrap().push(p.to_owned()));
        let mut restart = event(
            1,
            Action::Restart {
                service: "payments".into(),
            },
        );
        restart.phase = Some("redeploy".into());
        let events = [
            event(
                2,
                Action::Scale {
                    service: "payments".into(),
                    replicas: 3,
                },
            ),
            restart,
            event(
                3,
                Action::Scale {
                    service: "billing".into(),
                    replicas: 2,
                },
            ),
        ];
        let records = runner
            .run(&events, platform.t0, std::future::pending())
            .await;
        let calls = platform.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                ("restart payments".to_owned(), Duration::from_secs(1)),
                ("scale payments 3".to_owned(), Duration::from_secs(2)),
                ("scale billing 2".to_owned(), Duration::from_secs(3)),
            ]
        );
        // By due time, each with how long it took.
        assert_eq!(records.len(), 3);
        assert_eq!(
            (records[0].action.as_str(), records[0].fired_s),
            ("restart", 1.0)
        );
        assert_eq!(records[0].took_ms, 30_000.0);
        assert!(records[0].ok);
        assert_eq!(records[1].detail, "payments → 3 replicas");
        assert!(!records[2].ok);
        assert_eq!(
            records[2].error.as_deref(),
            Some("no service named \"billing\" on this platform")
        );
        // A named phase, then what happened for the unnamed ones.
        assert_eq!(
            *phases.lock().unwrap(),
            ["redeploy", "scale payments", "scale billing"]
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "loadgen_events_total{action=\"scale\",service=\"payments\"} 1",
            "loadgen_events_total{action=\"scale\",service=\"billing\"} 1",
            "loadgen_events_total{action=\"restart\",service=\"payments\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_run_ends_pending_events_never_fire() {
        let platform = Recorder::new(Duration::from_secs(30));
        let runner = TimelineRunner::new(platform.clone(), &mut Registry::default());
        let events = [
            event(
                1,
                Action::Restart {
                    service: "payments".into(),
                },
            ),
            event(
                10,
                Action::Crash {
                    service: "payments".into(),
                    replica: None,
                },
            ),
        ];
        let t0 = platform.t0;
        let records = runner
            .run(
                &events,
                t0,
                tokio::time::sleep_until(t0 + Duration::from_secs(5)),
            )
            .await;
        // Long after: the crash that was due at 10 s never came.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let calls = platform.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(records.len(), 1);
        assert!(!records[0].ok);
        assert_eq!(
            records[0].error.as_deref(),
            Some("the run ended before it finished")
        );
        assert_eq!(records[0].took_ms, 4_000.0);
    }

    #[tokio::test]
    async fn a_fault_that_reaches_no_replica_is_a_failed_event() {
        let platform = Recorder::new(Duration::ZERO);
        let runner = TimelineRunner::new(platform.clone(), &mut Registry::default());
        let events = parse(
            r#"
            [[timeline]]
            at = "0s"
            action = "fault"
            service = "payments"
            abort = {}
            "#,
        )
        .unwrap();
        let records = runner
            .run(&events, Instant::now(), std::future::pending())
            .await;
        assert_eq!(records.len(), 1);
        assert!(!records[0].ok);
        assert_eq!(
            records[0].detail,
            "every route: abort 100% on 0 of 1 payments replicas (fault ids none)"
        );
        let error = records[0].error.as_deref().unwrap();
        assert!(
            error.starts_with("payments-1: http://127.0.0.1:9/admin/faults"),
            "{error}"
        );
    }
}
