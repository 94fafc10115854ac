#!/usr/bin/env node
// Parses every LogQL expression LearnSphere ships with Grafana's own LogQL
// grammar (@grafana/lezer-logql, the parser behind Grafana's Loki query
// editor, written from Loki's syntax.y) and fails on any error node. No Loki
// or Grafana is needed, which is the point: neither image can be pulled
// where this project is built, so a query typo would otherwise first show
// as an empty panel on someone's screen.
//
//   cd observability/logql && npm ci     # once: the exact versions in package-lock.json
//   node observability/logql/check.mjs [--root DIR] [--self-test]
//
// Where the expressions come from:
//   - dashboards/*.json: every panel target and annotation whose datasource
//     is Loki (dashboards/generate.py writes them);
//   - observability/grafana/provisioning/datasources/datasources.yml: the
//     Jaeger datasource's tracesToLogsV2 custom query (after Grafana's own
//     expansion of `$$` to `$`).
// Grafana's variables are replaced by values of their kind before parsing
// ($service by a service name, $__auto by a duration, ${__tags} by the
// selector Grafana builds from a span, ${__span.traceId} by a trace id),
// as Grafana does before it sends a query; an unknown variable is an error.
//
// Beyond the grammar, what Loki itself would refuse or silently answer
// with nothing:
//   - a stream selector needs one matcher that cannot match the empty
//     string (Loki rejects `{service_name=~".*"}`);
//   - a stream selector names only labels Loki indexes, as
//     observability/loki.yml's otlp_config makes them (service_name, ...):
//     `{trace_id="..."}` parses but finds no stream, trace_id being
//     structured metadata (filter it after a pipe: `| trace_id="..."`).
//
// --self-test also runs deliberately broken expressions (one per kind of
// mistake above, and a real dashboard query cut short) and fails unless
// every one is reported. scripts/test runs `check.mjs --self-test`.

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parser } from '@grafana/lezer-logql';
import YAML from 'yaml';

const HERE = dirname(fileURLToPath(import.meta.url));

// Values of the kind each variable stands for.
const DASHBOARD_VARIABLES = {
  __auto: '1m',
  __interval: '30s',
  __range: '5m',
};
const SPAN_VARIABLES = {
  // What Grafana builds from the span's tags with the datasource's mapping
  // (service.name → service_name).
  __tags: 'service_name="gateway"',
  '__span.traceId': '4bf92f3577b34da6a3ce929d0e0e4736',
  '__span.spanId': '00f067aa0ba902b7',
  '__trace.traceId': '4bf92f3577b34da6a3ce929d0e0e4736',
};
// A sample value for a dashboard's own query variable.
const TEMPLATE_VALUE = 'payments';

