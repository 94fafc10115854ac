//! The supervisor: what every replica's task (`replica`) and the control
//! API share. It holds each service's replicas and their state, starts
//! their processes, publishes the ready ones (targets file, gauges), and
//! carries out scaling, crashes and rolling restarts.

mod process;
mod replica;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::ExitStatus,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

use self::replica::Retire;
pub(super) use self::replica::Signal;
use super::{
    broker,
    metrics::LauncherMetrics,
    options::{Discovery, LaunchOptions, Logs, RestartPolicy, check_overrides},
    ports::{free_ports, port_is_free},
    status::{
        ControlError, Exit, ReplicaInfo, ReplicaState, Restarted, Scaled, ServiceStatus,
        StoppedReplica,
    },
    targets::{self, TargetGroup},
};
use crate::system::{SERVICES, check_replicas, spec};

/// What every replica's supervisor and the control API share.
pub(crate) struct Supervisor {
    exe: PathBuf,
    host: Ipv4Addr,
    auto_ports: bool,
    logs: Logs,
    env: BTreeMap<String, String>,
    args: BTreeMap<&'static str, Vec<String>>,
    discovery: Discovery,
    pub(super) targets_file: Option<PathBuf>,
    pub(super) restart: RestartPolicy,
    ready_timeout: Duration,
    stop_grace: Duration,
    drain_period: Duration,
    admin_token: Option<String>,
    /// Every replica's `JWT_SECRET` (`None` in unit tests only).
    pub(super) jwt_secret: Option<String>,
    /// `NATS_USER` and `NATS_PASSWORD` per service, on a bus the system
    /// runs itself.
    nats_credentials: BTreeMap<&'static str, (String, String)>,
    /// `DATABASE_URL` per service; replicas share their service's.
    pub(super) databases: BTreeMap<&'static str, String>,
    http: reqwest::Client,
    pub(crate) metrics: LauncherMetrics,
    state: std::sync::Mutex<State>,
    /// One scale at a time per service: two concurrent scales would pick
    /// the same new indices.
    scaling: BTreeMap<&'static str, tokio::sync::Mutex<()>>,
    exits: mpsc::UnboundedSender<Exit>,
    pub(super) stopping: AtomicBool,
    /// The proxy the services reach NATS through (`None` in unit tests).
    pub(crate) broker: Option<broker::BrokerProxy>,
}

/// The replicas of every service. Behind a plain mutex, never held across
/// an await: every change is small and is published (targets file,
/// gauges) before the lock is released, so the file never lags the state.
pub(super) struct State {
    pub(super) services: BTreeMap<&'static str, ServiceState>,
    /// The control API's address, listed in the targets as job `launcher`.
    pub(super) control: Option<SocketAddr>,
    /// What the targets file holds, to rewrite it only when it changes.
    last_written: Option<Vec<u8>>,
}

pub(super) struct ServiceState {
    desired: usize,
    pub(super) restarts: u64,
    /// Settings given since start, on top of the launcher's environment.
    overrides: BTreeMap<String, String>,
    replicas: BTreeMap<usize, Slot>,
    /// Replica 0's first address, for [`System::url`] once nothing runs.
    home_url: Option<String>,
}

impl ServiceState {
    fn new(desired: usize) -> Self {
        Self {
            desired,
            restarts: 0,
            overrides: BTreeMap::new(),
            replicas: BTreeMap::new(),
            home_url: None,
        }
    }
}

