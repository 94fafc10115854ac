#!/usr/bin/env python3
"""Generates LearnSphere's Grafana dashboards (dashboards/*.json) and the
list of every PromQL expression they run (observability/dashboard-queries.json).
Their LogQL expressions (the Loki panels) are parsed by
observability/logql/check.mjs instead.

The JSON files are checked in and provisioned as they are; edit this file,
not them, and run `python3 dashboards/generate.py`. Output is deterministic
(stable ids, sorted keys), so a diff shows exactly what a change did, and
`python3 dashboards/lint.py` fails if a checked-in file is out of date.

Metric names and labels come from docs/metrics.md; recording rules
(`service:*`, `edge:*`, `slo:*`) from observability/prometheus/rules; log
labels (`service_name`) and structured metadata (`severity_text`,
`trace_id`) from Loki's OTLP ingestion as observability/loki.yml sets it up.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Every query, for the end-to-end tests (lint.py --list-queries). Outside
# dashboards/: Grafana loads every JSON file under the provisioned folder,
# subfolders included, and logs a failed load of a file without a title
# every 30 s.
QUERIES_FILE = os.path.join("..", "observability", "dashboard-queries.json")

# Metric queries go to the provisioned Prometheus datasource, log queries
# to the provisioned Loki datasource, each by its fixed uid
# (observability/grafana/provisioning/datasources). A panel with queries of
# both uses Grafana's built-in mixed datasource, each query naming its own.
DS = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
MIXED = {"type": "datasource", "uid": "-- Mixed --"}

SCHEMA_VERSION = 39
TAGS = ["learnsphere"]
# The range dashboards open on: what Jaeger keeps (observability/jaeger.yml,
# 32,000 traces, about 22 minutes of `steady`), so that every exemplar on
# screen opens a trace Jaeger still has.
TIME_FROM = "now-20m"

# Log levels as the services' OTLP log records carry them (severity_text,
# from the tracing event's level), and their colours on the volume panels.
LEVEL_COLOURS = {"ERROR": "red", "WARN": "orange", "INFO": "green",
                 "DEBUG": "blue", "TRACE": "purple"}

# The checkout SLOs (observability/prometheus/rules): availability 99.5 %,
# latency 95 % of checkouts under 1 s, over 30 days.
CHECKOUT = 'service="gateway", route="/api/checkout", method="POST"'
AVAILABILITY_BUDGET = 0.005
LATENCY_BUDGET = 0.05
SLO_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
# The error-budget panels' window: the retention (7 days), not the SLO's 30.
BUDGET_WINDOW = "7d"
# The bucket bound 1 s, whichever way it is spelled: prometheus-client
# writes `le="1.0"`, Prometheus 2.x stores it as written, and 3.x normalises
# every `le` to its float form, which for 1 is also "1.0"; a client that
# writes `le="1"` is stored as "1" by 2.x. Match both spellings.
LE_1S = 'le=~"1|1\\\\.0"'

# Loadgen's timeline events as annotations on every dashboard. The counter's
# series are born when their first event fires, which `increase` cannot see
# (no earlier sample), so a series that did not exist a minute ago counts too.
EVENTS_ANNOTATION = {
    "datasource": DS,
    "enable": True,
    "expr": (
        "sum by (action, service) ("
        "increase(loadgen_events_total[1m]) > 0"
        " or (loadgen_events_total unless loadgen_events_total offset 1m))"
    ),
    "hide": False,
    "iconColor": "orange",
    "name": "loadgen events",
    "step": "30s",
    "tagKeys": "action,service",
    "textFormat": "loadgen timeline: {{action}} {{service}}",
    "titleFormat": "{{action}} {{service}}",
    "useValueForTime": False,
}


# === targets ===

def q(expr, legend="", instant=False, table=False, exemplar=False, core=False, ref=None):
    """One Prometheus query. `core` marks the queries the end-to-end test
    requires to return data after a short scenario with a fault."""
    return {
        "ds": DS,
        "expr": expr,
        "legend": legend,
        "instant": instant,
        "table": table,
        "exemplar": exemplar,
        "core": core,
        "ref": ref,
    }


def lq(expr, legend="", ref=None, max_lines=None):
    """One LogQL query to Loki: a log query (lines, for a logs panel) or a
    metric query over lines. Over the dashboard's range, never instant.
    Labels are what observability/loki.yml indexes (service_name, ...);
    everything else is structured metadata, filtered after a `|`."""
    return {
        "ds": LOKI,
        "expr": expr,
        "legend": legend,
        "instant": False,
        "table": False,
        "exemplar": False,
        "core": False,
        "ref": ref,
        "max_lines": max_lines,
    }


def _targets(queries):
    out = []
    for i, qq in enumerate(queries):
        ref = qq["ref"] or chr(ord("A") + i)
        if qq["ds"] == LOKI:
            t = {
                "datasource": LOKI,
                "editorMode": "code",
                "expr": qq["expr"],
                "queryType": "range",
                "refId": ref,
            }
            if qq["legend"]:
                t["legendFormat"] = qq["legend"]
            if qq["max_lines"]:
                t["maxLines"] = qq["max_lines"]
            out.append((t, False))
            continue
        t = {
            "datasource": DS,
            "editorMode": "code",
            "expr": qq["expr"],
            "format": "table" if qq["table"] else "time_series",
            "instant": qq["instant"],
            "legendFormat": qq["legend"] or "__auto",
            "range": not qq["instant"],
            "refId": ref,
        }
        if qq["exemplar"]:
            t["exemplar"] = True
        out.append((t, qq["core"]))
    return out


# === panels ===

def panel(kind, title, description, queries, w=12, h=8, unit=None, options=None,
          field_config=None, transformations=None, mappings=None, thresholds=None,
          overrides=None):
    return {
        "kind": kind, "title": title, "description": description, "queries": queries,
        "w": w, "h": h, "unit": unit, "options": options, "field_config": field_config,
        "transformations": transformations, "mappings": mappings,
        "thresholds": thresholds, "overrides": overrides,
    }


def timeseries(title, description, queries, unit="short", w=12, h=8, stack=False,
               thresholds=None, overrides=None):
    custom = {
        "drawStyle": "line",
        "fillOpacity": 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
    }
    if thresholds:
        custom["thresholdsStyle"] = {"mode": "dashed"}
    return panel("timeseries", title, description, queries, w=w, h=h, unit=unit,
                 field_config={"custom": custom}, thresholds=thresholds,
                 overrides=overrides,
                 options={"legend": {"calcs": ["lastNotNull", "max"],
                                     "displayMode": "table", "placement": "bottom",
                                     "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}})


def latency(title, description, queries, w=12, h=8):
    """Latency panels show exemplars: a dot per sampled trace, linked to
    Jaeger through the Prometheus datasource's exemplar settings."""
    for qq in queries:
        qq["exemplar"] = True
    return timeseries(title, description, queries, unit="s", w=w, h=h)


