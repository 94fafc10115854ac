// "Faults": inject a fault into every replica of a service (the console API
// fans it out to their admin APIs), list the active ones, clear them.

import { describeProblem } from '../common/api';
import { el, replace, syncKeyed, type Keyed } from '../common/dom';
import { formatNumber } from '../common/format';
import { action, capi, messageOf, outcome, Poller } from './shared';

interface Latency {
  fixed_ms?: number;
  uniform_ms?: [number, number];
  median_ms?: number;
  p99_ms?: number;
}

interface Fault {
  id: string;
  route?: string | null;
  method?: string | null;
  latency?: Latency | null;
  error?: { rate?: number; status?: number } | null;
  abort?: { rate?: number } | null;
  expires_at?: string | null;
}

interface ReplicaFaults {
  replica: string;
  url: string;
  faults: Fault[];
  error: string | null;
}

interface ServiceFaults {
  service: string;
  replicas: ReplicaFaults[];
}

interface Injected {
  service: string;
  message: string;
  injected: { replica: string; fault: Fault }[];
  failed: { replica: string; error: string }[];
}

const pct = (rate: number | undefined): string => `${formatNumber((rate ?? 1) * 100)}%`;

export function describeFault(f: Fault): string {
  const parts: string[] = [];
  const l = f.latency;
  if (l) {
    if (typeof l.fixed_ms === 'number') parts.push(`latency ${l.fixed_ms} ms`);
    else if (Array.isArray(l.uniform_ms)) parts.push(`latency ${l.uniform_ms[0]}–${l.uniform_ms[1]} ms`);
    else if (typeof l.median_ms === 'number') parts.push(`latency median ${l.median_ms} ms, p99 ${l.p99_ms ?? '?'} ms`);
  }
  if (f.error) parts.push(`error ${pct(f.error.rate)} → ${f.error.status ?? 503}`);
  if (f.abort) parts.push(`abort ${pct(f.abort.rate)}`);
  return parts.join('; ') || 'no effect';
}

function expires(at: string | null | undefined): string {
  if (!at) return 'never';
  const ms = Date.parse(at) - Date.now();
  if (Number.isNaN(ms)) return at;
  return ms <= 0 ? 'now' : `in ${Math.ceil(ms / 1000)} s`;
}

function field(id: string, label: string, control: HTMLElement): HTMLDivElement {
  return el('div', { class: 'field' }, el('label', { for: id }, label), control);
}

