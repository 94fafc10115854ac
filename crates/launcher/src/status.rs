//! What the launcher reports about the services and their replicas (to
//! [`System`](super::System)'s callers and over the control API), and why
//! it refuses or fails an operation.

use std::{collections::BTreeMap, process::ExitStatus};

use serde::Serialize;

/// Replica 0 of a service as it was started.
#[derive(Debug, Clone, Serialize)]
pub struct RunningService {
    pub name: &'static str,
    pub url: String,
    pub port: u16,
    pub pid: u32,
    /// Where its data lives, for people (`SQLite file data/users.db`).
    pub database: Option<String>,
}

/// A replica that exited on its own while the system was up (it is being
/// restarted).
#[derive(Debug, Clone)]
pub struct Exit {
    pub service: &'static str,
    pub replica: usize,
    pub status: Option<ExitStatus>,
}

/// Where a replica is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Started, `/readyz` not yet 200; not in the targets.
    Starting,
    /// In the targets.
    Ready,
    /// Died; waiting out the restart delay.
    Restarting,
    /// Being stopped on purpose; already out of the targets.
    Stopping,
}

/// One replica, as the control API and [`System::replicas`](crate::System::replicas) report it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaInfo {
    pub replica: usize,
    pub url: String,
    /// `None` between a crash and its restart.
    pub pid: Option<u32>,
    /// How many times this replica was restarted after dying.
    pub restarts: u64,
    pub state: ReplicaState,
}

/// One service: what was asked for and what runs.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: &'static str,
    /// Replicas asked for (at start, or by the last scale).
    pub desired: usize,
    /// Restarts of all its replicas since the launcher started.
    pub restarts: u64,
    /// Settings given to this service since start (`PUT
    /// /services/{name}/env`), on top of the launcher's own.
    pub env: BTreeMap<String, String>,
    pub replicas: Vec<ReplicaInfo>,
}

/// A replica stopped by scaling down, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct StoppedReplica {
    pub replica: usize,
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// It drained: exit code 0, or ended by the SIGTERM it was sent
    /// (not the SIGKILL after the grace period).
    pub graceful: bool,
}

impl StoppedReplica {
    pub(super) fn new(replica: usize, pid: Option<u32>, status: Option<ExitStatus>) -> Self {
        use std::os::unix::process::ExitStatusExt as _;
        let exit_code = status.and_then(|s| s.code());
        let signal = status.and_then(|s| s.signal());
        Self {
            replica,
            pid,
            exit_code,
            signal,
            graceful: exit_code == Some(0) || signal == Some(nix::libc::SIGTERM),
        }
    }
}

/// The result of a scale: the service afterwards, and the replicas it
/// stopped (scaling down).
#[derive(Debug, Clone, Serialize)]
pub struct Scaled {
    #[serde(flatten)]
    pub service: ServiceStatus,
    pub stopped: Vec<StoppedReplica>,
}

/// One replica of a rolling restart: how its old process exited
/// (`pid` is the old one) and the new one.
#[derive(Debug, Clone, Serialize)]
pub struct RestartedReplica {
    #[serde(flatten)]
    pub stopped: StoppedReplica,
    pub new_pid: Option<u32>,
    /// From leaving the targets to being back in them.
    pub took_ms: f64,
}

/// The result of a rolling restart: the service afterwards, and each
/// replica restarted, in the order they were.
#[derive(Debug, Clone, Serialize)]
pub struct Restarted {
    #[serde(flatten)]
    pub service: ServiceStatus,
    pub restarted: Vec<RestartedReplica>,
}

/// Why the launcher refused or failed an operation. The control API maps
/// each to a status and a JSON error code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// 404 `unknown_service`.
    #[error("no service named {0:?}")]
    UnknownService(String),
    /// 404 `unknown_replica`.
    #[error("{service} has no replica {replica}")]
    UnknownReplica {
        service: &'static str,
        replica: usize,
    },
    /// 422 `invalid_replicas`.
    #[error("{0}")]
    InvalidReplicas(String),
    /// 409 `replica_not_running`: between a crash and its restart.
    #[error("replica {replica} of {service} is not running ({state:?})")]
    NotRunning {
        service: &'static str,
        replica: usize,
        state: ReplicaState,
    },
    /// 409 `stopping`: the launcher is shutting down.
    #[error("the launcher is stopping")]
    Stopping,
    /// 500 `start_failed`: a new replica did not become ready.
    #[error("{0:#}")]
    StartFailed(anyhow::Error),
    /// 500 `restart_failed`: a replica did not come back in a rolling
    /// restart; the replicas after it were left alone.
    #[error("{0}")]
    RestartFailed(String),
    /// 422 `invalid_env`: a setting the control API may not change.
    #[error("{0}")]
    InvalidEnv(String),
}
