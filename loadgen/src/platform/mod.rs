//! Where the system under load runs, and what a scenario's timeline can
//! do to it: scale a service, crash one of its replicas, redeploy it
//! replica by replica, and find its replicas (for faults and for the
//! expectations' scrapes).
//!
//! One trait, [`Platform`], three drivers:
//!
//! | Driver | Talks to | Module |
//! |---|---|---|
//! | `local` | the launcher's control API (`loadgen up`, or a system a run started itself) | [`local`] |
//! | `compose` | `docker compose` and `docker` | [`compose`] |
//! | `kubernetes` | `kubectl` | [`kubernetes`] |
//!
//! The trait is object-safe (boxed futures, no `async fn` in the trait),
//! so a run holds an `Arc<dyn Platform>` chosen at run time.
//! `docs/platforms.md` lists exactly what each driver runs.

pub mod args;
pub mod compose;
pub mod faults;
pub mod kubernetes;
pub mod local;

use std::{
    collections::BTreeMap, ffi::OsString, future::Future, net::SocketAddr, path::PathBuf, pin::Pin,
};

pub use self::{
    compose::{ComposeCli, ComposeOptions, ComposePlatform},
    kubernetes::{KubernetesOptions, KubernetesPlatform},
    local::LocalPlatform,
};

/// What a platform operation returns: what was done, for people
/// (`payments → 3 replicas`), or why it failed.
pub type PlatformFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, PlatformError>> + Send + 'a>>;

/// What timeline events and expectations need from wherever the system
/// runs. Every operation names a service the way the platform does
/// (`payments`: the launcher's service, the Compose service, the
/// Deployment).
pub trait Platform: Send + Sync {
    /// `local`, `compose` or `kubernetes`: what `summary.json` reports.
    fn name(&self) -> &'static str;

    /// The bearer token of the services' admin API, if the platform gave
    /// them one (faults and drain need it).
    fn admin_token(&self) -> Option<&str>;

    /// Runs `replicas` replicas of `service`; returns once the platform
    /// says they are there (ready, where the platform can tell).
    fn scale<'a>(&'a self, service: &'a str, replicas: usize) -> PlatformFuture<'a, String>;

    /// Kills one replica of `service` hard, as a crash would (`replica`:
    /// which one, by the platform's order; `None`: any running one). The
    /// platform brings it back; this returns once it is dead.
    fn crash<'a>(&'a self, service: &'a str, replica: Option<usize>) -> PlatformFuture<'a, String>;

    /// A rolling redeploy: one replica at a time taken out of rotation,
    /// stopped gracefully, started again and waited for until ready.
    /// Returns when the last one is back.
    fn restart<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, String>;

    /// Where each running replica of `service` answers `/metrics` and
    /// `/admin/*`, now (replicas added by a scale appear here).
    fn replicas<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, Vec<Replica>>;

    /// The settings `service` was given on top of how it was started
    /// (what [`Platform::configure`] set last; empty at first).
    fn settings<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, BTreeMap<String, String>> {
        Box::pin(async move {
            Err(PlatformError::Unsupported(format!(
                "the {} platform cannot read {service}'s settings",
                self.name()
            )))
        })
    }

    /// Gives `service` these settings on top of how it was started
    /// (replacing those given before), rolled out as a rolling restart;
    /// returns when the last replica is back. Platforms that cannot
    /// change a running service's environment say so.
    fn configure<'a>(
        &'a self,
        service: &'a str,
        env: &'a BTreeMap<String, String>,
    ) -> PlatformFuture<'a, String> {
        let _ = env;
        Box::pin(async move {
            Err(PlatformError::Unsupported(format!(
                "the {} platform cannot change {service}'s environment while it runs",
                self.name()
            )))
        })
    }
}

/// One replica of a service, as a platform names and reaches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Replica {
    /// Stable while the replica lives (`payments-1`, a container id, a
    /// pod IP): expectations key their series by it.
    pub name: String,
    /// `http://host:port`, no trailing slash.
    pub base_url: String,
}

/// Why a platform operation failed. The message is meant for the run's
/// report: it says what was tried and what answered.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform has no such service (or Deployment).
    #[error("no service named {0:?} on this platform")]
    UnknownService(String),
    /// The request makes no sense (`replica` 4 of a 2-replica service).
    #[error("{0}")]
    Invalid(String),
    /// A control API (the launcher's) refused.
    #[error("{operation}: {status} {code}: {message}")]
    Refused {
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A control API could not be reached, or answered nonsense.
    #[error("{operation}: {message}")]
    Unreachable { operation: String, message: String },
    /// A command (`docker`, `kubectl`) could not run or failed.
    #[error("`{command}` {outcome}")]
    Command { command: String, outcome: String },
    /// A replica did not come back, or a name did not resolve.
    #[error("{0}")]
    Failed(String),
    /// The platform cannot do this at all.
    #[error("{0}")]
    Unsupported(String),
}

/// How a driver runs its command-line tool: the program and the
/// arguments every call starts with (`docker compose -p x -f y`).
#[derive(Debug, Clone)]
pub(crate) struct Tool {
    program: PathBuf,
    prefix: Vec<OsString>,
}

impl Tool {
    pub(crate) fn new(program: impl Into<PathBuf>, prefix: Vec<OsString>) -> Self {
        Self {
            program: program.into(),
            prefix,
        }
    }

