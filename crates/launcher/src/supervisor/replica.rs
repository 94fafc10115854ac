//! One replica's supervisor: a task that owns the child process for the
//! replica's whole life, across restarts.
//!
//! ```text
//!   spawn ──▶ Starting ──/readyz 200──▶ Running ──exits on its own──┐
//!               │  exits / not ready in time                        │
//!               └──────────────────────▶ Waiting (backoff) ◀────────┘
//!                                           │ delay over: spawn again
//! ```
//!
//! A replica is in the targets only while Running. Commands arrive on a
//! channel in every phase: `Retire` stops it for good (scale-down, stop),
//! `Crash` kills it as a crash would (the restart policy then applies),
//! `Restart` stops it gracefully and starts it again at once (a rolling
//! restart's step: not a crash, not counted).
//! The process is a new one on each restart, so it makes a new
//! `service.instance.id` (the launcher never passes one).

use std::{process::ExitStatus, sync::Arc, time::Duration};

use tokio::{
    process::Child,
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{
    command::{Command, Retire, Signal},
    registry::{Supervisor, replica_label},
};
use crate::{
    options::RestartPolicy,
    status::{ReplicaState, RestartedReplica, StoppedReplica},
};

/// A restart asked for and not finished: answered when the new process
/// is ready (or fails to start).
struct PendingRestart {
    done: oneshot::Sender<Result<RestartedReplica, String>>,
    stopped: StoppedReplica,
    since: Instant,
}

/// The restart delay: `initial_delay`, doubling (up to `max_delay`) while
/// the replica keeps dying within `stable_after` of its start, back to
/// `initial_delay` once it has stayed up that long. Crash-looping replicas
/// then cost little, and a replica that crashes once a day restarts fast.
#[derive(Debug)]
pub(super) struct Backoff {
    policy: RestartPolicy,
    next: Duration,
}

// === impl Backoff ===

impl Backoff {
    pub(super) fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            next: policy.initial_delay,
        }
    }

    /// Forgets earlier crashes: a restart asked for (a rollout, new
    /// settings) starts the replica afresh, and a crash soon after it is
    /// its first, not one more of a loop.
    pub(super) fn reset(&mut self) {
        self.next = self.policy.initial_delay;
    }

    /// The delay before restarting a replica that died after `uptime`.
    pub(super) fn delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.policy.stable_after {
            self.next = self.policy.initial_delay;
        }
        let delay = self.next;
        self.next = (delay * 2).min(self.policy.max_delay);
        delay
    }
}

enum Phase {
    Starting { child: Child, started: Instant },
    Running { child: Child, started: Instant },
    Waiting { until: Instant },
}

/// What woke the supervisor up.
enum Event {
    Ready,
    NotReadyInTime,
    Exited(Option<ExitStatus>),
    DelayOver,
    Command(Option<Command>),
}

/// Supervises `replica` of `service` (already spawned as `child`) until
/// it is retired or the launcher goes away. `ready` gets the outcome of
/// the first start: a replica that cannot start at all is given up on
/// (and removed) instead of restarted, so a broken build fails `up` fast.
pub(super) async fn supervise(
    supervisor: Arc<Supervisor>,
    service: &'static str,
    replica: usize,
    child: Child,
    commands: mpsc::UnboundedReceiver<Command>,
    ready: oneshot::Sender<anyhow::Result<()>>,
) {
    let backoff = Backoff::new(supervisor.restart);
    ReplicaTask {
        supervisor,
        service,
        replica,
        label: replica_label(service, replica),
        commands,
        first_start: Some(ready),
        backoff,
        restarting: None,
    }
    .run(child)
    .await;
}

struct ReplicaTask {
    supervisor: Arc<Supervisor>,
    service: &'static str,
    replica: usize,
    label: String,
    commands: mpsc::UnboundedReceiver<Command>,
    first_start: Option<oneshot::Sender<anyhow::Result<()>>>,
    backoff: Backoff,
    restarting: Option<PendingRestart>,
}

// === impl ReplicaTask ===

impl ReplicaTask {
    async fn run(mut self, child: Child) {
        let mut phase = Phase::Starting {
            child,
            started: Instant::now(),
        };
        loop {
            let event = match &mut phase {
                Phase::Starting { child, started } => {
                    let url = self.url();
                    let deadline = *started + self.supervisor.ready_timeout;
                    tokio::select! {
                        event = ready_or_exit(&self.supervisor.http, &url, deadline, child) => event,
                        command = self.commands.recv() => Event::Command(command),
                    }
                }
                Phase::Running { child, .. } => tokio::select! {
                    status = child.wait() => Event::Exited(status.ok()),
                    command = self.commands.recv() => Event::Command(command),
                },
                Phase::Waiting { until } => tokio::select! {
                    () = tokio::time::sleep_until(*until) => Event::DelayOver,
                    command = self.commands.recv() => Event::Command(command),
                },
            };
            phase = match self.step(phase, event).await {
                Some(next) => next,
                None => return,
            };
        }
    }

