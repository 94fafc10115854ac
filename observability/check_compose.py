#!/usr/bin/env python3
"""Static checks of the Compose stack: the promises docker-compose.yml makes
that a schema cannot see. No Docker engine is needed.

    python3 observability/check_compose.py [--root DIR]

Checks (exit 1 if any fails, each failure on its own line):
- scalable services (users, courses, payments, progress) have no
  container_name and publish no host ports; no service has a container_name;
  only the gateway and the UIs publish ports, on 127.0.0.1;
- every service has a healthcheck (the OTel Collector excepted: its image
  has no shell or HTTP client); LearnSphere services probe /readyz on the
  port they listen on;
- every image is pinned to a version (no `latest`, no bare name); the
  locally built image's Dockerfile pins its base images, runs as a non-root
  user and has no HEALTHCHECK;
- each service's DATABASE_URL uses its own role and database (named after
  the service), and the PostgreSQL init script creates exactly those;
- secrets come from .env (`${VAR:?...}`), never literals: every variable
  whose name looks secret (*_PASSWORD, *_SECRET, *_TOKEN) is interpolated
  only as `${VAR:?...}` anywhere in the file (no default, no bare `$VAR`),
  and every environment key that looks secret has such a value; .env.example
  documents every variable the file uses;
- every service that verifies access tokens (gateway, users, payments,
  progress) gets JWT_SECRET from .env, and no other container does; every
  LearnSphere service gets LEARNSPHERE_ENV (default development);
- the URLs services call each other by are Compose service names (so every
  replica of a scaled service is found);
- the Collector and Jaeger configs wire every pipeline component they
  declare; the Grafana datasources have the UIDs dashboards rely on (every
  datasource a dashboard names exists, with its type), and exemplars link
  to Jaeger's own UI (JAEGER_PUBLIC_URL), not through the jaeger datasource
  (Explore, which anonymous Viewers may not use);
- logs: the Collector's logs pipeline takes OTLP through memory_limiter and
  batch, as the traces pipeline does, to an otlp_http exporter at Loki's
  OTLP endpoint (http://loki:<port>/otlp, the service and port Loki runs
  on); Loki runs a pinned 3.x image with observability/loki.yml mounted
  where its command reads it, a volume where that config keeps its data,
  a healthcheck on /ready, GOMEMLIMIT below its mem_limit, and Grafana
  depends on it; loki.yml ingests OTLP with only bounded labels
  (service.name and a few others, never an instance, pod or id), keeps
  everything else as structured metadata (schema v13, TSDB), bounds its
  retention (compactor on, at most 7 days) and its caches (within its
  mem_limit); Grafana's Loki datasource turns trace_id (structured
  metadata: matcherType label) into the same Jaeger link as the
  exemplars, and the Jaeger datasource's tracesToLogsV2 points at that
  datasource's uid, maps service.name to service_name and filters by trace
  and span id;
- footprint: every container has an expected use in FOOTPRINT (measured or
  estimated, with its source; Jaeger's from its max_traces), none above its
  mem_limit, and together they stay within the 1.5 GB budget
  (docs/performance.md);
- Compose v1 reads the file: no top-level `name:`, the project name in
  .env.example's COMPOSE_PROJECT_NAME;
- every file or directory mounted from the repository exists (those other
  parts of the stack provide are reported, not failed, while missing).

Needs PyYAML.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

# Services that `docker compose up --scale S=N` may run several of.
# Services that publish or consume events over NATS (docs/events.md).
EVENT_SERVICES = {"users", "payments", "progress"}
SCALABLE = {"users", "courses", "payments", "progress"}
# LearnSphere services: `loadgen serve <name>`, port and whether they own a database.
APP_SERVICES = {
    "gateway": (8080, False),
    "users": (8081, True),
    "courses": (8082, True),
    "payments": (8083, True),
    "progress": (8084, True),
}
# The only services that publish host ports, and which.
PUBLISHED = {
    "gateway": {8080},
    "grafana": {3000},
    "jaeger": {16686},
    "prometheus": {9090},
    # OTLP/HTTP for the learner app's browser spans (docs/web.md).
    "otel-collector": {4318},
    # The operator console (docs/web.md).
    "loadgen": {8070},
}
# Services without a healthcheck, and why.
NO_HEALTHCHECK = {
    "otel-collector": "image built FROM scratch: no shell or HTTP client to probe with",
}
# Services that verify users' access tokens themselves (JWT_SECRET).
TOKEN_VERIFIERS = {"gateway", "users", "payments", "progress"}
# Environment variables that hold secrets.
SECRET = re.compile(r"(PASSWORD|SECRET|TOKEN)$")
# A secret's only allowed form: required from .env, no default.
REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")
# Every interpolation: ${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?x}, ${VAR+x}, $VAR
# ($$ is a literal dollar sign in Compose and is skipped).
ANY_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z0-9_]+)([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
# Mounted paths that other parts of the stack provide.
PROVIDED_ELSEWHERE = {"observability/prometheus", "dashboards"}

# The stack's memory budget (docs/performance.md), counted as docker stats
# counts it: 1.5 GiB.
BUDGET_MIB = 1536
# Expected memory use of one replica of each container under `steady`, in
# MiB (the budget counts one replica of each), and where the figure comes
# from. "measured": scripts/compose-smoke --stats, the most of four samples
# after 40 minutes (docs/compose.md), with the Debian stand-ins where the
# real image cannot be pulled here; "estimated": not run here.
FOOTPRINT = {
    "gateway": (12, "measured", "docs/compose.md"),
    "users": (45, "measured", "docs/compose.md"),
    "courses": (9, "measured", "docs/compose.md"),
    "payments": (8, "measured", "docs/compose.md"),
    "progress": (9, "measured", "docs/compose.md"),
    "loadgen": (12, "measured", "docs/compose.md"),
    "postgres": (269, "measured", "docs/compose.md (stand-in: PostgreSQL 15)"),
    "nats": (17, "measured", "docs/compose.md (stand-in: nats-server 2.9)"),
    "prometheus": (102, "measured", "docs/compose.md (stand-in: Prometheus 2.42)"),
    "otel-collector": (150, "estimated", "docs/performance.md; its stand-in measured 68, its memory_limiter refuses data from 180"),
    "grafana": (150, "estimated", "docs/performance.md"),
    "loki": (150, "estimated", "observability/loki.yml's caps (32 MB chunk cache, 6 x 8 MB result caches) over a single binary's Go heap; "
                               "Loki's own monolithic Nomad job reserves 256 MB (grafana/loki production/nomad/loki/job.nomad.hcl)"),
    # "jaeger": from observability/jaeger.yml's max_traces (jaeger_footprint).
}
# What a trace of `steady` costs in Jaeger's memory store: ~18 spans of
# about 1 KB (docs/compose.md: measured span count, estimated bytes).
SPANS_PER_TRACE = 18
BYTES_PER_SPAN = 1000
# Resource attributes that may become Loki labels: bounded, the same for
# every line of a service in one deployment. Never a replica, a pod or an id.
LOKI_LABEL_ATTRIBUTES = {"service.name", "service.namespace", "deployment.environment", "deployment.environment.name"}
LOKI_MAX_RETENTION_HOURS = 7 * 24

INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?+][^}]*)?\}")


class Checker:
    def __init__(self, root: Path):
        self.root = root
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.passed = 0

    def check(self, ok: bool, message: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return ok

    def load(self, relative: str):
        with open(self.root / relative, encoding="utf-8") as f:
            return yaml.safe_load(f)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def host_ports(service: dict) -> list[tuple[str | None, int]]:
    """(host ip, host port) of each published port; short and long syntax."""
    published = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is not None:
                published.append((port.get("host_ip"), int(str(port["published"]).split("-")[0])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) == 1:
            # "8080": a random host port; still a published port.
            published.append((None, 0))
        elif len(parts) == 2:
            published.append((None, int(parts[0].split("-")[0])))
        else:
            published.append((":".join(parts[:-2]), int(parts[-2].split("-")[0])))
    return published


def image_pinned(image: str) -> bool:
    """A tag with a version number in it, or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return False  # no tag at all (a registry port is not a tag)
    if tag == "latest" or not re.search(r"\d", tag):
        return False
    return True


