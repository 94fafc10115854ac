// The LearnSphere operator console (served by loadgen at /console): services
// and replicas, faults, scenario runs, links to dashboards and traces.

import { el, replace, safeHttpUrl } from '../common/dom';
import { faultsSection } from './faults';
import { scenariosSection } from './scenarios';
import { servicesSection } from './services';
import { capi, forgetToken, getToken, outcome, setToken, whenUnauthorized, type Info, type Poller } from './shared';

const content = el('div', { class: 'content' });
const signOut = el('button', { type: 'button', class: 'link-button' }, 'Forget token');
signOut.hidden = true;
const main = el('main', { id: 'main' }, outcome.node, content);
document.body.replaceChildren(
  el(
    'header',
    { class: 'site-header' },
    el('div', { class: 'header-inner' }, el('h1', { tabindex: '-1' }, 'LearnSphere console'), signOut),
  ),
  main,
);

let pollers: Poller[] = [];

function stopAll(): void {
  pollers.forEach((p) => p.stop());
  pollers = [];
}

function showTokenForm(): void {
  stopAll();
  signOut.hidden = true;
  const input = el('input', { id: 'admin-token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'admin-token-hint' });
  const button = el('button', { type: 'submit', class: 'primary' }, 'Use token');
  const form = el(
    'form',
    { class: 'form token-form', novalidate: true },
    el('div', { class: 'field' }, el('label', { for: 'admin-token' }, 'Admin token'), input),
    el('p', { id: 'admin-token-hint', class: 'hint' }, 'The launcher’s admin token: ', el('code', null, 'cat data/admin-token'), ' in the repository.'),
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      outcome.failure('Paste the admin token first.');
      input.focus();
      return;
    }
    setToken(token);
    outcome.clear();
    void showConsole(true);
  });
  replace(content, el('section', { 'aria-labelledby': 'token-title', class: 'section' }, el('h2', { id: 'token-title' }, 'Sign in'), form));
  input.focus();
}

const DEFAULT_INFO: Info = {
  platform: 'unknown',
  gateway_url: '',
  grafana_url: '',
  jaeger_url: '',
  dashboards: [],
  can_scale: false,
  can_kill: false,
};

function linksSection(info: Info): HTMLElement {
  const links: { title: string; url: string | null }[] = [
    { title: 'Jaeger', url: safeHttpUrl(info.jaeger_url) },
    ...(Array.isArray(info.dashboards) ? info.dashboards : []).map((d) => ({ title: d.title, url: safeHttpUrl(d.url) })),
    { title: 'Grafana home', url: safeHttpUrl(info.grafana_url) },
    { title: 'Learner app', url: safeHttpUrl(info.gateway_url) },
  ];
  const available = links.filter((l) => l.url);
  return el(
    'section',
    { 'aria-labelledby': 'links-title', class: 'section' },
    el('h2', { id: 'links-title' }, 'Dashboards and traces'),
    available.length === 0
      ? el('p', { class: 'muted' }, 'No dashboards are configured.')
      : el('ul', { class: 'links' }, available.map((l) => el('li', null, el('a', { href: l.url!, target: '_blank', rel: 'noopener' }, l.title)))),
    el('p', { class: 'muted' }, `Platform: ${info.platform}`),
  );
}

async function showConsole(focusHeading: boolean): Promise<void> {
  stopAll();
  replace(content, el('p', { class: 'loading' }, 'Loading…'));
  const result = await capi<Info>('/console/api/info');
  if (!getToken()) return; // a 401: the form is back.
  let info = DEFAULT_INFO;
  if (result.kind === 'ok' && result.data && typeof result.data === 'object') info = { ...DEFAULT_INFO, ...result.data };
  else if (result.kind !== 'ok') outcome.problem(result);
  outcome.setJaegerUrl(info.jaeger_url);
  signOut.hidden = false;

  const faults = faultsSection();
  const services = servicesSection(info, (names) => faults.setServices(names));
  const scenarios = scenariosSection();
  replace(content, services.node, faults.node, scenarios.node, linksSection(info));
  pollers = [services.poller, faults.poller, scenarios.poller];
  services.poller.start();
  faults.poller.start();
  void scenarios.load();
  if (focusHeading) document.querySelector<HTMLElement>('h1')?.focus();
}

whenUnauthorized(showTokenForm);
signOut.addEventListener('click', () => {
  forgetToken();
  outcome.success('Forgot the admin token.');
  showTokenForm();
});

if (getToken()) void showConsole(false);
else showTokenForm();
