// "Scenarios": start a load scenario run, watch it live (polled every second
// while it runs), stop it, read its verdict and open its report.

import { describeProblem } from '../common/api';
import { el, replace } from '../common/dom';
import { formatNumber, formatPercent } from '../common/format';
import { action, capi, messageOf, outcome, Poller } from './shared';

interface Scenario {
  name: string;
  description: string;
  duration_seconds: number;
}

interface Progress {
  elapsed_seconds: number;
  planned_seconds: number;
  phase: string;
  target_rate: number;
  achieved_rate: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  error_rate: number;
  completed: number;
  in_flight: number;
}

interface Run {
  id: string;
  scenario: string;
  duration_scale: number;
  state: 'running' | 'passed' | 'failed' | 'error' | 'stopped';
  started_at: string;
  finished_at: string | null;
  progress: Progress | null;
  verdict: { passed: boolean; checks: { name: string; passed: boolean; detail: string }[] } | null;
  report_url: string | null;
  message: string | null;
}

const num = (v: number | null | undefined, unit = ''): string =>
  typeof v === 'number' && Number.isFinite(v) ? `${formatNumber(v)}${unit}` : '–';

function pair(term: string, value: string): HTMLElement[] {
  return [el('dt', null, term), el('dd', null, value)];
}

export function scenariosSection(): { node: HTMLElement; load(): Promise<void>; poller: Poller } {
  const select = el('select', { id: 'scenario-name', name: 'scenario', 'aria-describedby': 'scenario-description' });
  const description = el('p', { id: 'scenario-description', class: 'hint' });
  const scale = el('input', { id: 'scenario-scale', name: 'duration_scale', type: 'number', min: '0', step: 'any', value: '0.1', inputmode: 'decimal', class: 'narrow' });
  const start = el('button', { type: 'submit', class: 'primary' }, 'Start scenario');
  const stop = el('button', { type: 'button', class: 'danger' }, 'Stop scenario');
  stop.hidden = true;
  const form = el(
    'form',
    { class: 'scenario-form', novalidate: true },
    el('div', { class: 'grid' }, el('div', { class: 'field' }, el('label', { for: 'scenario-name' }, 'Scenario'), select, description), el('div', { class: 'field' }, el('label', { for: 'scenario-scale' }, 'Duration scale'), scale)),
    el('div', { class: 'buttons' }, start, stop),
  );
  const panelBody = el('div', null, el('p', { class: 'muted' }, 'No scenario has run yet.'));
  const panel = el(
    'section',
    { class: 'run-panel', 'aria-labelledby': 'run-title' },
    el('h3', { id: 'run-title' }, 'Scenario run'),
    panelBody,
  );
  const node = el(
    'section',
    { 'aria-labelledby': 'scenarios-title', class: 'section' },
    el('h2', { id: 'scenarios-title' }, 'Scenarios'),
    form,
    panel,
  );

  let scenarios: Scenario[] = [];
  let current: Run | null = null;

  const describe = (): void => {
    const s = scenarios.find((x) => x.name === select.value);
    description.textContent = s ? `${s.description} (${num(s.duration_seconds)} s at scale 1)` : '';
  };
  select.addEventListener('change', describe);

  function show(run: Run): void {
    const before = current;
    current = run;
    const running = run.state === 'running';
    stop.hidden = !running;
    const p = run.progress;
    const facts = el(
      'dl',
      { class: 'facts' },
      pair('Scenario', `${run.scenario} (duration scale ${num(run.duration_scale)})`),
      pair('State', run.state),
      p
        ? [
            pair('Phase', p.phase || '–'),
            pair('Elapsed', `${num(p.elapsed_seconds)} s of ${num(p.planned_seconds)} s`),
            pair('Target rate', num(p.target_rate, ' req/s')),
            pair('Achieved rate', num(p.achieved_rate, ' req/s')),
            pair('p50', num(p.p50_ms, ' ms')),
            pair('p99', num(p.p99_ms, ' ms')),
            pair('Errors', `${num(p.errors)} (${Number.isFinite(p.error_rate) ? formatPercent(p.error_rate * 100) : '–'})`),
            pair('Completed', num(p.completed)),
            pair('In flight', num(p.in_flight)),
          ].flat()
        : [],
    );
    const verdict = run.verdict
      ? [
          el('p', { class: `verdict verdict-${run.verdict.passed ? 'passed' : 'failed'}` }, `Verdict: ${run.verdict.passed ? 'passed' : 'failed'}`),
          el(
            'ul',
            { class: 'checks' },
            (run.verdict.checks ?? []).map((c) =>
              el('li', { class: c.passed ? 'check-passed' : 'check-failed' }, `${c.passed ? 'Passed' : 'Failed'}: ${c.name}`, c.detail ? ` — ${c.detail}` : ''),
            ),
          ),
        ]
      : [];
    const report =
      run.report_url && run.report_url.startsWith('/console/runs/')
        ? el('p', null, el('a', { href: run.report_url, target: '_blank', rel: 'noopener' }, 'Open report'))
        : null;
    replace(panelBody, facts, run.message ? el('p', { class: 'note' }, run.message) : null, verdict, report);
    if (before && before.id === run.id && before.state === 'running' && !running) {
      const how = run.verdict ? (run.verdict.passed ? 'passed' : 'failed') : run.state;
      outcome.success(`Scenario ${run.scenario} finished: ${how}`);
    }
  }

  const poller = new Poller(1000, async () => {
    if (!current || current.state !== 'running') return false;
    const result = await capi<Run>(`/console/api/runs/${encodeURIComponent(current.id)}`);
    if (result.kind !== 'ok') {
      if (result.kind === 'error' && result.status === 401) return false;
      panelBody.setAttribute('data-stale', describeProblem(result));
      return true;
    }
    panelBody.removeAttribute('data-stale');
    show(result.data);
    return result.data.state === 'running';
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void action(start, async () => {
      const raw = scale.value.trim();
      const n = Number(raw);
      const result = await capi<Run>('/console/api/runs', {
        method: 'POST',
        body: { scenario: select.value, duration_scale: raw !== '' && Number.isFinite(n) ? n : raw },
      });
      if (result.kind !== 'ok') return outcome.problem(result);
      outcome.success(`Started scenario ${result.data.scenario} at duration scale ${num(result.data.duration_scale)}`);
      show(result.data);
      poller.start();
    });
  });

  stop.addEventListener('click', () => {
    const run = current;
    if (!run) return;
    void action(stop, async () => {
      const result = await capi<Run>(`/console/api/runs/${encodeURIComponent(run.id)}`, { method: 'DELETE' });
      if (result.kind !== 'ok') return outcome.problem(result);
      outcome.success(messageOf(result.data) ?? `Stopped scenario ${run.scenario}`);
      if (result.data && typeof result.data === 'object' && 'state' in result.data) show(result.data);
      await poller.now();
    });
  });

  async function load(): Promise<void> {
    const [list, runs] = await Promise.all([
      capi<{ scenarios: Scenario[] }>('/console/api/scenarios'),
      capi<{ runs: Run[] }>('/console/api/runs'),
    ]);
    if (list.kind === 'ok') {
      scenarios = Array.isArray(list.data?.scenarios) ? list.data.scenarios : [];
      replace(select, scenarios.map((s) => el('option', { value: s.name }, s.name)));
      describe();
    } else if (!(list.kind === 'error' && list.status === 401)) {
      outcome.problem(list);
    }
    if (runs.kind === 'ok' && Array.isArray(runs.data?.runs) && runs.data.runs[0]) {
      show(runs.data.runs[0]);
      if (runs.data.runs[0].state === 'running') poller.start();
    }
  }

  return { node, load, poller };
}