def memory_bytes(value) -> int | None:
    """A Compose byte value ("128m", "1g", 1048576) in bytes, or None."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+)([bkmg]?)b?", str(value or "").strip().lower())
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "b": 0, "k": 10, "m": 20, "g": 30}[m.group(2)]


def check_services(c: Checker, compose: dict) -> None:
    services = compose.get("services") or {}
    c.check(set(APP_SERVICES) <= set(services), f"services missing: {sorted(set(APP_SERVICES) - set(services))}")
    for name, svc in services.items():
        svc = svc or {}
        c.check("container_name" not in svc, f"{name}: container_name set (a fixed name cannot be scaled)")
        ports = host_ports(svc)
        if name in SCALABLE:
            c.check(not ports, f"{name}: scalable but publishes host ports {ports}")
        allowed = PUBLISHED.get(name, set())
        for ip, port in ports:
            c.check(port in allowed, f"{name}: publishes host port {port or '(random)'}; allowed: {sorted(allowed)}")
            c.check(ip == "127.0.0.1", f"{name}: port {port} bound to {ip or 'every interface'}, not 127.0.0.1")

        health = svc.get("healthcheck")
        if name in NO_HEALTHCHECK:
            c.check(health is None, f"{name}: listed as having no healthcheck but has one; update NO_HEALTHCHECK")
            c.notes.append(f"{name}: no healthcheck ({NO_HEALTHCHECK[name]})")
        else:
            ok = c.check(
                isinstance(health, dict) and health.get("test") and not health.get("disable"),
                f"{name}: no healthcheck",
            )
            if ok and name in APP_SERVICES:
                port, _ = APP_SERVICES[name]
                test = " ".join(health["test"]) if isinstance(health["test"], list) else str(health["test"])
                c.check(
                    f"127.0.0.1:{port}/readyz" in test,
                    f"{name}: healthcheck does not probe /readyz on its port {port}: {test}",
                )

        image = svc.get("image")
        if "build" in svc:
            c.check(bool(image), f"{name}: built but its image has no name (every service shares one image)")
        else:
            c.check(bool(image) and image_pinned(image), f"{name}: image {image!r} is not pinned to a version")

        limit = memory_bytes(svc.get("mem_limit"))
        c.check(
            limit is not None and 16 << 20 <= limit <= 2 << 30,
            f"{name}: mem_limit {svc.get('mem_limit')!r} is missing or not between 16m and 2g",
        )

        env = environment(svc)
        for key, value in env.items():
            if SECRET.search(key):
                # The NATS server reads its passwords as configuration
                # values: double-quoted (check_nats).
                if name == "nats":
                    value = value.removeprefix('"').removesuffix('"')
                c.check(
                    REQUIRED.fullmatch(value) is not None,
                    f"{name}: {key} must come from .env as ${{{key}:?...}}, not {value!r}",
                )
        jwt = env.get("JWT_SECRET")
        if name in TOKEN_VERIFIERS:
            c.check(
                jwt is not None and re.fullmatch(r"\$\{JWT_SECRET:\?[^}]*\}", jwt) is not None,
                f"{name}: verifies access tokens but JWT_SECRET is {jwt!r}, not ${{JWT_SECRET:?...}} from .env",
            )
        else:
            c.check(jwt is None, f"{name}: gets JWT_SECRET but verifies no tokens (TOKEN_VERIFIERS)")
        for key, value in env.items():
            if key.endswith("_URL") and key != "DATABASE_URL" and value.startswith("http"):
                host = urlsplit(value).hostname
                if host in {"localhost", "127.0.0.1"}:
                    continue  # links for the browser (LOADGEN_JAEGER_URL)
                c.check(host in services, f"{name}: {key} host {host!r} is not a Compose service name")

        if name in APP_SERVICES:
            port, has_db = APP_SERVICES[name]
            command = svc.get("command") or []
            c.check(command[:2] == ["serve", name], f"{name}: command {command} does not run `serve {name}`")
            c.check(env.get("PORT") == str(port), f"{name}: PORT is {env.get('PORT')!r}, expected {port}")
            c.check(env.get("HOST") == "0.0.0.0", f"{name}: HOST must be 0.0.0.0 inside a container")
            c.check(
                env.get("LEARNSPHERE_ENV") == "${LEARNSPHERE_ENV:-development}",
                f"{name}: LEARNSPHERE_ENV is {env.get('LEARNSPHERE_ENV')!r}, expected ${{LEARNSPHERE_ENV:-development}}",
            )
            c.check(
                env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").startswith("http://otel-collector:"),
                f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT does not point at the Collector",
            )
            check_database_url(c, name, env.get("DATABASE_URL"), has_db)
            if name in EVENT_SERVICES:
                nats = env.get("NATS_URL", "")
                c.check(
                    urlsplit(nats).scheme == "nats" and urlsplit(nats).hostname == "nats",
                    f"{name}: publishes or consumes events but NATS_URL is {nats!r}, not the nats service",
                )
                # Its own user, whose permissions in nats.conf are its own.
                c.check(
                    env.get("NATS_USER") == name,
                    f"{name}: NATS_USER is {env.get('NATS_USER')!r}, expected its own user {name!r}",
                )
                password = REQUIRED.fullmatch(env.get("NATS_PASSWORD", ""))
                c.check(
                    password is not None and password.group(1) == f"{name.upper()}_NATS_PASSWORD",
                    f"{name}: NATS_PASSWORD must be ${{{name.upper()}_NATS_PASSWORD:?...}}",
                )
            else:
                c.check(
                    "NATS_USER" not in env and "NATS_PASSWORD" not in env,
                    f"{name}: has NATS credentials but uses no events",
                )
        elif "DATABASE_URL" in env:
            c.failures.append(f"{name}: has a DATABASE_URL but is not a service with a database")


def check_nats(c: Checker, compose: dict) -> None:
    """The bus requires credentials: the server runs the shipped config
    (one user per event service, each publishing only its own events;
    generated by `loadgen nats-config`), and every user's password comes
    from .env."""
    nats = compose["services"].get("nats") or {}
    command = nats.get("command") or []
    c.check(
        command == ["--config", "/etc/nats/nats.conf", "--store_dir", "/data"],
        f"nats: command {command} does not run the shipped config",
    )
    mounts = [str(v) for v in nats.get("volumes") or []]
    c.check(
        any(m.startswith("./deploy/compose/nats.conf:/etc/nats/nats.conf") for m in mounts),
        "nats: deploy/compose/nats.conf is not mounted at /etc/nats/nats.conf",
    )
    config = (c.root / "deploy/compose/nats.conf").read_text()
    env = environment(nats)
    users = re.findall(r'user: "([a-z]+)", password: \$([A-Z_]+)', config)
    c.check(
        {u for u, _ in users} == EVENT_SERVICES | {"admin"},
        f"nats: nats.conf has users {sorted(u for u, _ in users)}, expected the event services and admin",
    )
    c.check("authorization" in config and "no_auth_user" not in config, "nats: anonymous clients are not refused")
    for user, variable in users:
        # Double-quoted: the server parses the value as configuration, and
        # a bare 3e2a... would be a malformed number.
        raw = env.get(variable, "")
        value = REQUIRED.fullmatch(raw[1:-1]) if raw.startswith('"') and raw.endswith('"') else None
        c.check(
            value is not None and value.group(1) == variable,
            f"nats: {variable} (password of {user}) must be '\"${{{variable}:?...}}\"' from .env, not {raw!r}",
        )


def check_database_url(c: Checker, name: str, url: str | None, has_db: bool) -> None:
    if not has_db:
        c.check(url is None, f"{name}: owns no database but has DATABASE_URL")
        return
    if not c.check(bool(url), f"{name}: no DATABASE_URL"):
        return
    # Replace ${...} so the URL parses; the password must be this service's own.
    masked = INTERPOLATION.sub(lambda m: m.group(1), url)
    parts = urlsplit(masked)
    c.check(parts.scheme == "postgres", f"{name}: DATABASE_URL scheme {parts.scheme!r}, expected postgres")
    c.check(parts.hostname == "postgres", f"{name}: DATABASE_URL host {parts.hostname!r}, expected postgres")
    c.check(parts.username == name, f"{name}: DATABASE_URL role {parts.username!r}, expected its own role {name!r}")
    c.check(parts.path == f"/{name}", f"{name}: DATABASE_URL database {parts.path!r}, expected /{name}")
    expected = f"{name.upper()}_DB_PASSWORD"
    c.check(parts.password == expected, f"{name}: DATABASE_URL password from {parts.password!r}, expected {expected}")


def check_postgres_init(c: Checker, compose: dict) -> None:
    postgres = compose["services"].get("postgres") or {}
    init = [
        v.split(":")[0]
        for v in postgres.get("volumes") or []
        if isinstance(v, str) and "docker-entrypoint-initdb.d" in v
    ]
    if not c.check(len(init) == 1, "postgres: expected one init script mounted into /docker-entrypoint-initdb.d"):
        return
    script = (c.root / init[0]).read_text(encoding="utf-8")
    created = set(re.findall(r"^create_service_database (\w+) ", script, re.M))
    owners = {s for s, (_, db) in APP_SERVICES.items() if db}
    c.check(created == owners, f"postgres init creates databases for {sorted(created)}, expected {sorted(owners)}")
    c.check("REVOKE ALL ON DATABASE" in script, "postgres init does not revoke PUBLIC's access to each database")
    env = environment(postgres)
    for service in owners:
        c.check(f"{service.upper()}_DB_PASSWORD" in env, f"postgres: {service.upper()}_DB_PASSWORD not passed to the init script")


def check_secret_interpolations(c: Checker, text: str) -> None:
    """Every use of a secret-looking variable, anywhere in the file (URLs and
    commands included), is `${VAR:?...}`: no default that would start the
    stack with a known secret, no bare `$VAR` that would start it with none."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in ANY_INTERPOLATION.finditer(line):
            if m.group(0) == "$$":
                continue
            var = m.group(1) or m.group(3)
            if not SECRET.search(var):
                continue
            c.check(
                m.group(2) is not None and m.group(2).startswith(":?"),
                f"docker-compose.yml:{lineno}: secret {var} used as {m.group(0)!r}; only ${{{var}:?...}} (required, no default)",
            )


