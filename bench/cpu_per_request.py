"""CPU per request, per process: what each service spends on one request.

Run through bench/cpu-per-request.sh, which builds the release binaries
first. For each database (SQLite, PostgreSQL) and each telemetry mode
(off; on, exporting over OTLP/gRPC to `loadgen receive`), it starts the
whole system with `loadgen up --ports auto` and loads these paths at fixed
rates (open model), one after another:

  course    GET /courses/c0001 on courses directly   (`loadgen bench`)
  hop       GET /api/courses/c0001 on the gateway     (`loadgen bench`)
  browse    the browse journey: a catalog page, a course, its course page
            (`loadgen run`, a constant-arrival-rate scenario)
  checkout  the checkout journey: a course page, the purchase, the
            learner's enrollments (`loadgen run`, the same), at its own,
            lower rates (--checkout-rates): it costs several times what a
            read does, and 1,000 requests/s of it is past this machine
  capacity  the browse journey at saturation: a closed model
            (`constant-vus`, no think time, --capacity-vus users); the
            rate shown is journeys per second, the CPU per request
  floor     GET /healthz on courses and, at the same time, on the gateway,
            each at the rate (`loadgen bench`): the same servers, with no
            inbound layers and no handler work. What one HTTP/1.1 exchange
            over loopback costs a process at that rate: the floor under
            `course` (one exchange) and `hop` (two: in, and out to courses)

For each, it reads every process's utime + stime from /proc/PID/stat at
the start and the end of a window inside the load (after a warm-up), and
divides by the requests sent in that window: `loadgen bench`'s achieved
rate times the window for one URL, loadgen's own request counter
(`loadgen_request_duration_seconds_count`, scraped at the window's ends)
for journeys. On PostgreSQL the server's processes (every `postgres`
process: backends, WAL writer, checkpointer) are counted as `postgres`.
The collector's CPU (`loadgen receive`) is shown, not counted in the
services' total: it stands in for a Collector that runs elsewhere.

Loopback only; everything it starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICES = ["gateway", "users", "courses", "payments", "progress"]
# Requests per journey, to turn a request rate into journeys per second.
REQUESTS_PER_JOURNEY = {"browse": 3, "checkout": 3}
# Which processes a path runs through (the rest are shown but idle).
TOUCHES = {
    "course": ["courses"],
    "hop": ["gateway", "courses"],
    "browse": ["gateway", "courses"],
    "checkout": ["gateway", "users", "courses", "payments", "progress", "nats"],
    "capacity": ["gateway", "courses"],
    "floor": ["gateway", "courses"],
}
# What `loadgen bench` loads, by path: (service, path) pairs, run at once.
BENCH_URLS = {
    "course": [("courses", "/courses/c0001")],
    "hop": [("gateway", "/api/courses/c0001")],
    "floor": [("courses", "/healthz"), ("gateway", "/healthz")],
}


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command may hold spaces and parentheses: fields follow the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def processes_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def children_named(parent: int, name: str) -> list[int]:
    found = []
    for pid in processes_named(name):
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == parent:
            found.append(pid)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str | None = None, timeout: float = 5.0) -> str:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def wait_for(what: str, check, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


@dataclass
class Groups:
    """The processes counted, by name: a service, `nats`, `postgres`, `collector`."""

    pids: dict[str, list[int]] = field(default_factory=dict)
    postgres: bool = False

    def snapshot(self) -> dict[str, dict[int, float]]:
        groups = dict(self.pids)
        if self.postgres:
            groups["postgres"] = processes_named("postgres")
        snap = {}
        for name, pids in groups.items():
            snap[name] = {}
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    snap[name][pid] = seconds
        return snap


def spent(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per group between two snapshots; a process born in
    between counts from zero, one that died is lost (named in the note)."""
    out = {}
    for name, pids in after.items():
        out[name] = sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in pids.items())
    return out


