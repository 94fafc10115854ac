//! The local launcher: runs every LearnSphere service as a child process on
//! this machine, no Docker needed.
//!
//! The service binaries are this binary: `loadgen serve <service> ...`
//! runs one service in-process (loadgen links every service library, the
//! way HotROD runs all its services from one executable). So
//! `cargo run -p loadgen -- up` builds everything it starts, and the
//! end-to-end tests start the system through this same code.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
    sync::{Mutex, mpsc},
    time::Instant,
};

/// The services in start order: each one's dependencies come before it.
pub const SERVICES: [ServiceSpec; 5] = [
    ServiceSpec {
        name: "courses",
        default_port: 8082,
        database: true,
        depends_on: &[],
    },
    ServiceSpec {
        name: "users",
        default_port: 8081,
        database: true,
        depends_on: &[],
    },
    ServiceSpec {
        name: "payments",
        default_port: 8083,
        database: true,
        depends_on: &[],
    },
    ServiceSpec {
        name: "progress",
        default_port: 8084,
        database: true,
        depends_on: &["courses"],
    },
    ServiceSpec {
        name: "gateway",
        default_port: 8080,
        database: false,
        depends_on: &["users", "courses", "payments", "progress"],
    },
];

/// What the launcher knows about a service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub default_port: u16,
    /// Whether it owns a database (and reads `DATABASE_URL`).
    pub database: bool,
    /// Services whose URLs it is given (`--<name>-url`).
    pub depends_on: &'static [&'static str],
}

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
    /// To our stdout, each line prefixed with the service name.
    Prefixed,
    /// To `<dir>/<service>.log`.
    Files(PathBuf),
}

/// How to launch the system.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Use the default ports (8080–8084) or free ones.
    pub auto_ports: bool,
    pub host: Ipv4Addr,
    pub databases: Databases,
    pub logs: Logs,
    /// Extra environment for every service (`OTEL_*` from our own
    /// environment is inherited anyway).
    pub env: BTreeMap<String, String>,
    /// Extra arguments per service, after the launcher's own.
    pub args: BTreeMap<&'static str, Vec<String>>,
    /// Where to write the Prometheus `file_sd` targets file.
    pub targets_file: Option<PathBuf>,
    /// How long each service may take to become ready.
    pub ready_timeout: Duration,
    /// The executable that serves (`<exe> serve <service>`); this one by
    /// default. Tests pass the `loadgen` binary cargo built for them.
    pub exe: Option<PathBuf>,
}

impl LaunchOptions {
    /// SQLite under `data_dir`, output prefixed on stdout, default ports.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            auto_ports: false,
            host: Ipv4Addr::LOCALHOST,
            targets_file: Some(data_dir.join("targets.json")),
            databases: Databases::Sqlite { dir: data_dir },
            logs: Logs::Prefixed,
            env: BTreeMap::new(),
            args: BTreeMap::new(),
            ready_timeout: Duration::from_secs(60),
            exe: None,
        }
    }
}

/// A service the launcher started.
#[derive(Debug, Clone, Serialize)]
pub struct RunningService {
    pub name: &'static str,
    pub url: String,
    pub port: u16,
    pub pid: u32,
    /// Where its data lives, for people (`SQLite file data/users.db`).
    pub database: Option<String>,
}

/// A child that exited on its own while the system was up.
#[derive(Debug, Clone)]
pub struct Exit {
    pub service: &'static str,
    pub status: Option<ExitStatus>,
}

/// The running system: the children and what we know about them.
pub struct System {
    services: Vec<RunningService>,
    children: Arc<Mutex<BTreeMap<&'static str, Child>>>,
    exits: mpsc::UnboundedReceiver<Exit>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("services", &self.services)
            .finish()
    }
}

/// A free TCP port on `host`. Another process could take it before the
/// service binds it; on loopback, in practice, nothing does.
fn free_port(host: Ipv4Addr) -> std::io::Result<u16> {
    Ok(TcpListener::bind(SocketAddr::from((host, 0)))?
        .local_addr()?
        .port())
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
/// makes its own.
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

async fn pipe_lines(service: &'static str, stream: impl AsyncRead + Unpin + Send + 'static) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{service:>9} | {line}");
    }
}