def stat(title, description, queries, unit="short", w=6, h=5, thresholds=None, mappings=None,
         decimals=None):
    fc = {"decimals": decimals} if decimals is not None else None
    return panel("stat", title, description, queries, w=w, h=h, unit=unit,
                 thresholds=thresholds, mappings=mappings, field_config=fc,
                 options={"colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                          "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "textMode": "auto"})


def table(title, description, queries, w=12, h=8, unit="short", transformations=None):
    for qq in queries:
        qq["instant"] = True
        qq["table"] = True
    return panel("table", title, description, queries, w=w, h=h, unit=unit,
                 transformations=transformations,
                 options={"cellHeight": "sm", "showHeader": True})


def bargauge(title, description, queries, unit="short", w=12, h=8, thresholds=None):
    for qq in queries:
        qq["instant"] = True
    return panel("bargauge", title, description, queries, w=w, h=h, unit=unit,
                 thresholds=thresholds,
                 options={"displayMode": "gradient", "orientation": "horizontal",
                          "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "showUnfilled": True})


def state_timeline(title, description, queries, mappings, w=24, h=8, thresholds=None):
    return panel("state-timeline", title, description, queries, w=w, h=h, mappings=mappings,
                 thresholds=thresholds,
                 options={"mergeValues": True, "showValue": "auto", "rowHeight": 0.9,
                          "legend": {"displayMode": "list", "placement": "bottom",
                                     "showLegend": True}})


def logs(title, description, queries, w=24, h=10):
    """Log lines, newest first, each expandable to its fields (structured
    metadata) and, where it has a trace_id, the Loki datasource's link to
    that trace in Jaeger."""
    return panel("logs", title, description, queries, w=w, h=h,
                 options={"dedupStrategy": "none", "enableLogDetails": True,
                          "prettifyLogMessage": False, "showCommonLabels": False,
                          "showLabels": False, "showTime": True,
                          "sortOrder": "Descending", "wrapLogMessage": True})


def level_colours():
    """Overrides that give each log level its colour on a volume panel."""
    return [{"matcher": {"id": "byName", "options": level},
             "properties": [{"id": "color", "value": {"fixedColor": colour, "mode": "fixed"}}]}
            for level, colour in LEVEL_COLOURS.items()]


def panel_datasource(queries):
    """The panel's datasource: its queries' own, or mixed when they differ."""
    kinds = {qq["ds"]["uid"] for qq in queries}
    if kinds == {DS["uid"]}:
        return DS
    if kinds == {LOKI["uid"]}:
        return LOKI
    return MIXED


def row(title, description):
    return {"kind": "row", "title": title, "description": description}


def steps(*pairs):
    """Threshold steps: (color, value) with the first value None (base)."""
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in pairs]}


# === dashboard assembly ===

