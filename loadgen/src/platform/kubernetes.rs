//! The `kubernetes` driver: `kubectl` against one namespace. Exercised
//! here only against a fake `kubectl` executable that records its
//! arguments (this machine has no cluster); `docs/platforms.md` lists the
//! commands and the naming it assumes.
//!
//! | Operation | Commands |
//! |---|---|
//! | scale | `kubectl [--context C] [-n NS] scale deployment/S --replicas=N`, then `rollout status deployment/S --timeout=Ts` (`statefulset/S` for `nats` and `postgres`) |
//! | crash | `get pods -l app.kubernetes.io/name=S -o name`, pick one, `delete pod <name> --grace-period=0 --force` |
//! | restart | `rollout restart deployment/S`, then `rollout status deployment/S --timeout=Ts` (`statefulset/S` as for scale) |
//! | replicas | resolve the headless service `S-headless` (`S-headless.NS` with a namespace) → `http://pod-ip:port` |
//!
//! A rolling restart is the Deployment's own: Kubernetes takes a pod out
//! of the Service's endpoints once it is terminating and sends SIGTERM;
//! the pods' readiness probe (`/readyz`) gates the next one. The driver
//! does not drain through the admin API there: the platform does it.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    path::PathBuf,
    time::Duration,
};

use super::{
    Platform, PlatformError, PlatformFuture, Replica, Tool, pick, resolve_replicas, service_port,
};

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct KubernetesOptions {
    /// The `kubectl` executable (`kubectl` on `PATH` by default).
    pub kubectl: PathBuf,
    /// `-n`; `None`: the context's namespace.
    pub namespace: Option<String>,
    /// `--context`; `None`: the current one.
    pub context: Option<String>,
    /// The port each service's pods listen on (defaults as for the
    /// launcher: gateway 8080 ... progress 8084).
    pub ports: BTreeMap<String, u16>,
    /// The headless Service whose DNS name lists a service's pods:
    /// `{service}` is replaced by the service's name.
    pub headless: String,
    /// `rollout status --timeout`: how long a scale or a restart may take.
    pub rollout_timeout: Duration,
    /// Services run as StatefulSets rather than Deployments (`nats` and
    /// `postgres` in deploy/k8s): scale and restart name
    /// `statefulset/S` for them, so broker-outage's `scale nats 0` works.
    pub stateful: BTreeSet<String>,
    pub admin_token: Option<String>,
}

impl Default for KubernetesOptions {
    fn default() -> Self {
        Self {
            kubectl: "kubectl".into(),
            namespace: None,
            context: None,
            ports: BTreeMap::new(),
            headless: "{service}-headless".into(),
            rollout_timeout: Duration::from_secs(300),
            stateful: ["nats", "postgres"].map(String::from).into(),
            admin_token: None,
        }
    }
}

/// Drives Deployments in a namespace.
#[derive(Debug, Clone)]
pub struct KubernetesPlatform {
    options: KubernetesOptions,
    kubectl: Tool,
}

impl KubernetesPlatform {
    pub fn new(options: KubernetesOptions) -> Self {
        let mut prefix: Vec<OsString> = Vec::new();
        if let Some(context) = &options.context {
            prefix.extend(["--context".into(), context.into()]);
        }
        if let Some(namespace) = &options.namespace {
            prefix.extend(["-n".into(), namespace.into()]);
        }
        Self {
            kubectl: Tool::new(&options.kubectl, prefix),
            options,
        }
    }

    /// The workload that runs `service`: `deployment/S`, or
    /// `statefulset/S` for the stateful ones.
    fn workload(&self, service: &str) -> String {
        if self.options.stateful.contains(service) {
            format!("statefulset/{service}")
        } else {
            format!("deployment/{service}")
        }
    }

    async fn rollout_status(&self, service: &str) -> Result<(), PlatformError> {
        let timeout = format!(
            "--timeout={}s",
            self.options.rollout_timeout.as_secs().max(1)
        );
        self.kubectl
            .run(&["rollout", "status", &self.workload(service), &timeout])
            .await
            .map(drop)
    }

    /// The DNS name of the service's headless Service, qualified with the
    /// namespace when one is set (loadgen may run in another one).
    fn headless_host(&self, service: &str) -> String {
        let name = self.options.headless.replace("{service}", service);
        match &self.options.namespace {
            Some(ns) if !name.contains('.') => format!("{name}.{ns}"),
            _ => name,
        }
    }
}

impl Platform for KubernetesPlatform {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn admin_token(&self) -> Option<&str> {
        self.options.admin_token.as_deref()
    }

