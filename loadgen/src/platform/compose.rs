//! The `compose` driver: `docker compose` (or the standalone
//! `docker-compose`) for the project, `docker` for single containers. The
//! unit tests below run it against a fake `docker` that records its
//! arguments; `scripts/compose-smoke` runs it against a real project
//! (`docs/compose.md`). `docs/platforms.md` lists the commands.
//!
//! | Operation | Commands |
//! |---|---|
//! | scale | `docker compose [-p P] [-f F]... up -d --no-recreate --scale S=N S` |
//! | crash | `docker compose ... ps -q S`, pick one, `docker kill <id>`, then `docker start <id>` |
//! | restart | per container of `ps -q S`: `docker inspect` (address), `POST /admin/drain`, wait the drain period, `docker restart -t <grace> <id>`, `docker inspect` until healthy (or running, without a healthcheck) |
//! | replicas | resolve `S` (one A record per replica inside the Compose network) → `http://ip:port`; where `S` does not resolve (loadgen on the Docker host), `docker ps` of the service's containers and `docker inspect` of their addresses |
//!
//! Compose v2 is the `docker compose` plugin; Debian and Ubuntu still
//! package v1, the standalone `docker-compose`, which takes the same
//! arguments for everything above. [`ComposeCli::Detect`] asks `docker
//! compose version` once and falls back to `docker-compose`.
//!
//! Docker treats `docker kill` as a deliberate stop: no restart policy
//! applies afterwards (moby/moby#21359). A crash is a replica the
//! orchestrator brings back, so the driver starts it again itself.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tokio::sync::OnceCell;

use super::faults::AdminClient;
use super::{
    Platform, PlatformError, PlatformFuture, Replica, Tool, pick, resolve_replicas, service_port,
};

/// Which Compose runs the project's commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeCli {
    /// `docker compose` if the plugin answers `docker compose version`,
    /// else `docker-compose` on `PATH`.
    Detect,
    /// `docker compose`: Compose v2, the Docker CLI plugin.
    Plugin,
    /// A standalone executable: `docker-compose` (Compose v1, or v2
    /// installed standalone).
    Standalone(PathBuf),
}

/// How to reach the Compose project.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// The `docker` executable (`docker` on `PATH` by default).
    pub docker: PathBuf,
    /// Which Compose to run (default: detect).
    pub cli: ComposeCli,
    /// `-p`: the project name; `None`: Compose's default (the directory).
    pub project: Option<String>,
    /// `-f`, in order; empty: Compose's default file.
    pub files: Vec<PathBuf>,
    /// The port each service listens on inside the network (defaults:
    /// gateway 8080, users 8081, courses 8082, payments 8083, progress 8084).
    pub ports: BTreeMap<String, u16>,
    /// The host name a service's replicas resolve under: `{service}` is
    /// replaced by the service's name. Compose's DNS answers the service
    /// name with every replica, inside the project's network.
    pub host: String,
    /// How long a drained container keeps serving before it is stopped:
    /// the services' discovery refresh (2 s) and a margin.
    pub drain_period: Duration,
    /// `docker restart -t`: how long a container may take to stop.
    pub stop_grace: Duration,
    /// How long a restarted container may take to be healthy.
    pub ready_timeout: Duration,
    pub admin_token: Option<String>,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        Self {
            docker: "docker".into(),
            cli: ComposeCli::Detect,
            project: None,
            files: Vec::new(),
            ports: BTreeMap::new(),
            host: "{service}".into(),
            drain_period: Duration::from_secs(3),
            stop_grace: Duration::from_secs(15),
            ready_timeout: Duration::from_secs(60),
            admin_token: None,
        }
    }
}

/// Drives a Compose project.
#[derive(Debug)]
pub struct ComposePlatform {
    options: ComposeOptions,
    /// `docker compose -p P -f F` or `docker-compose -p P -f F`, once known.
    compose: OnceCell<Tool>,
    docker: Tool,
    admin: AdminClient,
    /// Set once the service names did not resolve here: loadgen runs
    /// outside the project's network, and Docker lists the replicas.
    names_unresolved: AtomicBool,
}

/// What `docker inspect` says about a container.
#[derive(Debug, PartialEq)]
struct ContainerState {
    /// `running`, `exited`, `restarting`, ...
    status: String,
    /// `healthy`, `starting`, `unhealthy`; empty without a healthcheck.
    health: String,
    /// Its address on each network it is attached to.
    ips: Vec<String>,
}

