//! The supervisor's registry: every service's replicas, where each runs
//! and in which state, and what is published from it (the targets file,
//! the gauges). The replicas' tasks (`replica.rs`) and the operations on
//! the whole system (`supervisor.rs`) both work through it, so neither
//! imports the other.

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

use tokio::{sync::mpsc, task::AbortHandle};

use super::command::Command;
use crate::services::SERVICES;
use crate::{
    broker,
    metrics::LauncherMetrics,
    options::{Discovery, LaunchOptions, Logs, RestartPolicy},
    ports::{free_ports, port_is_free},
    status::{Exit, ReplicaInfo, ReplicaState, ServiceStatus},
    targets::{self, TargetGroup},
};

/// What every replica's supervisor and the control API share.
pub(crate) struct Supervisor {
    pub(crate) exe: PathBuf,
    pub(crate) host: Ipv4Addr,
    pub(crate) auto_ports: bool,
    pub(crate) logs: Logs,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) args: BTreeMap<&'static str, Vec<String>>,
    pub(crate) discovery: Discovery,
    pub(crate) targets_file: Option<PathBuf>,
    pub(crate) restart: RestartPolicy,
    pub(crate) ready_timeout: Duration,
    pub(crate) stop_grace: Duration,
    pub(crate) drain_period: Duration,
    pub(crate) admin_token: Option<String>,
    /// Every replica's `JWT_SECRET` (`None` in unit tests only).
    pub(crate) jwt_secret: Option<String>,
    /// `NATS_USER` and `NATS_PASSWORD` per service, on a bus the system
    /// runs itself.
    pub(crate) nats_credentials: BTreeMap<&'static str, (String, String)>,
    /// `DATABASE_URL` per service; replicas share their service's.
    pub(crate) databases: BTreeMap<&'static str, String>,
    pub(crate) http: reqwest::Client,
    pub(crate) metrics: LauncherMetrics,
    pub(crate) state: std::sync::Mutex<State>,
    /// One scale at a time per service: two concurrent scales would pick
    /// the same new indices.
    pub(crate) scaling: BTreeMap<&'static str, tokio::sync::Mutex<()>>,
    pub(crate) exits: mpsc::UnboundedSender<Exit>,
    pub(crate) stopping: AtomicBool,
    /// The proxy the services reach NATS through (`None` in unit tests).
    pub(crate) broker: Option<broker::BrokerProxy>,
}

/// The replicas of every service. Behind a plain mutex, never held across
/// an await: every change is small and is published (targets file,
/// gauges) before the lock is released, so the file never lags the state.
pub(crate) struct State {
    pub(crate) services: BTreeMap<&'static str, ServiceState>,
    /// The control API's address, listed in the targets as job `launcher`.
    pub(crate) control: Option<SocketAddr>,
    /// What the targets file holds, to rewrite it only when it changes.
    pub(crate) last_written: Option<Vec<u8>>,
}

pub(crate) struct ServiceState {
    pub(crate) desired: usize,
    pub(crate) restarts: u64,
    /// Settings given since start, on top of the launcher's environment.
    pub(crate) overrides: BTreeMap<String, String>,
    pub(crate) replicas: BTreeMap<usize, Slot>,
    /// Replica 0's first address, for [`System::url`] once nothing runs.
    pub(crate) home_url: Option<String>,
}

impl ServiceState {
    pub(crate) fn new(desired: usize) -> Self {
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
pub(crate) struct Slot {
    pub(crate) port: u16,
    pub(crate) pid: Option<u32>,
    pub(crate) restarts: u64,
    pub(crate) state: ReplicaState,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) task: Option<AbortHandle>,
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
    pub(crate) fn new(
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

    /// A supervisor with nothing running, for the control API's tests
    /// and those of its clients.
    #[cfg(any(test, feature = "testing"))]
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

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was
        // between two small updates: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn url_of(&self, port: u16) -> String {
        format!("http://{}:{port}", self.host)
    }

    pub(crate) fn port_of(&self, service: &str, replica: usize) -> Option<u16> {
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
    pub(crate) fn update(&self, service: &str, replica: usize, change: impl FnOnce(&mut Slot)) {
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

    pub(crate) fn remove(&self, service: &str, replica: usize) {
        let mut state = self.lock();
        if let Some(s) = state.services.get_mut(service) {
            s.replicas.remove(&replica);
        }
        self.publish(&mut state);
    }

    pub(crate) fn publish_now(&self) {
        let mut state = self.lock();
        self.publish(&mut state);
    }

    /// Brings the targets file and the gauges in line with `state`.
    pub(crate) fn publish(&self, state: &mut State) {
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
    pub(crate) fn restart_port(&self, service: &str, replica: usize) -> std::io::Result<u16> {
        let old = self.port_of(service, replica);
        if let Some(port) = old
            && port_is_free(self.host, port)
        {
            return Ok(port);
        }
        let taken = self.taken_ports();
        Ok(free_ports(self.host, 1, &taken)?[0])
    }

    pub(crate) fn taken_ports(&self) -> Vec<u16> {
        self.lock()
            .services
            .values()
            .flat_map(|s| s.replicas.values().map(|r| r.port))
            .collect()
    }
}

impl Supervisor {
    /// `POST /admin/drain` on a replica about to be restarted, so its
    /// `/readyz` fails while it finishes what it has. Best effort: the
    /// replica is out of the targets already, which is what the mesh
    /// follows.
    pub(crate) async fn drain(&self, label: &str, url: &str) {
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
    pub(crate) fn record_crash(
        &self,
        service: &'static str,
        replica: usize,
        status: Option<ExitStatus>,
    ) {
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
}

/// What a replica is called in logs: replica 0 keeps the service's name,
/// so a one-replica system reads as it always did; others get `-N`.
pub(crate) fn replica_label(service: &str, replica: usize) -> String {
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
    pub(crate) async fn a_restarted_replica_keeps_its_port_unless_something_took_it() {
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
