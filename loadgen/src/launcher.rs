//! The local launcher: runs every LearnSphere service as child processes
//! on this machine, no Docker needed, and keeps them running.
//!
//! The service binaries are this binary: `loadgen serve <service> ...`
//! runs one service in-process (loadgen links every service library, the
//! way HotROD runs all its services from one executable). So
//! `cargo run -p loadgen -- up` builds everything it starts, and the
//! end-to-end tests start the system through this same code.
//!
//! Each service runs as one or more replicas. Every replica has its own
//! supervising task (`supervisor/replica.rs`) that owns the child
//! process: it waits for `/readyz`, lists the replica in the discovery
//! targets (`targets.rs`), and restarts it with a backoff when it dies
//! without being asked to. [`System`] is the handle to all of it; the
//! control API (`control.rs`) exposes the same operations over HTTP.
//!
//! | File | Holds |
//! |---|---|
//! | `system.rs` | [`System`]: start, operate and stop a system |
//! | `options.rs` | [`LaunchOptions`], the secrets kept per data directory |
//! | `supervisor.rs` | the replicas' shared state and operations |
//! | `supervisor/replica.rs` | one replica's task, across restarts |
//! | `status.rs` | what is reported ([`ServiceStatus`], [`ReplicaInfo`]...) and [`ControlError`] |
//! | `control.rs` | the control API over HTTP |
//! | `ports.rs`, `postgres.rs` | free ports; the services' PostgreSQL databases |
//! | `broker.rs`, `nats.rs` | the NATS proxy; the system's own NATS server |
//! | `targets.rs`, `metrics.rs` | the discovery targets file; the launcher's metrics |

pub mod broker;
pub(crate) mod control;
mod metrics;
pub mod nats;
mod options;
mod ports;
mod postgres;
mod status;
pub(crate) mod supervisor;
mod system;
mod targets;

pub use self::options::{
    Databases, Discovery, LaunchOptions, Logs, RestartPolicy, admin_token, events_prefix,
    jwt_secret,
};
pub use self::status::{
    ControlError, Exit, ReplicaInfo, ReplicaState, Restarted, RestartedReplica, RunningService,
    Scaled, ServiceStatus, StoppedReplica,
};
pub use self::system::System;
pub use self::targets::{TargetGroup, read_targets};
