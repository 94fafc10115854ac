//! [`System`]: the handle to a launched system. It starts the event bus,
//! the databases and every replica in dependency order, and answers for
//! them until it is stopped (or dropped).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::ExitStatus,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::{
    broker, control, nats,
    options::{
        Databases, LaunchOptions, Logs, check_jwt_secret, create_private_dir, events_prefix,
        random_jwt_secret,
    },
    postgres::{create_postgres_database, with_database},
    status::{ControlError, Exit, ReplicaInfo, Restarted, RunningService, Scaled, ServiceStatus},
    supervisor::{Signal, Supervisor},
};
use crate::services::{SERVICES, check_replicas, spec_named};

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

/// The services' `EVENTS_PREFIX`: the one given, else our own (inherited
/// by the children), else a digest of where the system's data lives.
fn events_prefix_of(options: &LaunchOptions) -> String {
    match (
        options.env.get("EVENTS_PREFIX"),
        std::env::var("EVENTS_PREFIX"),
    ) {
        (Some(p), _) => p.clone(),
        (None, Ok(p)) if !p.is_empty() => p,
        _ => events_prefix(&options.databases),
    }
}

/// The secret every replica signs and checks tokens with: the one given
/// (checked), else a random one. Never the development default the
/// services fall back on: with it, anyone who has read the source can
/// sign in as anyone.
fn jwt_secret_of(options: &mut LaunchOptions) -> anyhow::Result<String> {
    match options
        .jwt_secret
        .take()
        .or_else(|| options.env.remove("JWT_SECRET"))
    {
        Some(given) => {
            check_jwt_secret(&given)?;
            Ok(given)
        }
        None => Ok(random_jwt_secret()),
    }
}

/// Each service's `DATABASE_URL`, its database created (a SQLite file in
/// a private directory, or a PostgreSQL database of the system's own).
async fn create_databases(databases: &Databases) -> anyhow::Result<BTreeMap<&'static str, String>> {
    let mut urls = BTreeMap::new();
    for spec in SERVICES.iter().filter(|s| s.database) {
        let url = match databases {
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
        urls.insert(spec.name, url);
    }
    Ok(urls)
}

/// Each service's NATS user and password, on a bus the system runs
/// itself (none on the user's own bus).
fn nats_credentials(server: Option<&nats::NatsServer>) -> BTreeMap<&'static str, (String, String)> {
    let Some(server) = server else {
        return BTreeMap::new();
    };
    nats::ACCOUNTS
        .iter()
        .filter_map(|a| {
            let (user, password) = server.passwords.credentials_of(a.service)?;
            Some((a.service, (user.to_owned(), password.to_owned())))
        })
        .collect()
}

/// What the control API takes as a bearer token: the services' admin
/// token, or one of its own for a system without an admin API.
fn control_token_of(options: &LaunchOptions) -> String {
    options
        .admin_token
        .clone()
        .or_else(|| options.env.get("ADMIN_TOKEN").cloned())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 24]>()))
}

impl System {
    /// Starts every service, in dependency order, each replica waited for
    /// until its `/readyz` answers 200; then supervises them in the
    /// background until [`System::stop`] (or drop).
    pub async fn start(mut options: LaunchOptions) -> anyhow::Result<Self> {
        let prefix = events_prefix_of(&options);
        options.env.insert("EVENTS_PREFIX".into(), prefix.clone());
        let (nats_url, nats_server) = event_bus(&options, &prefix).await?;
        // The services reach NATS through a proxy the control API can take
        // down (`scale nats`): a broker outage without stopping a server
        // other systems may share.
        let broker = broker::BrokerProxy::start(broker::upstream_of(&nats_url))
            .await
            .context("starting the NATS proxy")?;
        options.env.insert("NATS_URL".into(), broker.url());
        options.jwt_secret = Some(jwt_secret_of(&mut options)?);
        let exe = match &options.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("locating the loadgen executable")?,
        };
        for (service, count) in &options.replicas {
            spec_named(service).map_err(anyhow::Error::msg)?;
            check_replicas(*count).map_err(|e| anyhow::anyhow!("{service}: {e}"))?;
        }
        let databases = create_databases(&options.databases).await?;
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
        let (supervisor, exits) = Supervisor::new(
            &options,
            exe,
            databases,
            targets_file,
            control_addr,
            Some(broker),
            nats_credentials(nats_server.as_ref()),
        );
        // Anything that can reach the control API could otherwise stop
        // the system: it takes the services' admin token, or, for a system
        // without an admin API, one of its own ([`System::control_token`]).
        let control_token = control_listener
            .as_ref()
            .map(|_| control_token_of(&options));
        let control = match (control_listener, &control_token) {
            (Some(listener), Some(token)) => Some(control::ControlServer::spawn(
                listener,
                supervisor.clone(),
                token
                    .parse()
                    .map_err(|e| anyhow::anyhow!("the admin token: {e}"))?,
                options.control_extension.clone().unwrap_or_default(),
            )?),
            _ => None,
        };
        let mut system = Self {
            services: Vec::new(),
            supervisor,
            exits,
            control,
            control_token,
            nats_url,
            nats_server,
            events_prefix: prefix,
            delete_streams_on_stop: options.delete_streams_on_stop,
        };
        if let Err(error) = system.start_services(&options).await {
            system.stop(Duration::from_secs(5)).await;
            return Err(error);
        }
        Ok(system)
    }

    /// Starts every service's replicas, dependencies first, and notes
    /// replica 0 of each as it was started.
    async fn start_services(&mut self, options: &LaunchOptions) -> anyhow::Result<()> {
        for spec in SERVICES {
            let desired = options.replicas.get(spec.name).copied().unwrap_or(1);
            let indices: Vec<usize> = (0..desired).collect();
            self.supervisor.start_replicas(spec.name, &indices).await?;
            let first = self
                .supervisor
                .replica_infos(spec.name)
                .into_iter()
                .next()
                .context("replica 0 vanished while starting")?;
            self.services.push(RunningService {
                name: spec.name,
                url: first.url,
                port: self.supervisor.port_of(spec.name, 0).unwrap_or_default(),
                pid: first.pid.unwrap_or_default(),
                database: self
                    .supervisor
                    .databases
                    .get(spec.name)
                    .map(|url| mesh::db::describe_url(url)),
            });
        }
        Ok(())
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