/// One replica: its address and its supervisor.
struct Slot {
    port: u16,
    pid: Option<u32>,
    restarts: u64,
    state: ReplicaState,
    commands: mpsc::UnboundedSender<replica::Command>,
    task: Option<AbortHandle>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("exe", &self.exe)
            .field("targets_file", &self.targets_file)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// The shared state for `options`, no replica started yet. The
    /// receiver gets the replicas' unexpected exits.
    pub(super) fn new(
        options: &LaunchOptions,
        exe: PathBuf,
        databases: BTreeMap<&'static str, String>,
        targets_file: Option<PathBuf>,
        control: Option<SocketAddr>,
        broker: Option<broker::BrokerProxy>,
        nats_credentials: BTreeMap<&'static str, (String, String)>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Exit>) {
        let (exits, receiver) = mpsc::unbounded_channel();
        let services = SERVICES
            .iter()
            .map(|s| {
                let desired = options.replicas.get(s.name).copied().unwrap_or(1);
                (s.name, ServiceState::new(desired))
            })
            .collect();
        let supervisor = Self {
            exe,
            host: options.host,
            auto_ports: options.auto_ports,
            logs: options.logs.clone(),
            env: options.env.clone(),
            args: options.args.clone(),
            discovery: options.discovery,
            targets_file,
            restart: options.restart,
            ready_timeout: options.ready_timeout,
            stop_grace: options.stop_grace,
            drain_period: options.drain_period,
            admin_token: options.admin_token.clone(),
            jwt_secret: options.jwt_secret.clone(),
            nats_credentials,
            databases,
            http: reqwest::Client::new(),
            metrics: LauncherMetrics::new(SERVICES.iter().map(|s| s.name)),
            state: std::sync::Mutex::new(State {
                services,
                control,
                last_written: None,
            }),
            scaling: SERVICES
                .iter()
                .map(|s| (s.name, tokio::sync::Mutex::new(())))
                .collect(),
            exits,
            stopping: AtomicBool::new(false),
            broker,
        };
        // The gauges (desired counts) and the targets file (the launcher
        // itself) from the start: Prometheus can scrape the launcher
        // before the services are up.
        supervisor.publish_now();
        (Arc::new(supervisor), receiver)
    }

    /// A supervisor with nothing running, for the control API's tests.
    #[cfg(test)]
    pub(crate) fn idle() -> Arc<Self> {
        let options = LaunchOptions::local("unused");
        let (supervisor, _) = Self::new(
            &options,
            "unused".into(),
            BTreeMap::new(),
            None,
            None,
            None,
            BTreeMap::new(),
        );
        supervisor
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was
        // between two small updates: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn url_of(&self, port: u16) -> String {
        format!("http://{}:{port}", self.host)
    }

    pub(super) fn port_of(&self, service: &str, replica: usize) -> Option<u16> {
        self.lock()
            .services
            .get(service)?
            .replicas
            .get(&replica)
            .map(|s| s.port)
    }

    pub(crate) fn url(&self, service: &str) -> Option<String> {
        let state = self.lock();
        let service = state.services.get(service)?;
        let ready = |s: &&Slot| s.state == ReplicaState::Ready;
        service
            .replicas
            .get(&0)
            .filter(ready)
            .or_else(|| service.replicas.values().find(ready))
            .or_else(|| service.replicas.values().next())
            .map(|s| self.url_of(s.port))
            .or_else(|| service.home_url.clone())
    }

    pub(crate) fn replica_infos(&self, service: &str) -> Vec<ReplicaInfo> {
        self.status(service).map(|s| s.replicas).unwrap_or_default()
    }

    pub(crate) fn status(&self, service: &str) -> Option<ServiceStatus> {
        let state = self.lock();
        let (name, s) = state.services.get_key_value(service)?;
        Some(ServiceStatus {
            name,
            desired: s.desired,
            restarts: s.restarts,
            env: s.overrides.clone(),
            replicas: s
                .replicas
                .iter()
                .map(|(&replica, slot)| ReplicaInfo {
                    replica,
                    url: self.url_of(slot.port),
                    pid: slot.pid,
                    restarts: slot.restarts,
                    state: slot.state,
                })
                .collect(),
        })
    }

    pub(crate) fn statuses(&self) -> Vec<ServiceStatus> {
        SERVICES
            .iter()
            .filter_map(|s| self.status(s.name))
            .collect()
    }

    /// Changes one replica's slot (if it still exists) and publishes.
    fn update(&self, service: &str, replica: usize, change: impl FnOnce(&mut Slot)) {
        let mut state = self.lock();
        if let Some(slot) = state
            .services
            .get_mut(service)
            .and_then(|s| s.replicas.get_mut(&replica))
        {
            change(slot);
        }
        self.publish(&mut state);
    }

    fn remove(&self, service: &str, replica: usize) {
        let mut state = self.lock();
        if let Some(s) = state.services.get_mut(service) {
            s.replicas.remove(&replica);
        }
        self.publish(&mut state);
    }

    pub(super) fn publish_now(&self) {
        let mut state = self.lock();
        self.publish(&mut state);
    }