impl ContainerState {
    /// `docker inspect --format` with [`INSPECT_FORMAT`]:
    /// `running healthy 172.18.0.5 `.
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let status = words.next()?.to_owned();
        let rest: Vec<&str> = words.collect();
        let (health, ips) = match rest.first() {
            Some(&h) if ["healthy", "unhealthy", "starting", "none"].contains(&h) => {
                (h.to_owned(), &rest[1..])
            }
            _ => (String::new(), &rest[..]),
        };
        Some(Self {
            status,
            health,
            ips: ips.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// Healthy, or running when the image has no healthcheck.
    fn ready(&self) -> bool {
        self.status == "running" && (self.health.is_empty() || self.health == "healthy")
    }
}

/// Status, health (if the container has a healthcheck) and addresses, on one line.
const INSPECT_FORMAT: &str = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}";

impl ComposePlatform {
    pub fn new(options: ComposeOptions) -> Self {
        Self {
            compose: OnceCell::new(),
            docker: Tool::new(&options.docker, Vec::new()),
            admin: AdminClient::new(options.admin_token.clone()),
            names_unresolved: AtomicBool::new(false),
            options,
        }
    }

    /// The Compose command with the project's `-p` and `-f`, the CLI
    /// detected on first use.
    async fn compose(&self) -> &Tool {
        self.compose
            .get_or_init(|| async {
                let (program, mut prefix): (PathBuf, Vec<OsString>) = match &self.options.cli {
                    ComposeCli::Plugin => (self.options.docker.clone(), vec!["compose".into()]),
                    ComposeCli::Standalone(program) => (program.clone(), Vec::new()),
                    ComposeCli::Detect => {
                        if self.docker.run(&["compose", "version"]).await.is_ok() {
                            (self.options.docker.clone(), vec!["compose".into()])
                        } else {
                            tracing::info!(
                                "`docker compose` is not installed; using docker-compose"
                            );
                            ("docker-compose".into(), Vec::new())
                        }
                    }
                };
                if let Some(project) = &self.options.project {
                    prefix.extend(["-p".into(), project.into()]);
                }
                for file in &self.options.files {
                    prefix.extend(["-f".into(), file.into()]);
                }
                Tool::new(program, prefix)
            })
            .await
    }

    /// The service's container ids, as `docker compose ps -q` lists them.
    async fn containers(&self, service: &str) -> Result<Vec<String>, PlatformError> {
        let out = self.compose().await.run(&["ps", "-q", service]).await?;
        Ok(lines(&out))
    }