def build(uid, title, description, items, variables=(), refresh="30s", time_from=TIME_FROM):
    panels = []
    queries = []
    x = y = row_h = 0
    pid = 0
    for item in items:
        pid += 1
        if item["kind"] == "row":
            if x:
                y += row_h
            x, row_h = 0, 0
            panels.append({
                "collapsed": False,
                "datasource": DS,
                "description": item["description"],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "id": pid,
                "panels": [],
                "title": item["title"],
                "type": "row",
            })
            y += 1
            continue
        w, h = item["w"], item["h"]
        if x + w > 24:
            y += row_h
            x, row_h = 0, 0
        targets = _targets(item["queries"])
        if item["kind"] == "logs":
            defaults = {}  # lines, not numbers: no unit, thresholds or colours
        else:
            defaults = {"unit": item["unit"] or "short"}
            if item["field_config"]:
                defaults.update({k: v for k, v in item["field_config"].items() if v is not None})
            if item["mappings"]:
                defaults["mappings"] = item["mappings"]
            defaults["thresholds"] = item["thresholds"] or steps(("green", None))
            defaults["color"] = {"mode": "thresholds" if item["kind"] in ("stat", "bargauge", "state-timeline")
                                 else "palette-classic"}
        p = {
            "datasource": panel_datasource(item["queries"]),
            "description": item["description"],
            "fieldConfig": {"defaults": defaults, "overrides": item["overrides"] or []},
            "gridPos": {"h": h, "w": w, "x": x, "y": y},
            "id": pid,
            "options": item["options"] or {},
            "targets": [t for t, _ in targets],
            "title": item["title"],
            "type": item["kind"],
        }
        if item["transformations"]:
            p["transformations"] = item["transformations"]
        panels.append(p)
        for t, core in targets:
            if t["datasource"] != DS:
                continue  # LogQL: observability/logql/check.mjs parses it
            queries.append({"dashboard": uid, "panel_id": pid, "panel": item["title"],
                            "ref_id": t["refId"], "expr": t["expr"],
                            "instant": t["instant"], "core": core})
        x += w
        row_h = max(row_h, h)
        if x >= 24:
            y += row_h
            x, row_h = 0, 0
    queries.append({"dashboard": uid, "panel_id": None, "panel": "annotation: loadgen events",
                    "ref_id": "annotation", "expr": EVENTS_ANNOTATION["expr"],
                    "instant": False, "core": False})
    dashboard = {
        "annotations": {"list": [EVENTS_ANNOTATION]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [{"asDropdown": True, "icon": "external link", "includeVars": False,
                   "keepTime": True, "tags": TAGS, "targetBlank": False,
                   "title": "LearnSphere", "type": "dashboards"}],
        "panels": panels,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": list(variables)},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }
    return dashboard, queries


# === 1. mesh overview ===

def edge_id(expr):
    """An `id` label `source->destination`, which the node graph needs."""
    return f'label_join({expr}, "id", "->", "source", "destination")'


def mesh_overview():
    rate = "$__rate_interval"
    items = [
        row("Service graph", "Who calls whom, as the callers' outbound clients measured it."),
        panel(
            "nodeGraph", "Service graph",
            "Each arrow is an edge of the mesh (caller -> callee) over the last 5 minutes, "
            "HTTP calls and events alike (producer -> consumer, e.g. payments -> progress "
            "for payment.captured, from the consumer's count): "
            "main stat is calls/s, secondary stat failed calls/s (any outcome but success: "
            "5xx, timeout, circuit open, fallback); hover an edge for its p99. A node's "
            "stats are the sums of its incoming edges (the gateway has none: loadgen is "
            "not a mesh client). Look for an edge whose failures rise, or an edge that "
            "disappears (the caller stopped calling, e.g. an open breaker sheds it). Built "
            "from the edge:* recording rules as three instant table queries joined on the "
            "edge id (source->destination); the node graph infers the nodes from the edges.",
            [
                q("label_replace(" + edge_id("sum by (source, destination) "
                                             "(edge:http_client_requests:rate5m) or "
                                             "sum by (source, destination) "
                                             "(edge:messaging_consumed:rate5m)")
                  + ', "target", "$1", "destination", "(.*)")',
                  instant=True, table=True, core=True, ref="edges"),
                q("max by (id) (" + edge_id("sum by (source, destination) "
                                            "(edge:http_client_errors:rate5m)") + ")",
                  instant=True, table=True, ref="edge_errors"),
                q("max by (id) (" + edge_id("max by (source, destination) "
                                            "(edge:http_client_request_duration_seconds:p99_5m)")
                  + ")", instant=True, table=True, ref="edge_p99"),
            ],
            w=24, h=12,
            options={"edges": {"mainStatUnit": "reqps", "secondaryStatUnit": "reqps"},
                     "nodes": {"mainStatUnit": "reqps", "secondaryStatUnit": "reqps"}},
            transformations=[
                {"id": "joinByField", "options": {"byField": "id", "mode": "outer"}},
                {"id": "filterFieldsByName",
                 "options": {"include": {"pattern": "^(id|source|target|Value #.+)$"}}},
                {"id": "organize", "options": {
                    "excludeByName": {}, "indexByName": {},
                    "renameByName": {"Value #edges": "mainstat",
                                     "Value #edge_errors": "secondarystat",
                                     "Value #edge_p99": "detail__p99_seconds"}}},
            ],
        ),
        table(
            "Top failing edges",
            "The ten edges with the highest share of failed calls over the last 5 minutes "
            "(only edges with failures). An edge at the top that matches a scenario's fault "
            "is expected; one that does not is a real problem. Compare with 'Failures by "
            "edge and outcome' to see whether calls time out, hit an open breaker or fall back.",
            [q("topk(10, sum by (source, destination) (edge:http_client_errors:rate5m) "
               "/ sum by (source, destination) (edge:http_client_requests:rate5m) > 0)")],
            w=12, unit="percentunit",
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True}, "indexByName": {},
                "renameByName": {"Value": "failed share"}}}],
        ),
        timeseries(
            "Failures by edge and outcome",
            "Failed calls per second on each edge, by outcome (error, timeout, circuit_open, "
            "fallback). Timeouts point at a slow callee; circuit_open means the caller "
            "stopped trying; fallback means users got a degraded answer instead of an error.",
            [q("sum by (source, destination, outcome) "
               f'(rate(http_client_request_duration_seconds_count{{outcome!="success"}}[{rate}]))',
               "{{source}} → {{destination}} {{outcome}}")],
            unit="reqps", w=12),
        row("RED per service", "Rate, errors and duration of each service's inbound requests."),
        timeseries(
            "Requests per service",
            "Inbound requests per second by service (all routes and replicas). Under a steady "
            "scenario the lines are flat; a step lines up with a loadgen event (annotation).",
            [q("sum by (service) "
               f"(rate(http_server_request_duration_seconds_count[{rate}]))",
               "{{service}}", core=True)],
            unit="reqps", w=8),
        timeseries(
            "5xx error ratio per service",
            "Share of each service's requests answered with a 5xx. Injected faults count here "
            "too (see the Failures dashboard for injected vs real). Anything above 0 outside "
            "a fault scenario deserves a look.",
            [q("sum by (service) "
               f'(rate(http_server_request_duration_seconds_count{{status=~"5.."}}[{rate}])) '
               "/ sum by (service) "
               f"(rate(http_server_request_duration_seconds_count[{rate}]))",
               "{{service}}", core=True)],
            unit="percentunit", w=8),
        latency(
            "p99 latency per service",
            "99th percentile of inbound request duration per service. Dots are exemplars: "
            "click one to open that request's trace in Jaeger. A service whose p99 rises "
            "while its callees' stay flat is slow itself.",
            [q("histogram_quantile(0.99, sum by (service, le) "
               f"(rate(http_server_request_duration_seconds_bucket[{rate}])))",
               "{{service}}", core=True)],
            w=8),
        row("Messaging", "Events between services over NATS JetStream (docs/events.md): the "
            "asynchronous edges."),
        timeseries(
            "Events per async edge",
            "Events handled per second by each consumer, by producer -> consumer and event "
            "type, all outcomes. It follows the producing requests (checkouts for "
            "payment.captured) a moment later; a line that drops to 0 while its producer "
            "still works means the events are stuck: see the outbox backlog and consumer lag.",
            [q("sum by (source, service, destination) "
               f"(rate(messaging_client_consumed_messages_total[{rate}]))",
               "{{source}} → {{service}} {{destination}}", core=True)],
            unit="ops", w=8),
        timeseries(
            "Outbox backlog and consumer lag",
            "Events committed but not yet published (outbox, per producing service) and "
            "published but not yet delivered (lag, per consumer). Both near 0 normally; "
            "the backlog grows while the broker is down and must drain after.",
            [q("sum by (service) (outbox_pending_events)", "{{service}} outbox"),
             q("max by (consumer) (messaging_consumer_lag_messages)", "{{consumer}} lag")],
            w=8),
        timeseries(
            "Redeliveries and dead letters",
            "Deliveries of an event seen before (after a crash or a failed handler) and "
            "events moved to the dead-letter subject. Redeliveries after a restart are "
            "expected and deduplicated; any dead letter needs a look (its reason is in a "
            "header of the dead-letter message and in the consumer's log).",
            [q(f"sum by (consumer) (rate(messaging_redelivered_messages_total[{rate}]))",
               "{{consumer}} redelivered"),
             q("sum by (consumer) "
               f'(rate(messaging_client_consumed_messages_total{{outcome="dead_lettered"}}[{rate}]))',
               "{{consumer}} dead-lettered")],
            unit="ops", w=8),
        row("Edges", "Per-edge rate and latency over time."),
        timeseries(
            "Calls per edge",
            "Outbound calls per second on each edge as the caller counted them (one per call; "
            "retries are inside it). An edge that drops to 0 while the caller still gets "
            "traffic means calls are refused before leaving (breaker open, no replica).",
            [q("sum by (source, destination) "
               f"(rate(http_client_request_duration_seconds_count[{rate}]))",
               "{{source}} → {{destination}}", core=True)],
            unit="reqps"),
        latency(
            "p99 latency per edge",
            "99th percentile of call duration on each edge, retries included, as the caller "
            "waited. Compare with the callee's own p99: a gap is network, queueing or retries. "
            "Dots are exemplars linking to the trace.",
            [q("histogram_quantile(0.99, sum by (source, destination, le) "
               f"(rate(http_client_request_duration_seconds_bucket[{rate}])))",
               "{{source}} → {{destination}}")]),
    ]
    return build(
        "learnsphere-mesh", "LearnSphere / Mesh overview",
        "The whole system at a glance: the service graph with per-edge rate, failures and "
        "p99, RED per service, and the edges that fail most. Start here; drill into "
        "Service detail for one service or Failures for why calls fail. Orange marks are "
        "loadgen timeline events.",
        items)


# === 2. service detail ===