    /// The command line, for error messages and logs.
    fn describe(&self, args: &[&str]) -> String {
        std::iter::once(self.program.to_string_lossy())
            .chain(self.prefix.iter().map(|a| a.to_string_lossy()))
            .chain(args.iter().map(|a| (*a).into()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs `<program> <prefix> <args>` to completion; its stdout on exit
    /// code 0, else an error with the command line and its stderr.
    pub(crate) async fn run(&self, args: &[&str]) -> Result<String, PlatformError> {
        let command = self.describe(args);
        tracing::debug!(%command, "running");
        let output = tokio::process::Command::new(&self.program)
            .args(&self.prefix)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| PlatformError::Command {
                command: command.clone(),
                outcome: format!("could not start: {e}"),
            })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(PlatformError::Command {
            command,
            outcome: format!("failed ({}): {}", output.status, stderr.trim()),
        })
    }
}

/// Every address `host` resolves to, as `http://ip:port` replicas named
/// by their IP. Compose (`--scale`) and Kubernetes (headless services)
/// publish one A record per replica under one name.
pub(crate) async fn resolve_replicas(host: &str, port: u16) -> Result<Vec<Replica>, PlatformError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| PlatformError::Failed(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut replicas: Vec<Replica> = addrs
        .into_iter()
        .map(|addr| Replica {
            name: addr.ip().to_string(),
            base_url: format!("http://{addr}"),
        })
        .collect();
    replicas.sort();
    replicas.dedup();
    Ok(replicas)
}

/// The port `service` listens on inside its container or pod: the one in
/// `ports`, else the launcher's default for it (8080–8084, as the
/// container images use).
pub(crate) fn service_port(
    ports: &std::collections::BTreeMap<String, u16>,
    service: &str,
) -> Result<u16, PlatformError> {
    ports
        .get(service)
        .copied()
        .or_else(|| {
            launcher::services::SERVICES
                .iter()
                .find(|s| s.name == service)
                .map(|s| s.default_port)
        })
        .ok_or_else(|| {
            PlatformError::Invalid(format!(
                "no port known for {service:?}: give it in the platform's ports"
            ))
        })
}

/// Picks the replica to crash among `running` (platform order): the one
/// asked for, or a random one.
pub(crate) fn pick<T: Clone>(
    service: &str,
    running: &[T],
    replica: Option<usize>,
) -> Result<(usize, T), PlatformError> {
    if running.is_empty() {
        return Err(PlatformError::Failed(format!(
            "{service} has no running replica to crash"
        )));
    }
    let index = match replica {
        Some(i) if i < running.len() => i,
        Some(i) => {
            return Err(PlatformError::Invalid(format!(
                "{service} has {} running replicas; there is no replica {i}",
                running.len()
            )));
        }
        None => rand::random_range(0..running.len()),
    };
    Ok((index, running[index].clone()))
}

#[cfg(test)]
pub(crate) mod fake {
    //! A stand-in for `docker` and `kubectl`: a shell script that records
    //! each call's arguments, one line per call, and prints canned output
    //! chosen by the first arguments that match.

    use std::{os::unix::fs::PermissionsExt as _, path::PathBuf};

    pub(crate) struct FakeTool {
        pub(crate) dir: tempfile::TempDir,
        pub(crate) program: PathBuf,
    }

    impl FakeTool {
        /// `answers`: (argument prefix, stdout) pairs, tried in order;
        /// a prefix `fail:<args>` makes those calls exit 1.
        pub(crate) fn new(name: &str, answers: &[(&str, &str)]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("calls.log");
            let mut script = format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in\n",
                log.display()
            );
            for (prefix, out) in answers {
                match prefix.strip_prefix("fail:") {
                    Some(p) => {
                        script.push_str(&format!("  \"{p}\"*) echo 'boom: {p}' >&2; exit 1 ;;\n"))
                    }
                    None => script.push_str(&format!("  \"{prefix}\"*) printf '%s' '{out}' ;;\n")),
                }
            }
            script.push_str("esac\n");
            let program = dir.path().join(name);
            std::fs::write(&program, script).unwrap();
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
            Self { dir, program }
        }

        /// Every call so far, its arguments joined by spaces.
        pub(crate) fn calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("calls.log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_command_says_what_ran_and_what_it_said() {
        let fake = fake::FakeTool::new("docker", &[("fail:compose ps", "")]);
        let tool = Tool::new(&fake.program, vec!["compose".into()]);
        let err = tool.run(&["ps", "-q", "payments"]).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("compose ps -q payments"), "{message}");
        assert!(message.contains("boom: compose ps"), "{message}");
        let missing = Tool::new("/nonexistent/docker", vec![]);
        let message = missing.run(&["ps"]).await.unwrap_err().to_string();
        assert!(message.contains("could not start"), "{message}");
    }

    #[test]
    fn picking_a_replica_checks_the_index() {
        let running = ["a", "b"];
        assert_eq!(pick("payments", &running, Some(1)).unwrap(), (1, "b"));
        let err = pick("payments", &running, Some(2)).unwrap_err().to_string();
        assert!(err.contains("2 running replicas"), "{err}");
        assert!(pick::<&str>("payments", &[], None).is_err());
        let (i, name) = pick("payments", &running, None).unwrap();
        assert_eq!(running[i], name);
    }

    #[tokio::test]
    async fn names_resolve_to_one_replica_per_address() {
        let replicas = resolve_replicas("127.0.0.1", 8083).await.unwrap();
        assert_eq!(
            replicas,
            [Replica {
                name: "127.0.0.1".into(),
                base_url: "http://127.0.0.1:8083".into()
            }]
        );
        assert!(resolve_replicas("no-such-host.invalid", 1).await.is_err());
    }
}
