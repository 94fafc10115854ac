// #/signup and #/login. Forms are `novalidate`: whatever is typed reaches the
// API, and the API's message is what the learner reads.

import { el, replace } from '../../common/dom';
import { catalogHash } from './catalog';
import { saveSession } from '../session';
import { api, heading, navigate, outcome, report, runAction, type View } from '../shell';
import type { Traced } from '../tracing';
import type { Token, User } from '../types';

function field(id: string, label: string, attrs: Record<string, string>): [HTMLDivElement, HTMLInputElement] {
  const input = el('input', { id, name: id, ...attrs });
  return [el('div', { class: 'field' }, el('label', { for: id }, label), input), input];
}

/** Where to go after logging in: `next` if it is one of our routes, else the catalog. */
function nextHash(query: URLSearchParams): string {
  const next = query.get('next');
  return next && /^\/(courses\/[^?#]+|my)$/.test(next) ? `#${next}` : catalogHash({});
}

/**
 * Logs in and stores the session: the login's trace id, or false (with the
 * outcome shown) if it failed.
 */
async function logIn(t: Traced, email: string, password: string, displayName?: string): Promise<string | null | false> {
  const token = await api<Token>('/api/sessions', { method: 'POST', body: { email, password }, scope: t.scope });
  if (token.kind !== 'ok') {
    report(t, token);
    return false;
  }
  let name = displayName;
  if (name === undefined) {
    const me = await api<User>('/api/me', { token: token.data.access_token, scope: t.scope });
    if (me.kind !== 'ok') {
      report(t, me);
      return false;
    }
    name = me.data.display_name;
  }
  saveSession({
    access_token: token.data.access_token,
    user_id: token.data.user_id,
    display_name: name,
    expires_at: new Date(Date.now() + Math.max(0, token.data.expires_in) * 1000).toISOString(),
  });
  return token.traceId;
}

export function signupView(v: View): void {
  const [emailField, email] = field('signup-email', 'Email', { type: 'email', autocomplete: 'email' });
  const [nameField, displayName] = field('signup-name', 'Display name', { type: 'text', autocomplete: 'nickname' });
  const [passwordField, password] = field('signup-password', 'Password', {
    type: 'password',
    autocomplete: 'new-password',
    'aria-describedby': 'signup-password-hint',
  });
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Sign up');
  const form = el(
    'form',
    { class: 'form', novalidate: true },
    emailField,
    nameField,
    passwordField,
    el('p', { id: 'signup-password-hint', class: 'hint' }, '8 to 128 characters.'),
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void runAction('submit Sign up', submit, async (t) => {
      const created = await api<User>('/api/users', {
        method: 'POST',
        body: { email: email.value, display_name: displayName.value, password: password.value },
        scope: t.scope,
      });
      if (created.kind !== 'ok') {
        report(t, created);
        return;
      }
      if ((await logIn(t, email.value, password.value, created.data.display_name)) === false) return;
      password.value = '';
      // The name is in the header; the sentence does not repeat it.
      outcome.success('Your account is ready and you are logged in.', { traceId: created.traceId });
      await navigate(catalogHash({}), { parent: t.context });
    });
  });
  replace(v.root, heading('Sign up'), form);
}

export function loginView(v: View): void {
  const [emailField, email] = field('login-email', 'Email', { type: 'email', autocomplete: 'username' });
  const [passwordField, password] = field('login-password', 'Password', {
    type: 'password',
    autocomplete: 'current-password',
  });
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = el('form', { class: 'form', novalidate: true }, emailField, passwordField, submit);
  const target = nextHash(v.query);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void runAction('submit Log in', submit, async (t) => {
      const traceId = await logIn(t, email.value, password.value);
      if (traceId === false) return;
      password.value = '';
      outcome.success('You are logged in.', { traceId });
      await navigate(target, { parent: t.context });
    });
  });
  replace(v.root, heading('Log in'), form);
}