    /// Each running replica's address, from Docker rather than DNS: for
    /// loadgen on the Docker host, where the service names do not resolve
    /// but the containers' addresses are routed (Linux; not Docker
    /// Desktop's VM). `docker ps` (the Compose labels, not `compose ps`:
    /// this runs on every scrape, and Compose v1 is a slow Python start).
    async fn replicas_from_docker(
        &self,
        service: &str,
        port: u16,
    ) -> Result<Vec<Replica>, PlatformError> {
        let mut args = vec![
            "ps".to_owned(),
            "-q".into(),
            "--filter".into(),
            format!("label=com.docker.compose.service={service}"),
        ];
        if let Some(project) = &self.options.project {
            args.extend([
                "--filter".into(),
                format!("label=com.docker.compose.project={project}"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ids = lines(&self.docker.run(&args).await?);
        let mut replicas = Vec::new();
        for id in &ids {
            let state = self.inspect(id).await?;
            if state.status != "running" {
                continue;
            }
            if let Some(ip) = state.ips.first() {
                replicas.push(Replica {
                    name: ip.clone(),
                    base_url: format!("http://{ip}:{port}"),
                });
            }
        }
        replicas.sort();
        Ok(replicas)
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, PlatformError> {
        let out = self
            .docker
            .run(&["inspect", "--format", INSPECT_FORMAT, id])
            .await?;
        ContainerState::parse(&out).ok_or_else(|| {
            PlatformError::Failed(format!("cannot read `docker inspect` of {id}: {out:?}"))
        })
    }

    /// Polls `docker inspect` until the container is ready.
    async fn wait_ready(&self, id: &str) -> Result<(), PlatformError> {
        let deadline = tokio::time::Instant::now() + self.options.ready_timeout;
        loop {
            let state = self.inspect(id).await?;
            if state.ready() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PlatformError::Failed(format!(
                    "container {id} was not healthy within {:?} after its restart ({} {})",
                    self.options.ready_timeout, state.status, state.health
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One container's turn in a rolling restart.
    async fn restart_one(&self, service: &str, id: &str) -> Result<(), PlatformError> {
        let port = service_port(&self.options.ports, service)?;
        let state = self.inspect(id).await?;
        // Without an admin token or an address there is nothing to drain
        // through: `docker restart` still stops it gracefully (SIGTERM).
        if let Some(ip) = state.ips.first() {
            if let Err(error) = self.admin.drain(&format!("http://{ip}:{port}")).await {
                tracing::warn!(service, container = id, %error, "could not drain before the restart");
            }
            tokio::time::sleep(self.options.drain_period).await;
        }
        let grace = self.options.stop_grace.as_secs().max(1).to_string();
        self.docker.run(&["restart", "-t", &grace, id]).await?;
        self.wait_ready(id).await
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The non-empty lines of a command's output: container ids.
fn lines(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Platform for ComposePlatform {
    fn name(&self) -> &'static str {
        "compose"
    }

    fn admin_token(&self) -> Option<&str> {
        self.options.admin_token.as_deref()
    }

    fn scale<'a>(&'a self, service: &'a str, replicas: usize) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let scale = format!("{service}={replicas}");
            self.compose()
                .await
                .run(&["up", "-d", "--no-recreate", "--scale", &scale, service])
                .await?;
            Ok(format!("{service} → {replicas} replicas"))
        })
    }

    fn crash<'a>(&'a self, service: &'a str, replica: Option<usize>) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let containers = self.containers(service).await?;
            let (index, id) = pick(service, &containers, replica)?;
            self.docker.run(&["kill", &id]).await?;
            self.docker.run(&["start", &id]).await?;
            Ok(format!(
                "{service} container {} (#{index}) killed and started again",
                short(&id)
            ))
        })
    }

    fn restart<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let containers = self.containers(service).await?;
            if containers.is_empty() {
                return Err(PlatformError::Failed(format!(
                    "{service} has no containers"
                )));
            }
            for id in &containers {
                self.restart_one(service, id).await?;
            }
            Ok(format!(
                "{service}: {} containers restarted one by one",
                containers.len()
            ))
        })
    }

    fn replicas<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, Vec<Replica>> {
        Box::pin(async move {
            let port = service_port(&self.options.ports, service)?;
            if self.names_unresolved.load(Ordering::Relaxed) {
                return self.replicas_from_docker(service, port).await;
            }
            let host = self.options.host.replace("{service}", service);
            match resolve_replicas(&host, port).await {
                Ok(replicas) => Ok(replicas),
                Err(dns) => match self.replicas_from_docker(service, port).await {
                    Ok(replicas) => {
                        tracing::info!(%host, "service names do not resolve here: replicas come from docker inspect");
                        self.names_unresolved.store(true, Ordering::Relaxed);
                        Ok(replicas)
                    }
                    Err(docker) => Err(PlatformError::Failed(format!(
                        "{dns}; and from Docker: {docker}"
                    ))),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::fake::FakeTool;

    fn platform(fake: &FakeTool) -> ComposePlatform {
        ComposePlatform::new(ComposeOptions {
            docker: fake.program.clone(),
            cli: ComposeCli::Plugin,
            project: Some("learnsphere".into()),
            files: vec!["deploy/compose.yaml".into()],
            host: "localhost".into(),
            drain_period: Duration::ZERO,
            ..ComposeOptions::default()
        })
    }

    #[tokio::test]
    async fn scale_runs_compose_up_with_the_project_and_files() {
        let fake = FakeTool::new("docker", &[]);
        let detail = platform(&fake).scale("payments", 3).await.unwrap();
        assert_eq!(detail, "payments → 3 replicas");
        assert_eq!(
            fake.calls(),
            [
                "compose -p learnsphere -f deploy/compose.yaml up -d --no-recreate --scale payments=3 payments"
            ]
        );
    }

    #[tokio::test]
    async fn crash_kills_the_chosen_container_and_starts_it_again() {
        let fake = FakeTool::new("docker", &[("compose -p learnsphere", "aaa111\nbbb222\n")]);
        let detail = platform(&fake).crash("payments", Some(1)).await.unwrap();
        assert_eq!(
            detail,
            "payments container bbb222 (#1) killed and started again"
        );
        assert_eq!(
            fake.calls(),
            [
                "compose -p learnsphere -f deploy/compose.yaml ps -q payments",
                "kill bbb222",
                "start bbb222",
            ]
        );
        let err = platform(&fake)
            .crash("payments", Some(2))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("2 running replicas"), "{err}");
    }

    #[tokio::test]
    async fn restart_goes_container_by_container_and_waits_for_health() {
        let fake = FakeTool::new(
            "docker",
            &[
                ("compose", "aaa111\nbbb222\n"),
                // No admin token here: the drain is skipped with a
                // warning, and the restart goes on.
                ("inspect", "running healthy 127.0.0.1 \n"),
            ],
        );
        let detail = platform(&fake).restart("payments").await.unwrap();
        assert_eq!(detail, "payments: 2 containers restarted one by one");
        let inspect = format!("inspect --format {INSPECT_FORMAT}");
        assert_eq!(
            fake.calls(),
            [
                "compose -p learnsphere -f deploy/compose.yaml ps -q payments".to_owned(),
                format!("{inspect} aaa111"),
                "restart -t 15 aaa111".into(),
                format!("{inspect} aaa111"),
                format!("{inspect} bbb222"),
                "restart -t 15 bbb222".into(),
                format!("{inspect} bbb222"),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_restart_stops_the_rollout() {
        let fake = FakeTool::new(
            "docker",
            &[
                ("compose", "aaa111\nbbb222\n"),
                ("inspect", "running  \n"),
                ("fail:restart", ""),
            ],
        );
        let err = platform(&fake)
            .restart("payments")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("restart -t 15 aaa111` failed"), "{err}");
        assert!(!fake.calls().iter().any(|c| c.contains("bbb222")));
    }

    #[tokio::test]
    async fn replicas_are_the_addresses_the_service_name_resolves_to() {
        let fake = FakeTool::new("docker", &[]);
        let replicas = platform(&fake).replicas("payments").await.unwrap();
        assert!(
            replicas
                .iter()
                .any(|r| r.base_url == "http://127.0.0.1:8083"),
            "{replicas:?}"
        );
        assert!(fake.calls().is_empty(), "no docker call needed");
    }

    #[tokio::test]
    async fn detect_uses_the_plugin_when_docker_compose_answers() {
        let fake = FakeTool::new("docker", &[]);
        let platform = ComposePlatform::new(ComposeOptions {
            docker: fake.program.clone(),
            project: Some("learnsphere".into()),
            ..ComposeOptions::default()
        });
        platform.scale("payments", 2).await.unwrap();
        platform.scale("payments", 3).await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "compose version",
                "compose -p learnsphere up -d --no-recreate --scale payments=2 payments",
                "compose -p learnsphere up -d --no-recreate --scale payments=3 payments",
            ],
            "asked once"
        );
    }

    #[tokio::test]
    async fn a_standalone_docker_compose_takes_the_same_arguments() {
        let compose = FakeTool::new("docker-compose", &[("-p learnsphere", "aaa111\n")]);
        let docker = FakeTool::new("docker", &[]);
        let platform = ComposePlatform::new(ComposeOptions {
            docker: docker.program.clone(),
            cli: ComposeCli::Standalone(compose.program.clone()),
            project: Some("learnsphere".into()),
            files: vec!["docker-compose.yml".into()],
            ..ComposeOptions::default()
        });
        platform.crash("payments", Some(0)).await.unwrap();
        assert_eq!(
            compose.calls(),
            ["-p learnsphere -f docker-compose.yml ps -q payments"]
        );
        assert_eq!(docker.calls(), ["kill aaa111", "start aaa111"]);
    }

    #[tokio::test]
    async fn replicas_come_from_docker_where_the_names_do_not_resolve() {
        let fake = FakeTool::new(
            "docker",
            &[
                ("ps -q", "aaa111\nbbb222\n"),
                (
                    "inspect --format {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}} aaa111",
                    "running healthy 172.18.0.7 \n",
                ),
                ("inspect", "running healthy 172.18.0.9 \n"),
            ],
        );
        let platform = ComposePlatform::new(ComposeOptions {
            docker: fake.program.clone(),
            cli: ComposeCli::Plugin,
            project: Some("learnsphere".into()),
            host: "{service}.invalid".into(),
            ..ComposeOptions::default()
        });
        let replicas = platform.replicas("payments").await.unwrap();
        let urls: Vec<&str> = replicas.iter().map(|r| r.base_url.as_str()).collect();
        assert_eq!(urls, ["http://172.18.0.7:8083", "http://172.18.0.9:8083"]);
        assert_eq!(
            fake.calls()[0],
            "ps -q --filter label=com.docker.compose.service=payments --filter label=com.docker.compose.project=learnsphere"
        );
        // Known now: no second DNS attempt, straight to Docker.
        platform.replicas("payments").await.unwrap();
        assert_eq!(fake.calls().len(), 6);
    }

    #[test]
    fn inspect_output_parses_with_and_without_a_healthcheck() {
        let state = ContainerState::parse("running healthy 172.18.0.5 10.0.0.2 ").unwrap();
        assert!(state.ready());
        assert_eq!(state.ips, ["172.18.0.5", "10.0.0.2"]);
        let state = ContainerState::parse("running  172.18.0.5 ").unwrap();
        assert!(state.ready(), "no healthcheck: running is enough");
        assert!(
            !ContainerState::parse("running starting 172.18.0.5")
                .unwrap()
                .ready()
        );
        assert!(!ContainerState::parse("restarting  ").unwrap().ready());
        assert!(ContainerState::parse("").is_none());
    }
}
