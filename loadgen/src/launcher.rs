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
//! supervising task ([`replica`]) that owns the child process: it waits
//! for `/readyz`, lists the replica in the discovery targets
//! ([`targets`]), and restarts it with a backoff when it dies without
//! being asked to. [`System`] is the handle to all of it; the control API
//! ([`control`]) exposes the same operations over HTTP.

pub mod broker;
pub(crate) mod control;
mod metrics;
pub mod nats;
mod replica;
mod targets;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

pub(crate) use self::metrics::LauncherMetrics;
use self::replica::{Retire, Signal};
pub use self::targets::{TargetGroup, read_targets};
use crate::system::{SERVICES, check_replicas, spec, spec_named};

/// Where the services keep their data.
#[derive(Debug, Clone)]
pub enum Databases {
    /// One SQLite file per service in this directory.
    Sqlite { dir: PathBuf },
    /// One PostgreSQL database per service, `<prefix>_<service>`, created
    /// through `admin_url` if missing.
    Postgres { admin_url: String, prefix: String },
}

/// Where child process output goes.
#[derive(Debug, Clone)]
pub enum Logs {
    /// To our stdout, each line prefixed with the replica's name
    /// (`payments`, `payments-1`, ...).
    Prefixed,
    /// To `<dir>/<replica>.log` (`payments.log`, `payments-1.log`);
    /// a restarted replica appends to its file.
    Files(PathBuf),
}

/// How a service is told where its dependencies are (`--<dep>-url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discovery {
    /// `file_sd:<absolute path of the targets file>`: the mesh reads the
    /// file and follows it as replicas come, go and restart. Needs
    /// [`LaunchOptions::targets_file`]; without one, [`Discovery::Urls`].
    #[default]
    FileSd,
    /// The dependency's ready replicas as a comma-separated list of URLs
    /// (`http://127.0.0.1:8083,http://127.0.0.1:41234`), fixed when the
    /// dependent starts: later scaling does not reach it.
    Urls,
}

/// When a replica that died on its own is started again.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// The delay before the first restart, and again once a replica has
    /// stayed up for `stable_after`.
    pub initial_delay: Duration,
    /// The delay doubles while a replica keeps crashing soon after it
    /// starts, up to this.
    pub max_delay: Duration,
    /// How long a replica must stay up for its next crash to count as a
    /// fresh one (delay back to `initial_delay`).
    pub stable_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
        }
    }
}

/// How to launch the system. `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct LaunchOptions {
    /// Use the default ports (8080–8084) for replica 0 of each service, or
    /// free ones for everything. Further replicas always take free ports.
    pub auto_ports: bool,
    pub host: Ipv4Addr,
    pub databases: Databases,
    pub logs: Logs,
    /// Extra environment for every service (`OTEL_*` from our own
    /// environment is inherited anyway).
    pub env: BTreeMap<String, String>,
    /// Extra arguments per service, after the launcher's own.
    pub args: BTreeMap<&'static str, Vec<String>>,
    /// Replicas per service at start (1 for services not listed).
    pub replicas: BTreeMap<&'static str, usize>,
    /// Where to write the Prometheus `file_sd` targets file.
    pub targets_file: Option<PathBuf>,
    /// What dependents are given as their dependencies' URLs.
    pub discovery: Discovery,
    /// Where the control API listens (port 0: a free port, read back with
    /// [`System::control_addr`]); `None`: no control API.
    pub control_addr: Option<SocketAddr>,
    pub restart: RestartPolicy,
    /// How long each replica may take to become ready.
    pub ready_timeout: Duration,
    /// How long a replica removed by scaling down (or stopped by a
    /// rolling restart) may take to drain before it is killed.
    pub stop_grace: Duration,
    /// In a rolling restart, how long a replica stays up after it left the
    /// targets and was told to drain, before it is sent SIGTERM: long
    /// enough for every dependent to re-read the targets (the mesh's
    /// `DISCOVERY_REFRESH`, 2 s) and stop choosing it.
    pub drain_period: Duration,
    /// Given to every replica as `ADMIN_TOKEN`, which turns their admin
    /// API on (faults, crash, drain). `None`: no admin API, unless `env`
    /// sets `ADMIN_TOKEN` itself; one inherited from our own environment
    /// is not passed on.
    pub admin_token: Option<String>,
    /// Given to every replica as `JWT_SECRET`: what users signs access
    /// tokens with and every other service verifies them with. `None`: a
    /// random one for this start (unless `env` sets `JWT_SECRET` itself),
    /// never the public development default; [`System::jwt_secret`] tells
    /// which. `loadgen up` keeps one per data directory ([`jwt_secret`]).
    pub jwt_secret: Option<String>,
    /// The executable that serves (`<exe> serve <service>`); this one by
    /// default. Tests pass the `loadgen` binary cargo built for them.
    pub exe: Option<PathBuf>,
    /// Delete the system's NATS streams when it stops (a run's or a
    /// test's system); `loadgen up` keeps them.
    pub delete_streams_on_stop: bool,
    /// Where the launcher keeps what is not a service's (its own NATS
    /// server's streams).
    pub data_dir: PathBuf,
    /// The `nats-server` to run the system's own event bus with (one user
    /// per service, each allowed to publish only its own events). `None`:
    /// found on `PATH` (or Debian's `/usr/sbin`). Ignored when `NATS_URL`
    /// names a broker of the user's own.
    pub nats_server: Option<PathBuf>,
}