impl System {
    /// Starts every service, in dependency order, each waited for until
    /// its `/readyz` answers 200.
    pub async fn start(options: LaunchOptions) -> anyhow::Result<Self> {
        let exe = match &options.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("locating the loadgen executable")?,
        };
        let mut urls: BTreeMap<&str, String> = BTreeMap::new();
        let mut services = Vec::new();
        let children = Arc::new(Mutex::new(BTreeMap::new()));
        let (exit_tx, exits) = mpsc::unbounded_channel();
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let http = reqwest::Client::new();
        if let Logs::Files(dir) = &options.logs {
            std::fs::create_dir_all(dir)?;
        }
        let mut system = Self {
            services: Vec::new(),
            children: children.clone(),
            exits,
            stopping: stopping.clone(),
        };

        for spec in SERVICES {
            let port = if options.auto_ports {
                free_port(options.host)?
            } else {
                spec.default_port
            };
            let url = format!("http://{}:{port}", options.host);
            let mut args: Vec<String> = vec![
                "serve".into(),
                spec.name.into(),
                "--port".into(),
                port.to_string(),
                "--host".into(),
                options.host.to_string(),
            ];
            let mut database = None;
            let mut database_url = None;
            if spec.database {
                let db_url = match &options.databases {
                    Databases::Sqlite { dir } => {
                        std::fs::create_dir_all(dir)?;
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
                database = Some(mesh::db::describe_url(&db_url));
                database_url = Some(db_url);
            }
            for dep in spec.depends_on {
                args.extend([format!("--{dep}-url"), urls[dep].clone()]);
            }
            args.extend(options.args.get(spec.name).into_iter().flatten().cloned());

            let mut cmd = Command::new(&exe);
            // The database URL goes in the environment, not the arguments:
            // it may hold a password, and arguments are public in `ps`.
            if let Some(url) = database_url {
                cmd.env("DATABASE_URL", url);
            }
            cmd.args(&args)
                .envs(&options.env)
                // One name for every child would merge five services into
                // one in Jaeger: each service names itself.
                .env_remove("OTEL_SERVICE_NAME")
                // Likewise one `service.instance.id` for every replica.
                .env(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    without_instance_id(options.env.get("OTEL_RESOURCE_ATTRIBUTES")),
                )
                .stdin(Stdio::null())
                .kill_on_drop(true);
            match &options.logs {
                Logs::Prefixed => {
                    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                }
                Logs::Files(dir) => {
                    let file = std::fs::File::create(dir.join(format!("{}.log", spec.name)))?;
                    cmd.stdout(file.try_clone()?).stderr(file);
                }
            }
            let mut child = cmd
                .spawn()
                .with_context(|| format!("starting {}", spec.name))?;
            if let Some(out) = child.stdout.take() {
                tokio::spawn(pipe_lines(spec.name, out));
            }
            if let Some(err) = child.stderr.take() {
                tokio::spawn(pipe_lines(spec.name, err));
            }
            let pid = child.id().unwrap_or_default();
            children.lock().await.insert(spec.name, child);
            tokio::spawn(watch_child(
                spec.name,
                children.clone(),
                exit_tx.clone(),
                stopping.clone(),
            ));

            if let Err(error) = wait_ready(
                &http,
                &url,
                options.ready_timeout,
                &mut system.exits,
                spec.name,
            )
            .await
            {
                system.stop(Duration::from_secs(5)).await;
                return Err(error);
            }
            urls.insert(spec.name, url.clone());
            services.push(RunningService {
                name: spec.name,
                url,
                port,
                pid,
                database,
            });
            system.services = services.clone();
        }
        if let Some(path) = &options.targets_file {
            write_targets(path, &system.services)?;
        }
        Ok(system)
    }

    pub fn services(&self) -> &[RunningService] {
        &self.services
    }

    /// The base URL of `service`.
    pub fn url(&self, service: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.url.as_str())
    }