    /// Brings the targets file and the gauges in line with `state`.
    fn publish(&self, state: &mut State) {
        let mut groups = Vec::new();
        for spec in &SERVICES {
            let Some(service) = state.services.get(spec.name) else {
                continue;
            };
            let ready: Vec<_> = service
                .replicas
                .iter()
                .filter(|(_, slot)| slot.state == ReplicaState::Ready)
                .collect();
            self.metrics
                .set_replicas(spec.name, ready.len(), service.desired);
            groups.extend(ready.into_iter().map(|(&replica, slot)| {
                TargetGroup::replica(spec.name, replica, &format!("{}:{}", self.host, slot.port))
            }));
        }
        if let Some(addr) = state.control {
            groups.push(TargetGroup::launcher(&addr.to_string()));
        }
        let Some(path) = &self.targets_file else {
            return;
        };
        let bytes = targets::render(&groups);
        if state.last_written.as_ref() == Some(&bytes) {
            return;
        }
        match targets::write_atomically(path, &bytes) {
            Ok(()) => state.last_written = Some(bytes),
            Err(error) => eprintln!(
                "launcher: could not write the targets file {}: {error}",
                path.display()
            ),
        }
    }

    /// The port a restarted replica gets: its old one if still free, so
    /// its Prometheus series and dependents' URLs stay put.
    fn restart_port(&self, service: &str, replica: usize) -> std::io::Result<u16> {
        let old = self.port_of(service, replica);
        if let Some(port) = old
            && port_is_free(self.host, port)
        {
            return Ok(port);
        }
        let taken = self.taken_ports();
        Ok(free_ports(self.host, 1, &taken)?[0])
    }

    fn taken_ports(&self) -> Vec<u16> {
        self.lock()
            .services
            .values()
            .flat_map(|s| s.replicas.values().map(|r| r.port))
            .collect()
    }