def service_detail():
    rate = "$__rate_interval"
    s = 'service="$service"'
    job = 'job="$service"'  # process_* and payments_* carry no service label: the scrape job names it
    # The service's log stream(s): service.name is Loki's service_name label,
    # and the variable's values (build_info's `service`) are the same names.
    logs_of = '{service_name="$service"}'
    variable = {
        "current": {},
        "datasource": DS,
        "definition": "label_values(build_info, service)",
        "description": "The service to show (from build_info).",
        "hide": 0,
        "includeAll": False,
        "label": "service",
        "multi": False,
        "name": "service",
        "options": [],
        "query": {"qryType": 1, "query": "label_values(build_info, service)",
                  "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
    items = [
        row("Replicas", "How many replicas run, which versions, and whether they restart."),
        timeseries(
            "Replicas",
            "Replicas exporting build_info (one per scraped replica), and for local runs the "
            "launcher's ready and desired counts. A scale event shows as a step; ready below "
            "desired means replicas are starting or restarting.",
            [q(f"count(build_info{{{s}}})", "scraped", core=True),
             q(f"sum(launcher_replicas{{{s}}})", "ready (launcher)"),
             q(f"sum(launcher_desired_replicas{{{s}}})", "desired (launcher)")],
            w=10),
        timeseries(
            "Restarts",
            "Process restarts per replica over 5 minutes (process_start_time_seconds changed), "
            "and restarts the local launcher made after a crash. A replica restarted on a new "
            "port appears as a new instance instead; see Replicas.",
            [q(f"sum by (instance) (changes(process_start_time_seconds{{{job}}}[5m]))",
               "{{instance}}"),
             q(f"sum(increase(launcher_restarts_total{{{s}}}[5m]))", "launcher restarts")],
            w=8),
        table(
            "Versions",
            "Replicas per running version. Two rows during a redeploy; more than one for long "
            "means a rollout is stuck.",
            [q(f"count by (version) (build_info{{{s}}})")],
            w=6,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True}, "indexByName": {},
                "renameByName": {"Value": "replicas"}}}]),
        row("Traffic and balance", "Per-replica load: with power-of-two-choices balancing the "
            "lines should sit close together."),
        timeseries(
            "Requests per replica",
            "Inbound requests per second on each replica. The lines should be close: a replica "
            "far below the others is slow (the balancer avoids it) or was just added; one "
            "dropping to 0 died or was ejected.",
            [q(f"sum by (instance) (rate(http_server_request_duration_seconds_count{{{s}}}[{rate}]))",
               "{{instance}}", core=True)],
            unit="reqps", w=8),
        latency(
            "p99 latency per replica",
            "99th percentile latency of each replica. One replica above the rest points at "
            "that replica (fault injected there, noisy neighbour), not at the service. Dots "
            "are exemplars linking to the trace.",
            [q("histogram_quantile(0.99, sum by (instance, le) "
               f"(rate(http_server_request_duration_seconds_bucket{{{s}}}[{rate}])))",
               "{{instance}}")],
            w=8),
        timeseries(
            "5xx per replica",
            "5xx answers per second by replica and status. 503 is shedding or an open "
            "breaker downstream, 502 a failed dependency, 500 a bug or an injected abort.",
            [q("sum by (instance, status) "
               f'(rate(http_server_request_duration_seconds_count{{{s}, status=~"5.."}}[{rate}]))',
               "{{instance}} {{status}}")],
            unit="reqps", w=8),
        timeseries(
            "Requests per route",
            "Inbound requests per second by route template and status class.",
            [q("sum by (route, method) "
               f"(rate(http_server_request_duration_seconds_count{{{s}}}[{rate}]))",
               "{{method}} {{route}}")],
            unit="reqps"),
        latency(
            "p99 latency per route",
            "99th percentile latency by route. Look for the one route that moves; exemplar "
            "dots open its slowest traces.",
            [q("histogram_quantile(0.99, sum by (method, route, le) "
               f"(rate(http_server_request_duration_seconds_bucket{{{s}}}[{rate}])))",
               "{{method}} {{route}}")]),
        timeseries(
            "Attempts per replica, as callers sent them",
            "Attempts each caller sent to each replica of this service (retries included). "
            "Shows how the callers' balancers spread load and how they steer away from a slow "
            "or dead replica.",
            [q("sum by (source, endpoint) "
               f'(rate(http_client_endpoint_requests_total{{destination="$service"}}[{rate}]))',
               "{{source}} → {{endpoint}}")],
            unit="reqps"),
        timeseries(
            "Replicas known to callers",
            "Replicas each caller's discovery knows for this service, and how many it has "
            "ejected for refusing connections. Known should follow Replicas within a "
            "discovery refresh; ejected above 0 means a replica is dying or restarting.",
            [q('max by (source) (http_client_endpoints{destination="$service"})',
               "{{source}} known"),
             q('max by (source) (http_client_endpoints_ejected{destination="$service"})',
               "{{source}} ejected")]),
        row("Logs", "The service's own log lines (OTLP, through the Collector, in Loki): how "
            "many at each level, the errors next to the 5xx, and the latest errors and "
            "warnings, linked to their traces."),
        timeseries(
            "Log lines by level",
            "Log lines per second from every replica of the service, stacked by level "
            "(severity_text: ERROR, WARN, INFO, DEBUG, TRACE). INFO follows the traffic; a "
            "band of WARN or ERROR appearing is the service saying something went wrong, "
            "usually in the lines below.",
            [lq(f"sum by (severity_text) (rate({logs_of} [$__auto]))", "{{severity_text}}")],
            unit="cps", w=12, stack=True, overrides=level_colours()),
        timeseries(
            "Error log lines and 5xx answers",
            "ERROR lines per second (Loki) beside 5xx answers per second (Prometheus). They "
            "move together when each failed request logs its cause. Errors without 5xx are "
            "failures the service absorbed (a retry that succeeded, a fallback, an event to "
            "redeliver); 5xx without errors are failures it passed on without a word (a "
            "shed request, an open breaker downstream, an injected fault).",
            [lq(f'sum(rate({logs_of} | severity_text="ERROR" [$__auto]))', "ERROR log lines"),
             q("sum(rate(http_server_request_duration_seconds_count"
               f'{{{s}, status=~"5.."}}[{rate}]))', "5xx answers")],
            unit="cps", w=12, overrides=[
                {"matcher": {"id": "byName", "options": "ERROR log lines"},
                 "properties": [{"id": "color", "value": {"fixedColor": "red", "mode": "fixed"}}]},
                {"matcher": {"id": "byName", "options": "5xx answers"},
                 "properties": [{"id": "color", "value": {"fixedColor": "orange", "mode": "fixed"}}]},
            ]),
        logs(
            "Recent errors and warnings",
            "The service's latest ERROR and WARN lines, newest first, from every replica. "
            "Expand one for its fields (error, destination, fault_kind, the replica's "
            "service_instance_id) and, when it was logged inside a request, a link that opens "
            "its trace in Jaeger.",
            [lq(f'{logs_of} | severity_text=~"ERROR|WARN"', max_lines=200)],
            w=24, h=10),
        row("Saturation", "How close the replicas are to their limits."),
        timeseries(
            "In-flight requests per replica",
            "Requests being served right now on each replica, against the concurrency limit "
            "(0 = none). In-flight at the limit means new requests are shed with 503.",
            [q(f"sum by (instance) (http_server_active_requests{{{s}}})", "{{instance}}"),
             q(f"max(http_server_concurrency_limit{{{s}}})", "limit")],
            w=8),
        timeseries(
            "Shed requests",
            "Requests refused at once with 503 because the replica was at its concurrency "
            "limit. Above 0 the service is saturated: scale it out.",
            [q("sum by (instance, route) "
               f"(rate(http_server_shed_requests_total{{{s}}}[{rate}]))",
               "{{instance}} {{route}}")],
            unit="reqps", w=8),
        timeseries(
            "Payment provider pool (payments only)",
            "Provider calls in flight and charges waiting for a pool slot per replica, against "
            "the pool size. In use at the size with a growing queue is the surge signal: "
            "scale payments out. Empty for other services.",
            [q(f"sum by (instance) (payments_provider_pool_in_use{{{job}}})", "{{instance}} in use"),
             q(f"sum by (instance) (payments_provider_pool_waiting{{{job}}})", "{{instance}} waiting"),
             q(f"max(payments_provider_pool_size{{{job}}})", "pool size")],
            w=8),
        timeseries(
            "Payment provider outcomes (payments only)",
            "Provider calls per second by outcome: approved, declined (a 402 to the client, not "
            "a failure) and error (no answer; a 502). Errors rising means the provider, not "
            "payments, is failing. Empty for other services.",
            [q("sum by (outcome) "
               f"(rate(payments_provider_requests_total{{{job}}}[{rate}]))", "{{outcome}}")],
            unit="reqps"),
        latency(
            "Payment provider p99 (payments only)",
            "99th percentile of provider call duration, pool wait included. Rising with the "
            "pool queue is saturation; rising alone is a slow provider. Empty for other services.",
            [q("histogram_quantile(0.99, sum by (le) "
               f"(rate(payments_provider_request_duration_seconds_bucket{{{job}}}[{rate}])))",
               "p99")]),
        row("Database", "The service's own database, as its queries saw it."),
        latency(
            "Query p99 by operation and table",
            "99th percentile duration of each kind of query. A slow query here with a flat "
            "request rate means the database, not the load, changed. Dots open the trace.",
            [q("histogram_quantile(0.99, sum by (operation, collection, le) "
               f"(rate(db_client_operation_duration_seconds_bucket{{{s}}}[{rate}])))",
               "{{operation}} {{collection}}")], w=8),
        timeseries(
            "Queries by outcome",
            "Queries per second by operation, table and outcome. Any error outcome is worth "
            "a look (no row found counts as success).",
            [q("sum by (operation, collection, outcome) "
               f"(rate(db_client_operation_duration_seconds_count{{{s}}}[{rate}]))",
               "{{operation}} {{collection}} {{outcome}}")],
            unit="ops", w=8),
        timeseries(
            "Catalog cache reads (courses only)",
            "Catalog reads per second: hits served from memory, misses read from the "
            "database (the queries beside this). Misses level off once each replica has read "
            "what is asked; a falling hit share means new pages or tags, or a cache too small "
            "for them (CATALOG_CACHE_ENTRIES). Empty for other services.",
            [q("sum by (cache, result) "
               f"(rate(courses_catalog_cache_requests_total{{{job}}}[{rate}]))",
               "{{cache}} {{result}}")],
            unit="ops", w=8),
        row("Messaging", "Events this service publishes through its outbox and consumes "
            "(docs/events.md). Empty for services without events."),
        timeseries(
            "Events published",
            "Events the outbox relay published per second, by type and outcome. Errors mean "
            "the broker did not acknowledge: the events stay in the outbox and go out later.",
            [q("sum by (destination, outcome) "
               f"(rate(messaging_client_sent_messages_total{{{s}}}[{rate}]))",
               "{{destination}} {{outcome}}")],
            unit="ops", w=8),
        timeseries(
            "Outbox backlog",
            "Events committed and not yet acknowledged by the broker, and the age of the "
            "oldest. Both grow while NATS is down and fall back to 0 once it returns; a "
            "backlog that does not drain with the broker up is a stuck relay.",
            [q(f"max(outbox_pending_events{{{s}}})", "pending events"),
             q(f"max(outbox_oldest_pending_age_seconds{{{s}}})", "oldest (s)")],
            w=8),
        latency(
            "Relay delay p99",
            "From an event's commit to the broker's acknowledgment: the gap in the trace "
            "between the request and its PUBLISH span. Dots open the trace.",
            [q("histogram_quantile(0.99, sum by (le) "
               f"(rate(outbox_relay_delay_seconds_bucket{{{s}}}[{rate}])))", "p99")],
            w=8),
        timeseries(
            "Events consumed by outcome",
            "Deliveries handled per second by each consumer: processed, duplicate (already "
            "applied: a redelivery), retry, dead_lettered.",
            [q("sum by (consumer, outcome) "
               f"(rate(messaging_client_consumed_messages_total{{{s}}}[{rate}]))",
               "{{consumer}} {{outcome}}")],
            unit="ops", w=8),
        timeseries(
            "Consumer lag",
            "Events in the stream not yet delivered to each consumer, and those delivered "
            "but not yet acknowledged. Lag that grows under steady load: the consumer is too "
            "slow or down.",
            [q(f"max by (consumer) (messaging_consumer_lag_messages{{{s}}})", "{{consumer}} lag"),
             q(f"max by (consumer) (messaging_consumer_ack_pending_messages{{{s}}})",
               "{{consumer}} unacked")],
            w=8),
        latency(
            "Processing p99",
            "99th percentile time to handle one delivery, its database transaction included. "
            "Dots open the consumer span's trace.",
            [q("histogram_quantile(0.99, sum by (consumer, le) "
               f"(rate(messaging_process_duration_seconds_bucket{{{s}}}[{rate}])))",
               "{{consumer}}")],
            w=8),
        row("Process", "Resources per replica."),
        timeseries(
            "CPU per replica",
            "CPU cores in use by each replica (user + system). Replicas of one service under "
            "balanced load use about the same.",
            [q(f"sum by (instance) (rate(process_cpu_seconds_total{{{job}}}[{rate}]))",
               "{{instance}}")],
            unit="short", w=8),
        timeseries(
            "Resident memory per replica",
            "Resident memory of each replica. Steady growth under steady load is a leak.",
            [q(f"sum by (instance) (process_resident_memory_bytes{{{job}}})", "{{instance}}")],
            unit="bytes", w=8),
        timeseries(
            "Open file descriptors and threads",
            "Descriptors (connections, files) and OS threads per replica. Descriptors close "
            "to the limit refuse new connections.",
            [q(f"sum by (instance) (process_open_fds{{{job}}})", "{{instance}} fds"),
             q(f"sum by (instance) (process_threads{{{job}}})", "{{instance}} threads"),
             q(f"min(process_max_fds{{{job}}})", "fd limit")],
            w=8),
    ]
    return build(
        "learnsphere-service", "LearnSphere / Service detail",
        "One service, replica by replica: how many run, whether load is balanced, what it "
        "logs, how saturated they are, its database, its processes and its restarts. Pick "
        "the service at the top. Orange marks are loadgen timeline events.",
        items, variables=[variable])