function parseArgs(argv) {
  const args = { root: resolve(HERE, '..', '..'), selfTest: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--self-test') args.selfTest = true;
    else if (argv[i] === '--root') args.root = resolve(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (usage: check.mjs [--root DIR] [--self-test])`);
  }
  return args;
}

// --- Where the expressions are ---------------------------------------------

function* walkPanels(panels) {
  for (const p of panels || []) {
    yield p;
    yield* walkPanels(p.panels);
  }
}

const isLoki = (ds) => ds && typeof ds === 'object' && ds.type === 'loki';

function dashboardExpressions(root) {
  const dir = join(root, 'dashboards');
  const out = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const dash = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    if (!dash.panels) continue;
    const variables = new Set((dash.templating?.list || []).map((v) => v.name));
    for (const p of walkPanels(dash.panels)) {
      for (const t of p.targets || []) {
        if (isLoki(t.datasource ?? p.datasource) && typeof t.expr === 'string') {
          out.push({
            where: `dashboards/${file}: panel ${p.id} (${JSON.stringify(p.title)}) ${t.refId}`,
            source: `dashboards/${file}`,
            expr: t.expr,
            variables,
            spanVariables: false,
          });
        }
      }
    }
    for (const a of dash.annotations?.list || []) {
      if (isLoki(a.datasource) && typeof a.expr === 'string') {
        out.push({
          where: `dashboards/${file}: annotation ${JSON.stringify(a.name)}`,
          source: `dashboards/${file}`,
          expr: a.expr,
          variables,
          spanVariables: false,
        });
      }
    }
  }
  return out;
}

const DATASOURCES = 'observability/grafana/provisioning/datasources/datasources.yml';

function datasourceExpressions(root) {
  const doc = YAML.parse(readFileSync(join(root, DATASOURCES), 'utf8'));
  const out = [];
  for (const ds of doc.datasources || []) {
    const t2l = ds.jsonData?.tracesToLogsV2;
    if (t2l && t2l.customQuery && typeof t2l.query === 'string') {
      out.push({
        where: `${DATASOURCES}: ${ds.uid} tracesToLogsV2.query`,
        source: DATASOURCES,
        // Grafana expands $VAR from its environment in provisioning files;
        // $$ is how a literal $ is written.
        expr: t2l.query.replaceAll('$$', '$'),
        variables: new Set(),
        spanVariables: true,
      });
    }
  }
  return out;
}

// The labels Loki makes from OTLP resource attributes (observability/loki.yml):
// dots and other characters become underscores.
function indexedLabels(root) {
  const config = YAML.parse(readFileSync(join(root, 'observability/loki.yml'), 'utf8'));
  const resource = config?.limits_config?.otlp_config?.resource_attributes || {};
  if (!resource.ignore_defaults) {
    throw new Error('observability/loki.yml: otlp_config.resource_attributes.ignore_defaults is not true; the label set is not the file\'s own');
  }
  const labels = new Set();
  for (const rule of resource.attributes_config || []) {
    if (rule.action === 'index_label') {
      for (const a of rule.attributes || []) labels.add(a.replace(/[^a-zA-Z0-9_]/g, '_'));
    }
  }
  return labels;
}

// --- Checks ------------------------------------------------------------------

// Grafana's variable forms: $name, ${name}, ${name:format}, [[name]].
const VARIABLE = /\$\{([\w.]+)(?::[^}]*)?\}|\$([\w]+)|\[\[([\w.]+)\]\]/g;

function substitute(q, problems) {
  return q.expr.replace(VARIABLE, (whole, braced, bare, old) => {
    const name = braced ?? bare ?? old;
    if (name in DASHBOARD_VARIABLES) return DASHBOARD_VARIABLES[name];
    if (q.spanVariables && name in SPAN_VARIABLES) return SPAN_VARIABLES[name];
    if (q.variables.has(name)) return TEMPLATE_VALUE;
    problems.push(`${q.where}: unknown variable ${whole} in ${JSON.stringify(q.expr)}`);
    return whole;
  });
}

// A LogQL string literal's value: "..." with escapes, or `...` raw.
function unquote(text) {
  if (text.startsWith('`')) return text.slice(1, -1);
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(1, -1);
  }
}

function matchesEmpty(op, value) {
  if (op === 'Eq') return value === '';
  if (op === 'Neq') return value !== '';
  let re;
  try {
    re = new RegExp(`^(?:${value})$`);
  } catch {
    return false; // Loki's RE2 will judge it; the grammar has no opinion
  }
  return op === 'Re' ? re.test('') : !re.test('');
}

function caret(expr, from) {
  return `    ${expr}\n    ${' '.repeat(from)}^`;
}

function check(q, labels) {
  const problems = [];
  const expr = substitute(q, problems);
  if (problems.length) return problems;
  if (!expr.trim()) return [`${q.where}: empty expression`];
  const tree = parser.parse(expr);
  let firstError = null;
  tree.iterate({
    enter(node) {
      if (node.type.isError && firstError === null) firstError = node.from;
    },
  });
  if (firstError !== null) {
    problems.push(`${q.where}: LogQL syntax error at ${firstError}:\n${caret(expr, firstError)}`);
    return problems;
  }
  if (!tree.topNode.getChild('Expr')) {
    problems.push(`${q.where}: not a LogQL expression: ${JSON.stringify(expr)}`);
    return problems;
  }
  tree.iterate({
    enter(node) {
      if (node.name !== 'Selector') return;
      const matchers = [];
      node.node.cursor().iterate((m) => {
        if (m.name !== 'Matcher') return;
        const label = m.node.getChild('Identifier');
        const op = ['Eq', 'Neq', 'Re', 'Nre'].find((o) => m.node.getChild(o));
        const value = m.node.getChild('String');
        if (label && op && value) {
          matchers.push({
            label: expr.slice(label.from, label.to),
            op,
            value: unquote(expr.slice(value.from, value.to)),
            from: label.from,
          });
        }
        return false;
      });
      for (const m of matchers) {
        if (!labels.has(m.label)) {
          problems.push(
            `${q.where}: stream selector on ${m.label}, which Loki does not index (labels: ${[...labels].join(', ')}; ` +
              `the rest is structured metadata, filtered after a pipe: | ${m.label}="..."):\n${caret(expr, m.from)}`,
          );
        }
      }
      if (matchers.length && matchers.every((m) => matchesEmpty(m.op, m.value))) {
        problems.push(
          `${q.where}: every matcher of the stream selector matches the empty string; Loki refuses it:\n${caret(expr, node.from)}`,
        );
      }
      return false;
    },
  });
  return problems;
}

function checkAll(queries, labels) {
  return queries.flatMap((q) => check(q, labels));
}

// --- Self-test ---------------------------------------------------------------

function selfTest(queries, labels) {
  const base = { variables: new Set(['service']), spanVariables: false, source: 'self-test' };
  const broken = [
    ['an unclosed selector', '{service_name="$service"'],
    ['a range aggregation without its range', 'sum by (severity_text) (count_over_time({service_name="$service"}))'],
    ['a label filter without a value', '{service_name="$service"} | severity_text='],
    ['a duration with an unknown unit', 'sum(rate({service_name="$service"} |= "x" [1x]))'],
    ['a trailing pipe', '{service_name="$service"} | json |'],
    ['grouping outside the parentheses, without them', 'sum by (level) count_over_time({service_name="$service"}[1m])'],
    ['an unknown variable', '{service_name="$servce"}'],
    ["Prometheus' $__rate_interval", 'rate({service_name="$service"}[$__rate_interval])'],
    ['structured metadata as a stream label', '{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"}'],
    ['an empty-compatible selector', '{service_name=~".*"}'],
  ].map(([name, expr]) => ({ ...base, name, where: `self-test (${name})`, expr }));
  const real = queries.find((q) => q.expr.length > 2);
  if (real) {
    broken.push({ ...real, name: `${real.where} cut short`, where: `self-test (${real.where} cut short)`, expr: real.expr.slice(0, -1) });
  }
  const valid = [
    'sum by (severity_text) (rate({service_name="$service"} [$__auto]))',
    '{service_name=~".+"} | severity_text=~"ERROR|WARN" | trace_id=~"0*4bf9" or span_id="00f0"',
    'sum by (service_name) (count_over_time({service_name="loadgen", deployment_environment_name="compose"} |= "timeline event" [5m]))',
  ].map((expr) => ({ ...base, where: `self-test (valid: ${expr})`, expr }));
  let caught = 0;
  const failures = [];
  for (const q of broken) {
    const problems = check(q, labels);
    if (problems.length) caught++;
    else failures.push(`self-test: ${q.name} went unnoticed: ${q.expr}`);
  }
  for (const q of valid) failures.push(...check(q, labels));
  console.log(`self-test: ${caught} of ${broken.length} broken LogQL expressions caught, ${valid.length} valid ones pass`);
  return failures;
}

// --- Main --------------------------------------------------------------------

function main() {
  const args = parseArgs(process.argv.slice(2));
  const labels = indexedLabels(args.root);
  const queries = [...dashboardExpressions(args.root), ...datasourceExpressions(args.root)];
  const problems = checkAll(queries, labels);
  if (queries.length === 0) problems.push('no LogQL expression found in dashboards/ or the datasources: nothing was checked');
  if (args.selfTest && problems.length === 0) problems.push(...selfTest(queries, labels));
  const bySource = {};
  for (const q of queries) bySource[q.source] = (bySource[q.source] || 0) + 1;
  const counts = Object.entries(bySource).map(([s, n]) => `${s} ${n}`).join(', ');
  for (const p of problems) console.log(`FAIL: ${p}`);
  console.log(
    `logql: ${queries.length} expressions (${counts || 'none'}) parsed with @grafana/lezer-logql, ` +
      `stream labels ${[...labels].join(', ')} (observability/loki.yml); ` +
      `${problems.length} problem(s)`,
  );
  return problems.length ? 1 : 0;
}

process.exitCode = main();