impl LaunchOptions {
    /// SQLite under `data_dir`, output prefixed on stdout, default ports,
    /// one replica each, no control API.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            auto_ports: false,
            host: Ipv4Addr::LOCALHOST,
            targets_file: Some(data_dir.join("targets.json")),
            databases: Databases::Sqlite {
                dir: data_dir.clone(),
            },
            logs: Logs::Prefixed,
            env: BTreeMap::new(),
            args: BTreeMap::new(),
            replicas: BTreeMap::new(),
            discovery: Discovery::default(),
            control_addr: None,
            restart: RestartPolicy::default(),
            ready_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(15),
            drain_period: Duration::from_secs(3),
            admin_token: None,
            jwt_secret: None,
            exe: None,
            delete_streams_on_stop: false,
            data_dir,
            nats_server: None,
        }
    }
}

impl std::fmt::Debug for LaunchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "[redacted]");
        f.debug_struct("LaunchOptions")
            .field("auto_ports", &self.auto_ports)
            .field("host", &self.host)
            .field("databases", &self.databases)
            .field("logs", &self.logs)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("args", &self.args)
            .field("replicas", &self.replicas)
            .field("targets_file", &self.targets_file)
            .field("discovery", &self.discovery)
            .field("control_addr", &self.control_addr)
            .field("restart", &self.restart)
            .field("ready_timeout", &self.ready_timeout)
            .field("stop_grace", &self.stop_grace)
            .field("drain_period", &self.drain_period)
            .field("admin_token", &redacted(&self.admin_token))
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("exe", &self.exe)
            .field("delete_streams_on_stop", &self.delete_streams_on_stop)
            .finish()
    }
}

/// The `EVENTS_PREFIX` of a system: derived from where its data lives, so
/// the same data directory (or PostgreSQL prefix) always publishes to the
/// same streams (an outbox left over from a crash still reaches its
/// consumers), and two systems on one machine never share a consumer.
pub fn events_prefix(databases: &Databases) -> String {
    use sha2::Digest as _;
    let key = match databases {
        Databases::Sqlite { dir } => std::path::absolute(dir)
            .unwrap_or_else(|_| dir.clone())
            .display()
            .to_string(),
        Databases::Postgres { admin_url, prefix } => format!("{admin_url}#{prefix}"),
    };
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("ls-{}", &hex::encode(digest)[..12])
}

/// The services' admin token for `loadgen up` (or a run that starts the
/// system): the one `given` (checked as the services check it), or a new
/// random one written to `<data_dir>/admin-token`, readable by its owner
/// only (it lets its holder crash the services); the path is returned
/// when a file was written.
pub fn admin_token(
    given: Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, Option<PathBuf>)> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};

    if let Some(token) = given {
        token
            .parse::<mesh::config::AdminToken>()
            .map_err(|e| anyhow::anyhow!("the admin token: {e}"))?;
        return Ok((token, None));
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    create_private_dir(data_dir)?;
    let path = data_dir.join("admin-token");
    // A file truncated in place keeps its old mode: replace it.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context(format!("replacing {}", path.display())));
        }
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok((token, Some(path)))
}

/// A new random token secret: 32 random bytes, hex (64 characters, twice
/// the least HS256 accepts).
fn random_jwt_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Checks a token secret as the services will: long enough to sign with.
fn check_jwt_secret(secret: &str) -> anyhow::Result<()> {
    mesh::auth::TokenKeys::new(secret.as_bytes())
        .map(drop)
        .map_err(|e| anyhow::anyhow!("JWT_SECRET cannot be used: {e}"))
}