    /// Starts the replicas `indices` of `service` and waits until each is
    /// ready (or has failed to start: the first error is returned; those
    /// that failed are gone, the others keep running).
    pub(super) async fn start_replicas(
        self: &Arc<Self>,
        service: &'static str,
        indices: &[usize],
    ) -> anyhow::Result<()> {
        let spec = spec(service).context("unknown service")?;
        let fixed = indices
            .iter()
            .filter(|&&i| i == 0 && !self.auto_ports)
            .count();
        let mut free =
            free_ports(self.host, indices.len() - fixed, &self.taken_ports())?.into_iter();
        let mut waiting = Vec::new();
        let mut first_error = None;
        for &replica in indices {
            let port = if replica == 0 && !self.auto_ports {
                spec.default_port
            } else {
                free.next().context("a free port per replica")?
            };
            let child = match self.spawn_child(service, replica, port) {
                Ok(child) => child,
                Err(error) => {
                    first_error.get_or_insert(error);
                    continue;
                }
            };
            let (commands, receiver) = mpsc::unbounded_channel();
            let (ready_tx, ready_rx) = oneshot::channel();
            {
                let mut state = self.lock();
                let Some(s) = state.services.get_mut(service) else {
                    continue;
                };
                if replica == 0 {
                    s.home_url.get_or_insert_with(|| self.url_of(port));
                }
                s.replicas.insert(
                    replica,
                    Slot {
                        port,
                        pid: child.id(),
                        restarts: 0,
                        state: ReplicaState::Starting,
                        commands,
                        task: None,
                    },
                );
            }
            let task = tokio::spawn(replica::supervise(
                self.clone(),
                service,
                replica,
                child,
                receiver,
                ready_tx,
            ));
            self.update(service, replica, |slot| {
                slot.task = Some(task.abort_handle());
            });
            waiting.push(ready_rx);
        }
        for ready in waiting {
            let result = ready.await.unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "{service}'s supervisor ended while starting"
                ))
            });
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Takes `indices` out of the targets at once, then stops each (in
    /// parallel) for good; returns how each exited.
    async fn retire(
        &self,
        service: &str,
        indices: &[usize],
        signal: Signal,
    ) -> Vec<(usize, Option<u32>, Option<ExitStatus>)> {
        let mut waiting = Vec::new();
        {
            let mut state = self.lock();
            if let Some(s) = state.services.get_mut(service) {
                for replica in indices {
                    let Some(slot) = s.replicas.get_mut(replica) else {
                        continue;
                    };
                    slot.state = ReplicaState::Stopping;
                    let (done, stopped) = oneshot::channel();
                    if slot
                        .commands
                        .send(replica::Command::Retire(Retire { signal, done }))
                        .is_ok()
                    {
                        waiting.push((*replica, slot.pid, stopped));
                    } else {
                        // Its supervisor is gone already.
                        s.replicas.remove(replica);
                    }
                }
            }
            // Out of the targets before any signal is sent.
            self.publish(&mut state);
        }
        let mut stopped = Vec::new();
        for (replica, pid, done) in waiting {
            stopped.push((replica, pid, done.await.ok().flatten()));
        }
        stopped
    }

    /// Stops every replica of `service` for good; its desired count
    /// becomes 0. Returns the exits by replica index.
    pub(super) async fn retire_service(
        &self,
        service: &str,
        signal: Signal,
    ) -> anyhow::Result<Vec<Option<ExitStatus>>> {
        let _scaling = match self.scaling.get(service) {
            Some(lock) => lock.lock().await,
            None => anyhow::bail!("no service named {service:?}"),
        };
        let indices: Vec<usize> = {
            let mut state = self.lock();
            let s = state
                .services
                .get_mut(service)
                .with_context(|| format!("no service named {service:?}"))?;
            s.desired = 0;
            s.replicas.keys().copied().collect()
        };
        anyhow::ensure!(!indices.is_empty(), "{service} is not running");
        Ok(self
            .retire(service, &indices, signal)
            .await
            .into_iter()
            .map(|(_, _, status)| status)
            .collect())
    }

    pub(crate) async fn scale(
        self: &Arc<Self>,
        service: &str,
        replicas: usize,
    ) -> Result<Scaled, ControlError> {
        let spec = spec(service).ok_or_else(|| ControlError::UnknownService(service.into()))?;
        check_replicas(replicas).map_err(ControlError::InvalidReplicas)?;
        let _scaling = self.scaling[spec.name].lock().await;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ControlError::Stopping);
        }
        let current: Vec<usize> = {
            let mut state = self.lock();
            let s = state
                .services
                .get_mut(spec.name)
                .ok_or_else(|| ControlError::UnknownService(service.into()))?;
            s.desired = replicas;
            let current = s.replicas.keys().copied().collect();
            self.publish(&mut state);
            current
        };
        let mut stopped = Vec::new();
        if replicas > current.len() {
            // The lowest free indices: a service scaled 4 → 1 → 3 runs
            // replicas 0, 1, 2 again, as people expect.
            let new: Vec<usize> = (0..)
                .filter(|i| !current.contains(i))
                .take(replicas - current.len())
                .collect();
            if let Err(error) = self.start_replicas(spec.name, &new).await {
                let mut state = self.lock();
                if let Some(s) = state.services.get_mut(spec.name) {
                    s.desired = s.replicas.len();
                }
                self.publish(&mut state);
                return Err(ControlError::StartFailed(error));
            }
        } else if replicas < current.len() {
            let surplus = &current[replicas..];
            stopped = self
                .retire(spec.name, surplus, Signal::Terminate(self.stop_grace))
                .await
                .into_iter()
                .map(|(replica, pid, status)| StoppedReplica::new(replica, pid, status))
                .collect();
        }
        Ok(Scaled {
            service: self
                .status(spec.name)
                .ok_or_else(|| ControlError::UnknownService(service.into()))?,
            stopped,
        })
    }

    pub(crate) async fn kill_replica(
        &self,
        service: &str,
        replica: usize,
    ) -> Result<(), ControlError> {
        let spec = spec(service).ok_or_else(|| ControlError::UnknownService(service.into()))?;
        let done = {
            let state = self.lock();
            let slot = state
                .services
                .get(spec.name)
                .and_then(|s| s.replicas.get(&replica))
                .ok_or(ControlError::UnknownReplica {
                    service: spec.name,
                    replica,
                })?;
            if slot.pid.is_none() || slot.state == ReplicaState::Stopping {
                return Err(ControlError::NotRunning {
                    service: spec.name,
                    replica,
                    state: slot.state,
                });
            }
            let (done, killed) = oneshot::channel();
            slot.commands
                .send(replica::Command::Crash { done })
                .map_err(|_| ControlError::NotRunning {
                    service: spec.name,
                    replica,
                    state: slot.state,
                })?;
            killed
        };
        let _ = done.await;
        Ok(())
    }

    pub(crate) async fn restart(&self, service: &str) -> Result<Restarted, ControlError> {
        let spec = spec(service).ok_or_else(|| ControlError::UnknownService(service.into()))?;
        // A scale in the middle would retire or add replicas under the
        // rollout's feet.
        let _scaling = self.scaling[spec.name].lock().await;
        let indices: Vec<usize> = {
            let state = self.lock();
            let s = state
                .services
                .get(spec.name)
                .ok_or_else(|| ControlError::UnknownService(service.into()))?;
            s.replicas.keys().copied().collect()
        };
        let mut restarted = Vec::new();
        for replica in indices {
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ControlError::Stopping);
            }
            let done = {
                let state = self.lock();
                let Some(slot) = state
                    .services
                    .get(spec.name)
                    .and_then(|s| s.replicas.get(&replica))
                else {
                    // Gone since (the launcher is stopping it).
                    continue;
                };
                let (done, restarted) = oneshot::channel();
                if slot
                    .commands
                    .send(replica::Command::Restart { done })
                    .is_err()
                {
                    continue;
                }
                restarted
            };
            let outcome = done.await.unwrap_or_else(|_| {
                Err(format!(
                    "{} was stopped during its restart",
                    replica_label(spec.name, replica)
                ))
            });
            restarted.push(outcome.map_err(ControlError::RestartFailed)?);
        }
        Ok(Restarted {
            service: self
                .status(spec.name)
                .ok_or_else(|| ControlError::UnknownService(service.into()))?,
            restarted,
        })
    }

    /// Gives `service` these settings on top of the launcher's own
    /// (replacing any given before; empty: back to how it started) and
    /// rolls them out with a rolling restart, as an orchestrator does
    /// when a Deployment's environment changes. Unchanged settings
    /// restart nothing.
    pub(crate) async fn configure(
        &self,
        service: &str,
        env: BTreeMap<String, String>,
    ) -> Result<Restarted, ControlError> {
        let spec = spec(service).ok_or_else(|| ControlError::UnknownService(service.into()))?;
        check_overrides(&env)?;
        let changed = {
            let mut state = self.lock();
            let s = state
                .services
                .get_mut(spec.name)
                .ok_or_else(|| ControlError::UnknownService(service.into()))?;
            let changed = s.overrides != env;
            s.overrides = env;
            changed
        };
        if !changed {
            return Ok(Restarted {
                service: self
                    .status(spec.name)
                    .ok_or_else(|| ControlError::UnknownService(service.into()))?,
                restarted: Vec::new(),
            });
        }
        self.restart(spec.name).await
    }

    /// `POST /admin/drain` on a replica about to be restarted, so its
    /// `/readyz` fails while it finishes what it has. Best effort: the
    /// replica is out of the targets already, which is what the mesh
    /// follows.
    async fn drain(&self, label: &str, url: &str) {
        let Some(token) = &self.admin_token else {
            return;
        };
        let drained = self
            .http
            .post(format!("{url}/admin/drain"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        match drained {
            Ok(res) if res.status().is_success() => {}
            Ok(res) => eprintln!("launcher: {label} refused to drain: {}", res.status()),
            Err(error) => eprintln!("launcher: could not drain {label}: {error}"),
        }
    }

    /// Counts a restart of `replica` and takes it out of the targets.
    fn record_crash(&self, service: &'static str, replica: usize, status: Option<ExitStatus>) {
        {
            let mut state = self.lock();
            if let Some(s) = state.services.get_mut(service) {
                s.restarts += 1;
                if let Some(slot) = s.replicas.get_mut(&replica) {
                    slot.restarts += 1;
                    slot.pid = None;
                    slot.state = ReplicaState::Restarting;
                }
            }
            self.metrics.restarted(service);
            self.publish(&mut state);
        }
        if !self.stopping.load(Ordering::SeqCst) {
            let _ = self.exits.send(Exit {
                service,
                replica,
                status,
            });
        }
    }

    pub(super) fn abort_all(&self) {
        let state = self.lock();
        for slot in state.services.values().flat_map(|s| s.replicas.values()) {
            if let Some(task) = &slot.task {
                task.abort();
            }
        }
    }
}

/// What a replica is called in logs: replica 0 keeps the service's name,
/// so a one-replica system reads as it always did; others get `-N`.
fn replica_label(service: &str, replica: usize) -> String {
    if replica == 0 {
        service.to_owned()
    } else {
        format!("{service}-{replica}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[tokio::test]
    async fn a_restarted_replica_keeps_its_port_unless_something_took_it() {
        let supervisor = Supervisor::idle();
        let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = squatter.local_addr().unwrap().port();
        let (commands, _receiver) = mpsc::unbounded_channel();
        supervisor
            .lock()
            .services
            .get_mut("payments")
            .unwrap()
            .replicas
            .insert(
                1,
                Slot {
                    port,
                    pid: None,
                    restarts: 1,
                    state: ReplicaState::Restarting,
                    commands,
                    task: None,
                },
            );
        let moved = supervisor.restart_port("payments", 1).unwrap();
        assert_ne!(moved, port, "the old port is taken: a free one");
        drop(squatter);
        assert_eq!(supervisor.restart_port("payments", 1).unwrap(), port);
    }
}
