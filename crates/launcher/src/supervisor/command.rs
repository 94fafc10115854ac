//! What the supervisor asks a replica's task to do, and how: the
//! messages on the channel each task listens to.

use std::{process::ExitStatus, time::Duration};

use tokio::sync::oneshot;

use crate::status::RestartedReplica;

/// What a replica's supervisor can be asked to do.
pub(crate) enum Command {
    /// Stop for good: no restart, not reported as an exit.
    Retire(Retire),
    /// SIGKILL, as a crash would; answered once the process is dead and
    /// out of the targets. It is restarted like any crash.
    Crash { done: oneshot::Sender<()> },
    /// Out of the targets, drain, SIGTERM, start again; answered once the
    /// new process is ready and back in the targets (or did not make it).
    Restart {
        done: oneshot::Sender<Result<RestartedReplica, String>>,
    },
}

pub(crate) struct Retire {
    pub(crate) signal: Signal,
    /// How the process exited (`None`: there was none, or unknown).
    pub(crate) done: oneshot::Sender<Option<ExitStatus>>,
}

/// How a retired replica is stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    /// SIGTERM, then SIGKILL if still running after the grace period.
    Terminate(Duration),
    Kill,
}
