// The console's session (the admin token, per tab), its API calls and its
// actions. Every call carries `Authorization: Bearer <admin token>`; a 401
// forgets the token and asks for it again.

import { request, type ApiResult, type RequestOptions } from '../common/api';
import { Outcome } from '../common/outcome';

const TOKEN_KEY = 'learnsphere.console.token';

export const outcome = new Outcome();

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

let onUnauthorized: () => void = () => undefined;

export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

export function forgetToken(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored
  }
}

export async function capi<T>(path: string, options: RequestOptions = {}): Promise<ApiResult<T>> {
  const token = getToken();
  const result = await request<T>(path, { ...options, token });
  if (result.kind === 'error' && result.status === 401 && token !== null && getToken() === token) {
    forgetToken();
    outcome.problem(result);
    onUnauthorized();
  }
  return result;
}

const busy = new WeakSet<Element>();

/** Runs an operator's action: outcome cleared, trigger busy, a second click ignored. */
export async function action(trigger: HTMLElement, fn: () => Promise<void>): Promise<void> {
  if (busy.has(trigger)) return;
  busy.add(trigger);
  trigger.setAttribute('aria-busy', 'true');
  outcome.clear();
  try {
    await fn();
  } catch (error) {
    outcome.failure(`Something went wrong in this page: ${error instanceof Error && error.message ? error.message : 'unknown error'}`);
  } finally {
    busy.delete(trigger);
    trigger.removeAttribute('aria-busy');
  }
}

/** The `message` of an answer, when it has one. */
export function messageOf(data: unknown): string | null {
  if (typeof data === 'object' && data !== null && 'message' in data) {
    const m = (data as { message: unknown }).message;
    if (typeof m === 'string' && m.trim() !== '') return m;
  }
  return null;
}

/** A repeating refresh that waits for each round to finish; stop() ends it. */
export class Poller {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private stopped = true;

  constructor(
    private readonly everyMs: number,
    private readonly tick: () => Promise<boolean | void>,
  ) {}

  start(): void {
    this.stopped = false;
    void this.now();
  }

  /** Refreshes at once (after an action), then on the usual schedule. */
  async now(): Promise<void> {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    this.running = true;
    let again: boolean | void = true;
    try {
      again = await this.tick();
    } catch {
      again = true;
    } finally {
      this.running = false;
    }
    if (!this.stopped && again !== false) this.timer = setTimeout(() => void this.now(), this.everyMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

export interface Info {
  platform: string;
  gateway_url: string;
  grafana_url: string;
  jaeger_url: string;
  dashboards: { title: string; url: string }[];
  can_scale: boolean;
  can_kill: boolean;
}