    /// The next phase, or `None` when supervision ends.
    async fn step(&mut self, phase: Phase, event: Event) -> Option<Phase> {
        match (phase, event) {
            (Phase::Starting { child, started }, Event::Ready) => {
                self.supervisor.update(self.service, self.replica, |slot| {
                    slot.state = ReplicaState::Ready;
                });
                if let Some(first) = self.first_start.take() {
                    let _ = first.send(Ok(()));
                } else if let Some(restart) = self.restarting.take() {
                    eprintln!(
                        "launcher: {} is restarted (pid {})",
                        self.label,
                        pid(&child)
                    );
                    let _ = restart.done.send(Ok(RestartedReplica {
                        stopped: restart.stopped,
                        new_pid: child.id(),
                        took_ms: restart.since.elapsed().as_secs_f64() * 1000.0,
                    }));
                } else {
                    eprintln!("launcher: {} is back (pid {})", self.label, pid(&child));
                }
                Some(Phase::Running { child, started })
            }
            (Phase::Starting { mut child, started }, Event::NotReadyInTime) => {
                let _ = child.kill().await;
                let status = child.wait().await.ok();
                let why = format!(
                    "{} was not ready at {}/readyz within {:?}",
                    self.label,
                    self.url(),
                    self.supervisor.ready_timeout
                );
                self.failed(why, status, started)
            }
            (Phase::Starting { started, .. }, Event::Exited(status)) => {
                let why = format!(
                    "{} exited while starting ({})",
                    self.label,
                    describe(status)
                );
                self.failed(why, status, started)
            }
            (Phase::Running { started, .. }, Event::Exited(status)) => {
                Some(self.crashed(status, started, None))
            }
            (Phase::Waiting { .. }, Event::DelayOver) => Some(self.respawn()),
            (phase, Event::Command(None)) => {
                // The launcher is gone: dropping the child kills it.
                drop(phase);
                None
            }
            (phase, Event::Command(Some(Command::Retire(retire)))) => {
                self.retire(phase, retire).await;
                None
            }
            (phase, Event::Command(Some(Command::Restart { done }))) => {
                Some(self.restart(phase, done).await)
            }
            (phase, Event::Command(Some(Command::Crash { done }))) => match phase {
                Phase::Starting { mut child, started } | Phase::Running { mut child, started } => {
                    let _ = child.start_kill();
                    let status = child.wait().await.ok();
                    if self.first_start.is_some() {
                        let why = format!("{} was killed while starting", self.label);
                        let _ = done.send(());
                        return self.failed(why, status, started);
                    }
                    Some(self.crashed(status, started, Some(done)))
                }
                waiting @ Phase::Waiting { .. } => {
                    let _ = done.send(());
                    Some(waiting)
                }
            },
            // Events of one phase never arrive in another.
            (phase, _) => Some(phase),
        }
    }

    fn url(&self) -> String {
        let port = self
            .supervisor
            .port_of(self.service, self.replica)
            .unwrap_or_default();
        self.supervisor.url_of(port)
    }

    /// Start failed: on the first start, give up and report why; later,
    /// it is one more crash.
    fn failed(
        &mut self,
        why: String,
        status: Option<ExitStatus>,
        started: Instant,
    ) -> Option<Phase> {
        match self.first_start.take() {
            Some(first) => {
                self.supervisor.remove(self.service, self.replica);
                let _ = first.send(Err(anyhow::anyhow!(why)));
                None
            }
            None => {
                eprintln!("launcher: {why}");
                if let Some(restart) = self.restarting.take() {
                    let _ = restart.done.send(Err(why));
                }
                Some(self.crashed(status, started, None))
            }
        }
    }

    /// Died without being asked to: out of the targets, counted, and
    /// restarted after the backoff delay.
    fn crashed(
        &mut self,
        status: Option<ExitStatus>,
        started: Instant,
        done: Option<oneshot::Sender<()>>,
    ) -> Phase {
        let delay = self.backoff.delay(started.elapsed());
        if let Some(restart) = self.restarting.take() {
            let _ = restart.done.send(Err(format!(
                "{} exited while restarting ({})",
                self.label,
                describe(status)
            )));
        }
        self.supervisor
            .record_crash(self.service, self.replica, status);
        eprintln!(
            "launcher: {} exited ({}); restarting it in {delay:?}",
            self.label,
            describe(status)
        );
        if let Some(done) = done {
            let _ = done.send(());
        }
        Phase::Waiting {
            until: Instant::now() + delay,
        }
    }

    /// A new process for the replica, on its old port if it is free.
    fn respawn(&mut self) -> Phase {
        let spawned = self
            .supervisor
            .restart_port(self.service, self.replica)
            .map_err(anyhow::Error::from)
            .and_then(|port| {
                let child = self
                    .supervisor
                    .spawn_child(self.service, self.replica, port)?;
                Ok((port, child))
            });
        match spawned {
            Ok((port, child)) => {
                let pid = child.id();
                self.supervisor.update(self.service, self.replica, |slot| {
                    slot.port = port;
                    slot.pid = pid;
                    slot.state = ReplicaState::Starting;
                });
                Phase::Starting {
                    child,
                    started: Instant::now(),
                }
            }
            Err(error) => {
                let delay = self.backoff.delay(Duration::ZERO);
                eprintln!(
                    "launcher: could not restart {}: {error:#}; trying again in {delay:?}",
                    self.label
                );
                Phase::Waiting {
                    until: Instant::now() + delay,
                }
            }
        }
    }