def check_env_example(c: Checker, text: str) -> None:
    used = set(INTERPOLATION.findall(text))
    example = (c.root / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.M))
    c.check(used <= documented, f".env.example does not document {sorted(used - documented)}")
    for line in example.splitlines():
        m = re.match(r"^([A-Z0-9_]+)=(.*)$", line)
        if m and SECRET.search(m.group(1)):
            c.check("CHANGE-ME" in m.group(2), f".env.example: {m.group(1)} holds a value, not a CHANGE-ME placeholder")


def check_dockerfile(c: Checker) -> None:
    text = (c.root / "Dockerfile").read_text(encoding="utf-8")
    stages = set()
    # Global build arguments (ARG before the first FROM) with their
    # defaults: a FROM that reads one is pinned when its default is.
    preamble = re.split(r"^FROM\s", text, maxsplit=1, flags=re.M)[0]
    defaults = dict(re.findall(r"^ARG\s+([A-Za-z0-9_]+)=(\S+)", preamble, re.M))
    for m in re.finditer(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I):
        alias = m.group(2)
        image = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda v: defaults.get(v.group(1), v.group(0)), m.group(1))
        # `scratch` is no image, only an empty start.
        if image not in stages and image != "scratch":
            c.check(image_pinned(image), f"Dockerfile: base image {image} is not pinned to a version")
        if alias:
            stages.add(alias)
    c.check("cargo chef cook" in text, "Dockerfile: dependencies are not cached with cargo-chef")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    c.check(bool(users) and users[-1].split(":")[0] not in {"0", "root"}, "Dockerfile: the runtime image runs as root")
    c.check(not re.search(r"^HEALTHCHECK", text, re.M), "Dockerfile: HEALTHCHECK belongs in docker-compose.yml")