# === 3. failures ===

def failures():
    rate = "$__rate_interval"
    breaker_map = [{"options": {"0": {"color": "green", "index": 0, "text": "closed"},
                                "1": {"color": "yellow", "index": 1, "text": "half-open"},
                                "2": {"color": "red", "index": 2, "text": "open"}},
                    "type": "value"}]

    def outcome(o):
        return ("sum by (source, destination) "
                f'(rate(http_client_request_duration_seconds_count{{outcome="{o}"}}[{rate}]))')

    items = [
        row("Errors", "What fails, by status and by outcome."),
        timeseries(
            "Errors by service and status",
            "4xx and 5xx answers per second by service and status. 5xx are failures; 429 is "
            "rate limiting; 402 a declined payment; other 4xx are the client's doing.",
            [q("sum by (service, status) "
               f'(rate(http_server_request_duration_seconds_count{{status=~"[45].."}}[{rate}]))',
               "{{service}} {{status}}")],
            unit="reqps"),
        timeseries(
            "Failed calls by edge and outcome",
            "Outbound calls that did not succeed, by edge and outcome: error (5xx, no "
            "connection, no replica), timeout, circuit_open, fallback.",
            [q("sum by (source, destination, outcome) "
               f'(rate(http_client_request_duration_seconds_count{{outcome!="success"}}[{rate}]))',
               "{{source}} → {{destination}} {{outcome}}")],
            unit="reqps"),
        row("Injected vs real", "Faults a scenario injected through the admin API, against "
            "the failures nobody asked for."),
        timeseries(
            "Injected faults",
            "Requests hit by an injected fault per second, by service and kind (latency, "
            "error, abort). Nonzero only while a scenario's fault is active: it tells "
            "expected failures from real ones.",
            [q(f"sum by (service, kind) (rate(fault_injections_total[{rate}]))",
               "{{service}} {{kind}}", core=True)],
            unit="reqps"),
        timeseries(
            "5xx not explained by injection",
            "Each service's 5xx per second minus the error and abort faults injected into it "
            "(an approximation: an injected error may carry a non-5xx status). Above 0 means "
            "failures beyond what the scenario asked for, such as callers of a faulty "
            "service failing in turn.",
            [q("clamp_min(sum by (service) "
               f'(rate(http_server_request_duration_seconds_count{{status=~"5.."}}[{rate}])) - on (service) '
               "(sum by (service) "
               f'(rate(fault_injections_total{{kind=~"error|abort"}}[{rate}])) or sum by (service) '
               f'(rate(http_server_request_duration_seconds_count{{status=~"5.."}}[{rate}])) * 0), 0)',
               "{{service}}")],
            unit="reqps"),
        row("Error logs", "What the services said while failing (Loki): error lines per "
            "service against the orange timeline events, and the lines themselves with "
            "loadgen's events among them."),
        timeseries(
            "Error log lines per service",
            "ERROR lines per second by service (loadgen included). The orange marks are "
            "loadgen's timeline events: a fault injected into payments should raise payments' "
            "and its callers' lines from its mark until the recovery mark; lines that start "
            "without a mark, or outlast the recovery, are a real problem.",
            [lq('sum by (service_name) (rate({service_name=~".+"} | severity_text="ERROR" '
                '[$__auto]))', "{{service_name}}")],
            unit="cps", w=12, h=10),
        logs(
            "Error lines and timeline events",
            "Every service's ERROR and WARN lines, newest first, with loadgen's own "
            "'timeline event' lines (action and service in the fields) between them, so "
            "the line that opened a breaker sits right after the fault that caused it. A "
            "line logged inside a request links to its trace in Jaeger.",
            [lq('{service_name=~".+"} | severity_text=~"ERROR|WARN"', ref="errors", max_lines=300),
             lq('{service_name="loadgen"} |= "timeline event"', ref="timeline", max_lines=100)],
            w=12, h=10),
        row("Circuit breakers", "Per-edge breakers: closed, probing, open."),
        state_timeline(
            "Breaker state per edge",
            "The breaker of each edge over time: green closed, yellow half-open (probing), "
            "red open (calls fail fast with 503). An open breaker during a callee's outage "
            "is the mesh working; one that stays open after recovery is not.",
            [q("max by (source, destination) (http_client_circuit_breaker_state)",
               "{{source}} → {{destination}}", core=True)],
            breaker_map,
            thresholds=steps(("green", None), ("yellow", 1), ("red", 2))),
        timeseries(
            "Breaker transitions",
            "Breaker state changes per edge by the state entered. Rapid open/half_open/closed "
            "cycling means the callee keeps failing its probes.",
            [q("sum by (source, destination, state) "
               f"(increase(http_client_circuit_breaker_transitions_total[{rate}]))",
               "{{source}} → {{destination}} {{state}}")],
            w=12),
        timeseries(
            "Calls refused by an open breaker",
            "Calls per second the caller's breaker refused without sending (outcome "
            "circuit_open).",
            [q(outcome("circuit_open"), "{{source}} → {{destination}}")],
            unit="reqps", w=12),
        row("Retries, timeouts and fallbacks", "How the mesh absorbs failures."),
        timeseries(
            "Retries by reason",
            "Retries of idempotent calls per second by edge and reason (connect, transport, "
            "unavailable). A burst of connect retries follows a replica dying.",
            [q("sum by (source, destination, reason) "
               f"(rate(http_client_retries_total[{rate}]))",
               "{{source}} → {{destination}} {{reason}}")],
            unit="reqps", w=8),
        timeseries(
            "Retry budget exhausted",
            "Retries wanted but not made because the edge's retry budget was spent. Above 0 "
            "the budget is holding back a retry storm against a failing callee.",
            [q("sum by (source, destination) "
               f"(rate(http_client_retry_budget_exhausted_total[{rate}]))",
               "{{source}} → {{destination}}")],
            unit="reqps", w=8),
        timeseries(
            "Replica ejections",
            "Replicas ejected from balancing for refusing connections, per edge: ejections per "
            "second and replicas out right now. A replica dying or restarting shows here first.",
            [q("sum by (source, destination) "
               f"(rate(http_client_endpoint_ejections_total[{rate}]))",
               "{{source}} → {{destination}} ejections/s"),
             q("sum by (source, destination) (http_client_endpoints_ejected)",
               "{{source}} → {{destination}} ejected now")],
            w=8),
        timeseries(
            "Timeouts",
            "Calls per second that ran past their deadline, by edge. Timeouts on one edge "
            "with a slow callee p99 is a latency fault propagating.",
            [q(outcome("timeout"), "{{source}} → {{destination}}")],
            unit="reqps", w=8),
        timeseries(
            "Fallbacks",
            "Calls per second that failed and were answered with a degraded result instead "
            "(e.g. a course page without progress). Users saw no error, but less data.",
            [q(outcome("fallback"), "{{source}} → {{destination}}")],
            unit="reqps", w=8),
        timeseries(
            "Rate limited and shed",
            "Requests refused by the gateway's per-client rate limit (429), by route, and "
            "requests shed with 503 because a replica was at its concurrency limit, by service.",
            [q(f"sum by (route) (rate(gateway_rate_limited_requests_total[{rate}]))",
               "rate limited {{route}}"),
             q(f"sum by (service) (rate(http_server_shed_requests_total[{rate}]))",
               "shed {{service}}")],
            unit="reqps", w=8),
    ]
    return build(
        "learnsphere-failures", "LearnSphere / Failures and resilience",
        "Why requests fail and what the mesh does about it: errors by status and outcome, "
        "injected faults against real failures, the services' error lines, circuit "
        "breakers, retries and their budget, timeouts, fallbacks, rate limiting and "
        "shedding. Orange marks are loadgen timeline events, usually the fault that "
        "started it.",
        items)