/// The services' token secret for `loadgen up`: the one `given` (checked
/// as the services check it), else the one kept in
/// `<data_dir>/jwt-secret`, else a new random one written there, readable
/// by its owner only (with it anyone can sign in as anyone). Kept across
/// starts, unlike the admin token: the learners' tokens, and what a
/// client stored, stay valid when the same data directory is started
/// again. The path is returned when the secret came from the file.
pub fn jwt_secret(
    given: Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, Option<PathBuf>)> {
    use std::{
        io::Write as _,
        os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    };

    if let Some(secret) = given {
        check_jwt_secret(&secret)?;
        return Ok((secret, None));
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(kept) => {
            let secret = kept.trim().to_owned();
            check_jwt_secret(&secret).with_context(|| {
                format!(
                    "{} holds no usable secret; delete it for a new one (every token signed so far stops verifying)",
                    path.display()
                )
            })?;
            // A copy from elsewhere, or one made before this was checked:
            // the owner's only, whatever it was.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", path.display()))?;
            return Ok((secret, Some(path)));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
        }
    }
    create_private_dir(data_dir)?;
    let secret = random_jwt_secret();
    // Written beside and renamed into place: a start interrupted halfway
    // leaves no empty secret behind to be refused next time.
    let partial = data_dir.join("jwt-secret.tmp");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("writing {}", partial.display()))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok((secret, Some(path)))
}

/// Creates `dir` and its missing parents readable by their owner only:
/// the data directory holds the secrets and the SQLite files. A directory
/// that exists keeps its mode (it may be anything, `.` included).
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The event bus: the user's own broker if `NATS_URL` names one; else a
/// `nats-server` of the system's own, with one user per service and
/// subject permissions ([`nats`]); else, with no `nats-server` at hand,
/// the default broker without credentials, said loudly, since anyone who
/// can reach it may then publish any event.
async fn event_bus(
    options: &LaunchOptions,
    prefix: &str,
) -> anyhow::Result<(String, Option<nats::NatsServer>)> {
    let given = match (options.env.get("NATS_URL"), std::env::var("NATS_URL")) {
        (Some(u), _) => Some(u.clone()),
        (None, Ok(u)) if !u.is_empty() => Some(u),
        _ => None,
    };
    if let Some(url) = given {
        return Ok((url, None));
    }
    let Some(program) = nats::find_server(options.nats_server.as_deref()) else {
        eprintln!(
            "launcher: no nats-server found (apt-get install nats-server, or set NATS_SERVER); \
             events go to nats://127.0.0.1:4222 without credentials, where anyone who can \
             connect may publish or read any event"
        );
        return Ok(("nats://127.0.0.1:4222".to_owned(), None));
    };
    let store = options.data_dir.join("nats");
    create_private_dir(&store)?;
    let server = nats::NatsServer::start(&program, prefix, &store)
        .await
        .context("starting the system's NATS server")?;
    Ok((server.url(), Some(server)))
}

/// Settings the launcher gives every replica itself: what the system
/// *is* (its databases, broker, identity and secrets), not how it behaves.
/// The control API may not change them.
const LAUNCHER_SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "NATS_URL",
    "EVENTS_PREFIX",
    "ADMIN_TOKEN",
    "JWT_SECRET",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// Most settings one service may be given through the control API.
const MAX_OVERRIDES: usize = 64;

/// Names of environment variables (`BREAKER_OPEN_FOR`), bounded values
/// without NUL, none of [`LAUNCHER_SETTINGS`].
fn check_overrides(env: &BTreeMap<String, String>) -> Result<(), ControlError> {
    if env.len() > MAX_OVERRIDES {
        return Err(ControlError::InvalidEnv(format!(
            "at most {MAX_OVERRIDES} settings, not {}",
            env.len()
        )));
    }
    for (name, value) in env {
        let valid_name = (1..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid_name {
            return Err(ControlError::InvalidEnv(format!(
                "{name:?} is not a setting name (A-Z, 0-9 and _, 1 to 128 characters)"
            )));
        }
        if LAUNCHER_SETTINGS.contains(&name.as_str()) {
            return Err(ControlError::InvalidEnv(format!(
                "{name} is the launcher's to set, not the control API's"
            )));
        }
        if value.len() > 4096 || value.contains('\0') {
            return Err(ControlError::InvalidEnv(format!(
                "the value of {name} is over 4096 bytes or holds NUL"
            )));
        }
    }
    Ok(())
}

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

/// One replica, as the control API and [`System::replicas`] report it.
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
    fn new(replica: usize, pid: Option<u32>, status: Option<ExitStatus>) -> Self {
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

/// The running system: a handle to the replicas' supervisors. Dropping it
/// kills every replica (the supervisors are aborted and the children were
/// started with kill-on-drop); [`System::stop`] stops them gracefully.
pub struct System {
    services: Vec<RunningService>,
    supervisor: Arc<Supervisor>,
    exits: mpsc::UnboundedReceiver<Exit>,
    control: Option<control::ControlServer>,
    /// What the control API takes as `Authorization: Bearer`.
    control_token: Option<String>,
    /// The services' `NATS_URL` and `EVENTS_PREFIX`.
    nats_url: String,
    /// The event bus this system runs itself, if it does.
    nats_server: Option<nats::NatsServer>,
    events_prefix: String,
    delete_streams_on_stop: bool,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("services", &self.supervisor.statuses())
            .field("control", &self.control_addr())
            .finish()
    }
}

/// `n` distinct free TCP ports on `host`, none of them in `taken`. All
/// listeners are held until every port is chosen, so the OS cannot hand
/// out one port twice. Another process could take a port before the
/// replica binds it; on loopback, in practice, nothing does.
fn free_ports(host: Ipv4Addr, n: usize, taken: &[u16]) -> std::io::Result<Vec<u16>> {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = TcpListener::bind(SocketAddr::from((host, 0)))?;
        let port = listener.local_addr()?.port();
        if !taken.contains(&port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}

/// Whether a service could listen on `port` now. With `SO_REUSEADDR`, as
/// tokio's listener binds, so connections of the previous process still
/// in TIME_WAIT do not count as taken.
fn port_is_free(host: Ipv4Addr, port: u16) -> bool {
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return false;
    };
    socket.set_reuseaddr(true).is_ok()
        && socket.bind(SocketAddr::from((host, port))).is_ok()
        && socket.listen(1).is_ok()
}

async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::{Connection as _, Executor as _, Row as _};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {}",
                mesh::db::describe_url(admin_url)
            )
        })?;
    let exists = sqlx::query("SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await?
        .try_get::<i64, _>("n")?
        > 0;
    if !exists {
        // Identifiers cannot be bound; `name` is ours ([a-z0-9_] only).
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
    }
    Ok(())
}