def check_collector_config(c: Checker, relative: str) -> None:
    """Every component a pipeline names is declared, every connector both
    ends a pipeline and starts one, every extension in use is declared."""
    config = c.load(relative)
    service = config.get("service") or {}
    declared = {kind: set((config.get(kind) or {}).keys()) for kind in ("receivers", "processors", "exporters", "connectors", "extensions")}
    connectors = declared["connectors"]
    as_exporter, as_receiver = set(), set()
    for pipeline, spec in (service.get("pipelines") or {}).items():
        for r in spec.get("receivers") or []:
            c.check(r in declared["receivers"] | connectors, f"{relative}: pipeline {pipeline} receiver {r} not declared")
            as_receiver.add(r)
        for p in spec.get("processors") or []:
            c.check(p in declared["processors"], f"{relative}: pipeline {pipeline} processor {p} not declared")
        for e in spec.get("exporters") or []:
            c.check(e in declared["exporters"] | connectors, f"{relative}: pipeline {pipeline} exporter {e} not declared")
            as_exporter.add(e)
        c.check(bool(spec.get("receivers")) and bool(spec.get("exporters")), f"{relative}: pipeline {pipeline} lacks receivers or exporters")
    for conn in connectors:
        c.check(conn in as_exporter and conn in as_receiver, f"{relative}: connector {conn} must end one pipeline and start another")
    for ext in service.get("extensions") or []:
        c.check(ext in declared["extensions"], f"{relative}: extension {ext} not declared")
    for kind in ("receivers", "processors", "exporters"):
        used = set()
        for spec in (service.get("pipelines") or {}).values():
            used |= set(spec.get(kind) or [])
        unused = declared[kind] - used
        c.check(not unused, f"{relative}: {kind} declared but unused: {sorted(unused)}")