    /// One step of a rolling restart: out of the targets, drained, stopped
    /// gracefully, and spawned again on its port. The caller hears back
    /// once the new process is ready ([`Phase::Starting`] → Ready).
    async fn restart(
        &mut self,
        phase: Phase,
        done: oneshot::Sender<Result<RestartedReplica, String>>,
    ) -> Phase {
        if self.first_start.is_some() || self.restarting.is_some() {
            let _ = done.send(Err(format!(
                "{} is still starting; restart it once it is ready",
                self.label
            )));
            return phase;
        }
        let since = Instant::now();
        let (old_pid, status) = match phase {
            Phase::Starting { mut child, .. } | Phase::Running { mut child, .. } => {
                let old_pid = child.id();
                // Out of the targets first, so dependents stop choosing
                // it while it still serves.
                self.supervisor.update(self.service, self.replica, |slot| {
                    slot.state = ReplicaState::Stopping;
                });
                eprintln!("launcher: {} draining for a restart", self.label);
                self.supervisor.drain(&self.label, &self.url()).await;
                tokio::time::sleep(self.supervisor.drain_period).await;
                let status = terminate(&self.label, &mut child, self.supervisor.stop_grace).await;
                (old_pid, status)
            }
            // Down already, waiting out a restart delay: start it now.
            Phase::Waiting { .. } => (None, None),
        };
        self.restarting = Some(PendingRestart {
            done,
            stopped: StoppedReplica::new(self.replica, old_pid, status),
            since,
        });
        self.backoff.reset();
        self.respawn()
    }

    /// Stops the replica for good. The caller has already taken it out of
    /// the targets, so nobody picks it while it drains.
    async fn retire(&mut self, phase: Phase, retire: Retire) {
        let status = match phase {
            Phase::Starting { mut child, .. } | Phase::Running { mut child, .. } => {
                match retire.signal {
                    Signal::Terminate(grace) => terminate(&self.label, &mut child, grace).await,
                    Signal::Kill => {
                        let _ = child.start_kill();
                        child.wait().await.ok()
                    }
                }
            }
            Phase::Waiting { .. } => None,
        };
        if let Some(first) = self.first_start.take() {
            let _ = first.send(Err(anyhow::anyhow!(
                "{} was stopped while starting",
                self.label
            )));
        }
        self.supervisor.remove(self.service, self.replica);
        let _ = retire.done.send(status);
    }
}

fn pid(child: &Child) -> String {
    child.id().map_or("?".into(), |p| p.to_string())
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or("unknown status".into(), |s| s.to_string())
}

/// SIGTERM, wait up to `grace`, then SIGKILL.
async fn terminate(label: &str, child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            eprintln!("launcher: {label} did not stop within {grace:?}; killing it");
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    }
}

/// Polls `/readyz` until it answers 200, the process exits, or `deadline`
/// passes.
async fn ready_or_exit(
    http: &reqwest::Client,
    url: &str,
    deadline: Instant,
    child: &mut Child,
) -> Event {
    let readyz = format!("{url}/readyz");
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Event::Exited(Some(status)),
            Ok(None) => {}
            Err(_) => return Event::Exited(None),
        }
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(2));
        if let Ok(res) = http.get(&readyz).timeout(budget).send().await
            && res.status().is_success()
        {
            return Event::Ready;
        }
        if Instant::now() >= deadline {
            return Event::NotReadyInTime;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;
    use crate::RestartPolicy;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn delay_doubles_while_crashing_soon_after_start_up_to_the_cap() {
        let mut backoff = Backoff::new(RestartPolicy::default());
        let delays: Vec<u64> = (0..7).map(|_| backoff.delay(2 * S).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn a_replica_that_stayed_up_restarts_after_the_initial_delay() {
        let mut backoff = Backoff::new(RestartPolicy::default());
        assert_eq!(backoff.delay(S), S);
        assert_eq!(backoff.delay(S), 2 * S);
        assert_eq!(backoff.delay(S), 4 * S);
        // Up for 10 s: a fresh crash.
        assert_eq!(backoff.delay(10 * S), S);
        assert_eq!(backoff.delay(S), 2 * S);
    }

    #[test]
    fn a_restart_asked_for_forgets_earlier_crashes() {
        let mut backoff = Backoff::new(RestartPolicy::default());
        assert_eq!(backoff.delay(2 * S), S);
        assert_eq!(backoff.delay(2 * S), 2 * S);
        backoff.reset();
        assert_eq!(
            backoff.delay(2 * S),
            S,
            "a crash right after a rollout waits 1 s, not 4 s"
        );
    }

    #[test]
    fn the_first_crash_waits_the_initial_delay_even_right_after_start() {
        let policy = RestartPolicy {
            initial_delay: Duration::from_millis(250),
            ..RestartPolicy::default()
        };
        assert_eq!(
            Backoff::new(policy).delay(Duration::ZERO),
            policy.initial_delay
        );
    }
}
