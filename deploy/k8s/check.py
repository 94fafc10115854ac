#!/usr/bin/env python3
"""Static checks of the Kubernetes manifests (deploy/k8s). No cluster needed.

    python3 deploy/k8s/check.py [--root DIR] [--skip-validate] [--self-test]

What it does (exit 1 if anything fails, each failure on its own line):

1. Renders every overlay with `kubectl kustomize`: overlays/dev,
   overlays/production-like, production-like with the
   components/autoscale-requests-per-second component, and loadgen/ (the
   scenario Job template), plus base/ alone for the Secret check.
2. Validates every rendered object with `kubernetes-validate --strict`
   against Kubernetes KUBERNETES_VERSION (unknown fields are errors).
3. Asserts the promises the manifests make, on the rendered objects:
   - every workload (Deployment, StatefulSet, the CronJob's pod) has
     requests and limits for CPU and memory, runs as non-root with seccomp
     RuntimeDefault, no privilege escalation, a read-only root filesystem
     and every capability dropped, no host namespaces or hostPath; every
     long-running one has readiness and liveness probes whose ports exist;
   - each LearnSphere service: readiness on /readyz, liveness on /healthz,
     a preStop that POSTs /admin/drain, topology spread across nodes, a
     PodDisruptionBudget, a ClusterIP Service and a headless Service
     `<name>-headless` selecting its pods on its port, the Prometheus
     scrape annotations on that port; the URLs services call each other by
     are the headless names (the mesh balances over every pod);
   - Prometheus discovers pods (kubernetes_sd_configs, role pod) with a
     ServiceAccount allowed to list and watch pods; every pod that asks to
     be scraped names a port it has; jobs are named as in Compose;
   - Loki runs the shared config (observability/loki.yml, ConfigMap
     loki-config) with a writable volume where that config keeps its data,
     readiness on /ready, Compose's memory limit with GOMEMLIMIT below it,
     and a Service on the port the Collector's logs exporter and Grafana's
     Loki datasource use; the Collector's logs pipeline ends in an exporter
     to that Service;
   - every image is pinned: third-party ones to the very versions Compose
     runs, LearnSphere's to the workspace version; none is `latest`;
   - no Secret in base/ holds anything but a CHANGE-ME placeholder, and
     production-like ships no Secret at all; every secret, ConfigMap and
     ServiceAccount a pod refers to exists in the same render (the
     loadgen Job's Secret excepted: the overlay provides it);
   - the dashboards, the Prometheus rules, the Collector, Jaeger, Loki and
     Grafana provisioning configs, and the PostgreSQL init script are
     byte for byte the files Compose mounts (generated from them, not
     copied), every dashboard is provisioned, and no copy of them sits
     under deploy/k8s;
   - the HPAs of production-like scale users and payments, whose
     Deployments leave `replicas` to them and request CPU;
   - the namespace enforces the `restricted` Pod Security Standard and the
     ingress publishes /api, /openapi.json and the learner app's / ,
     /index.html and /assets only;
   - production-like denies inbound connections by default, and its
     NetworkPolicies let through every flow the system has: each URL a
     pod is configured with (services, PostgreSQL, NATS, the Collector),
     Prometheus to every pod it scrapes, loadgen to every service, the
     endpoints in the shared Collector, Jaeger and Grafana configs, an
     ingress controller to the gateway and prometheus-adapter to
     Prometheus from other namespaces.
4. With --self-test: breaks a rendered object in each of several ways and
   asserts the checks notice every one (so the checks above can fail).

Needs kubectl (kustomize v5), PyYAML, and kubernetes-validate unless
--skip-validate.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

KUBERNETES_VERSION = "1.37.0"

# LearnSphere services: port (as in Compose and the launcher).
SERVICES = {"gateway": 8080, "users": 8081, "courses": 8082, "payments": 8083, "progress": 8084}
# Services the production-like overlay autoscales.
AUTOSCALED = {"users", "payments"}
# Prometheus job names Compose uses (observability/prometheus/prometheus.yml);
# Kubernetes derives them from app.kubernetes.io/name.
COMPOSE_JOBS = set(SERVICES) | {"loadgen", "otel-collector"}

# ConfigMaps generated from files Compose mounts: name → {key: repo path}.
SHARED_CONFIG = {
    "otel-collector-config": {"config.yml": "observability/otel-collector.yml"},
    "jaeger-config": {"config.yml": "observability/jaeger.yml"},
    "loki-config": {"config.yml": "observability/loki.yml"},
    "grafana-datasources": {"datasources.yml": "observability/grafana/provisioning/datasources/datasources.yml"},
    "grafana-dashboard-providers": {"dashboards.yml": "observability/grafana/provisioning/dashboards/dashboards.yml"},
    "postgres-init": {"10-learnsphere.sh": "deploy/compose/postgres-init.sh"},
}

OVERLAYS = ["overlays/dev", "overlays/production-like"]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, message: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)


# --- Rendering -----------------------------------------------------------


def kustomize(root: Path, target: str) -> list[dict]:
    """`kubectl kustomize` of deploy/k8s/<target>, as a list of objects."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(root / "deploy/k8s" / target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize deploy/k8s/{target} failed:\n{result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def kustomize_with_component(root: Path, overlay: str, component: str) -> list[dict]:
    """An overlay with a component added, as a user's kustomization would."""
    with tempfile.TemporaryDirectory(dir=root / "deploy/k8s") as tmp:
        here = Path(tmp)
        (here / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources: [../{overlay}]\ncomponents: [../{component}]\n",
            encoding="utf-8",
        )
        return kustomize(root, here.name)


class RenderError(Exception):
    pass


def validate(objects: list[dict], label: str, c: Checker) -> None:
    """kubernetes-validate --strict on every object of one render."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(objects, f, sort_keys=False)
        path = f.name
    try:
        result = subprocess.run(
            ["kubernetes-validate", "--strict", "--quiet", "-k", KUBERNETES_VERSION, path],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        Path(path).unlink()
    output = (result.stdout + result.stderr).strip()
    c.check(result.returncode == 0, f"{label}: kubernetes-validate --strict (Kubernetes {KUBERNETES_VERSION}):\n{output}")


# --- Helpers -------------------------------------------------------------


def name(obj: dict) -> str:
    return obj.get("metadata", {}).get("name", "?")


def ref(obj: dict) -> str:
    return f"{obj.get('kind')}/{name(obj)}"


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def find(objects: list[dict], kind: str, wanted: str) -> dict | None:
    for o in of_kind(objects, kind):
        if name(o) == wanted:
            return o
    return None


def pod_template(obj: dict) -> dict | None:
    spec = obj.get("spec", {})
    if obj.get("kind") == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return spec.get("template")


def configmap_by_base(objects: list[dict], base: str) -> dict | None:
    """A generated ConfigMap by its name before kustomize's hash suffix."""
    for o in of_kind(objects, "ConfigMap"):
        if re.fullmatch(rf"{re.escape(base)}(-[a-z0-9]{{10}})?", name(o)):
            return o
    return None