# === 4. loadgen ===

def loadgen():
    rate = "$__rate_interval"
    items = [
        row("Offered load", "What the scenario asked for against what loadgen managed to start."),
        timeseries(
            "Target vs achieved arrival rate",
            "The rate each open-model executor's schedule asks for and the rate of arrivals "
            "actually started. Achieved below target means loadgen (or the system, through "
            "a full journey pool) fell behind: results understate the load asked for.",
            [q("sum by (executor) (loadgen_target_arrival_rate)", "{{executor}} target"),
             q("sum by (executor) "
               f'(rate(loadgen_arrivals_total{{outcome="started"}}[{rate}]))',
               "{{executor}} achieved", core=True)],
            unit="short", w=12),
        timeseries(
            "Dropped and late arrivals",
            "Arrivals dropped (the pool and its backlog were full, or too late to start) and "
            "started late (more than 10 ms behind schedule). Any drop is load the run asked "
            "for and did not offer; late arrivals count their lateness in the corrected latency.",
            [q("sum by (executor) "
               f'(rate(loadgen_arrivals_total{{outcome="dropped"}}[{rate}]))',
               "{{executor}} dropped"),
             q(f"sum by (executor) (rate(loadgen_late_arrivals_total[{rate}]))",
               "{{executor}} late")],
            unit="short", w=6),
        timeseries(
            "Journeys in flight",
            "Journeys running now per executor. Pinned at the executor's max_in_flight, new "
            "arrivals queue and start late.",
            [q("sum by (executor) (loadgen_journeys_in_flight)", "{{executor}}")],
            w=6),
        row("What users saw", "Latency and errors from loadgen's side."),
        latency(
            "Journey latency (CO-corrected)",
            "p50, p90 and p99 journey duration measured from each journey's intended start, "
            "so time spent queued behind a slow system counts (coordinated omission "
            "corrected). Dots are exemplars that open the journey's trace.",
            [q("histogram_quantile(0.5, sum by (journey, le) "
               f"(rate(loadgen_journey_duration_seconds_bucket[{rate}])))", "{{journey}} p50"),
             q("histogram_quantile(0.9, sum by (journey, le) "
               f"(rate(loadgen_journey_duration_seconds_bucket[{rate}])))", "{{journey}} p90"),
             q("histogram_quantile(0.99, sum by (journey, le) "
               f"(rate(loadgen_journey_duration_seconds_bucket[{rate}])))", "{{journey}} p99")],
            w=12),
        timeseries(
            "Journey errors",
            "Failed journeys per second by journey, and abandoned ones (still running when "
            "the grace period ran out). Steps line up with the fault events marked above.",
            [q("sum by (journey) "
               f'(rate(loadgen_journeys_total{{outcome="error"}}[{rate}]))', "{{journey}} error"),
             q("sum by (journey) "
               f'(rate(loadgen_journeys_total{{outcome="abandoned"}}[{rate}]))',
               "{{journey}} abandoned")],
            unit="short", w=6),
        timeseries(
            "Journey error ratio",
            "Share of finished journeys that failed, by journey.",
            [q("sum by (journey) "
               f'(rate(loadgen_journeys_total{{outcome="error"}}[{rate}])) / sum by (journey) '
               f"(rate(loadgen_journeys_total[{rate}]))", "{{journey}}")],
            unit="percentunit", w=6),
        latency(
            "Request p99 by request type",
            "99th percentile of each request type from the moment loadgen sent it, ok and "
            "error separately. Compare with the gateway's p99 for the same route: the gap is "
            "connection and client time.",
            [q("histogram_quantile(0.99, sum by (request, outcome, le) "
               f"(rate(loadgen_request_duration_seconds_bucket[{rate}])))",
               "{{request}} {{outcome}}")],
            w=12),
        table(
            "Timeline events fired",
            "Timeline events the running scenario fired so far, by action and service. Each "
            "also appears as an orange annotation at the time it fired; summary.json says "
            "whether it succeeded.",
            [q("sum by (scenario, action, service) (loadgen_events_total)")],
            w=12,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True}, "indexByName": {},
                "renameByName": {"Value": "events"}}}]),
    ]
    return build(
        "learnsphere-loadgen", "LearnSphere / Load generator",
        "The load generator's own view of a scenario run: the load asked for against the "
        "load offered, coordinated-omission-corrected latency, errors by journey, and the "
        "timeline events (orange annotations). Only populated while `loadgen run "
        "--metrics-addr` is scraped.",
        items)


