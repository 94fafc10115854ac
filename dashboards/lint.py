#!/usr/bin/env python3
"""Lints LearnSphere's Grafana dashboards (python3, standard library only).

    python3 dashboards/lint.py                    # lint; exit 1 on any problem
    python3 dashboards/lint.py --list-queries     # every PromQL expression, variables
                                                  # substituted, as JSON
    python3 dashboards/lint.py --prometheus URL   # also evaluate each one there
                                                  # (add --require-core: core ones
                                                  # must return data)

Checks: each file is valid JSON and what generate.py produces; panel ids are
unique; every panel (and row, and a row's children) has a description and a
known datasource by its provisioned uid: Prometheus, Loki, or Grafana's
mixed datasource for a panel whose queries go to both, each query naming
its own (Prometheus or Loki) and agreeing with its panel; a logs panel
queries Loki only; every dashboard has a description and the loadgen-events
annotation; no query pins an `instance`; every metric name in a PromQL
expression is in docs/metrics.md, a recording rule, or a Prometheus
built-in; only known template variables are used, in PromQL and LogQL
alike; a LogQL query selects its streams by label (`{...}`) over the
dashboard's range, and on a dashboard with the `service` variable it
selects that service's streams (`service_name="$service"`).

LogQL's syntax is checked by observability/logql/check.mjs (Grafana's own
LogQL grammar, @grafana/lezer-logql); PromQL's by the end-to-end test,
against a real Prometheus. --list-queries lists PromQL only: Loki's
queries cannot run there.
"""

import argparse
import json
import os
import re
import sys
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep dashboards/ free of __pycache__
import generate  # noqa: E402  (the generator is the source of truth)

DS = generate.DS
LOKI = generate.LOKI
MIXED = generate.MIXED
PANEL_DATASOURCES = (DS, LOKI, MIXED)

# Recording rules every part of the observability stack agrees on.
RECORDING_RULES = {
    "service:http_server_requests:rate5m",
    "service:http_server_errors:rate5m",
    "service:http_server_error_ratio:rate5m",
    "service:http_server_request_duration_seconds:p50_5m",
    "service:http_server_request_duration_seconds:p99_5m",
    "edge:http_client_requests:rate5m",
    "edge:http_client_errors:rate5m",
    "edge:http_client_request_duration_seconds:p99_5m",
    "edge:messaging_consumed:rate5m",
    "edge:messaging_failed:rate5m",
} | {f"slo:checkout_availability:error_ratio_rate{w}" for w in generate.SLO_WINDOWS} \
  | {f"slo:checkout_latency:slow_ratio_rate{w}" for w in generate.SLO_WINDOWS}
BUILTINS = {"ALERTS", "ALERTS_FOR_STATE", "up"}