class System:
    """`loadgen up --ports auto`, and `loadgen receive` when exporting."""

    def __init__(self, bin_path: Path, database: str, telemetry: str, postgres_url: str, work: Path,
                 extra_env: dict[str, str]):
        self.bin = bin_path
        self.work = work
        self.procs: list[subprocess.Popen] = []
        env = dict(os.environ)
        # The bench measures the work of a request, not the guards.
        env.update(RUST_LOG="warn", CONCURRENCY_LIMIT="0", RATE_LIMIT_PER_SECOND="0",
                   CONCURRENCY_LIMIT_PER_CLIENT="0")
        for key in [k for k in env if k.startswith("OTEL_")]:
            del env[key]
        env.update(extra_env)
        self.collector_pid = None
        if telemetry == "on":
            grpc, http = free_port(), free_port()
            receiver = self.spawn("receiver", [str(bin_path), "receive", "--grpc", f"127.0.0.1:{grpc}",
                                               "--http", f"127.0.0.1:{http}", "--keep", "100"], env)
            self.collector_pid = receiver.pid
            env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{grpc}",
                       OTEL_EXPORTER_OTLP_PROTOCOL="grpc", METRICS_ENABLED="true")
        else:
            env.update(OTEL_SDK_DISABLED="true", METRICS_ENABLED="false")
        data = work / f"data-{database}-{telemetry}"
        args = [str(bin_path), "up", "--ports", "auto", "--data-dir", str(data)]
        if database == "postgres":
            args += ["--postgres", postgres_url]
        self.launcher = self.spawn("up", args, env)
        self.token = wait_for("the admin token", lambda: (data / "admin-token").read_text().strip())
        log = work / "up.log"
        self.control = wait_for(
            "the control API",
            lambda: re.search(r"control API[^\n]*?(http://127\.0\.0\.1:\d+)", log.read_text()).group(1),
        )
        status = wait_for("every service ready", self.ready)
        self.urls = {s["name"]: s["replicas"][0]["url"] for s in status}
        self.groups = Groups(postgres=database == "postgres")
        for s in status:
            self.groups.pids[s["name"]] = [r["pid"] for r in s["replicas"]]
        self.groups.pids["nats"] = children_named(self.launcher.pid, "nats-server")
        if self.collector_pid:
            self.groups.pids["collector"] = [self.collector_pid]

    def spawn(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "w")
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def ready(self):
        status = json.loads(get(f"{self.control}/services", self.token))
        services = status["services"] if isinstance(status, dict) else status
        if len(services) == len(SERVICES) and all(
            r.get("state") == "ready" and r.get("pid") for s in services for r in s["replicas"]
        ):
            return services
        return None

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def scrape_requests(metrics_url: str) -> float:
    """Requests loadgen has had answered, over every request name and outcome."""
    total = 0.0
    for line in get(metrics_url).splitlines():
        if line.startswith("loadgen_request_duration_seconds_count"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure_bench(system: System, path: str, rate: float, window: float, warmup: float, connections: int):
    """`loadgen bench` at `rate` on each of the path's URLs at once. The
    requests counted are one URL's: for `floor` each process answers its
    own /healthz, so each process's CPU divides by its own rate."""
    total = warmup + window + 1.0
    procs = [
        subprocess.Popen(
            [str(system.bin), "bench", "--rate", str(rate), "--connections", str(connections),
             "--duration", f"{total}s", system.urls[service] + url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for service, url in BENCH_URLS[path]
    ]
    time.sleep(warmup)
    before = system.groups.snapshot()
    time.sleep(window)
    after = system.groups.snapshot()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=total + 30)
        line = next((l for l in out.splitlines() if l.startswith("bench: ")), None)
        if line is None:
            raise SystemExit(f"loadgen bench printed no result:\n{out}")
        results.append(dict(kv.split("=") for kv in line[len("bench: "):].split()))
    achieved = min(float(v["rps"]) for v in results)
    return spent(before, after), achieved * window, {
        "achieved_rps": achieved, "errors": sum(int(v["errors"]) for v in results),
        "achieved_ratio": min(float(v["achieved_ratio"]) for v in results),
        "p50_ms": max(float(v["p50_ms"]) for v in results),
        "p99_ms": max(float(v["p99_ms"]) for v in results),
    }


SCENARIO = """name = "cpu-{journey}"
description = "bench/cpu-per-request.sh: {journey} at a fixed rate."
duration = "{duration}s"

[data]
learners = {learners}

[[executor]]
name = "load"
type = "constant-arrival-rate"
rate = {rate}
max_in_flight = 2000
journeys = {{ {journey} = 1 }}
"""


CAPACITY = """name = "cpu-capacity"
description = "bench/cpu-per-request.sh: browse at saturation."
duration = "{duration}s"

[[executor]]
name = "load"
type = "constant-vus"
vus = {vus}
think_time = ["0s", "0s"]
journeys = {{ browse = 1 }}
"""


def measure_journey(system: System, journey: str, rate: float, window: float, warmup: float, work: Path,
                    vus: int | None = None):
    """A journey at `rate` requests/s, or, with `vus`, browse at saturation."""
    duration = warmup + window + 1.0
    scenario = work / f"cpu-{journey}.toml"
    if vus is not None:
        scenario.write_text(CAPACITY.format(duration=duration, vus=vus))
    else:
        journeys_per_second = rate / REQUESTS_PER_JOURNEY[journey]
        learners = 0 if journey == "browse" else 200
        scenario.write_text(SCENARIO.format(journey=journey, duration=duration,
                                            learners=learners, rate=round(journeys_per_second, 3)))
    metrics_port = free_port()
    out_dir = work / f"out-{journey}-{rate}"
    proc = subprocess.Popen(
        [str(system.bin), "run", str(scenario), "--target", system.urls["gateway"],
         "--control", system.control, "--admin-token", system.token,
         "--metrics-addr", f"127.0.0.1:{metrics_port}", "--no-progress", "--out", str(out_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    # The window starts once requests flow (after the learners sign up).
    wait_for(f"{journey} requests", lambda: scrape_requests(metrics) > 0, seconds=300)
    time.sleep(warmup)
    before, requests_before = system.groups.snapshot(), scrape_requests(metrics)
    time.sleep(window)
    after, requests_after = system.groups.snapshot(), scrape_requests(metrics)
    out, _ = proc.communicate(timeout=duration + 120)
    summary = json.loads((out_dir / "summary.json").read_text())
    executor = summary["executors"][0]
    overall = summary["overall"]
    requests = requests_after - requests_before
    target = executor.get("target_rate") or 0
    return spent(before, after), requests, {
        "achieved_rps": requests / window, "errors": overall["errors"],
        "journeys_per_second": requests / window / REQUESTS_PER_JOURNEY["browse" if vus else journey],
        "achieved_ratio": executor["achieved_rate"] / target if target else None,
        "p50_ms": overall["latency_ms"]["p50"], "p99_ms": overall["latency_ms"]["p99"],
    }


def median_trial(trials):
    """Per process, the median over trials of CPU µs per request; the
    other figures from the trial whose total is the median."""
    pers = []
    for cpu, requests, info in trials:
        pers.append({n: cpu.get(n, 0.0) / requests * 1e6 for n in cpu})
    names = set().union(*pers)
    per = {n: statistics.median(p.get(n, 0.0) for p in pers) for n in names}
    totals = [sum(v for n, v in p.items() if n != "collector") for p in pers]
    middle = sorted(range(len(trials)), key=lambda i: totals[i])[len(trials) // 2]
    _, requests, info = trials[middle]
    if len(trials) > 1:
        info = dict(info, trials=len(trials),
                    totals_us=[round(t) for t in totals],
                    achieved_all=[round(t[2].get("journeys_per_second") or t[2]["achieved_rps"]) for t in trials])
        if info.get("journeys_per_second") is not None:
            info["journeys_per_second"] = statistics.median(t[2]["journeys_per_second"] for t in trials)
    return per, requests, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="target/release/loadgen")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per path and rate")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rates", default="1000,3000", help="requests per second")
    parser.add_argument("--checkout-rates", default="100,300", help="requests per second of the checkout path")
    parser.add_argument("--capacity-vus", type=int, default=32, help="users of the capacity path")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--telemetry", default="off,on")
    parser.add_argument("--paths", default="floor,course,hop,browse,checkout,capacity")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1,
                        help="trials per path and rate; the table shows each process's median")
    parser.add_argument("--postgres-url", default=os.environ.get("POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="set in the services' environment (repeatable), e.g. CATALOG_CACHE_ENTRIES=0")
    parser.add_argument("--json", help="also write every measurement here, one JSON object per line")
    args = parser.parse_args()

    rates = [float(r) for r in args.rates.split(",")]
    checkout_rates = [float(r) for r in args.checkout_rates.split(",")]
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="cpu-per-request-"))
    print(f"# {os.cpu_count()} cores; window {args.seconds:g} s after {args.warmup:g} s warm-up; "
          f"CPU µs per request (utime+stime / requests in the window); `achieved` is requests/s, "
          f"journeys/s for capacity")
    header = f"{'db':<8} {'telemetry':<9} {'path':<8} {'rate':>5} {'achieved':>8} " + " ".join(
        f"{n:>8}" for n in SERVICES + ["nats", "postgres"]) + f" {'total':>8} {'collector':>9} {'errors':>6}"
    print(header)
    try:
        for database in args.databases.split(","):
            for telemetry in args.telemetry.split(","):
                system_work = work / f"{database}-{telemetry}"
                system_work.mkdir()
                system = System(Path(args.bin), database, telemetry, args.postgres_url, system_work, extra_env)
                try:
                    for path in args.paths.split(","):
                        path_rates = {"checkout": checkout_rates, "capacity": [0.0]}.get(path, rates)
                        for rate in path_rates:
                            trials = []
                            for _ in range(args.repeat):
                                if path in BENCH_URLS:
                                    trial = measure_bench(system, path, rate, args.seconds, args.warmup, args.connections)
                                elif path == "capacity":
                                    trial = measure_journey(system, "browse", rate, args.seconds, args.warmup,
                                                            system_work, vus=args.capacity_vus)
                                else:
                                    trial = measure_journey(system, path, rate, args.seconds, args.warmup, system_work)
                                trials.append(trial)
                            per, requests, info = median_trial(trials)
                            counted = [n for n in per if n != "collector"]
                            total = sum(per[n] for n in counted)
                            row = {"database": database, "telemetry": telemetry, "path": path, "rate": rate,
                                   "requests": requests, "us_per_request": per, "total_us": total, **info}
                            rows.append(row)
                            cells = " ".join(
                                f"{per[n]:8.0f}" if n in per and (n in TOUCHES[path] or n == "postgres" or per[n] >= 0.5) else f"{'-':>8}"
                                for n in SERVICES + ["nats", "postgres"])
                            collector = f"{per['collector']:9.0f}" if "collector" in per else f"{'-':>9}"
                            achieved = info["journeys_per_second"] if path == "capacity" else info["achieved_rps"]
                            shown_rate = "max" if path == "capacity" else f"{rate:5.0f}"
                            print(f"{database:<8} {telemetry:<9} {path:<8} {shown_rate:>5} {achieved:8.0f} {cells} {total:8.0f} {collector} {info['errors']:6d}", flush=True)
                            if args.json:
                                row["env"] = extra_env
                                with open(args.json, "a") as f:
                                    f.write(json.dumps(row) + "\n")
                finally:
                    system.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