/// `OTEL_RESOURCE_ATTRIBUTES` (the launch options', else ours) without
/// `service.instance.id`, which must be unique per process: each child
/// makes its own, so a restarted replica shows up as a new instance.
fn without_instance_id(configured: Option<&String>) -> String {
    configured
        .cloned()
        .or_else(|| std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok())
        .unwrap_or_default()
        .split(',')
        .filter(|kv| !kv.trim_start().starts_with("service.instance.id="))
        .collect::<Vec<_>>()
        .join(",")
}

/// `postgres://u@h:5432/admin?x` → `postgres://u@h:5432/<db>?x`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
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

async fn pipe_lines(label: String, stream: impl AsyncRead + Unpin + Send + 'static) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{label:>11} | {line}");
    }
}

impl System {
    /// Starts every service, in dependency order, each replica waited for
    /// until its `/readyz` answers 200; then supervises them in the
    /// background until [`System::stop`] (or drop).
    pub async fn start(mut options: LaunchOptions) -> anyhow::Result<Self> {
        // Our own EVENTS_PREFIX, if set, is inherited by the children.
        let prefix = match (
            options.env.get("EVENTS_PREFIX"),
            std::env::var("EVENTS_PREFIX"),
        ) {
            (Some(p), _) => p.clone(),
            (None, Ok(p)) if !p.is_empty() => p,
            _ => events_prefix(&options.databases),
        };
        options.env.insert("EVENTS_PREFIX".into(), prefix.clone());
        let (nats_url, nats_server) = event_bus(&options, &prefix).await?;
        // The services reach NATS through a proxy the control API can take
        // down (`scale nats`): a broker outage without stopping a server
        // other systems may share.
        let broker = broker::BrokerProxy::start(broker::upstream_of(&nats_url))
            .await
            .context("starting the NATS proxy")?;
        options.env.insert("NATS_URL".into(), broker.url());
        // Never the development default the services fall back on: with
        // it, anyone who has read the source can sign in as anyone.
        let jwt_secret = match options
            .jwt_secret
            .take()
            .or_else(|| options.env.remove("JWT_SECRET"))
        {
            Some(given) => {
                check_jwt_secret(&given)?;
                given
            }
            None => random_jwt_secret(),
        };
        options.jwt_secret = Some(jwt_secret);
        let exe = match &options.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("locating the loadgen executable")?,
        };
        for (service, count) in &options.replicas {
            spec_named(service).map_err(anyhow::Error::msg)?;
            check_replicas(*count).map_err(|e| anyhow::anyhow!("{service}: {e}"))?;
        }
        let mut databases = BTreeMap::new();
        for spec in SERVICES.iter().filter(|s| s.database) {
            let url = match &options.databases {
                Databases::Sqlite { dir } => {
                    create_private_dir(dir)?;
                    format!(
                        "sqlite://{}",
                        dir.join(format!("{}.db", spec.name)).display()
                    )
                }
                Databases::Postgres { admin_url, prefix } => {
                    let name = format!("{prefix}_{}", spec.name);
                    create_postgres_database(admin_url, &name).await?;
                    with_database(admin_url, &name)
                }
            };
            databases.insert(spec.name, url);
        }
        if let Logs::Files(dir) = &options.logs {
            std::fs::create_dir_all(dir)?;
        }
        // Dependents are given this path: it must not depend on their
        // working directory.
        let targets_file = options
            .targets_file
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .context("resolving the targets file path")?;
        let control_listener = match options.control_addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the control API on {addr}"))?,
            ),
            None => None,
        };
        let control_addr = control_listener
            .as_ref()
            .map(tokio::net::TcpListener::local_addr)
            .transpose()?;

        let nats_credentials = nats_server
            .as_ref()
            .map(|server| {
                nats::ACCOUNTS
                    .iter()
                    .filter_map(|a| {
                        let (user, password) = server.passwords.credentials_of(a.service)?;
                        Some((a.service, (user.to_owned(), password.to_owned())))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (supervisor, exits) = Supervisor::new(
            &options,
            exe,
            databases,
            targets_file,
            control_addr,
            Some(broker),
            nats_credentials,
        );
        // Anything that can reach the control API could otherwise stop
        // the system: it takes the services' admin token, or, for a system
        // without an admin API, one of its own ([`System::control_token`]).
        let control_token = control_listener.as_ref().map(|_| {
            options
                .admin_token
                .clone()
                .or_else(|| options.env.get("ADMIN_TOKEN").cloned())
                .unwrap_or_else(|| hex::encode(rand::random::<[u8; 24]>()))
        });
        let control = match (control_listener, &control_token) {
            (Some(listener), Some(token)) => Some(control::ControlServer::spawn(
                listener,
                supervisor.clone(),
                token
                    .parse()
                    .map_err(|e| anyhow::anyhow!("the admin token: {e}"))?,
            )?),
            _ => None,
        };
        let mut system = Self {
            services: Vec::new(),
            supervisor: supervisor.clone(),
            exits,
            control,
            control_token,
            nats_url,
            nats_server,
            events_prefix: prefix,
            delete_streams_on_stop: options.delete_streams_on_stop,
        };

        for spec in SERVICES {
            let desired = options.replicas.get(spec.name).copied().unwrap_or(1);
            let indices: Vec<usize> = (0..desired).collect();
            if let Err(error) = supervisor.start_replicas(spec.name, &indices).await {
                system.stop(Duration::from_secs(5)).await;
                return Err(error);
            }
            let first = supervisor
                .replica_infos(spec.name)
                .into_iter()
                .next()
                .context("replica 0 vanished while starting")?;
            system.services.push(RunningService {
                name: spec.name,
                url: first.url,
                port: supervisor.port_of(spec.name, 0).unwrap_or_default(),
                pid: first.pid.unwrap_or_default(),
                database: supervisor
                    .databases
                    .get(spec.name)
                    .map(|url| mesh::db::describe_url(url)),
            });
        }
        Ok(system)
    }

    /// The database URL `service`'s replicas were given (`None` for the
    /// gateway, which has none): for tools and tests that read its rows.
    pub fn database_url(&self, service: &str) -> Option<&str> {
        self.supervisor.databases.get(service).map(String::as_str)
    }

    /// Replica 0 of every service as it was started.
    pub fn services(&self) -> &[RunningService] {
        &self.services
    }

    /// The base URL of `service`: replica 0 if it is ready, else any
    /// ready replica, else where replica 0 was (so a stopped service
    /// still has an address, that refuses connections).
    pub fn url(&self, service: &str) -> Option<String> {
        self.supervisor.url(service)
    }

    /// Every replica of `service`, by index (empty for an unknown service).
    pub fn replicas(&self, service: &str) -> Vec<ReplicaInfo> {
        self.supervisor.replica_infos(service)
    }

    /// Every service, in start order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.supervisor.statuses()
    }

    /// How many times replicas of `service` were restarted after dying
    /// (the `launcher_restarts_total` counter).
    pub fn restarts(&self, service: &str) -> u64 {
        self.supervisor
            .lock()
            .services
            .get(service)
            .map_or(0, |s| s.restarts)
    }

    /// Where the control API listens, if it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(|c| c.addr)
    }

    /// The token the control API asks for (`Authorization: Bearer`): the
    /// admin token, or one of its own when the services have none.
    pub fn control_token(&self) -> Option<&str> {
        self.control_token.as_deref()
    }

    /// The secret the services sign and verify access tokens with, for
    /// tests and tools that mint tokens of their own.
    pub fn jwt_secret(&self) -> &str {
        self.supervisor.jwt_secret.as_deref().unwrap_or_default()
    }

    /// The absolute path of the discovery targets file, if one is written.
    pub fn targets_file(&self) -> Option<&std::path::Path> {
        self.supervisor.targets_file.as_deref()
    }

    /// Runs `replicas` replicas of `service`: new ones are started and
    /// waited for until ready; surplus ones (the highest indices) are
    /// removed from the targets, then sent SIGTERM and given the stop
    /// grace to drain.
    pub async fn scale(&self, service: &str, replicas: usize) -> Result<Scaled, ControlError> {
        self.supervisor.scale(service, replicas).await
    }

    /// Restarts every replica of `service`, one at a time, in replica
    /// order: out of the targets, `POST /admin/drain` (with an admin
    /// token), [`LaunchOptions::drain_period`], SIGTERM (SIGKILL after the
    /// stop grace), started again on its port, and waited for until ready
    /// and back in the targets; then the next. Not counted as restarts
    /// (those are for crashes). Stops at the first replica that does not
    /// come back.
    pub async fn restart(&self, service: &str) -> Result<Restarted, ControlError> {
        self.supervisor.restart(service).await
    }

    /// Gives `service` these settings on top of the launcher's own, with
    /// a rolling restart (see `PUT /services/{name}/env`).
    pub async fn configure(
        &self,
        service: &str,
        env: BTreeMap<String, String>,
    ) -> Result<Restarted, ControlError> {
        self.supervisor.configure(service, env).await
    }

    /// Kills one replica with SIGKILL, as a crash would, and returns once
    /// it is dead and out of the targets: the restart policy brings it
    /// back.
    pub async fn kill_replica(&self, service: &str, replica: usize) -> Result<(), ControlError> {
        self.supervisor.kill_replica(service, replica).await
    }

    /// The next replica that exited on its own, when one does.
    pub async fn next_exit(&mut self) -> Option<Exit> {
        self.exits.recv().await
    }

    /// Kills every replica of `service` with SIGKILL, as a crash would, and
    /// waits for them to be gone. Unlike [`System::kill_replica`], the
    /// service stays down: it is not restarted, nor reported as an
    /// unexpected exit.
    pub async fn kill(&mut self, service: &str) -> anyhow::Result<()> {
        self.supervisor
            .retire_service(service, Signal::Kill)
            .await?;
        Ok(())
    }

    /// Stops every replica of `service` the way a platform does (SIGTERM,
    /// then SIGKILL after `grace`), without restarting it, and returns how
    /// the lowest-numbered replica exited.
    pub async fn terminate(
        &mut self,
        service: &str,
        grace: Duration,
    ) -> anyhow::Result<ExitStatus> {
        self.supervisor
            .retire_service(service, Signal::Terminate(grace))
            .await?
            .into_iter()
            .next()
            .flatten()
            .with_context(|| format!("{service} exited with an unknown status"))
    }

    /// The process id of `service`'s replica 0 (or of its lowest-numbered
    /// running replica).
    pub async fn pid(&self, service: &str) -> Option<u32> {
        self.replicas(service).iter().find_map(|r| r.pid)
    }

    /// Sends SIGTERM to every replica (dependents first; the replicas of
    /// one service together), waits up to `grace` for each, then kills
    /// what is left; then stops the control API.
    pub async fn stop(&mut self, grace: Duration) {
        self.supervisor.stopping.store(true, Ordering::SeqCst);
        for spec in SERVICES.iter().rev() {
            let _ = self
                .supervisor
                .retire_service(spec.name, Signal::Terminate(grace))
                .await;
        }
        if let Some(control) = self.control.take() {
            control.shutdown().await;
        }
        self.supervisor.lock().control = None;
        self.supervisor.publish_now();
        if std::mem::take(&mut self.delete_streams_on_stop) {
            let deleted = tokio::time::timeout(Duration::from_secs(5), async {
                let client = self.nats_client().await?;
                mesh::events::delete_streams_of(&client, &self.events_prefix).await
            })
            .await;
            if !matches!(deleted, Ok(Ok(()))) {
                tracing::warn!(prefix = %self.events_prefix, "could not delete the system's NATS streams");
            }
        }
        if let Some(server) = self.nats_server.take() {
            server.stop().await;
        }
    }

    /// The event bus's operator credentials (user, password), when the
    /// system runs its own: every subject, for inspection and tests.
    pub fn nats_admin(&self) -> Option<(&str, &str)> {
        self.nats_server
            .as_ref()
            .map(|s| (nats::ADMIN_USER, s.passwords.admin.as_str()))
    }

    /// `service`'s user and password on the event bus the system runs, if
    /// it has one there (for tests of the bus's permissions).
    pub fn nats_credentials_of(&self, service: &str) -> Option<(&str, &str)> {
        self.nats_server.as_ref()?.passwords.credentials_of(service)
    }

    /// A client of the event bus with the operator's credentials (none
    /// when the bus is the user's own).
    pub async fn nats_client(&self) -> anyhow::Result<async_nats::Client> {
        let options = match self.nats_admin() {
            Some((user, password)) => {
                async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
            }
            None => async_nats::ConnectOptions::new(),
        };
        Ok(options.connect(self.nats_url.as_str()).await?)
    }

    /// The services' `EVENTS_PREFIX`: their subjects and streams.
    pub fn events_prefix(&self) -> &str {
        &self.events_prefix
    }

    /// The services' `NATS_URL`.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // The supervisors own the children: aborting them drops the
        // children, which kills them (kill-on-drop).
        self.supervisor.abort_all();
        if let Some(control) = &self.control {
            control.abort();
        }
    }
}