# Default values for template variables when listing or evaluating queries.
DEFAULT_VARS = {
    "service": "payments",
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "5m",
}
# Grafana's variables in a Loki query: $__auto is the step Grafana picks
# for the panel's width ($__rate_interval is Prometheus' own).
LOKI_VARS = {"__auto", "__interval", "__range"}
# The stream selector of the service's own logs on a dashboard with the
# `service` variable.
SERVICE_STREAM = 'service_name="$service"'

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "inf", "nan", "atan2",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def catalogue_metrics():
    """Metric names documented in docs/metrics.md (first column of its tables)."""
    names = set()
    with open(os.path.join(ROOT, "docs", "metrics.md"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|", line)
            if m:
                names.add(m.group(1))
    return names


def rule_files_records():
    """Recording rules defined in observability/prometheus/rules, if present."""
    names = set()
    rules = os.path.join(ROOT, "observability", "prometheus", "rules")
    if os.path.isdir(rules):
        for name in sorted(os.listdir(rules)):
            if name.endswith((".yml", ".yaml")):
                with open(os.path.join(rules, name), encoding="utf-8") as f:
                    names.update(re.findall(r"^\s*-?\s*record:\s*[\"']?([^\s\"']+)", f.read(), re.M))
    return names


def metric_names(expr):
    """Metric names an expression selects: identifiers that are not
    functions, keywords, label names or grouping labels."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    s = re.sub(r"\{[^}]*\}", "", s)                       # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)                      # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    s = re.sub(r"\boffset\s+-?\w+", "", s)
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def known_metric(name, catalogue):
    if name in catalogue or name in RECORDING_RULES or name in BUILTINS:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in catalogue:
            return True
    return False


def load_dashboards():
    out = {}
    for name in sorted(generate.DASHBOARDS):
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            out[name] = f.read()
    return out


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_queries(name, dash, datasource=DS):
    """(panel id, panel title, refId, expr, instant) for every expression
    that goes to `datasource` (PromQL by default, LogQL with LOKI)."""
    for p in walk_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t and t.get("datasource", p.get("datasource")) == datasource:
                yield p.get("id"), p.get("title"), t.get("refId"), t["expr"], bool(t.get("instant"))
    for a in dash.get("annotations", {}).get("list", []):
        if "expr" in a and a.get("datasource") == datasource:
            yield None, "annotation: " + a.get("name", ""), "annotation", a["expr"], False


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2)
        return variables.get(name, m.group(0))
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def lint():
    problems = []
    catalogue = catalogue_metrics()
    extra_rules = rule_files_records()
    expected = generate.render()
    for name in sorted(expected):
        path = os.path.join(HERE, name)
        if not os.path.exists(path):
            problems.append(f"{name}: missing; run python3 dashboards/generate.py")
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if text != expected[name]:
            problems.append(f"{name}: differs from what generate.py produces; run it")
    for name, text in load_dashboards().items():
        try:
            dash = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{name}: invalid JSON: {e}")
            continue
        where = f"{name}"
        if not str(dash.get("description", "")).strip():
            problems.append(f"{where}: dashboard has no description")
        if dash.get("schemaVersion", 0) < 39:
            problems.append(f"{where}: schemaVersion below 39")
        variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
        for v in dash.get("templating", {}).get("list", []):
            if v.get("type") == "query" and v.get("datasource") != DS:
                problems.append(f"{where}: variable {v.get('name')}: datasource is not {DS}")
        annotations = dash.get("annotations", {}).get("list", [])
        if not any("loadgen_events_total" in a.get("expr", "") and a.get("datasource") == DS
                   and a.get("enable") for a in annotations):
            problems.append(f"{where}: no enabled loadgen_events_total annotation")
        for a in annotations:
            if "expr" in a and a.get("datasource") not in (DS, LOKI):
                problems.append(f"{where}: annotation {a.get('name')}: datasource is not {DS} or {LOKI}")
        ids = set()
        for p in walk_panels(dash.get("panels", [])):
            pw = f"{where}: panel {p.get('id')} ({p.get('title')!r})"
            if p.get("id") in ids:
                problems.append(f"{pw}: duplicate panel id")
            ids.add(p.get("id"))
            problems.extend(panel_datasource_problems(pw, p))
            if not str(p.get("description", "")).strip():
                problems.append(f"{pw}: no description")
            if p.get("type") != "row" and not p.get("targets"):
                problems.append(f"{pw}: no queries")
        for pid, title, ref, expr, _ in dashboard_queries(name, dash):
            qw = f"{where}: panel {pid} ({title!r}) {ref}"
            if re.search(r"\binstance\s*=~?\s*\"[^\"$]", expr):
                problems.append(f"{qw}: hard-coded instance in {expr!r}")
            for var in re.findall(r"\$\{?(\w+)", expr):
                if var.isdigit():  # label_replace's $1
                    continue
                if var not in variables and var not in DEFAULT_VARS:
                    problems.append(f"{qw}: unknown variable ${var}")
            for metric in sorted(metric_names(expr)):
                if not (known_metric(metric, catalogue) or metric in extra_rules):
                    problems.append(f"{qw}: metric {metric!r} is not in docs/metrics.md, "
                                    "the recording rules or Prometheus' built-ins")
        for pid, title, ref, expr, instant in dashboard_queries(name, dash, LOKI):
            qw = f"{where}: panel {pid} ({title!r}) {ref}"
            problems.extend(logql_problems(qw, expr, instant, variables))
    return problems


def panel_datasource_problems(pw, p):
    """A panel names one of the provisioned datasources by uid, or the mixed
    one; its queries name Prometheus or Loki and agree with it."""
    problems = []
    ds = p.get("datasource")
    if p.get("type") == "row":
        if ds != DS:
            problems.append(f"{pw}: row datasource is not {DS}")
        return problems
    if ds not in PANEL_DATASOURCES:
        problems.append(f"{pw}: datasource {ds} is none of {PANEL_DATASOURCES}")
    kinds = []
    for t in p.get("targets", []):
        tds = t.get("datasource")
        kinds.append(tds)
        if tds not in (DS, LOKI):
            problems.append(f"{pw} {t.get('refId')}: target datasource {tds} is neither {DS} nor {LOKI}")
        elif ds in (DS, LOKI) and tds != ds:
            problems.append(f"{pw} {t.get('refId')}: target datasource {tds} differs from the panel's {ds}")
        if tds == LOKI and t.get("queryType") != "range":
            problems.append(f"{pw} {t.get('refId')}: a Loki query must be a range query (queryType range)")
    if ds == MIXED and len({json.dumps(k, sort_keys=True) for k in kinds}) < 2:
        problems.append(f"{pw}: mixed datasource, but every query goes to {kinds[:1]}")
    if p.get("type") == "logs" and any(k != LOKI for k in kinds):
        problems.append(f"{pw}: a logs panel queries Loki only")
    return problems


def logql_problems(qw, expr, instant, variables):
    """What a LogQL expression must do beyond parsing (check.mjs parses it)."""
    problems = []
    if instant:
        problems.append(f"{qw}: LogQL over the dashboard's range, not instant")
    if not re.search(r"\{\s*[a-zA-Z_]\w*\s*(=|!=|=~|!~)\s*\"", expr):
        problems.append(f"{qw}: no stream selector {{label=\"...\"}} in {expr!r}")
    for var in re.findall(r"\$\{?(\w+)", expr):
        if var not in variables and var not in LOKI_VARS:
            problems.append(f"{qw}: unknown variable ${var} in LogQL (Grafana's: {sorted(LOKI_VARS)})")
    if "service" in variables and SERVICE_STREAM not in expr:
        problems.append(f"{qw}: on a dashboard with $service, a LogQL query selects "
                        f"{{{SERVICE_STREAM}}}: {expr!r}")
    if "__rate_interval" in expr:
        problems.append(f"{qw}: $__rate_interval is Prometheus'; Loki's range is $__auto")
    return problems


def list_queries(variables):
    with open(os.path.join(HERE, generate.QUERIES_FILE), encoding="utf-8") as f:
        core = {(q["file"], q["panel_id"], q["ref_id"]): q["core"]
                for q in json.load(f)["queries"]}
    out = []
    for name, text in load_dashboards().items():
        dash = json.loads(text)
        for pid, title, ref, expr, instant in dashboard_queries(name, dash):
            out.append({
                "file": name, "dashboard": dash["uid"], "panel_id": pid, "panel": title,
                "ref_id": ref, "instant": instant, "core": core.get((name, pid, ref), False),
                "expr": substitute(expr, variables),
            })
    return out


def evaluate(url, queries, require_core):
    """Runs each query as an instant query; returns problems."""
    problems = []
    for qq in queries:
        data = urllib.parse.urlencode({"query": qq["expr"]}).encode()
        req = urllib.request.Request(url.rstrip("/") + "/api/v1/query", data=data)
        label = f"{qq['file']}: panel {qq['panel_id']} ({qq['panel']!r}) {qq['ref_id']}"
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                body = {"status": "error", "error": str(e)}
        except OSError as e:
            problems.append(f"{label}: {e}")
            continue
        if body.get("status") != "success":
            problems.append(f"{label}: {body.get('errorType')}: {body.get('error')}: {qq['expr']}")
        elif require_core and qq["core"] and not body["data"]["result"]:
            problems.append(f"{label}: core query returned no data: {qq['expr']}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list-queries", action="store_true",
                    help="print every PromQL expression (JSON) and exit")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="template variable value (default service=payments, "
                         "__rate_interval=1m, __range=5m)")
    ap.add_argument("--prometheus", metavar="URL",
                    help="evaluate every expression against this Prometheus")
    ap.add_argument("--require-core", action="store_true",
                    help="with --prometheus: core queries must return data")
    args = ap.parse_args()
    variables = dict(DEFAULT_VARS)
    for v in args.var:
        k, _, val = v.partition("=")
        variables[k] = val
    if args.list_queries:
        json.dump(list_queries(variables), sys.stdout, indent=2)
        print()
        return 0
    problems = lint()
    if args.prometheus and not problems:
        problems = evaluate(args.prometheus, list_queries(variables), args.require_core)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"dashboards: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"dashboards: {len(generate.DASHBOARDS)} dashboards lint clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
