// What every view of the learner app shares: the outcome region, API calls
// with the session's token, actions (a traced span per click or submit) and
// navigation.

import type { Context } from '@opentelemetry/api';
import { request, type ApiResult, type Problem, type RequestOptions } from '../common/api';
import { Outcome, type OutcomeOptions } from '../common/outcome';
import { clearSession, getSession } from './session';
import { traced, type Traced } from './tracing';

export const outcome = new Outcome();

export interface ApiOptions extends RequestOptions {
  /** Send the session's bearer token (when signed in). */
  auth?: boolean;
}

/** An API call; a 401 to a request that carried our token ends the session. */
export async function api<T>(path: string, options: ApiOptions = {}): Promise<ApiResult<T>> {
  const session = options.auth ? getSession() : null;
  const token = options.token ?? session?.access_token ?? null;
  const result = await request<T>(path, { ...options, token });
  if (session && token === session.access_token && result.kind === 'error' && result.status === 401) clearSession();
  return result;
}

/** Shows a failed call in the outcome region and marks the span failed. */
export function report(t: Traced | null, problem: Problem, options: OutcomeOptions = {}): void {
  outcome.problem(problem, options);
  t?.fail(problem.kind === 'error' ? problem.error.code : 'network error');
}

const busy = new WeakSet<Element>();

/**
 * Runs a user action in its own span (`click Buy this course`): the outcome
 * region is cleared first, the trigger is marked busy (and a second click
 * ignored) until the action is done.
 */
export async function runAction(name: string, trigger: HTMLElement | null, fn: (t: Traced) => Promise<void>): Promise<void> {
  if (trigger) {
    if (busy.has(trigger)) return;
    busy.add(trigger);
    trigger.setAttribute('aria-busy', 'true');
  }
  outcome.clear();
  try {
    await traced(name, async (t) => {
      try {
        await fn(t);
      } catch (error) {
        t.fail('unexpected error');
        outcome.failure(`Something went wrong in this page: ${error instanceof Error && error.message ? error.message : 'unknown error'}`);
      }
    });
  } finally {
    if (trigger) {
      busy.delete(trigger);
      trigger.removeAttribute('aria-busy');
    }
  }
}

export interface RenderOptions {
  /** The action that navigated: the page's load span becomes its child. */
  parent?: Context;
  /** Keep what the outcome region says (an action navigated after reporting). */
  keepOutcome?: boolean;
  focus?: boolean;
}

type Renderer = (options: RenderOptions) => Promise<void>;
let renderer: Renderer = () => Promise.resolve();

export function setRenderer(r: Renderer): void {
  renderer = r;
}

/**
 * Goes to `hash` (`#/courses/c0001`) and renders it; resolves once the page
 * has loaded, so an action's span covers the load it caused.
 */
export function navigate(hash: string, options: RenderOptions = {}): Promise<void> {
  if (location.hash !== hash) history.pushState(null, '', hash);
  return renderer({ keepOutcome: true, focus: true, ...options });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh idempotency key: crypto.randomUUID, or a v4 UUID by hand where it is missing. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Everything a view gets from the router. */
export interface View {
  root: HTMLElement;
  params: string[];
  query: URLSearchParams;
  parent?: Context;
  /** False once the user has gone to another page: stop updating this one. */
  alive(): boolean;
  onCleanup(fn: () => void): void;
}

/** Sets the page's h1 text and the document title. */
export function setHeading(h1: HTMLElement, text: string): void {
  h1.textContent = text;
  document.title = `${text} · LearnSphere`;
}

export function heading(text: string): HTMLHeadingElement {
  const h1 = document.createElement('h1');
  h1.tabIndex = -1;
  setHeading(h1, text);
  return h1;
}
