//! The supervisor: what the control API and [`System`](crate::System)
//! ask of the replicas. It starts them (each with its own task,
//! `replica.rs`), and carries out scaling, crashes, rolling restarts and
//! new settings, through the registry (`registry.rs`) that the replicas'
//! tasks update too.

mod command;
mod process;
mod registry;
mod replica;

use std::{
    collections::BTreeMap,
    process::ExitStatus,
    sync::{Arc, atomic::Ordering},
};

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot};

pub(crate) use self::command::Signal;
pub(crate) use self::registry::Supervisor;
use self::{
    command::{Command, Retire},
    registry::{Slot, replica_label},
};
use crate::{
    options::check_overrides,
    ports::free_ports,
    services::{check_replicas, spec},
    status::{ControlError, ReplicaState, Restarted, Scaled, StoppedReplica},
};

impl Supervisor {
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
                        .send(Command::Retire(Retire { signal, done }))
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
                .send(Command::Crash { done })
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
                if slot.commands.send(Command::Restart { done }).is_err() {
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

    pub(super) fn abort_all(&self) {
        let state = self.lock();
        for slot in state.services.values().flat_map(|s| s.replicas.values()) {
            if let Some(task) = &slot.task {
                task.abort();
            }
        }
    }
}
