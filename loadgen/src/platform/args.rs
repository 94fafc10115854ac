//! Where a system runs, as the command line says it: `--platform` and the
//! settings of its driver. `loadgen run` takes them, and so does `loadgen
//! console`, which hands them on to the runs it starts.

use std::{ffi::OsString, path::PathBuf, sync::Arc};

use clap::{Args, ValueEnum};

use super::{
    ComposeOptions, ComposePlatform, KubernetesOptions, KubernetesPlatform, LocalPlatform, Platform,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlatformKind {
    /// The local launcher: started by this run, or `loadgen up` (give
    /// `--target` and `--control`).
    Local,
    /// `docker compose` (give `--target`).
    Compose,
    /// `kubectl` (give `--target`).
    Kubernetes,
}

/// `--platform` and its driver's settings.
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    /// Where the system runs, for the timeline's scale, crash and restart
    /// events.
    #[arg(long, value_enum, default_value = "local")]
    pub platform: PlatformKind,

    /// The launcher's control API (`loadgen up` prints it), with
    /// `--target` on the local platform.
    #[arg(long, default_value = "http://127.0.0.1:8070")]
    pub control: String,

    /// The services' admin token, for faults and drains. A system this
    /// run starts gets a fresh one.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Compose: the project name (`-p`).
    #[arg(long)]
    pub compose_project: Option<String>,

    /// Compose: the Compose file(s) (`-f`).
    #[arg(long)]
    pub compose_file: Vec<PathBuf>,

    /// Compose and Kubernetes: the DNS name whose addresses are a
    /// service's replicas, `{service}` replaced by its name (default:
    /// `{service}` for Compose, `{service}-headless` for Kubernetes).
    /// Faults and expectations reach every replica through it, so loadgen
    /// must run where that name resolves (inside the network or cluster).
    #[arg(long)]
    pub replica_dns: Option<String>,

    /// Kubernetes: the namespace (`-n`).
    #[arg(long)]
    pub namespace: Option<String>,

    /// Kubernetes: the kubectl context.
    #[arg(long)]
    pub kube_context: Option<String>,
}

impl PlatformArgs {
    /// The driver these flags name.
    pub fn platform(&self) -> Arc<dyn Platform> {
        match self.platform {
            PlatformKind::Local => Arc::new(LocalPlatform::new(
                self.control.clone(),
                self.admin_token.clone(),
            )),
            PlatformKind::Compose => Arc::new(ComposePlatform::new(ComposeOptions {
                project: self.compose_project.clone(),
                files: self.compose_file.clone(),
                admin_token: self.admin_token.clone(),
                host: self
                    .replica_dns
                    .clone()
                    .unwrap_or_else(|| ComposeOptions::default().host),
                ..ComposeOptions::default()
            })),
            PlatformKind::Kubernetes => Arc::new(KubernetesPlatform::new(KubernetesOptions {
                namespace: self.namespace.clone(),
                context: self.kube_context.clone(),
                admin_token: self.admin_token.clone(),
                headless: self
                    .replica_dns
                    .clone()
                    .unwrap_or_else(|| KubernetesOptions::default().headless),
                ..KubernetesOptions::default()
            })),
        }
    }

    /// These flags again, for a `loadgen run` this process starts on the
    /// same platform. The admin token is not among them: arguments show
    /// in `ps`, so the child gets it as `ADMIN_TOKEN`.
    pub fn flags(&self) -> Vec<OsString> {
        let mut flags: Vec<OsString> = vec!["--platform".into(), self.platform.name().into()];
        let mut add = |flag: &str, value: OsString| {
            flags.push(flag.into());
            flags.push(value);
        };
        match self.platform {
            PlatformKind::Local => add("--control", self.control.clone().into()),
            PlatformKind::Compose => {
                if let Some(project) = &self.compose_project {
                    add("--compose-project", project.into());
                }
                for file in &self.compose_file {
                    add("--compose-file", file.into());
                }
            }
            PlatformKind::Kubernetes => {
                if let Some(namespace) = &self.namespace {
                    add("--namespace", namespace.into());
                }
                if let Some(context) = &self.kube_context {
                    add("--kube-context", context.into());
                }
            }
        }
        if let Some(dns) = &self.replica_dns {
            add("--replica-dns", dns.into());
        }
        flags
    }
}

impl PlatformKind {
    /// As `--platform` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Compose => "compose",
            Self::Kubernetes => "kubernetes",
        }
    }
}
