//! How a replica's process is started: `<exe> serve <service>` with its
//! port, its dependencies' URLs, and an environment of its own (secrets in
//! the environment, never in the arguments), its output prefixed or in a
//! file.

use std::process::Stdio;

use anyhow::Context as _;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
};

use super::registry::{Supervisor, replica_label};
use crate::services::spec;
use crate::{
    options::{Discovery, Logs},
    status::ReplicaState,
};

impl Supervisor {
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
    pub(super) fn spawn_child(
        &self,
        service: &'static str,
        replica: usize,
        port: u16,
    ) -> anyhow::Result<Child> {
        let label = replica_label(service, replica);
        let mut child = self
            .command(service, replica, port)?
            .spawn()
            .with_context(|| format!("starting {label}"))?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pipe_lines(label.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pipe_lines(label, err));
        }
        Ok(child)
    }

    /// The command that starts one replica: its arguments, and the
    /// environment it gets on top of the launcher's own, which it inherits
    /// whole. That is how the OpenTelemetry settings reach every service,
    /// the same for log records as for spans (`OTEL_EXPORTER_OTLP_*`,
    /// `OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER`, ...): the launch
    /// options' and the overrides' win over the inherited ones, and only
    /// what must differ per process is taken out (`OTEL_SERVICE_NAME`, the
    /// `service.instance.id` in `OTEL_RESOURCE_ATTRIBUTES`).
    fn command(&self, service: &'static str, replica: usize, port: u16) -> anyhow::Result<Command> {
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
            // Dropping the handle kills the child; a launcher that dies
            // without dropping it (SIGKILL, a test process cut short) is
            // noticed by the child itself (`loadgen serve`).
            .env(crate::LAUNCHER_PID_VAR, std::process::id().to_string())
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
        Ok(cmd)
    }
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

async fn pipe_lines(label: String, stream: impl AsyncRead + Unpin + Send + 'static) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{label:>11} | {line}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsStr;

    use super::*;
    use crate::options::LaunchOptions;

    /// Log records go where spans go: every OpenTelemetry setting the
    /// launch options give reaches the replica as given, logs' as spans',
    /// and none inherited from the launcher is taken out but the service's
    /// name (each names itself).
    #[test]
    fn a_replica_gets_the_otlp_settings_for_logs_as_for_spans() {
        let mut options = LaunchOptions::local("unused");
        options.env = BTreeMap::from([
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                "http://collector:4317".into(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "grpc".into()),
            ("OTEL_TRACES_EXPORTER".into(), "otlp".into()),
            ("OTEL_LOGS_EXPORTER".into(), "otlp".into()),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT".into(),
                "http://logs:4317".into(),
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES".into(),
                "deployment.environment.name=test,service.instance.id=x".into(),
            ),
        ]);
        let (supervisor, _exits) = Supervisor::new(
            &options,
            "loadgen".into(),
            BTreeMap::new(),
            None,
            None,
            None,
            BTreeMap::new(),
        );
        let command = supervisor
            .command("payments", 1, 40_000)
            .expect("a command");
        let env: BTreeMap<&OsStr, Option<&OsStr>> = command.as_std().get_envs().collect();
        let given = |name: &str| env.get(OsStr::new(name)).copied().flatten();

        for (name, value) in &options.env {
            if name != "OTEL_RESOURCE_ATTRIBUTES" {
                assert_eq!(given(name), Some(OsStr::new(value)), "{name}");
            }
        }
        assert_eq!(
            given("OTEL_RESOURCE_ATTRIBUTES"),
            Some(OsStr::new("deployment.environment.name=test")),
            "each process makes its own instance id"
        );
        let removed: Vec<&OsStr> = env
            .iter()
            .filter(|(name, value)| name.to_string_lossy().starts_with("OTEL_") && value.is_none())
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(
            removed,
            [OsStr::new("OTEL_SERVICE_NAME")],
            "the launcher's own OTEL_* settings are inherited, the service name aside"
        );
    }
}