def env_value(container: dict, key: str) -> str | None:
    for e in container.get("env") or []:
        if e.get("name") == key:
            return e.get("value")
    return None


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- Checks --------------------------------------------------------------


def check_workloads(objects: list[dict], label: str, c: Checker) -> None:
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        where = f"{label}: {ref(obj)}"
        template = pod_template(obj) or {}
        spec = template.get("spec", {})
        pod_sc = spec.get("securityContext") or {}
        c.check(pod_sc.get("runAsNonRoot") is True, f"{where}: pod securityContext.runAsNonRoot is not true")
        c.check((pod_sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: pod seccompProfile is not RuntimeDefault")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            c.check(not spec.get(host), f"{where}: {host}")
        for volume in spec.get("volumes") or []:
            c.check("hostPath" not in volume, f"{where}: hostPath volume {volume.get('name')}")
        long_running = obj.get("kind") in {"Deployment", "StatefulSet", "DaemonSet"}
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            cwhere = f"{where} container {container.get('name')}"
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    c.check(resource in (resources.get(kind) or {}), f"{cwhere}: no {resource} {kind}")
            sc = container.get("securityContext") or {}
            c.check(sc.get("allowPrivilegeEscalation") is False, f"{cwhere}: allowPrivilegeEscalation is not false")
            c.check(sc.get("readOnlyRootFilesystem") is True, f"{cwhere}: readOnlyRootFilesystem is not true")
            c.check((sc.get("capabilities") or {}).get("drop") == ["ALL"], f"{cwhere}: capabilities are not drop [ALL]")
            c.check(not sc.get("privileged"), f"{cwhere}: privileged")
            c.check(sc.get("runAsUser", pod_sc.get("runAsUser")) not in (None, 0), f"{cwhere}: runs as uid 0 or an unset uid")
            ports = {p.get("name") for p in container.get("ports") or []} | {p.get("containerPort") for p in container.get("ports") or []}
            if long_running and container in (spec.get("containers") or []):
                for probe in ("readinessProbe", "livenessProbe"):
                    c.check(probe in container, f"{cwhere}: no {probe}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
                if port is not None:
                    c.check(port in ports, f"{cwhere}: {probe} port {port} is not a port of the container")


def check_services(objects: list[dict], label: str, c: Checker) -> None:
    for service, port in SERVICES.items():
        where = f"{label}: {service}"
        deployment = find(objects, "Deployment", service)
        if deployment is None:
            c.failures.append(f"{where}: no Deployment")
            continue
        template = pod_template(deployment)
        pod_labels = template["metadata"].get("labels") or {}
        spec = template["spec"]
        container = spec["containers"][0]
        c.check(container.get("args") == ["serve", service], f"{where}: the container does not run `loadgen serve {service}`")
        c.check(env_value(container, "PORT") == str(port), f"{where}: PORT is not {port}")
        c.check(any(p.get("containerPort") == port for p in container.get("ports") or []), f"{where}: no container port {port}")
        ready = (container.get("readinessProbe") or {}).get("httpGet") or {}
        live = (container.get("livenessProbe") or {}).get("httpGet") or {}
        c.check(ready.get("path") == "/readyz", f"{where}: readiness probe is not GET /readyz")
        c.check(live.get("path") == "/healthz", f"{where}: liveness probe is not GET /healthz")
        pre_stop = " ".join(((container.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command") or [])
        c.check("/admin/drain" in pre_stop and "--post-data" in pre_stop and f":{port}/" in pre_stop, f"{where}: preStop does not POST /admin/drain on port {port}")
        c.check("$ADMIN_TOKEN" in pre_stop and any(e.get("name") == "ADMIN_TOKEN" for e in container.get("env") or []), f"{where}: preStop drain without the admin token")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        c.check(grace >= 8 + 10 + 5, f"{where}: terminationGracePeriodSeconds {grace} is shorter than preStop + SHUTDOWN_GRACE + flush")
        spread = [t for t in spec.get("topologySpreadConstraints") or [] if t.get("topologyKey") == "kubernetes.io/hostname"]
        c.check(any(selects(t.get("labelSelector", {}).get("matchLabels", {}), pod_labels) for t in spread), f"{where}: no topology spread across nodes selecting its pods")
        annotations = template["metadata"].get("annotations") or {}
        c.check(annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") == str(port), f"{where}: pods do not ask Prometheus to scrape port {port}")
        c.check(spec.get("automountServiceAccountToken") is False, f"{where}: mounts a Kubernetes API token it never uses")
        pdbs = [p for p in of_kind(objects, "PodDisruptionBudget") if selects(p["spec"].get("selector", {}).get("matchLabels", {}), pod_labels)]
        c.check(len(pdbs) == 1, f"{where}: {len(pdbs)} PodDisruptionBudgets select its pods (want 1)")
        for svc_name, headless in ((service, False), (f"{service}-headless", True)):
            svc = find(objects, "Service", svc_name)
            if svc is None:
                c.failures.append(f"{where}: no Service {svc_name}")
                continue
            c.check((svc["spec"].get("clusterIP") == "None") == headless, f"{where}: Service {svc_name} is {'not ' if headless else ''}headless")
            c.check(selects(svc["spec"].get("selector", {}), pod_labels), f"{where}: Service {svc_name} does not select its pods")
            c.check(any(p.get("port") == port for p in svc["spec"].get("ports") or []), f"{where}: Service {svc_name} does not serve port {port}")
        # Calls to other services go through headless names: every pod.
        for e in container.get("env") or []:
            value = e.get("value") or ""
            if e.get("name", "").endswith("_URL") and value.startswith("http"):
                host = urlsplit(value).hostname or ""
                target = host.removesuffix("-headless")
                if target in SERVICES:
                    c.check(host == f"{target}-headless" and urlsplit(value).port == SERVICES[target], f"{where}: {e['name']}={value} is not {target}-headless:{SERVICES[target]}")


def check_prometheus(objects: list[dict], label: str, c: Checker) -> None:
    where = f"{label}: prometheus"
    cm = configmap_by_base(objects, "prometheus-config")
    if cm is None:
        c.failures.append(f"{where}: no prometheus-config ConfigMap")
        return
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    pod_sd = [
        sc for sc in config.get("scrape_configs") or []
        if any(sd.get("role") == "pod" for sd in sc.get("kubernetes_sd_configs") or [])
    ]
    c.check(bool(pod_sd), f"{where}: no scrape config discovers pods (kubernetes_sd_configs role pod)")
    c.check(not any("dns_sd_configs" in sc or "static_configs" in sc for sc in config.get("scrape_configs") or []), f"{where}: static or DNS targets: Kubernetes pods come and go")
    relabels = [r for sc in pod_sd for r in sc.get("relabel_configs") or []]
    c.check(any(r.get("target_label") == "job" and r.get("source_labels") == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"] for r in relabels), f"{where}: job is not the pod's app.kubernetes.io/name (dashboards filter on job)")
    c.check(config.get("rule_files") == ["rules/*.yml"], f"{where}: rule_files is not rules/*.yml")
    deployment = find(objects, "Deployment", "prometheus")
    if deployment is None:
        c.failures.append(f"{where}: no Deployment")
        return
    spec = pod_template(deployment)["spec"]
    account = spec.get("serviceAccountName")
    c.check(find(objects, "ServiceAccount", account or "") is not None, f"{where}: no ServiceAccount {account}")
    allowed: set[str] = set()
    for binding in of_kind(objects, "RoleBinding") + of_kind(objects, "ClusterRoleBinding"):
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in binding.get("subjects") or []):
            role = find(objects, binding["roleRef"]["kind"], binding["roleRef"]["name"]) or {}
            for rule in role.get("rules") or []:
                if "pods" in rule.get("resources", []) and "" in rule.get("apiGroups", []):
                    allowed |= set(rule.get("verbs") or [])
    c.check({"list", "watch"} <= allowed, f"{where}: its ServiceAccount may not list and watch pods")
    c.check("--enable-feature=exemplar-storage" in spec["containers"][0].get("args", []), f"{where}: exemplar storage is off (no trace links)")
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0].get("volumeMounts") or []}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    rules_volume = volumes.get(mounts.get("/etc/prometheus/rules", ""), {})
    c.check((rules_volume.get("configMap") or {}).get("name", "").startswith("prometheus-rules"), f"{where}: the shared rules are not mounted at /etc/prometheus/rules")


def compose_mem_limit(root: Path, service: str) -> int | None:
    """A Compose service's mem_limit in bytes."""
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))
    value = str(((compose.get("services") or {}).get(service) or {}).get("mem_limit", ""))
    m = re.fullmatch(r"(\d+)([kmg])?b?", value.strip().lower())
    return int(m.group(1)) << {None: 0, "k": 10, "m": 20, "g": 30}[m.group(2)] if m else None


def quantity_bytes(value: str) -> int | None:
    """A Kubernetes memory quantity (binary suffixes, as the manifests use)."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(value or ""))
    return int(m.group(1)) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30}[m.group(2)] if m else None


def check_loki(objects: list[dict], label: str, root: Path, c: Checker) -> None:
    """Loki, as observability/loki.yml and the configs that point at it
    expect it: the shared config, its data directory writable, ready on
    /ready, Compose's memory limit, a Service where the Collector and
    Grafana send."""
    where = f"{label}: loki"
    workload = find(objects, "Deployment", "loki") or find(objects, "StatefulSet", "loki")
    if workload is None:
        c.failures.append(f"{where}: no Deployment or StatefulSet loki")
        return
    spec = pod_template(workload)["spec"]
    container = spec["containers"][0]
    args = container.get("args") or []
    config_flag = next((a for a in args if a.startswith("-config.file=")), "")
    config_path = config_flag.partition("=")[2]
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    config_mount = mounts.get(str(Path(config_path).parent))
    config_volume = volumes.get((config_mount or {}).get("name", ""), {})
    c.check(config_path.endswith("/config.yml") and (config_volume.get("configMap") or {}).get("name", "").startswith("loki-config"), f"{where}: does not run the shared config (ConfigMap loki-config key config.yml), args {args}")
    config = yaml.safe_load((root / "observability/loki.yml").read_text(encoding="utf-8"))
    data_dir = (config.get("common") or {}).get("path_prefix", "")
    data_mount = mounts.get(data_dir)
    data_volume = volumes.get((data_mount or {}).get("name", ""), {})
    c.check(bool(data_dir) and data_mount is not None and not data_mount.get("readOnly") and ("emptyDir" in data_volume or "persistentVolumeClaim" in data_volume or any(t.get("metadata", {}).get("name") == data_mount["name"] for t in workload["spec"].get("volumeClaimTemplates") or [])), f"{where}: nothing writable mounted at {data_dir!r}, where observability/loki.yml keeps its WAL, index and chunks (the root filesystem is read-only)")
    ready = (container.get("readinessProbe") or {}).get("httpGet") or {}
    c.check(ready.get("path") == "/ready", f"{where}: readiness probe is not GET /ready (ready once the ingester has joined its ring)")
    limit = quantity_bytes(((container.get("resources") or {}).get("limits") or {}).get("memory"))
    compose_limit = compose_mem_limit(root, "loki")
    c.check(limit is not None and limit == compose_limit, f"{where}: memory limit {limit} is not Compose's mem_limit {compose_limit} (observability/loki.yml's caches are sized for it)")
    m = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB)?", env_value(container, "GOMEMLIMIT") or "")  # Go's own units
    gomemlimit = int(m.group(1)) << {None: 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30}[m.group(2)] if m else None
    c.check(gomemlimit is not None and limit is not None and gomemlimit < limit, f"{where}: GOMEMLIMIT {env_value(container, 'GOMEMLIMIT')!r} is not below the memory limit")
    port = ((config.get("server") or {}).get("http_listen_port"))
    c.check(any(p.get("containerPort") == port for p in container.get("ports") or []), f"{where}: no container port {port} (server.http_listen_port in observability/loki.yml)")
    # Where the others send and ask: the Collector's logs exporter, Grafana's datasource.
    collector = yaml.safe_load((root / "observability/otel-collector.yml").read_text(encoding="utf-8"))
    logs_exporters = [e for name, p in ((collector.get("service") or {}).get("pipelines") or {}).items() if name.split("/")[0] == "logs" for e in p.get("exporters") or []]
    endpoints = [str(((collector.get("exporters") or {}).get(e) or {}).get("endpoint", "")) for e in logs_exporters]
    datasources = yaml.safe_load((root / "observability/grafana/provisioning/datasources/datasources.yml").read_text(encoding="utf-8"))
    endpoints += [str(d.get("url", "")) for d in datasources.get("datasources") or [] if d.get("type") == "loki"]
    c.check(len(endpoints) >= 2, f"{where}: the Collector's logs pipeline or Grafana's Loki datasource is missing")
    for endpoint in endpoints:
        parts = urlsplit(endpoint)
        svc = find(objects, "Service", parts.hostname or "")
        c.check(svc is not None and selects(svc["spec"].get("selector", {}), pod_template(workload)["metadata"].get("labels") or {}) and any(p.get("port") == parts.port for p in svc["spec"].get("ports") or []), f"{where}: {endpoint} (shared config) reaches no Service selecting Loki's pods on port {parts.port}")


def check_scrape_annotations(objects: list[dict], label: str, c: Checker) -> None:
    """Every pod asking to be scraped names a port it has, and a Compose job."""
    for obj in objects:
        template = pod_template(obj) if obj.get("kind") in WORKLOAD_KINDS else None
        if not template:
            continue
        annotations = template["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") != "true":
            continue
        ports = {str(p.get("containerPort")) for ct in template["spec"]["containers"] for p in ct.get("ports") or []}
        c.check(annotations.get("prometheus.io/port") in ports, f"{label}: {ref(obj)} asks to be scraped on port {annotations.get('prometheus.io/port')}, which it does not have")
        job = (template["metadata"].get("labels") or {}).get("app.kubernetes.io/name")
        c.check(job in COMPOSE_JOBS, f"{label}: {ref(obj)} would be scraped as job {job!r}, not one of Compose's ({', '.join(sorted(COMPOSE_JOBS))})")


def compose_images(root: Path) -> dict[str, str]:
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))
    images = {}
    for svc in compose["services"].values():
        image = (svc or {}).get("image", "")
        if image and not image.startswith("learnsphere:"):
            images[image.rsplit(":", 1)[0]] = image
    return images


def workspace_version(root: Path) -> str:
    cargo = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    return cargo["workspace"]["package"]["version"]


def check_images(objects: list[dict], label: str, root: Path, c: Checker) -> None:
    pinned = compose_images(root)
    version = workspace_version(root)
    for obj in objects:
        template = pod_template(obj) if obj.get("kind") in WORKLOAD_KINDS else None
        if not template:
            continue
        for container in template["spec"].get("containers", []) + template["spec"].get("initContainers", []):
            image = container.get("image", "")
            where = f"{label}: {ref(obj)} image {image!r}"
            repo, _, tag = image.rpartition(":") if "@" not in image else (image.split("@")[0], "", image.split("@")[1])
            c.check(bool(repo) and tag not in ("", "latest"), f"{where}: not pinned to a version")
            if repo in ("learnsphere", "learnsphere-loadgen"):
                c.check(tag == version, f"{where}: LearnSphere's images are tagged with the workspace version {version}")
            elif repo in pinned:
                c.check(image == pinned[repo], f"{where}: Compose runs {pinned[repo]}; the two deployments should run the same version")


def check_secrets(base: list[dict], production: list[dict], c: Checker) -> None:
    secrets = of_kind(base, "Secret")
    c.check(bool(secrets), "base: no Secret (the services read learnsphere-secrets)")
    for secret in secrets:
        values = dict(secret.get("stringData") or {})
        for key, encoded in (secret.get("data") or {}).items():
            values[key] = base64.b64decode(encoded).decode("utf-8", "replace")
        for key, value in values.items():
            c.check("CHANGE-ME" in value, f"base: Secret {name(secret)} key {key} holds a real-looking value (placeholders only: CHANGE-ME)")
    c.check(not of_kind(production, "Secret"), "overlays/production-like: ships a Secret (it must come from outside the repository)")
    config = configmap_by_base(production, "learnsphere-config")
    c.check(bool(config) and config["data"].get("LEARNSPHERE_ENV") == "production", "overlays/production-like: LEARNSPHERE_ENV is not production")


def check_references(objects: list[dict], label: str, c: Checker, external_secrets: set[str] = frozenset()) -> None:
    """Every ConfigMap, Secret key and ServiceAccount a pod names exists."""
    configmaps = {name(o): o for o in of_kind(objects, "ConfigMap")}
    secrets = {name(o): o for o in of_kind(objects, "Secret")}
    accounts = {name(o) for o in of_kind(objects, "ServiceAccount")}
    for obj in objects:
        template = pod_template(obj) if obj.get("kind") in WORKLOAD_KINDS else None
        if not template:
            continue
        where = f"{label}: {ref(obj)}"
        spec = template["spec"]
        account = spec.get("serviceAccountName")
        if account:
            c.check(account in accounts, f"{where}: ServiceAccount {account} does not exist")
        for volume in spec.get("volumes") or []:
            sources = [volume.get("configMap")] + [s.get("configMap") for s in (volume.get("projected") or {}).get("sources", [])]
            for source in filter(None, sources):
                c.check(source["name"] in configmaps, f"{where}: volume {volume['name']} names ConfigMap {source['name']}, which does not exist")
        for container in spec.get("containers") or []:
            for e in container.get("env") or []:
                source = e.get("valueFrom") or {}
                if "secretKeyRef" in source:
                    secret_ref = source["secretKeyRef"]
                    if secret_ref["name"] in external_secrets:
                        continue
                    secret = secrets.get(secret_ref["name"])
                    keys = set((secret or {}).get("stringData") or {}) | set((secret or {}).get("data") or {})
                    c.check(secret_ref["key"] in keys, f"{where}: env {e['name']} needs Secret {secret_ref['name']} key {secret_ref['key']}, which does not exist")
                if "configMapKeyRef" in source:
                    cm = configmaps.get(source["configMapKeyRef"]["name"])
                    c.check(bool(cm) and source["configMapKeyRef"]["key"] in cm.get("data", {}), f"{where}: env {e['name']} needs ConfigMap key {source['configMapKeyRef']}, which does not exist")
            for env_from in container.get("envFrom") or []:
                if "configMapRef" in env_from:
                    c.check(env_from["configMapRef"]["name"] in configmaps, f"{where}: envFrom ConfigMap {env_from['configMapRef']['name']} does not exist")


def check_shared_files(objects: list[dict], label: str, root: Path, c: Checker) -> None:
    """Dashboards, rules and configs: the files Compose mounts, unchanged."""
    for cm_name, keys in SHARED_CONFIG.items():
        cm = configmap_by_base(objects, cm_name)
        if cm is None:
            c.failures.append(f"{label}: no ConfigMap {cm_name}")
            continue
        for key, path in keys.items():
            c.check(cm.get("data", {}).get(key) == (root / path).read_text(encoding="utf-8"), f"{label}: ConfigMap {cm_name} key {key} is not {path} as Compose mounts it")
    rules = configmap_by_base(objects, "prometheus-rules")
    rule_files = {p.name: p.read_text(encoding="utf-8") for p in sorted((root / "observability/prometheus/rules").glob("*.yml"))}
    c.check(bool(rules) and rules.get("data") == rule_files, f"{label}: ConfigMap prometheus-rules is not observability/prometheus/rules/*.yml (every file, unchanged)")
    dashboards = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted((root / "dashboards").glob("*.json"))
        if "panels" in json.loads(p.read_text(encoding="utf-8"))
    }
    grafana = find(objects, "Deployment", "grafana")
    provisioned: dict[str, str] = {}
    if grafana is not None:
        spec = pod_template(grafana)["spec"]
        mount = next((m for m in spec["containers"][0].get("volumeMounts") or [] if m["mountPath"] == "/var/lib/grafana/dashboards"), None)
        volume = next((v for v in spec.get("volumes") or [] if mount and v["name"] == mount["name"]), {})
        sources = [s["configMap"]["name"] for s in (volume.get("projected") or {}).get("sources", []) if "configMap" in s]
        if "configMap" in volume:
            sources.append(volume["configMap"]["name"])
        for source in sources:
            cm = find(objects, "ConfigMap", source) or {}
            provisioned.update(cm.get("data") or {})
    c.check(bool(dashboards) and provisioned == dashboards, f"{label}: Grafana's /var/lib/grafana/dashboards is not dashboards/*.json (every dashboard, unchanged): provisioned {sorted(provisioned)}, dashboards/ has {sorted(dashboards)}")
    if grafana is not None:
        mounts = {m["mountPath"] for m in pod_template(grafana)["spec"]["containers"][0].get("volumeMounts") or []}
        c.check({"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards"} <= mounts, f"{label}: Grafana's provisioning is not mounted where Compose mounts it")


def check_no_copies(root: Path, c: Checker) -> None:
    """No file under deploy/k8s duplicates one the Compose stack uses."""
    shared = [root / p for keys in SHARED_CONFIG.values() for p in keys.values()]
    shared += list((root / "observability/prometheus/rules").glob("*.yml")) + list((root / "dashboards").glob("*.json"))
    contents = {p.read_bytes(): p for p in shared}
    for path in (root / "deploy/k8s").rglob("*"):
        if path.is_file():
            original = contents.get(path.read_bytes())
            c.check(original is None, f"deploy/k8s: {path.relative_to(root)} is a copy of {original and original.relative_to(root)}; generate it from the original instead")


def check_autoscaling(objects: list[dict], label: str, c: Checker, metric: str) -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")}
    c.check(set(hpas) == AUTOSCALED, f"{label}: autoscaled {sorted(hpas)}, want {sorted(AUTOSCALED)}")
    for service, hpa in hpas.items():
        where = f"{label}: HPA {name(hpa)}"
        deployment = find(objects, "Deployment", service)
        c.check(deployment is not None and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment", f"{where}: targets no Deployment {service}")
        if deployment is None:
            continue
        c.check("replicas" not in deployment["spec"], f"{where}: Deployment {service} sets replicas, which every apply would reset under the autoscaler")
        c.check(hpa["spec"].get("minReplicas", 1) >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"].get("minReplicas", 1), f"{where}: minReplicas < 2 or no room to scale")
        metrics = hpa["spec"].get("metrics") or []
        if metric == "cpu":
            c.check(any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in metrics), f"{where}: does not scale on CPU")
            requests = [ct.get("resources", {}).get("requests", {}).get("cpu") for ct in pod_template(deployment)["spec"]["containers"]]
            c.check(all(requests), f"{where}: Deployment {service} has no CPU request to compare usage with")
        else:
            c.check(any(m.get("type") == "Pods" and m["pods"]["metric"]["name"] == metric for m in metrics), f"{where}: does not scale on {metric}")


def check_namespace_and_ingress(objects: list[dict], label: str, c: Checker) -> None:
    namespaces = of_kind(objects, "Namespace")
    c.check(len(namespaces) == 1 and (namespaces[0]["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") == "restricted", f"{label}: no Namespace enforcing the restricted Pod Security Standard")
    for obj in objects:
        if obj.get("kind") not in CLUSTER_SCOPED:
            c.check(obj["metadata"].get("namespace") == "learnsphere", f"{label}: {ref(obj)} is not in namespace learnsphere")
    for ingress in of_kind(objects, "Ingress"):
        paths = {(p["path"], p["pathType"]) for rule in ingress["spec"].get("rules", []) for p in rule["http"]["paths"]}
        public = {("/api", "Prefix"), ("/openapi.json", "Exact"), ("/", "Exact"), ("/index.html", "Exact"), ("/assets", "Prefix")}
        c.check(paths == public, f"{label}: Ingress {name(ingress)} publishes {sorted(paths)}; only /api, /openapi.json and the learner app (/, /index.html, /assets) are public (docs/security.md)")


def matches(selector: dict | None, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def policy_allows(policies: list[dict], source: dict, target: dict, port: int) -> bool:
    """Would NetworkPolicies let `source` connect to `target` on `port`?

    `source` and `target` are {"labels", "same_namespace", "ports"} where
    ports maps container port numbers to names. A pod no policy selects
    accepts anything; a selected pod accepts what one of its policies'
    ingress rules allows (peers: podSelector in the namespace,
    namespaceSelector {} with an optional podSelector across namespaces).
    """
    selecting = [p for p in policies if matches(p["spec"].get("podSelector"), target["labels"])]
    if not selecting:
        return True
    port_name = target["ports"].get(port)
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") in (port, port_name) for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "namespaceSelector" in peer:
                    if peer["namespaceSelector"] not in ({}, None):
                        continue  # only the any-namespace form is used here
                    if "podSelector" not in peer or matches(peer["podSelector"], source["labels"]):
                        return True
                elif source["same_namespace"] and matches(peer.get("podSelector"), source["labels"]):
                    return True
    return False


def pods(objects: list[dict]) -> dict[str, dict]:
    """Every workload's pods: labels, container ports, environment."""
    out = {}
    configmaps = {name(o): o.get("data") or {} for o in of_kind(objects, "ConfigMap")}
    for obj in objects:
        template = pod_template(obj) if obj.get("kind") in WORKLOAD_KINDS else None
        if not template:
            continue
        env: dict[str, str] = {}
        ports: dict[int, str] = {}
        for container in template["spec"]["containers"]:
            for env_from in container.get("envFrom") or []:
                env.update(configmaps.get((env_from.get("configMapRef") or {}).get("name"), {}))
            env.update({e["name"]: e["value"] for e in container.get("env") or [] if "value" in e})
            ports.update({p["containerPort"]: p.get("name") for p in container.get("ports") or []})
        out[ref(obj)] = {
            "labels": template["metadata"].get("labels") or {},
            "annotations": template["metadata"].get("annotations") or {},
            "ports": ports,
            "env": env,
            "same_namespace": True,
        }
    return out


def flows(workloads: dict[str, dict], root: Path) -> list[tuple[str, dict, str, int]]:
    """Every connection the system makes: (source name, source pod, Service host, port)."""
    found = []
    url = re.compile(r"^(?:https?|nats|postgres)://(?:[^@/]*@)?([a-z0-9.-]+):(\d+)")
    for source_name, source in workloads.items():
        for value in source["env"].values():
            m = url.match(value)
            if m:
                found.append((source_name, source, m.group(1), int(m.group(2))))
    by_name = {(p["labels"].get("app.kubernetes.io/name")): (n, p) for n, p in workloads.items()}
    # Prometheus scrapes every pod that asks, on the port it names.
    prometheus = by_name.get("prometheus")
    if prometheus:
        for target_name, target in workloads.items():
            if target["annotations"].get("prometheus.io/scrape") == "true":
                found.append((prometheus[0], prometheus[1], f"pod:{target_name}", int(target["annotations"]["prometheus.io/port"])))
    # loadgen reaches every replica of every service (faults, expectations).
    for loadgen_name, loadgen in workloads.items():
        if loadgen["labels"].get("app.kubernetes.io/name") == "loadgen":
            for service, port in SERVICES.items():
                found.append((loadgen_name, loadgen, f"{service}-headless", port))
    # Endpoints inside the shared configs: Grafana's datasources, Jaeger's
    # metrics backend, the Collector's exporter.
    config_urls = {
        "grafana": "observability/grafana/provisioning/datasources/datasources.yml",
        "jaeger": "observability/jaeger.yml",
        "otel-collector": "observability/otel-collector.yml",
    }
    for app, path in config_urls.items():
        if app not in by_name:
            continue
        for host, port in re.findall(r"(?:url|endpoint):\s*(?:https?://)?([a-z][a-z0-9-]*):(\d+)", (root / path).read_text(encoding="utf-8")):
            found.append((by_name[app][0], by_name[app][1], host, int(port)))
    # From other namespaces: an ingress controller to the gateway, the
    # custom metrics adapter to Prometheus.
    outside = {"same_namespace": False, "ports": {}, "env": {}, "annotations": {}}
    found.append(("an ingress controller", {**outside, "labels": {"app.kubernetes.io/name": "ingress-nginx"}}, "gateway", SERVICES["gateway"]))
    found.append(("prometheus-adapter", {**outside, "labels": {"app.kubernetes.io/name": "prometheus-adapter"}}, "prometheus", 9090))
    return found


def check_network_policies(objects: list[dict], label: str, root: Path, c: Checker) -> None:
    policies = of_kind(objects, "NetworkPolicy")
    c.check(any(p["spec"].get("podSelector") == {} and not p["spec"].get("ingress") for p in policies), f"{label}: no default-deny ingress NetworkPolicy")
    workloads = pods(objects)
    services = {name(s): s for s in of_kind(objects, "Service")}
    for source_name, source, host, port in flows(workloads, root):
        if host.startswith("pod:"):
            targets = [(host[4:], workloads[host[4:]])]
        else:
            service = services.get(host)
            if service is None:
                if host in ("localhost", "127.0.0.1", "0.0.0.0"):
                    continue  # a link for a browser (LOADGEN_JAEGER_URL), not a connection
                c.failures.append(f"{label}: {source_name} calls {host}:{port}, which is no Service")
                continue
            port_spec = next((p for p in service["spec"].get("ports") or [] if p.get("port") == port), None)
            if port_spec is None:
                c.failures.append(f"{label}: {source_name} calls {host}:{port}; Service {host} has no port {port}")
                continue
            targets = [(n, p) for n, p in workloads.items() if selects(service["spec"].get("selector", {}), p["labels"])]
            c.check(bool(targets), f"{label}: Service {host} selects no pods")
            target_port = port_spec.get("targetPort", port)
            targets = [(n, {**p, "port": next((num for num, nm in p["ports"].items() if target_port in (num, nm)), None)}) for n, p in targets]
        for target_name, target in targets:
            number = target.get("port", port)
            c.check(number is not None, f"{label}: {host}:{port} maps to no container port of {target_name}")
            if number is not None:
                c.check(policy_allows(policies, source, target, number), f"{label}: NetworkPolicies block {source_name} → {target_name} port {number} ({host}:{port})")


def check_loadgen(objects: list[dict], c: Checker) -> None:
    """The scenario Job template can do what the kubernetes driver does."""
    cron = find(objects, "CronJob", "loadgen")
    if cron is None:
        c.failures.append("loadgen: no CronJob loadgen (the Job template)")
        return
    c.check(cron["spec"].get("suspend") is True, "loadgen: the CronJob is not suspended (it is a template, never scheduled)")
    container = pod_template(cron)["spec"]["containers"][0]
    args = container.get("args") or []
    c.check(args[:1] == ["run"] and "--platform" in args and args[args.index("--platform") + 1] == "kubernetes", "loadgen: the Job does not run `loadgen run --platform kubernetes`")
    c.check(container.get("image", "").startswith("learnsphere-loadgen:"), "loadgen: the Job's image is not the one with kubectl (Dockerfile target loadgen-kubectl)")
    verbs: dict[tuple[str, str], set[str]] = {}
    for role in of_kind(objects, "Role"):
        for rule in role.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    verbs.setdefault((group, resource), set()).update(rule.get("verbs") or [])
    needed = {
        ("apps", "deployments"): {"get", "patch", "watch"},  # rollout restart, rollout status
        ("apps", "deployments/scale"): {"get", "patch"},  # kubectl scale
        ("apps", "statefulsets"): {"get", "patch", "watch"},  # nats (broker-outage)
        ("apps", "statefulsets/scale"): {"get", "patch"},
        ("apps", "replicasets"): {"get", "list", "watch"},  # rollout status
        ("", "pods"): {"list", "delete"},  # crash
    }
    for key, want in needed.items():
        c.check(want <= verbs.get(key, set()), f"loadgen: the Role lacks {sorted(want - verbs.get(key, set()))} on {key[1]}")
    c.check(not any("*" in v for v in verbs.values()), "loadgen: the Role grants a wildcard")
    scenarios = configmap_by_base(objects, "loadgen-scenarios")
    for key, text in ((scenarios or {}).get("data") or {}).items():
        scenario = tomllib.loads(text)
        actions = {t.get("action") for t in scenario.get("timeline", [])}
        c.check("scale" not in actions, f"loadgen: {key} scales by hand, which the HPAs would undo")
    run = configmap_by_base(objects, "loadgen-run") or {}
    default = (run.get("data") or {}).get("SCENARIO", "")
    c.check(default.removeprefix("/scenarios/") in ((scenarios or {}).get("data") or {}), f"loadgen: the default SCENARIO {default!r} is not one of the mounted scenarios")


EVENT_SERVICES = ("users", "payments", "progress")


def check_nats_credentials(objects: list[dict], label: str, c: Checker) -> None:
    """The bus requires credentials, as in Compose: the server runs the
    shared config (deploy/compose/nats.conf) with every user's password
    from the Secret, and each event service connects as its own user."""
    nats = find(objects, "StatefulSet", "nats")
    c.check(nats is not None, f"{label}: no nats StatefulSet")
    if nats is None:
        return
    server = pod_template(nats)["spec"]["containers"][0]
    c.check(server.get("args") == ["--config", "/etc/nats/nats.conf", "--store_dir", "/data"], f"{label}: nats does not run the shared config (args {server.get('args')})")
    env = {e["name"]: e for e in server.get("env") or []}
    for variable in ["NATS_ADMIN_PASSWORD"] + [f"{s.upper()}_NATS_PASSWORD" for s in EVENT_SERVICES]:
        # The Secret's value, double-quoted: the server parses it as configuration.
        ref_ = ((env.get(f"SECRET_{variable}") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        c.check(ref_.get("key") == variable, f"{label}: nats gets SECRET_{variable} from {ref_ or 'nowhere'}, not the Secret's {variable}")
        c.check((env.get(variable) or {}).get("value") == f'"$(SECRET_{variable})"', f"{label}: nats's {variable} is not the Secret's value in double quotes")
    for service in EVENT_SERVICES:
        workload = find(objects, "Deployment", service)
        c.check(workload is not None, f"{label}: no {service} Deployment")
        if workload is None:
            continue
        env = {e["name"]: e for e in pod_template(workload)["spec"]["containers"][0].get("env") or []}
        c.check((env.get("NATS_USER") or {}).get("value") == service, f"{label}: {service} does not connect to NATS as its own user")
        ref_ = ((env.get("NATS_PASSWORD") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        c.check(ref_.get("key") == f"{service.upper()}_NATS_PASSWORD", f"{label}: {service}'s NATS_PASSWORD is not the Secret's {service.upper()}_NATS_PASSWORD")


# --- Driver ----------------------------------------------------------------


def run_checks(renders: dict[str, list[dict]], root: Path, c: Checker) -> None:
    for label in ("overlays/dev", "overlays/production-like", "production-like+autoscale-requests-per-second"):
        objects = renders[label]
        check_workloads(objects, label, c)
        check_services(objects, label, c)
        check_prometheus(objects, label, c)
        check_scrape_annotations(objects, label, c)
        check_images(objects, label, root, c)
        check_references(objects, label, c, external_secrets={"learnsphere-secrets"} if "production-like" in label else set())
        check_shared_files(objects, label, root, c)
        check_namespace_and_ingress(objects, label, c)
        check_nats_credentials(objects, label, c)
        check_loki(objects, label, root, c)
    for label in ("overlays/production-like", "production-like+autoscale-requests-per-second"):
        check_network_policies(renders[label] + renders["loadgen"], label, root, c)
    check_autoscaling(renders["overlays/production-like"], "overlays/production-like", c, "cpu")
    check_autoscaling(renders["production-like+autoscale-requests-per-second"], "production-like+autoscale-requests-per-second", c, "http_server_requests_per_second")
    c.check(not of_kind(renders["overlays/dev"], "HorizontalPodAutoscaler"), "overlays/dev: has autoscalers (dev runs the shipped scenarios, which scale by hand)")
    check_secrets(renders["base"], renders["overlays/production-like"], c)
    loadgen = renders["loadgen"]
    check_workloads(loadgen, "loadgen", c)
    check_images(loadgen, "loadgen", root, c)
    check_references(loadgen, "loadgen", c, external_secrets={"learnsphere-secrets"})
    check_scrape_annotations(loadgen, "loadgen", c)
    check_loadgen(loadgen, c)


def render_all(root: Path) -> dict[str, list[dict]]:
    renders = {target: kustomize(root, target) for target in OVERLAYS + ["base", "loadgen"]}
    renders["production-like+autoscale-requests-per-second"] = kustomize_with_component(
        root, "overlays/production-like", "components/autoscale-requests-per-second"
    )
    return renders


def self_test(renders: dict[str, list[dict]], root: Path) -> list[str]:
    """Break the rendered objects one way at a time; each must be caught."""

    def deployment(objects: list[dict], wanted: str) -> dict:
        return find(objects, "Deployment", wanted)

    def container(objects: list[dict], wanted: str) -> dict:
        return pod_template(deployment(objects, wanted))["spec"]["containers"][0]

    def drop_headless(r: dict) -> None:
        r["overlays/dev"].remove(find(r["overlays/dev"], "Service", "payments-headless"))

    def unpin_image(r: dict) -> None:
        container(r["overlays/dev"], "jaeger")["image"] = "jaegertracing/jaeger:latest"

    def drift_image(r: dict) -> None:
        container(r["overlays/dev"], "prometheus")["image"] = "prom/prometheus:v3.4.0"

    def no_readiness(r: dict) -> None:
        del container(r["overlays/production-like"], "courses")["readinessProbe"]

    def writable_root(r: dict) -> None:
        container(r["overlays/dev"], "grafana")["securityContext"]["readOnlyRootFilesystem"] = False

    def root_user(r: dict) -> None:
        pod_template(find(r["overlays/dev"], "StatefulSet", "nats"))["spec"]["securityContext"]["runAsNonRoot"] = False

    def no_limits(r: dict) -> None:
        del container(r["overlays/dev"], "users")["resources"]["limits"]

    def no_drain(r: dict) -> None:
        del container(r["overlays/dev"], "progress")["lifecycle"]

    def clusterip_url(r: dict) -> None:
        for e in container(r["overlays/dev"], "gateway")["env"]:
            if e["name"] == "PAYMENTS_URL":
                e["value"] = "http://payments:8083"

    def real_secret(r: dict) -> None:
        of_kind(r["base"], "Secret")[0]["stringData"]["JWT_SECRET"] = "3f9a0c1e5b7d2f48a6c0e1b3d5f7a9c2"

    def edited_dashboard(r: dict) -> None:
        cm = configmap_by_base(r["overlays/dev"], "grafana-dashboard-slo")
        cm["data"]["slo.json"] = cm["data"]["slo.json"].replace("SLO", "SL0", 1)

    def missing_dashboard(r: dict) -> None:
        volumes = pod_template(deployment(r["overlays/dev"], "grafana"))["spec"]["volumes"]
        projected = next(v for v in volumes if "projected" in v)
        projected["projected"]["sources"].pop()

    def edited_rules(r: dict) -> None:
        cm = configmap_by_base(r["overlays/production-like"], "prometheus-rules")
        key = next(iter(cm["data"]))
        cm["data"][key] += "\n# local edit\n"

    def static_prometheus(r: dict) -> None:
        cm = configmap_by_base(r["overlays/dev"], "prometheus-config")
        config = yaml.safe_load(cm["data"]["prometheus.yml"])
        for sc in config["scrape_configs"]:
            sc.pop("kubernetes_sd_configs", None)
            sc["static_configs"] = [{"targets": ["gateway:8080"]}]
        cm["data"]["prometheus.yml"] = yaml.safe_dump(config)

    def hpa_fights_replicas(r: dict) -> None:
        deployment(r["overlays/production-like"], "payments")["spec"]["replicas"] = 3

    def no_pdb(r: dict) -> None:
        objects = r["overlays/dev"]
        objects.remove(find(objects, "PodDisruptionBudget", "users"))

    def public_metrics(r: dict) -> None:
        ingress = of_kind(r["overlays/dev"], "Ingress")[0]
        ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] = "/"

    def missing_secret_key(r: dict) -> None:
        container(r["overlays/dev"], "payments")["env"].append(
            {"name": "EXTRA", "valueFrom": {"secretKeyRef": {"name": "learnsphere-secrets", "key": "NO_SUCH_KEY"}}}
        )

    def shared_nats_user(r: dict) -> None:
        for e in container(r["overlays/dev"], "payments")["env"]:
            if e["name"] == "NATS_USER":
                e["value"] = "progress"

    def wildcard_role(r: dict) -> None:
        find(r["loadgen"], "Role", "loadgen")["rules"].append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})

    def blocked_database(r: dict) -> None:
        objects = r["overlays/production-like"]
        objects.remove(find(objects, "NetworkPolicy", "postgres"))
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "postgres", "namespace": "learnsphere"},
                        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}}, "policyTypes": ["Ingress"],
                                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "users"}}}], "ports": [{"port": "postgres"}]}]}})

    def blocked_scrape(r: dict) -> None:
        policy = find(r["overlays/production-like"], "NetworkPolicy", "backends")
        policy["spec"]["ingress"][0]["from"].pop()

    def edited_loki_config(r: dict) -> None:
        cm = configmap_by_base(r["overlays/dev"], "loki-config")
        cm["data"]["config.yml"] = cm["data"]["config.yml"].replace("retention_period: 72h", "retention_period: 0s")

    def loki_ready_on_root(r: dict) -> None:
        container(r["overlays/dev"], "loki")["readinessProbe"]["httpGet"]["path"] = "/"

    def loki_without_data_volume(r: dict) -> None:
        c_ = container(r["overlays/production-like"], "loki")
        c_["volumeMounts"] = [m for m in c_["volumeMounts"] if m["mountPath"] != "/loki"]

    def loki_bigger_than_compose(r: dict) -> None:
        container(r["overlays/dev"], "loki")["resources"]["limits"]["memory"] = "1Gi"

    def loki_service_elsewhere(r: dict) -> None:
        find(r["overlays/dev"], "Service", "loki")["spec"]["ports"][0]["port"] = 80

    def loki_unreachable(r: dict) -> None:
        objects = r["overlays/production-like"]
        objects.remove(find(objects, "NetworkPolicy", "loki"))

    mutations = [
        drop_headless, unpin_image, drift_image, no_readiness, writable_root, root_user, no_limits,
        no_drain, clusterip_url, real_secret, edited_dashboard, missing_dashboard, edited_rules,
        static_prometheus, hpa_fights_replicas, no_pdb, public_metrics, missing_secret_key, shared_nats_user, wildcard_role,
        blocked_database, blocked_scrape, edited_loki_config, loki_ready_on_root, loki_without_data_volume,
        loki_bigger_than_compose, loki_service_elsewhere, loki_unreachable,
    ]
    missed = []
    for mutate in mutations:
        broken = copy.deepcopy(renders)
        mutate(broken)
        c = Checker()
        run_checks(broken, root, c)
        if not c.failures:
            missed.append(mutate.__name__)
    print(f"self-test: {len(mutations) - len(missed)} of {len(mutations)} deliberate breakages caught")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--skip-validate", action="store_true", help="skip kubernetes-validate (schemas)")
    parser.add_argument("--self-test", action="store_true", help="also check that deliberate breakages are caught")
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        print("deploy/k8s/check.py: kubectl not found (apt-get install kubectl)", file=sys.stderr)
        return 1
    version = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True, check=False)
    kustomize_version = json.loads(version.stdout or "{}").get("kustomizeVersion", "")
    if not re.match(r"v([5-9]|\d\d)\.", kustomize_version):
        print(f"deploy/k8s/check.py: kubectl's kustomize is {kustomize_version or 'missing'}; the manifests need kustomize v5 (kubectl 1.27 or newer)", file=sys.stderr)
        return 1
    c = Checker()
    try:
        renders = render_all(args.root)
    except RenderError as error:
        print(f"FAIL: {error}")
        return 1
    if not args.skip_validate:
        for label, objects in renders.items():
            validate(objects, label, c)
    run_checks(renders, args.root, c)
    check_no_copies(args.root, c)
    for failure in c.failures:
        print(f"FAIL: {failure}")
    counts = ", ".join(f"{label} {len(objects)}" for label, objects in renders.items())
    print(f"deploy/k8s/check.py: rendered {counts} objects; {c.passed} checks passed, {len(c.failures)} failed")
    failed = bool(c.failures)
    if args.self_test and not failed:
        missed = self_test(renders, args.root)
        if not args.skip_validate:
            # A field Kubernetes does not know must fail the schema check.
            broken = copy.deepcopy(renders["overlays/dev"])
            pod_template(find(broken, "Deployment", "payments"))["spec"]["replica"] = 3
            probe = Checker()
            validate(broken, "self-test", probe)
            if not probe.failures:
                missed.append("an unknown field (kubernetes-validate --strict)")
        for name_ in missed:
            print(f"FAIL: self-test: breaking the manifests by {name_} went unnoticed")
        failed = bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