def check_collector_specifics(c: Checker) -> None:
    config = c.load("observability/otel-collector.yml")
    otlp = config["receivers"]["otlp"]["protocols"]
    c.check(otlp["grpc"]["endpoint"].endswith(":4317") and otlp["http"]["endpoint"].endswith(":4318"), "collector: OTLP must listen on 4317 (gRPC) and 4318 (HTTP)")
    # The learner app's page exports its spans here from the gateway's
    # origin: the CORS list must allow it, or every browser span is lost.
    origins = set(((otlp["http"].get("cors") or {}).get("allowed_origins")) or [])
    c.check({"http://localhost:8080", "http://127.0.0.1:8080"} <= origins, f"collector: OTLP/HTTP CORS must allow the learner app's origins (http://localhost:8080, http://127.0.0.1:8080), allows {sorted(origins)}")
    c.check("*" not in origins, "collector: OTLP/HTTP CORS must not allow every origin")
    compose = c.load("docker-compose.yml")
    web_otlp = (compose["services"]["gateway"].get("environment") or {}).get("WEB_OTLP_TRACES_URL", "")
    c.check(web_otlp == "http://localhost:4318/v1/traces", f"gateway: WEB_OTLP_TRACES_URL must be the Collector's published OTLP/HTTP traces URL, is {web_otlp!r}")
    prom = config["exporters"].get("prometheus") or {}
    c.check(prom.get("endpoint", "").endswith(":8889"), "collector: prometheus exporter must serve :8889")
    c.check(prom.get("enable_open_metrics") is True, "collector: enable_open_metrics must be on (exemplars)")
    spanmetrics = config["connectors"].get("spanmetrics") or {}
    c.check((spanmetrics.get("exemplars") or {}).get("enabled") is True, "collector: spanmetrics exemplars must be enabled")
    c.check("servicegraph" in config["connectors"], "collector: servicegraph connector missing")
    jaeger_exporters = [e for e, v in config["exporters"].items() if "jaeger:4317" in str((v or {}).get("endpoint", ""))]
    c.check(bool(jaeger_exporters), "collector: no OTLP exporter to jaeger:4317")

    jaeger = c.load("observability/jaeger.yml")
    backends = jaeger["extensions"]["jaeger_storage"].get("metric_backends") or {}
    prom_backends = [b["prometheus"] for b in backends.values() if "prometheus" in b]
    if c.check(bool(prom_backends), "jaeger: no Prometheus metric backend (Monitor tab)"):
        backend = prom_backends[0]
        c.check(backend.get("endpoint") == "http://prometheus:9090", "jaeger: metric backend must be http://prometheus:9090")
        unit = (spanmetrics.get("histogram") or {}).get("unit", "ms")
        c.check(backend.get("latency_unit", "ms") == unit, f"jaeger: latency_unit must match spanmetrics' unit {unit}")
        namespace = spanmetrics.get("namespace", "traces.span.metrics").replace(".", "_")
        c.check(backend.get("metric_namespace", "traces_span_metrics") == namespace, f"jaeger: metric_namespace must be {namespace}")
    query = jaeger["extensions"]["jaeger_query"]["storage"]
    c.check(query.get("metrics") in backends, "jaeger: jaeger_query.storage.metrics names no metric backend")


def check_grafana(c: Checker, compose: dict) -> None:
    ds = c.load("observability/grafana/provisioning/datasources/datasources.yml")
    by_uid = {d.get("uid"): d for d in ds.get("datasources") or []}
    c.check(by_uid.get("prometheus", {}).get("type") == "prometheus", "grafana: no prometheus datasource with uid prometheus")
    c.check(by_uid.get("jaeger", {}).get("type") == "jaeger", "grafana: no jaeger datasource with uid jaeger")
    dests = (by_uid.get("prometheus", {}).get("jsonData") or {}).get("exemplarTraceIdDestinations") or []
    # Jaeger's own UI, not the jaeger datasource: datasourceUid opens
    # Explore, which anonymous Viewers may not use, and Grafana 12 sends the
    # Jaeger backend `queryType: traceql`, which it does not handle
    # (grafana/grafana#111448). $$ is a literal $ in provisioning files.
    c.check(
        any(d.get("name") == "trace_id" and d.get("url") == "${JAEGER_PUBLIC_URL}/trace/$${__value.raw}" for d in dests),
        "grafana: exemplars (trace_id) must link to ${JAEGER_PUBLIC_URL}/trace/$${__value.raw}",
    )
    c.check(not any("datasourceUid" in d for d in dests), "grafana: an exemplar link through datasourceUid opens Explore (Viewers may not)")
    grafana_env = environment((compose.get("services") or {}).get("grafana") or {})
    c.check(
        grafana_env.get("JAEGER_PUBLIC_URL", "").startswith("${JAEGER_PUBLIC_URL:-http"),
        "grafana: JAEGER_PUBLIC_URL (the exemplar links' Jaeger) must be set, with a default",
    )
    t2m = (by_uid.get("jaeger", {}).get("jsonData") or {}).get("tracesToMetrics") or {}
    c.check(t2m.get("datasourceUid") == "prometheus", "grafana: Jaeger tracesToMetrics does not point at Prometheus")
    for q in t2m.get("queries") or []:
        c.check("$__tags" not in q["query"].replace("$$__tags", ""), f"grafana: write $$__tags in provisioning (Grafana expands $VAR): {q['query']}")
    boards = c.load("observability/grafana/provisioning/dashboards/dashboards.yml")
    paths = [p.get("options", {}).get("path") for p in boards.get("providers") or []]
    c.check("/var/lib/grafana/dashboards" in paths, "grafana: no dashboard provider for /var/lib/grafana/dashboards")