    fn scale<'a>(&'a self, service: &'a str, replicas: usize) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            self.kubectl
                .run(&[
                    "scale",
                    &self.workload(service),
                    &format!("--replicas={replicas}"),
                ])
                .await?;
            self.rollout_status(service).await?;
            Ok(format!("{service} → {replicas} replicas"))
        })
    }

    fn crash<'a>(&'a self, service: &'a str, replica: Option<usize>) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let selector = format!("app.kubernetes.io/name={service}");
            let out = self
                .kubectl
                .run(&["get", "pods", "-l", &selector, "-o", "name"])
                .await?;
            let mut pods: Vec<&str> = out
                .lines()
                .map(str::trim)
                .map(|l| l.strip_prefix("pod/").unwrap_or(l))
                .filter(|p| !p.is_empty())
                .collect();
            // Sorted, so `replica = N` means the same pod to two readers.
            pods.sort_unstable();
            let (_, pod) = pick(service, &pods, replica)?;
            self.kubectl
                .run(&["delete", "pod", pod, "--grace-period=0", "--force"])
                .await?;
            Ok(format!(
                "pod {pod} deleted without grace; its controller starts another"
            ))
        })
    }

    fn restart<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let workload = self.workload(service);
            self.kubectl.run(&["rollout", "restart", &workload]).await?;
            self.rollout_status(service).await?;
            Ok(format!("{workload} rolled out again"))
        })
    }

    fn replicas<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, Vec<Replica>> {
        Box::pin(async move {
            let port = service_port(&self.options.ports, service)?;
            resolve_replicas(&self.headless_host(service), port).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::fake::FakeTool;

    fn platform(fake: &FakeTool) -> KubernetesPlatform {
        KubernetesPlatform::new(KubernetesOptions {
            kubectl: fake.program.clone(),
            namespace: Some("learnsphere".into()),
            context: Some("kind-dev".into()),
            rollout_timeout: Duration::from_secs(120),
            ..KubernetesOptions::default()
        })
    }

    #[tokio::test]
    async fn scale_sets_the_replicas_and_waits_for_the_rollout() {
        let fake = FakeTool::new("kubectl", &[]);
        platform(&fake).scale("payments", 3).await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "--context kind-dev -n learnsphere scale deployment/payments --replicas=3",
                "--context kind-dev -n learnsphere rollout status deployment/payments --timeout=120s",
            ]
        );
    }

    #[tokio::test]
    async fn stateful_services_are_statefulsets() {
        let fake = FakeTool::new("kubectl", &[]);
        let platform = platform(&fake);
        platform.scale("nats", 0).await.unwrap();
        platform.restart("nats").await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "--context kind-dev -n learnsphere scale statefulset/nats --replicas=0",
                "--context kind-dev -n learnsphere rollout status statefulset/nats --timeout=120s",
                "--context kind-dev -n learnsphere rollout restart statefulset/nats",
                "--context kind-dev -n learnsphere rollout status statefulset/nats --timeout=120s",
            ]
        );
    }

    #[tokio::test]
    async fn crash_force_deletes_one_pod_of_the_service() {
        let fake = FakeTool::new(
            "kubectl",
            &[(
                "--context kind-dev -n learnsphere get pods",
                "pod/payments-7d9f-zzz\npod/payments-7d9f-aaa\n",
            )],
        );
        let detail = platform(&fake).crash("payments", Some(0)).await.unwrap();
        assert!(detail.contains("payments-7d9f-aaa"), "{detail}");
        assert_eq!(
            fake.calls(),
            [
                "--context kind-dev -n learnsphere get pods -l app.kubernetes.io/name=payments -o name",
                "--context kind-dev -n learnsphere delete pod payments-7d9f-aaa --grace-period=0 --force",
            ]
        );
    }

    #[tokio::test]
    async fn restart_is_a_rollout_restart_waited_for() {
        let fake = FakeTool::new("kubectl", &[]);
        let detail = platform(&fake).restart("payments").await.unwrap();
        assert_eq!(detail, "deployment/payments rolled out again");
        assert_eq!(
            fake.calls(),
            [
                "--context kind-dev -n learnsphere rollout restart deployment/payments",
                "--context kind-dev -n learnsphere rollout status deployment/payments --timeout=120s",
            ]
        );
    }

    #[tokio::test]
    async fn a_rollout_that_does_not_finish_is_an_error() {
        let fake = FakeTool::new(
            "kubectl",
            &[("fail:--context kind-dev -n learnsphere rollout status", "")],
        );
        let err = platform(&fake)
            .restart("payments")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rollout status deployment/payments --timeout=120s` failed"),
            "{err}"
        );
    }

    #[test]
    fn the_headless_service_is_qualified_with_the_namespace() {
        let fake = FakeTool::new("kubectl", &[]);
        assert_eq!(
            platform(&fake).headless_host("payments"),
            "payments-headless.learnsphere"
        );
        let plain = KubernetesPlatform::new(KubernetesOptions::default());
        assert_eq!(plain.headless_host("payments"), "payments-headless");
    }

    #[tokio::test]
    async fn replicas_resolve_the_headless_name() {
        let platform = KubernetesPlatform::new(KubernetesOptions {
            headless: "localhost".into(),
            ..KubernetesOptions::default()
        });
        let replicas = platform.replicas("courses").await.unwrap();
        assert!(
            replicas
                .iter()
                .any(|r| r.base_url == "http://127.0.0.1:8082"),
            "{replicas:?}"
        );
    }
}