export function faultsSection(): { node: HTMLElement; poller: Poller; setServices(names: string[]): void } {
  const service = el('select', { id: 'fault-service', name: 'service' });
  const route = el('input', { id: 'fault-route', name: 'route', type: 'text', placeholder: '/courses/{course_id}/page or * ', autocomplete: 'off' });
  const method = el(
    'select',
    { id: 'fault-method', name: 'method' },
    ['Any', 'GET', 'POST', 'PUT', 'DELETE'].map((m) => el('option', { value: m === 'Any' ? '' : m }, m)),
  );
  const latency = el('input', { id: 'fault-latency', name: 'latency', type: 'number', min: '0', step: '1', inputmode: 'numeric' });
  const errorRate = el('input', { id: 'fault-error-rate', name: 'error_rate', type: 'number', min: '0', max: '100', step: 'any', inputmode: 'decimal' });
  const errorStatus = el('input', { id: 'fault-error-status', name: 'error_status', type: 'number', min: '400', max: '599', step: '1', value: '503', inputmode: 'numeric' });
  const abortRate = el('input', { id: 'fault-abort-rate', name: 'abort_rate', type: 'number', min: '0', max: '100', step: 'any', inputmode: 'decimal' });
  const expiresIn = el('input', { id: 'fault-expires', name: 'expires_in', type: 'text', value: '60s', autocomplete: 'off' });
  const inject = el('button', { type: 'submit', class: 'primary' }, 'Inject fault');
  const form = el(
    'form',
    { class: 'fault-form', novalidate: true },
    el(
      'div',
      { class: 'grid' },
      field('fault-service', 'Service', service),
      field('fault-route', 'Route', route),
      field('fault-method', 'Method', method),
      field('fault-latency', 'Latency (ms)', latency),
      field('fault-error-rate', 'Error rate (%)', errorRate),
      field('fault-error-status', 'Error status', errorStatus),
      field('fault-abort-rate', 'Abort rate (%)', abortRate),
      field('fault-expires', 'Expires in', expiresIn),
    ),
    inject,
  );

  const table = el(
    'table',
    { class: 'data' },
    el('caption', null, 'Active faults'),
    el('thead', null, el('tr', null, ['Replica', 'Fault', 'Route', 'Method', 'Effect', 'Expires', 'Actions'].map((c) => el('th', { scope: 'col' }, c)))),
  );
  const none = el('p', { class: 'muted' }, 'No active faults.');
  const status = el('p', { class: 'refresh-status muted' }, 'Loading…');
  const node = el(
    'section',
    { 'aria-labelledby': 'faults-title', class: 'section' },
    el('h2', { id: 'faults-title' }, 'Faults'),
    form,
    status,
    none,
    el('div', { class: 'table-wrap' }, table),
  );

  const number = (input: HTMLInputElement): number | string => {
    const n = Number(input.value.trim());
    return Number.isFinite(n) ? n : input.value.trim();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void action(inject, async () => {
      const fault: Record<string, unknown> = {};
      if (route.value.trim()) fault.route = route.value.trim();
      if (method.value) fault.method = method.value;
      if (latency.value.trim()) fault.latency = { fixed_ms: number(latency) };
      if (errorRate.value.trim()) {
        const rate = number(errorRate);
        fault.error = {
          rate: typeof rate === 'number' ? rate / 100 : rate,
          status: errorStatus.value.trim() ? number(errorStatus) : 503,
        };
      }
      if (abortRate.value.trim()) {
        const rate = number(abortRate);
        fault.abort = { rate: typeof rate === 'number' ? rate / 100 : rate };
      }
      if (expiresIn.value.trim()) fault.expires_in = expiresIn.value.trim();
      if (!service.value) {
        outcome.failure('Choose a service first (the list fills once the console has asked the services).');
        return;
      }
      const result = await capi<Injected>(`/console/api/faults/${encodeURIComponent(service.value)}`, {
        method: 'POST',
        body: fault,
      });
      if (result.kind !== 'ok') return outcome.problem(result);
      const failed = Array.isArray(result.data?.failed) ? result.data.failed : [];
      const text = messageOf(result.data) ?? `Injected a fault into ${service.value}`;
      const extra = failed.map((f) => el('p', null, `Failed on ${f.replica}: ${f.error}`));
      if (failed.length > 0 && (result.data.injected ?? []).length === 0) outcome.failure(text, { extra });
      else outcome.success(text, { extra });
      await poller.now();
    });
  });

  function clearButton(label: string, path: string, fallback: string): HTMLButtonElement {
    const button = el('button', { type: 'button', class: 'small' }, label);
    button.addEventListener('click', () =>
      void action(button, async () => {
        const result = await capi<{ message?: string }>(path, { method: 'DELETE' });
        if (result.kind !== 'ok') return outcome.problem(result);
        outcome.success(messageOf(result.data) ?? fallback);
        await poller.now();
      }),
    );
    return button;
  }

  interface Row {
    service: string;
    replica: ReplicaFaults;
    fault: Fault | null;
  }

  function faultRow(row: Row): Keyed<Row> {
    const { service: s, replica: r, fault: f } = row;
    if (!f) {
      const text = el('td', { colspan: '6' });
      const tr = el('tr', { class: 'replica-error' }, el('th', { scope: 'row' }, r.replica), text);
      const update = (x: Row): void => {
        text.textContent = `Could not ask this replica: ${x.replica.error ?? 'unknown error'}`;
      };
      update(row);
      return { el: tr, update };
    }
    const id8 = f.id.slice(0, 8);
    const expiresCell = el('td', null, expires(f.expires_at));
    const tr = el(
      'tr',
      null,
      el('th', { scope: 'row' }, r.replica),
      el('td', null, el('code', { title: f.id }, id8)),
      el('td', null, f.route ?? 'every route'),
      el('td', null, f.method ?? 'any'),
      el('td', null, describeFault(f)),
      expiresCell,
      el(
        'td',
        null,
        clearButton(
          `Clear fault ${id8} on ${r.replica}`,
          `/console/api/faults/${encodeURIComponent(s)}/replicas/${encodeURIComponent(r.replica)}/${encodeURIComponent(f.id)}`,
          `Cleared fault ${id8} on ${r.replica}`,
        ),
      ),
    );
    return { el: tr, update: (x) => (expiresCell.textContent = expires(x.fault?.expires_at)) };
  }

  function group(first: ServiceFaults): Keyed<ServiceFaults> {
    const name = first.service;
    const head = el(
      'tr',
      { class: 'group-row' },
      el('th', { scope: 'rowgroup', colspan: '6' }, name),
      el('td', null, clearButton(`Clear all faults on ${name}`, `/console/api/faults/${encodeURIComponent(name)}`, `Cleared every fault on ${name}`)),
    );
    const body = el('tbody', null, head);
    const rows = new Map<string, Keyed<Row>>();
    const update = (s: ServiceFaults): void => {
      const items: Row[] = [];
      for (const r of s.replicas) {
        if (r.error) items.push({ service: name, replica: r, fault: null });
        for (const f of r.faults ?? []) items.push({ service: name, replica: r, fault: f });
      }
      syncKeyed(body, rows, items, (x) => `${x.replica.replica}/${x.fault?.id ?? 'error'}`, faultRow, 1);
    };
    update(first);
    return { el: body, update };
  }

  const groups = new Map<string, Keyed<ServiceFaults>>();
  let known: string[] = [];

  function setServices(names: string[]): void {
    const wanted = names.filter((n) => n !== 'nats');
    if (wanted.length === 0 || wanted.join('\n') === known.join('\n')) return;
    known = wanted;
    const selected = service.value;
    replace(service, wanted.map((n) => el('option', { value: n }, n)));
    if (wanted.includes(selected)) service.value = selected;
  }

  const poller = new Poller(2000, async () => {
    const result = await capi<{ services: ServiceFaults[] }>('/console/api/faults');
    if (result.kind !== 'ok') {
      status.textContent = `Could not refresh: ${describeProblem(result)}`;
      status.classList.add('stale');
      return !(result.kind === 'error' && result.status === 401);
    }
    status.textContent = '';
    status.classList.remove('stale');
    const services = Array.isArray(result.data?.services) ? result.data.services : [];
    setServices(services.map((s) => s.service));
    const withFaults = services.filter((s) => s.replicas.some((r) => (r.faults ?? []).length > 0 || r.error));
    syncKeyed(table, groups, withFaults, (s) => s.service, group, 2);
    none.hidden = withFaults.length > 0;
    return true;
  });

  return { node, poller, setServices };
}