def dashboard_datasources(root: Path) -> set[tuple[str, str]]:
    """(type, uid) of every datasource the dashboards name (panels, their
    targets, annotations, variables), Grafana's built-in mixed one aside."""
    import json

    found = set()

    def visit(node):
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") and ds.get("type") != "datasource":
                found.add((ds.get("type"), ds["uid"]))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for path in sorted((root / "dashboards").glob("*.json")):
        visit(json.loads(path.read_text(encoding="utf-8")))
    return found


def check_logs(c: Checker, compose: dict) -> None:
    """Logs: the Collector's logs pipeline to Loki, Loki itself, and the
    Grafana links between logs and traces."""
    services = compose.get("services") or {}
    loki = services.get("loki")
    if not c.check(isinstance(loki, dict), "loki: no loki service (the Collector's logs pipeline and Grafana's Loki datasource need it)"):
        return
    config = c.load("observability/loki.yml")
    port = (config.get("server") or {}).get("http_listen_port", 3100)

    # The image: Loki 3 (native OTLP ingestion), pinned (check_services).
    image = str(loki.get("image", ""))
    c.check(re.fullmatch(r"grafana/loki:3\.\d+\.\d+", image) is not None, f"loki: image {image!r} is not a pinned grafana/loki 3.x.y (native OTLP ingestion needs 3)")
    # Its config, where its command reads it; its data where the config keeps it.
    command = loki.get("command") or []
    command = command if isinstance(command, list) else str(command).split()
    read = next((a.split("=", 1)[1] for a in command if str(a).startswith("-config.file=")), None)
    mounts = [str(v) for v in loki.get("volumes") or []]
    c.check(read is not None and any(m.split(":")[:2] == ["./observability/loki.yml", read] for m in mounts), f"loki: observability/loki.yml is not mounted where its command reads its config ({read})")
    data_dir = (config.get("common") or {}).get("path_prefix")
    c.check(bool(data_dir) and any(m.split(":")[1] == data_dir and not m.startswith("./") for m in mounts), f"loki: no volume at {data_dir} (common.path_prefix: WAL, index, chunks)")
    test = " ".join((loki.get("healthcheck") or {}).get("test") or [])
    c.check(f"127.0.0.1:{port}/ready" in test, f"loki: healthcheck does not probe /ready on its port {port}: {test}")
    limit = memory_bytes(loki.get("mem_limit"))
    m = re.fullmatch(r"(\d+)(MiB|GiB)", environment(loki).get("GOMEMLIMIT", ""))
    gomemlimit = int(m.group(1)) << (20 if m.group(2) == "MiB" else 30) if m else None
    c.check(gomemlimit is not None and limit is not None and gomemlimit < limit, f"loki: GOMEMLIMIT {environment(loki).get('GOMEMLIMIT')!r} is not below mem_limit {loki.get('mem_limit')!r}")
    grafana_deps = (services.get("grafana") or {}).get("depends_on") or {}
    c.check("loki" in grafana_deps, "grafana: does not depend on loki (its Loki datasource)")

    # loki.yml: OTLP in, few labels, bounded retention and caches.
    limits = config.get("limits_config") or {}
    resource = ((limits.get("otlp_config") or {}).get("resource_attributes")) or {}
    c.check(resource.get("ignore_defaults") is True, "loki.yml: otlp_config.resource_attributes.ignore_defaults must be true (Loki's defaults index service.instance.id and k8s.pod.name)")
    indexed = {a for rule in resource.get("attributes_config") or [] if rule.get("action") == "index_label" for a in rule.get("attributes") or []}
    regex_labels = [rule for rule in resource.get("attributes_config") or [] if rule.get("action") == "index_label" and rule.get("regex")]
    c.check("service.name" in indexed, "loki.yml: service.name is not an index label (every query selects service_name)")
    c.check(indexed <= LOKI_LABEL_ATTRIBUTES and not regex_labels, f"loki.yml: index labels {sorted(indexed)} beyond the bounded ones {sorted(LOKI_LABEL_ATTRIBUTES)} (or by regex): instance, pod and ids stay structured metadata")
    c.check(limits.get("allow_structured_metadata", True) is True and not (limits.get("otlp_config") or {}).get("severity_text_as_label"), "loki.yml: structured metadata must be allowed, and severity_text stay in it")
    schemas = (config.get("schema_config") or {}).get("configs") or []
    c.check(bool(schemas) and schemas[-1].get("schema") == "v13" and schemas[-1].get("store") == "tsdb", "loki.yml: the current schema is not v13 on tsdb (structured metadata needs it)")
    retention = str(limits.get("retention_period", "0"))
    hours = re.fullmatch(r"(\d+)([hd])", retention)
    retention_hours = int(hours.group(1)) * (24 if hours.group(2) == "d" else 1) if hours else 0
    c.check((config.get("compactor") or {}).get("retention_enabled") is True and 0 < retention_hours <= LOKI_MAX_RETENTION_HOURS, f"loki.yml: retention is not bounded (compactor.retention_enabled and 0 < retention_period {retention!r} <= {LOKI_MAX_RETENTION_HOURS}h)")
    chunk_cache = ((((config.get("chunk_store_config") or {}).get("chunk_cache_config") or {}).get("embedded_cache")) or {}).get("max_size_mb")
    results_cache = (((((config.get("query_range") or {}).get("results_cache") or {}).get("cache") or {}).get("embedded_cache")) or {}).get("max_size_mb")
    # Six result caches share the results cache's size (index stats,
    # volume, series, labels, instant metrics and the results themselves).
    caches_mib = (chunk_cache or 100) + 6 * (results_cache or 100)
    c.check(chunk_cache is not None and results_cache is not None and limit is not None and caches_mib << 20 < limit // 2, f"loki.yml: its caches may hold {caches_mib} MB; set chunk and results embedded_cache max_size_mb to stay well inside mem_limit {loki.get('mem_limit')}")

    # The Collector: a logs pipeline like the traces one, ending at Loki's OTLP endpoint.
    collector = c.load("observability/otel-collector.yml")
    pipelines = (collector.get("service") or {}).get("pipelines") or {}
    logs = {name: p for name, p in pipelines.items() if name.split("/")[0] == "logs"}
    if c.check(len(logs) == 1, f"collector: expected one logs pipeline, found {sorted(logs)}"):
        (name, pipe), = logs.items()
        traces = pipelines.get("traces") or {}
        c.check(pipe.get("receivers") == ["otlp"], f"collector: {name} does not receive OTLP")
        c.check(pipe.get("processors") == traces.get("processors"), f"collector: {name} processors {pipe.get('processors')} differ from the traces pipeline's {traces.get('processors')}")
        exporters = pipe.get("exporters") or []
        to_loki = [e for e in exporters if e.split("/")[0] in ("otlp_http", "otlphttp")]
        c.check(len(to_loki) == 1 and to_loki == exporters, f"collector: {name} exports to {exporters}, not one otlp_http exporter (Loki's native OTLP endpoint)")
        for e in to_loki:
            endpoint = str(((collector.get("exporters") or {}).get(e) or {}).get("endpoint", ""))
            c.check(endpoint == f"http://loki:{port}/otlp", f"collector: {e} endpoint {endpoint!r} is not Loki's OTLP endpoint http://loki:{port}/otlp")

    # Grafana: the Loki datasource, and the links both ways.
    ds = c.load("observability/grafana/provisioning/datasources/datasources.yml")
    lokis = [d for d in ds.get("datasources") or [] if d.get("type") == "loki"]
    if not c.check(len(lokis) == 1, f"grafana: expected one Loki datasource, found {len(lokis)}"):
        return
    loki_ds = lokis[0]
    c.check(loki_ds.get("url") == f"http://loki:{port}", f"grafana: Loki datasource url {loki_ds.get('url')!r} is not http://loki:{port}")
    derived = [f for f in (loki_ds.get("jsonData") or {}).get("derivedFields") or [] if f.get("matcherRegex") == "trace_id"]
    c.check(len(derived) == 1 and derived[0].get("matcherType") == "label", "grafana: Loki derivedFields must match the trace_id structured metadata field (matcherType: label, matcherRegex: trace_id)")
    for field in derived:
        c.check(field.get("url") == "${JAEGER_PUBLIC_URL}/trace/$${__value.raw}", f"grafana: a log line's trace_id must link to ${{JAEGER_PUBLIC_URL}}/trace/$${{__value.raw}}, as the exemplars do, not {field.get('url')!r}")
        c.check("datasourceUid" not in field, "grafana: a trace_id link through datasourceUid opens Explore (Viewers may not)")
    jaeger = next((d for d in ds.get("datasources") or [] if d.get("type") == "jaeger"), {})
    t2l = (jaeger.get("jsonData") or {}).get("tracesToLogsV2") or {}
    c.check(t2l.get("datasourceUid") == loki_ds.get("uid"), f"grafana: Jaeger tracesToLogsV2.datasourceUid {t2l.get('datasourceUid')!r} is not the Loki datasource's uid {loki_ds.get('uid')!r}")
    c.check({"key": "service.name", "value": "service_name"} in (t2l.get("tags") or []), "grafana: tracesToLogsV2 must map the span's service.name to Loki's service_name label")
    c.check(t2l.get("filterByTraceID") is True and t2l.get("filterBySpanID") is True, "grafana: tracesToLogsV2 must filter by trace id and span id")
    query = str(t2l.get("query", ""))
    if t2l.get("customQuery"):
        # The ids are structured metadata: label filters after a pipe, not
        # line filters (|= "id" searches the line's text) nor stream labels.
        c.check("{$${__tags}}" in query and re.search(r"\|\s*trace_id\s*=~?\s*\"[^\"]*\$\$\{__span\.traceId\}", query) is not None
                and re.search(r"\|\s*span_id\s*=\s*\"\$\$\{__span\.spanId\}\"", query) is not None,
                f"grafana: tracesToLogsV2.query must select {{$${{__tags}}}} and filter | trace_id and | span_id on the span's ids ($$ escaped): {query!r}")
    else:
        c.failures.append("grafana: tracesToLogsV2 without customQuery searches the ids in the line's text (|= \"<id>\"); OTLP logs carry them as structured metadata")

    # Every datasource a dashboard names is provisioned, with that type.
    provisioned = {(d.get("type"), d.get("uid")) for d in ds.get("datasources") or []}
    for kind, uid in sorted(dashboard_datasources(c.root)):
        c.check((kind, uid) in provisioned, f"dashboards: datasource {kind}/{uid} is not provisioned (datasources.yml has {sorted(provisioned)})")


def jaeger_footprint(c: Checker) -> int:
    """Jaeger's expected memory in MiB: its in-memory trace store full."""
    jaeger = c.load("observability/jaeger.yml")
    backends = ((jaeger.get("extensions") or {}).get("jaeger_storage") or {}).get("backends") or {}
    max_traces = max(((b.get("memory") or {}).get("max_traces", 0) for b in backends.values()), default=0)
    return max_traces * SPANS_PER_TRACE * BYTES_PER_SPAN >> 20


def check_footprint(c: Checker, compose: dict) -> None:
    """One replica of every container, at its expected use, within the budget."""
    services = compose.get("services") or {}
    footprint = {name: figure for name, (figure, _, _) in FOOTPRINT.items()}
    if "jaeger" in services:
        footprint["jaeger"] = jaeger_footprint(c)
    for name, svc in services.items():
        if not c.check(name in footprint, f"{name}: no expected memory use in check_compose.py's FOOTPRINT (the stack's budget counts every container)"):
            continue
        limit = memory_bytes((svc or {}).get("mem_limit"))
        c.check(limit is None or footprint[name] << 20 <= limit, f"{name}: expected use {footprint[name]} MiB is above its mem_limit {svc.get('mem_limit')!r}")
    for name in sorted(set(footprint) - set(services)):
        c.failures.append(f"FOOTPRINT lists {name}, which docker-compose.yml does not run")
    total = sum(footprint[name] for name in services if name in footprint)
    c.check(total <= BUDGET_MIB, f"footprint: the stack's expected use is {total} MiB, over the {BUDGET_MIB} MiB budget (docs/performance.md)")
    estimated = sum(footprint[n] for n in services if n in footprint and (n == "jaeger" or FOOTPRINT.get(n, (0, "estimated"))[1] == "estimated"))
    c.notes.append(f"footprint: {total} MiB of {BUDGET_MIB} MiB expected ({estimated} MiB of it estimated: {', '.join(sorted(n for n in services if n == 'jaeger' or FOOTPRINT.get(n, (0, 'x'))[1] == 'estimated'))})")


def check_compose_v1(c: Checker, compose: dict) -> None:
    """Compose v1 (Debian's and Ubuntu's docker-compose) reads the file too:
    no top-level `name:`, which it refuses; the project name comes from
    COMPOSE_PROJECT_NAME in .env, as loadgen's --compose-project expects."""
    c.check("name" not in compose, "docker-compose.yml: a top-level name: (Compose v1 refuses it); set COMPOSE_PROJECT_NAME in .env.example")
    example = (c.root / ".env.example").read_text(encoding="utf-8")
    c.check(
        re.search(r"^COMPOSE_PROJECT_NAME=learnsphere$", example, re.M) is not None,
        ".env.example: COMPOSE_PROJECT_NAME=learnsphere missing (the project name loadgen's --compose-project uses)",
    )


def check_mounts(c: Checker, compose: dict) -> None:
    for name, svc in compose["services"].items():
        for volume in (svc or {}).get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if not source.startswith("./"):
                continue
            relative = source[2:].rstrip("/")
            if (c.root / relative).exists():
                c.passed += 1
            elif relative in PROVIDED_ELSEWHERE:
                c.notes.append(f"{name}: mounts ./{relative}, not in this tree yet (another part of the stack provides it)")
            else:
                c.failures.append(f"{name}: mounts ./{relative}, which does not exist")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    c = Checker(args.root)
    text = (args.root / "docker-compose.yml").read_text(encoding="utf-8")
    compose = yaml.safe_load(text)
    check_services(c, compose)
    check_postgres_init(c, compose)
    check_nats(c, compose)
    check_secret_interpolations(c, text)
    check_env_example(c, text)
    check_dockerfile(c)
    check_collector_config(c, "observability/otel-collector.yml")
    check_collector_config(c, "observability/jaeger.yml")
    check_collector_specifics(c)
    check_grafana(c, compose)
    check_logs(c, compose)
    check_footprint(c, compose)
    check_compose_v1(c, compose)
    check_mounts(c, compose)
    for note in c.notes:
        print(f"note: {note}")
    for failure in c.failures:
        print(f"FAIL: {failure}")
    print(f"check_compose: {c.passed} checks passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
