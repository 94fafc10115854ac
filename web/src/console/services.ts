// "Services": the launcher's services and replicas (GET /services, every
// 2 s), scaling and killing replicas.

import { describeProblem } from '../common/api';
import { el, syncKeyed, type Keyed } from '../common/dom';
import { action, capi, outcome, Poller, type Info } from './shared';

export interface Replica {
  replica: number;
  url: string;
  pid: number | null;
  restarts: number;
  state: string;
}

export interface Service {
  name: string;
  desired: number;
  restarts: number;
  replicas: Replica[];
}

function cell(text: string): HTMLTableCellElement {
  return el('td', null, text);
}

export function servicesSection(info: Info, onNames: (names: string[]) => void): { node: HTMLElement; poller: Poller } {
  const columns = ['Replica', 'State', 'PID', 'Restarts', 'URL', ...(info.can_kill ? ['Actions'] : [])];
  const table = el(
    'table',
    { class: 'data' },
    el('caption', null, 'Services and replicas'),
    el('thead', null, el('tr', null, columns.map((c) => el('th', { scope: 'col' }, c)))),
  );
  const status = el('p', { class: 'refresh-status muted' }, 'Loading…');
  const node = el(
    'section',
    { 'aria-labelledby': 'services-title', class: 'section' },
    el('h2', { id: 'services-title' }, 'Services'),
    info.can_scale ? null : el('p', { class: 'muted' }, 'Scaling is not available on this platform.'),
    status,
    el('div', { class: 'table-wrap' }, table),
  );
  const groups = new Map<string, Keyed<Service>>();
  let poller: Poller;

  function replicaRow(service: string, first: Replica): Keyed<Replica> {
    const state = el('span');
    const pid = cell('');
    const restarts = cell('');
    const url = cell('');
    const row = el('tr', null, el('th', { scope: 'row' }, `${service} #${first.replica}`), el('td', null, state), pid, restarts, url);
    if (info.can_kill) {
      const kill = el('button', { type: 'button', class: 'danger small' }, `Kill ${service} replica ${first.replica}`);
      kill.addEventListener('click', () =>
        void action(kill, async () => {
          const result = await capi<{ service: string; replica: number; state: string }>(
            `/services/${encodeURIComponent(service)}/replicas/${first.replica}/kill`,
            { method: 'POST' },
          );
          if (result.kind !== 'ok') return outcome.problem(result);
          outcome.success(`Killed ${service} replica ${first.replica}${result.data?.state ? ` (now ${result.data.state})` : ''}`);
          await poller.now();
        }),
      );
      row.append(el('td', null, kill));
    }
    const update = (r: Replica): void => {
      state.className = `state state-${r.state.replace(/[^a-z]/g, '')}`;
      state.textContent = r.state;
      pid.textContent = r.pid === null ? '–' : String(r.pid);
      restarts.textContent = String(r.restarts);
      url.textContent = r.url;
    };
    update(first);
    return { el: row, update };
  }

  function group(first: Service): Keyed<Service> {
    const name = first.name;
    const summary = el('span', { class: 'muted' });
    const controls = el('td', { colspan: String(columns.length - 1) }, summary);
    let input: HTMLInputElement | null = null;
    let edited = false;
    if (info.can_scale) {
      const id = `scale-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
      input = el('input', { id, type: 'number', min: name === 'nats' ? '0' : '1', max: '16', step: '1', class: 'narrow', value: String(first.desired) });
      input.addEventListener('input', () => (edited = true));
      const button = el('button', { type: 'button', class: 'small' }, `Scale ${name}`);
      const scaleInput = input;
      const submit = (): void =>
        void action(button, async () => {
          const raw = scaleInput.value.trim();
          const n = Number(raw);
          const replicas = raw !== '' && Number.isFinite(n) ? n : raw;
          outcome.success(`Scaling ${name} to ${raw} (waiting for the replicas to be ready)…`);
          const result = await capi<Service>(`/services/${encodeURIComponent(name)}/scale`, {
            method: 'POST',
            body: { replicas },
          });
          if (result.kind !== 'ok') return outcome.problem(result);
          const desired = typeof result.data?.desired === 'number' ? result.data.desired : n;
          edited = false;
          outcome.success(`Scaled ${name} to ${desired} ${desired === 1 ? 'replica' : 'replicas'}`);
          await poller.now();
        });
      button.addEventListener('click', submit);
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') {
          event.preventDefault();
          submit();
        }
      });
      controls.append(
        el('span', { class: 'scale' }, el('label', { for: id, class: 'inline' }, `Replicas of ${name}`), input, button),
      );
    }
    const head = el('tr', { class: 'group-row' }, el('th', { scope: 'rowgroup' }, name), controls);
    const body = el('tbody', null, head);
    const rows = new Map<string, Keyed<Replica>>();
    const update = (s: Service): void => {
      summary.textContent = `desired ${s.desired} · restarts ${s.restarts} `;
      if (input && !edited && document.activeElement !== input) input.value = String(s.desired);
      // Replica rows follow the group's header row.
      syncKeyed(body, rows, s.replicas, (r) => String(r.replica), (r) => replicaRow(name, r), 1);
    };
    update(first);
    return { el: body, update };
  }

  poller = new Poller(2000, async () => {
    const result = await capi<{ services: Service[] }>('/services');
    if (result.kind !== 'ok') {
      const text = describeProblem(result);
      status.textContent = `Could not refresh: ${text}`;
      status.classList.add('stale');
      return !(result.kind === 'error' && result.status === 401);
    }
    status.textContent = `Refreshed every 2 s · last at ${new Date().toLocaleTimeString('en-GB')}`;
    status.classList.remove('stale');
    const services = Array.isArray(result.data?.services) ? result.data.services : [];
    // After the caption and the head.
    syncKeyed(table, groups, services, (s) => s.name, group, 2);
    onNames(services.map((s) => s.name));
    return true;
  });
  return { node, poller };
}