// === impl Supervisor ===

/// What every replica's supervisor and the control API share.
pub(crate) struct Supervisor {
    exe: PathBuf,
    host: Ipv4Addr,
    auto_ports: bool,
    logs: Logs,
    env: BTreeMap<String, String>,
    args: BTreeMap<&'static str, Vec<String>>,
    discovery: Discovery,
    targets_file: Option<PathBuf>,
    restart: RestartPolicy,
    ready_timeout: Duration,
    stop_grace: Duration,
    drain_period: Duration,
    admin_token: Option<String>,
    /// Every replica's `JWT_SECRET` (`None` in unit tests only).
    jwt_secret: Option<String>,
    /// `NATS_USER` and `NATS_PASSWORD` per service, on a bus the system
    /// runs itself.
    nats_credentials: BTreeMap<&'static str, (String, String)>,
    /// `DATABASE_URL` per service; replicas share their service's.
    databases: BTreeMap<&'static str, String>,
    http: reqwest::Client,
    pub(crate) metrics: LauncherMetrics,
    state: std::sync::Mutex<State>,
    /// One scale at a time per service: two concurrent scales would pick
    /// the same new indices.
    scaling: BTreeMap<&'static str, tokio::sync::Mutex<()>>,
    exits: mpsc::UnboundedSender<Exit>,
    stopping: AtomicBool,
    /// The proxy the services reach NATS through (`None` in unit tests).
    pub(crate) broker: Option<broker::BrokerProxy>,
}

