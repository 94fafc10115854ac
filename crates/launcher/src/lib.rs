//! launcher: runs every LearnSphere service as child processes on this
//! machine, no Docker needed, and keeps them running. `loadgen up` and the
//! end-to-end tests start a system through it; loadgen's local platform
//! drives one through its control API.
//!
//! The services come from one executable: the launcher runs
//! `<exe> serve <service> --port N --host H --<dependency>-url ...`, by
//! default the executable it runs in ([`LaunchOptions::exe`]). loadgen is
//! such an executable (it links every service library, the way HotROD runs
//! all its services from one binary), so `cargo run -p loadgen -- up`
//! builds everything it starts. The services, their ports, databases and
//! dependencies come from one catalogue, [`services`].
//!
//! Each service runs as one or more replicas. Every replica has its own
//! supervising task (`supervisor/replica.rs`) that owns the child
//! process: it waits for `/readyz`, lists the replica in the discovery
//! targets (`targets.rs`), and restarts it with a backoff when it dies
//! without being asked to. [`System`] is the handle to all of it; the
//! control API ([`control`]) exposes the same operations over HTTP.
//!
//! | File | Holds |
//! |---|---|
//! | `services.rs` | the service catalogue: start order, ports, databases, dependencies |
//! | `system.rs` | [`System`]: start, operate and stop a system |
//! | `options.rs` | [`LaunchOptions`], the secrets kept per data directory |
//! | `supervisor.rs` | the replicas' shared state and operations |
//! | `supervisor/replica.rs` | one replica's task, across restarts |
//! | `status.rs` | what is reported ([`ServiceStatus`], [`ReplicaInfo`]...) and [`ControlError`] |
//! | `control.rs` | the control API over HTTP |
//! | `ports.rs`, `postgres.rs` | free ports; the services' PostgreSQL databases |
//! | `broker.rs`, `nats.rs` | the NATS proxy; the system's own NATS server |
//! | `targets.rs`, `metrics.rs` | the discovery targets file; the launcher's metrics |

#![forbid(unsafe_code)]

pub mod broker;
pub mod control;
mod metrics;
pub mod nats;
mod options;
mod ports;
mod postgres;
pub mod services;
mod status;
mod supervisor;
mod system;
mod targets;

pub use self::options::{
    ControlExtension, Databases, Discovery, LaunchOptions, Logs, RestartPolicy, admin_token,
    events_prefix, jwt_secret,
};
pub use self::status::{
    ControlError, Exit, ReplicaInfo, ReplicaState, Restarted, RestartedReplica, RunningService,
    Scaled, ServiceStatus, StoppedReplica,
};
pub use self::system::System;
pub use self::targets::{TargetGroup, read_targets};

/// The variable a replica finds its launcher's process id in.
pub const LAUNCHER_PID_VAR: &str = "LOADGEN_LAUNCHER_PID";

/// In a replica the launcher started (`LOADGEN_LAUNCHER_PID` set), exits
/// the process once the launcher is gone. A launcher that is killed
/// outright (SIGKILL, or a test process cut short) cannot stop its
/// children, and orphaned replicas would keep their ports and go on
/// consuming events that a new system's replicas should get. The child is
/// re-parented when its parent dies, which a check every half second sees.
pub fn exit_with_the_launcher() {
    use std::io::Write as _;
    let Some(launcher) = std::env::var(LAUNCHER_PID_VAR)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return;
    };
    std::thread::spawn(move || {
        loop {
            if std::os::unix::process::parent_id() != launcher {
                // Not `eprintln!`: stderr is usually a pipe to the dead
                // launcher, and a failed write would panic this thread.
                let _ = writeln!(
                    std::io::stderr(),
                    "the launcher (pid {launcher}) is gone; this replica stops"
                );
                std::process::exit(1);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
}