# === 5. SLOs ===

def slo():
    rate = "$__rate_interval"
    # The budget left over the last 7 days, not 30: Prometheus keeps 7 days
    # (docker-compose.yml, deploy/k8s), so a 30-day window would silently
    # be a 7-day one labelled 30. The SLO's ratios are the same over any
    # window; a longer retention can widen BUDGET_WINDOW.
    avail_budget = (
        "1 - ((sum(increase(http_server_request_duration_seconds_count"
        f'{{{CHECKOUT}, status=~"5.."}}[{BUDGET_WINDOW}])) or vector(0)) '
        f"/ sum(increase(http_server_request_duration_seconds_count{{{CHECKOUT}}}[{BUDGET_WINDOW}]))) "
        f"/ {AVAILABILITY_BUDGET}")
    latency_budget = (
        f"1 - ((sum(increase(http_server_request_duration_seconds_count{{{CHECKOUT}}}[{BUDGET_WINDOW}])) "
        f"- sum(increase(http_server_request_duration_seconds_bucket{{{CHECKOUT}, {LE_1S}}}[{BUDGET_WINDOW}]))) "
        f"/ sum(increase(http_server_request_duration_seconds_count{{{CHECKOUT}}}[{BUDGET_WINDOW}]))) "
        f"/ {LATENCY_BUDGET}")
    budget_steps = steps(("red", None), ("orange", 0.25), ("green", 0.5))
    burn_steps = steps(("green", None), ("orange", 6), ("red", 14.4))
    items = [
        row("Checkout SLOs", "POST /api/checkout at the gateway: 99.5 % available (not 5xx), "
            "95 % under 1 s, over 30 days."),
        stat(
            "Availability, last 1 day",
            "Share of checkouts over the last day not answered with a 5xx. The objective is "
            "99.5 %; below it the error budget is being spent faster than it accrues.",
            [q("1 - slo:checkout_availability:error_ratio_rate1d")],
            unit="percentunit", decimals=3,
            thresholds=steps(("red", None), ("green", 0.995))),
        stat(
            "Latency SLI, last 1 day",
            "Share of checkouts over the last day that took under 1 s. The objective is 95 %.",
            [q("1 - slo:checkout_latency:slow_ratio_rate1d")],
            unit="percentunit", decimals=2,
            thresholds=steps(("red", None), ("green", 0.95))),
        stat(
            "Availability error budget remaining (7 d)",
            "Share of the availability budget (0.5 % of checkouts may fail) not yet spent by "
            "the last 7 days' checkouts, from the raw counters. 7 days, not the SLO's 30: "
            "that is what Prometheus keeps. Below 0 the SLO is missed over the week.",
            [q(avail_budget, "remaining")],
            unit="percentunit", decimals=1, thresholds=budget_steps),
        stat(
            "Latency error budget remaining (7 d)",
            "Share of the latency budget (5 % of checkouts may take 1 s or more) not yet "
            "spent by the last 7 days' checkouts, from the raw counters. 7 days, not the "
            "SLO's 30: that is what Prometheus keeps.",
            [q(latency_budget, "remaining")],
            unit="percentunit", decimals=1, thresholds=budget_steps),
        timeseries(
            "Availability SLI",
            "Share of checkouts not answered with a 5xx, over 5 minutes and 1 hour. The dashed "
            "line is the 99.5 % objective; short dips below it spend budget, long ones page.",
            [q("1 - slo:checkout_availability:error_ratio_rate5m", "5m"),
             q("1 - slo:checkout_availability:error_ratio_rate1h", "1h")],
            unit="percentunit", thresholds=steps(("red", None), ("green", 0.995))),
        timeseries(
            "Latency SLI",
            "Share of checkouts under 1 s, over 5 minutes and 1 hour. The dashed line is the "
            "95 % objective.",
            [q("1 - slo:checkout_latency:slow_ratio_rate5m", "5m"),
             q("1 - slo:checkout_latency:slow_ratio_rate1h", "1h")],
            unit="percentunit", thresholds=steps(("red", None), ("green", 0.95))),
        row("Burn rates", "How fast each budget is being spent: 1 = exactly on budget over 30 "
            "days. The alerts page at 14.4 (1 h and 5 m) and 6 (6 h and 30 m), and open a "
            "ticket at 3 (1 d and 2 h) and 1 (3 d and 6 h)."),
        timeseries(
            "Availability burn rate",
            "Error ratio over each alert window divided by the 0.5 % budget. A page needs both "
            "the long and the short window of a pair above its threshold (dashed: 6 and 14.4).",
            [q(f"slo:checkout_availability:error_ratio_rate{w} / {AVAILABILITY_BUDGET}", w)
             for w in SLO_WINDOWS],
            thresholds=burn_steps),
        timeseries(
            "Latency burn rate",
            "Slow ratio (1 s or more) over each alert window divided by the 5 % budget. A page "
            "needs both the long and the short window of a pair above its threshold.",
            [q(f"slo:checkout_latency:slow_ratio_rate{w} / {LATENCY_BUDGET}", w)
             for w in SLO_WINDOWS],
            thresholds=burn_steps),
        row("Alerts and traffic", "What is firing, and the checkout traffic behind it."),
        table(
            "Firing checkout alerts",
            "Checkout SLO alerts firing or pending now, with their severity (page or ticket). "
            "Empty is good.",
            [q('ALERTS{alertname=~"Checkout.*"}')],
            w=12,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value": True, "__name__": True},
                "indexByName": {}, "renameByName": {}}}]),
        timeseries(
            "Checkout alerts over time",
            "1 while an alert is firing (or pending), by alert and severity: when the page or "
            "ticket would have gone out relative to the fault annotations.",
            [q('sum by (alertname, severity, alertstate) (ALERTS{alertname=~"Checkout.*"})',
               "{{alertname}} {{severity}} {{alertstate}}")],
            w=12),
        timeseries(
            "Checkout requests by status",
            "Checkouts per second at the gateway by status. 5xx spend the availability budget; "
            "402 (declined) and 409/422 do not.",
            [q("sum by (status) "
               f"(rate(http_server_request_duration_seconds_count{{{CHECKOUT}}}[{rate}]))",
               "{{status}}")],
            unit="reqps"),
        latency(
            "Checkout latency",
            "p50 and p99 checkout latency at the gateway against the 1 s objective. Dots are "
            "exemplars: open one above the line to see where a slow checkout spent its time.",
            [q("histogram_quantile(0.5, sum by (le) "
               f"(rate(http_server_request_duration_seconds_bucket{{{CHECKOUT}}}[{rate}])))", "p50"),
             q("histogram_quantile(0.99, sum by (le) "
               f"(rate(http_server_request_duration_seconds_bucket{{{CHECKOUT}}}[{rate}])))", "p99")]),
    ]
    return build(
        "learnsphere-slo", "LearnSphere / SLOs",
        "Checkout's service level objectives (POST /api/checkout at the gateway: 99.5 % "
        "available, 95 % under 1 s, 30-day budget): the SLIs, the error budget left, the "
        "multiwindow burn rates behind the alerts, and the alerts firing. Orange marks are "
        "loadgen timeline events.",
        items, time_from="now-3h")


DASHBOARDS = {
    "mesh-overview.json": mesh_overview,
    "service-detail.json": service_detail,
    "failures.json": failures,
    "loadgen.json": loadgen,
    "slo.json": slo,
}


def render():
    """File name -> text, for every file this script owns."""
    files = {}
    all_queries = []
    for name, make in DASHBOARDS.items():
        dashboard, queries = make()
        files[name] = json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for qq in queries:
            qq["file"] = name
        all_queries.extend(queries)
    files[QUERIES_FILE] = json.dumps(
        {"description": "Every PromQL expression the dashboards run (generated by "
                        "generate.py; `core` ones must return data after a short scenario "
                        "with a fault). Template variables are left in; lint.py "
                        "--list-queries substitutes them.",
         "queries": all_queries},
        indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return files


def main():
    for name, text in render().items():
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