    /// The next child that exited on its own, when one does.
    pub async fn next_exit(&mut self) -> Option<Exit> {
        self.exits.recv().await
    }

    /// Kills one service with SIGKILL, as a crash would, and waits for it
    /// to be gone. It is not reported as an unexpected exit.
    pub async fn kill(&mut self, service: &str) -> anyhow::Result<()> {
        let mut children = self.children.lock().await;
        let key = *children
            .keys()
            .find(|k| **k == service)
            .ok_or_else(|| anyhow::anyhow!("{service} is not running"))?;
        let mut child = children.remove(key).expect("key was just found");
        child.kill().await?;
        Ok(())
    }

    /// Stops one service the way a platform does (SIGTERM, then SIGKILL
    /// after `grace`) and returns how it exited.
    pub async fn terminate(
        &mut self,
        service: &str,
        grace: Duration,
    ) -> anyhow::Result<ExitStatus> {
        let mut child = {
            let mut children = self.children.lock().await;
            let key = *children
                .keys()
                .find(|k| **k == service)
                .ok_or_else(|| anyhow::anyhow!("{service} is not running"))?;
            children.remove(key).expect("key was just found")
        };
        terminate(service, &mut child, grace).await
    }

    /// The process id of a running service.
    pub async fn pid(&self, service: &str) -> Option<u32> {
        self.children.lock().await.get(service).and_then(Child::id)
    }

    /// Sends SIGTERM to every service (dependents first), waits up to
    /// `grace` for each, then kills what is left.
    pub async fn stop(&mut self, grace: Duration) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut children = self.children.lock().await;
        for spec in SERVICES.iter().rev() {
            if let Some(mut child) = children.remove(spec.name) {
                let _ = terminate(spec.name, &mut child, grace).await;
            }
        }
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL.
async fn terminate(
    service: &str,
    child: &mut Child,
    grace: Duration,
) -> anyhow::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        let pid = i32::try_from(pid).context("pid out of range")?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            eprintln!("{service} did not stop within {grace:?}; killing it");
            child.kill().await?;
            Ok(child.wait().await?)
        }
    }
}

/// Reports a child that exits while the system is meant to be up.
async fn watch_child(
    service: &'static str,
    children: Arc<Mutex<BTreeMap<&'static str, Child>>>,
    exits: mpsc::UnboundedSender<Exit>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut guard = children.lock().await;
        let Some(child) = guard.get_mut(service) else {
            return; // Taken by stop().
        };
        match child.try_wait() {
            Ok(None) => continue,
            Ok(Some(status)) => {
                guard.remove(service);
                if !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = exits.send(Exit {
                        service,
                        status: Some(status),
                    });
                }
                return;
            }
            Err(_) => {
                guard.remove(service);
                let _ = exits.send(Exit {
                    service,
                    status: None,
                });
                return;
            }
        }
    }
}

async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    exits: &mut mpsc::UnboundedReceiver<Exit>,
    service: &'static str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let readyz = format!("{url}/readyz");
    loop {
        if let Ok(exit) = exits.try_recv() {
            anyhow::bail!(
                "{} exited while starting ({})",
                exit.service,
                exit.status
                    .map_or("unknown status".into(), |s| s.to_string())
            );
        }
        if let Ok(res) = http
            .get(&readyz)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && res.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{service} was not ready at {readyz} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prometheus `file_sd` JSON: one target group per service, which both a
/// local Prometheus and the mesh's file discovery read.
fn write_targets(path: &Path, services: &[RunningService]) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Group<'a> {
        targets: Vec<String>,
        labels: BTreeMap<&'static str, &'a str>,
    }
    let groups: Vec<Group> = services
        .iter()
        .map(|s| Group {
            targets: vec![s.url.trim_start_matches("http://").to_owned()],
            labels: BTreeMap::from([("service", s.name), ("job", s.name)]),
        })
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&groups)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_database;

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
