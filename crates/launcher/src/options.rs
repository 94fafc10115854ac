//! How to launch the system ([`LaunchOptions`]) and the secrets and
//! settings that come with it: the events prefix, the admin token and JWT
//! secret kept per data directory, and which settings the control API may
//! override.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context as _;

use super::status::ControlError;

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
    /// [`System::control_addr`](crate::System::control_addr)); `None`: no control API.
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
    /// never the public development default; [`System::jwt_secret`](crate::System::jwt_secret) tells
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
    /// More routes on the control API's listener (loadgen's operator
    /// console), behind the same checks as its own.
    pub control_extension: Option<ControlExtension>,
}

/// Routes another crate serves beside the control API's own, on its
/// listener: `operations` behind every check the control API's
/// operations pass (`Host`, `Origin`, the admin token, JSON bodies), and
/// `pages` behind the `Host` check alone (a page and its files, which a
/// browser loads before it has a token to send).
#[derive(Clone, Default)]
pub struct ControlExtension {
    pub operations: axum::Router,
    pub pages: axum::Router,
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
            control_extension: None,
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
            .field("control_extension", &self.control_extension.is_some())
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
pub(super) fn random_jwt_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Checks a token secret as the services will: long enough to sign with.
pub(super) fn check_jwt_secret(secret: &str) -> anyhow::Result<()> {
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
pub(super) fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
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
pub(super) fn check_overrides(env: &BTreeMap<String, String>) -> Result<(), ControlError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