/// The replicas of every service. Behind a plain mutex, never held across
/// an await: every change is small and is published (targets file,
/// gauges) before the lock is released, so the file never lags the state.
struct State {
    services: BTreeMap<&'static str, ServiceState>,
    /// The control API's address, listed in the targets as job `launcher`.
    control: Option<SocketAddr>,
    /// What the targets file holds, to rewrite it only when it changes.
    last_written: Option<Vec<u8>>,
}

struct ServiceState {
    desired: usize,
    restarts: u64,
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
    fn new(
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was
        // between two small updates: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn url_of(&self, port: u16) -> String {
        format!("http://{}:{port}", self.host)
    }

    fn port_of(&self, service: &str, replica: usize) -> Option<u16> {
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

    fn publish_now(&self) {
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

    /// What a dependent is given as `--<dep>-url`.
    fn dependency_url(&self, dep: &str) -> String {
        if self.discovery == Discovery::FileSd
            && let Some(path) = &self.targets_file
        {
            return format!("file_sd:{}", path.display());
        }
        let state = self.lock();
        let Some(service) = state.services.get(dep) else {
            return String::new();
        };
        let ready: Vec<String> = service
            .replicas
            .values()
            .filter(|s| s.state == ReplicaState::Ready)
            .map(|s| self.url_of(s.port))
            .collect();
        match ready.first() {
            // Down right now (a dependent restarting while its dependency
            // is too): where it was is the best guess.
            None => service.home_url.clone().unwrap_or_default(),
            Some(_) => ready.join(","),
        }
    }

    /// Starts one replica's process on `port`.
    fn spawn_child(
        &self,
        service: &'static str,
        replica: usize,
        port: u16,
    ) -> anyhow::Result<Child> {
        let spec = spec(service).context("unknown service")?;
        let label = replica_label(service, replica);
        let mut args: Vec<String> = vec![
            "serve".into(),
            service.into(),
            "--port".into(),
            port.to_string(),
            "--host".into(),
            self.host.to_string(),
        ];
        for dep in spec.depends_on {
            args.extend([format!("--{dep}-url"), self.dependency_url(dep)]);
        }
        args.extend(self.args.get(service).into_iter().flatten().cloned());

        let overrides = self
            .lock()
            .services
            .get(service)
            .map(|s| s.overrides.clone())
            .unwrap_or_default();
        let mut cmd = Command::new(&self.exe);
        // The database URL goes in the environment, not the arguments: it
        // may hold a password, and arguments are public in `ps`.
        if let Some(url) = self.databases.get(service) {
            cmd.env("DATABASE_URL", url);
        }
        // Our own `ADMIN_TOKEN` is not the replicas' unless we say so.
        cmd.env_remove("ADMIN_TOKEN");
        cmd.args(&args)
            .envs(&self.env)
            .envs(&overrides)
            // One name for every child would merge five services into one
            // in Jaeger: each service names itself.
            .env_remove("OTEL_SERVICE_NAME")
            // Likewise one `service.instance.id` for every replica.
            .env(
                "OTEL_RESOURCE_ATTRIBUTES",
                without_instance_id(self.env.get("OTEL_RESOURCE_ATTRIBUTES")),
            )
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(token) = &self.admin_token {
            cmd.env("ADMIN_TOKEN", token);
        }
        // In the environment, like the other secrets: arguments are
        // public in `ps`, a process's environment is its owner's.
        if let Some(secret) = &self.jwt_secret {
            cmd.env("JWT_SECRET", secret);
        }
        // The service's own user on the bus, or none: never credentials
        // from our environment meant for something else.
        cmd.env_remove("NATS_USER").env_remove("NATS_PASSWORD");
        if let Some((user, password)) = self.nats_credentials.get(service) {
            cmd.env("NATS_USER", user).env("NATS_PASSWORD", password);
        }
        match &self.logs {
            Logs::Prefixed => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            Logs::Files(dir) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("{label}.log")))?;
                cmd.stdout(file.try_clone()?).stderr(file);
            }
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {label}"))?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pipe_lines(label.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pipe_lines(label, err));
        }
        Ok(child)
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
    async fn start_replicas(
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
    async fn retire_service(
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

    fn abort_all(&self) {
        let state = self.lock();
        for slot in state.services.values().flat_map(|s| s.replicas.values()) {
            if let Some(task) = &slot.task {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_admin_token_is_checked_or_made_and_kept_private() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let (token, written) = admin_token(Some("s3cret".into()), dir.path()).unwrap();
        assert_eq!((token.as_str(), written), ("s3cret", None));
        let err = admin_token(Some("has space".into()), dir.path()).unwrap_err();
        assert!(err.to_string().contains("visible ASCII"), "{err}");

        let path = dir.path().join("admin-token");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (token, written) = admin_token(None, dir.path()).unwrap();
        assert_eq!(written.as_deref(), Some(path.as_path()));
        assert_eq!(token.len(), 48);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{token}\n")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let (again, _) = admin_token(None, dir.path()).unwrap();
        assert_ne!(again, token, "a new one on each start");
    }

    #[test]
    fn a_jwt_secret_is_checked_or_kept_per_data_directory_and_private() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let long = "x".repeat(32);
        let (secret, kept) = jwt_secret(Some(long.clone()), &data).unwrap();
        assert_eq!((secret, kept), (long, None));
        assert!(!data.exists(), "a given secret is not written anywhere");
        let err = jwt_secret(Some("short".into()), &data).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");

        let (secret, kept) = jwt_secret(None, &data).unwrap();
        let path = data.join("jwt-secret");
        assert_eq!(kept.as_deref(), Some(path.as_path()));
        assert_eq!(secret.len(), 64);
        assert_ne!(secret, mesh::auth::DEV_JWT_SECRET);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{secret}\n")
        );
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "{:o}", mode(&path));
        assert_eq!(mode(&data), 0o700, "a new data directory is its owner's");

        // The same data directory started again: the same secret, so
        // tokens issued before still verify; and private again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (again, _) = jwt_secret(None, &data).unwrap();
        assert_eq!(again, secret, "kept across starts");
        assert_eq!(mode(&path), 0o600);
        // Another data directory: another secret.
        let (other, _) = jwt_secret(None, &dir.path().join("other")).unwrap();
        assert_ne!(other, secret);

        std::fs::write(&path, "too short\n").unwrap();
        let err = jwt_secret(None, &data).unwrap_err();
        assert!(format!("{err:#}").contains("delete it"), "{err:#}");
    }

    #[test]
    fn launch_options_debug_leaves_the_secrets_out() {
        let mut options = LaunchOptions::local("data");
        options.admin_token = Some("admin-s3cret".into());
        options.jwt_secret = Some("jwt-s3cret-jwt-s3cret-jwt-s3cret!".into());
        options
            .env
            .insert("SOMETHING".into(), "value-s3cret".into());
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("SOMETHING"), "{shown}");
    }

    #[test]
    fn database_name_replaces_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "ls_users"),
            "postgres://postgres@127.0.0.1:5432/ls_users"
        );
        assert_eq!(
            with_database("postgres://u:p@h/x?sslmode=disable", "d"),
            "postgres://u:p@h/d?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "d"), "postgres://h:1/d");
    }
}
