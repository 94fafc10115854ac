// The LearnSphere learner app: layout, header navigation and the hash router.

import { el, meta, replace } from '../common/dom';
import { catalogView } from './views/catalog';
import { courseView } from './views/course';
import { loginView, signupView } from './views/auth';
import { lessonView } from './views/lesson';
import { myView } from './views/my';
import { clearSession, getSession, onSessionChange } from './session';
import { navigate, outcome, runAction, setHeading, setRenderer, type RenderOptions, type View } from './shell';
import { initTracing } from './tracing';

initTracing(meta('learnsphere-otlp-traces-url'));
outcome.setJaegerUrl(meta('learnsphere-jaeger-url'));

type ViewFn = (v: View) => void | Promise<void>;

const ROUTES: [RegExp, ViewFn, string][] = [
  [/^\/$/, catalogView, 'courses'],
  [/^\/courses\/([^/]+)$/, courseView, 'courses'],
  [/^\/courses\/([^/]+)\/lessons\/([^/]+)$/, lessonView, 'my'],
  [/^\/signup$/, signupView, 'signup'],
  [/^\/login$/, loginView, 'login'],
  [/^\/my$/, myView, 'my'],
];

function notFound(v: View): void {
  const h1 = document.createElement('h1');
  h1.tabIndex = -1;
  setHeading(h1, 'Page not found');
  replace(v.root, h1, el('p', null, 'There is nothing at this address. ', el('a', { href: '#/' }, 'See all courses'), '.'));
}

// Layout: header (brand, nav), main (outcome region, the current view).
const nav = el('nav', { class: 'site-nav', 'aria-label': 'Main' });
const viewRoot = el('div', { class: 'view' });
const main = el('main', { id: 'main' }, outcome.node, viewRoot);
const header = el(
  'header',
  { class: 'site-header' },
  el('div', { class: 'header-inner' }, el('a', { class: 'brand', href: '#/' }, 'LearnSphere'), nav),
);
const skip = el('a', { class: 'skip-link', href: '#main' }, 'Skip to content');
skip.addEventListener('click', (event) => {
  event.preventDefault();
  (viewRoot.querySelector<HTMLElement>('h1') ?? main).focus();
});
document.body.replaceChildren(skip, header, main);

function navLink(href: string, text: string, current: boolean): HTMLAnchorElement {
  return el('a', { href, 'aria-current': current ? 'page' : null }, text);
}

let section = '';
function renderNav(): void {
  const session = getSession();
  const items: (Node | null)[] = [
    navLink('#/', 'Courses', section === 'courses'),
    navLink('#/my', 'My courses', section === 'my'),
  ];
  if (session) {
    const logout = el('button', { type: 'button', class: 'link-button' }, 'Log out');
    logout.addEventListener('click', () => {
      void runAction('click Log out', logout, async () => {
        clearSession();
        outcome.success('You are logged out.');
        await navigate('#/');
      });
    });
    items.push(el('span', { class: 'user-name' }, session.display_name), logout);
  } else {
    items.push(navLink('#/login', 'Log in', section === 'login'), navLink('#/signup', 'Sign up', section === 'signup'));
  }
  replace(nav, el('ul', null, items.map((item) => el('li', null, item))));
}
onSessionChange(renderNav);

// The router. Each render replaces the view; the previous one is told to
// stop (timers, late answers) through alive() and its cleanups.
let seq = 0;
let cleanups: (() => void)[] = [];

function parseHash(): { path: string; query: URLSearchParams } {
  const raw = location.hash.replace(/^#/, '') || '/';
  const at = raw.indexOf('?');
  const path = at === -1 ? raw : raw.slice(0, at);
  return { path: path || '/', query: new URLSearchParams(at === -1 ? '' : raw.slice(at + 1)) };
}

async function render(options: RenderOptions): Promise<void> {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  const mine = ++seq;
  if (!options.keepOutcome) outcome.clear();
  const { path, query } = parseHash();
  let fn: ViewFn = notFound;
  let params: string[] = [];
  section = '';
  for (const [pattern, view, sec] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      fn = view;
      section = sec;
      try {
        params = m.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        fn = notFound;
      }
      break;
    }
  }
  renderNav();
  const root = el('div', { class: 'view-inner' });
  viewRoot.replaceChildren(root);
  const view: View = {
    root,
    params,
    query,
    parent: options.parent,
    alive: () => mine === seq,
    onCleanup: (cleanup) => cleanups.push(cleanup),
  };
  const done = fn(view);
  // The heading is in place before the first await: move focus to it, so a
  // screen reader announces the new page and Tab starts from it.
  if (options.focus) root.querySelector<HTMLElement>('h1')?.focus();
  try {
    await done;
  } catch (error) {
    if (mine === seq) {
      outcome.failure(`This page could not be shown: ${error instanceof Error && error.message ? error.message : 'unknown error'}`);
    }
  }
}

setRenderer(render);
window.addEventListener('hashchange', () => {
  void render({ focus: true });
});
void render({ focus: false, keepOutcome: true });
