// The one way the pages talk to the API: same-origin fetch, JSON in and out,
// and every answer turned into a result the page can show (never a throw).

/** Runs `fn` inside some context (the app: an OpenTelemetry action span). */
export type Scope = <T>(fn: () => T) => T;

export interface ApiError {
  code: string;
  message: string;
}

export interface Ok<T> {
  kind: 'ok';
  status: number;
  data: T;
  traceId: string | null;
  headers: Headers;
}

export interface Failed {
  kind: 'error';
  status: number;
  error: ApiError;
  traceId: string | null;
  /** Seconds, from `Retry-After`, when the answer had one. */
  retryAfter: number | null;
  /** The decoded body, for extra fields (`reason`, `payment_id`). */
  body: unknown;
}

export interface NetworkFailure {
  kind: 'network';
  reason: string;
}

export type ApiResult<T> = Ok<T> | Failed | NetworkFailure;
export type Problem = Failed | NetworkFailure;

export interface RequestOptions {
  method?: string;
  /** JSON-encoded, with `Content-Type: application/json`, when defined. */
  body?: unknown;
  token?: string | null;
  headers?: Record<string, string>;
  scope?: Scope;
}

/** Trace id from a W3C `traceresponse` header (`00-<trace>-<span>-<flags>`). */
export function parseTraceResponse(value: string | null): string | null {
  const m = value ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(value.trim()) : null;
  if (!m || /^0+$/.test(m[1]!)) return null;
  return m[1]!;
}

function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(1, Math.ceil((date - Date.now()) / 1000));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorOf(body: unknown): ApiError | null {
  if (!isRecord(body) || !isRecord(body.error)) return null;
  const { code, message } = body.error;
  if (typeof code !== 'string' || code === '') return null;
  return { code, message: typeof message === 'string' && message.trim() !== '' ? message : code };
}

export function reasonOf(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  if (typeof error === 'string' && error) return error;
  return 'the request failed';
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const init: RequestInit = { method: options.method ?? 'GET', headers, cache: 'no-store' };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  let response: Response;
  let text: string;
  try {
    // `fetch` is looked up at call time: the app's fetch instrumentation
    // patches the global after this module loads.
    const call = (): Promise<Response> => fetch(path, init);
    response = await (options.scope ? options.scope(call) : call());
    text = await response.text();
  } catch (error) {
    return { kind: 'network', reason: reasonOf(error) };
  }
  const traceId = parseTraceResponse(response.headers.get('traceresponse'));
  let body: unknown = undefined;
  if (text !== '') {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = undefined;
    }
  }
  if (response.ok && (body !== undefined || text === '')) {
    return { kind: 'ok', status: response.status, data: body as T, traceId, headers: response.headers };
  }
  const status = response.status;
  const error: ApiError = errorOf(body) ?? {
    code: response.ok ? 'invalid_response' : `http_${status}`,
    message: response.ok
      ? `LearnSphere answered ${status} with a body that is not JSON`
      : `LearnSphere answered ${status}${response.statusText ? ` ${response.statusText}` : ''}`,
  };
  return {
    kind: 'error',
    status,
    error,
    traceId,
    retryAfter: parseRetryAfter(response.headers.get('retry-after')),
    body,
  };
}

/** The sentence shown for a failed request: never blank, never a stack trace. */
export function describeProblem(problem: Problem): string {
  if (problem.kind === 'network') return `Could not reach LearnSphere: ${problem.reason}`;
  const { code, message } = problem.error;
  let text = `${message} (${code})`;
  if (problem.status === 429 || (problem.retryAfter !== null && problem.status >= 400)) {
    text += problem.retryAfter !== null ? `: try again in ${problem.retryAfter} s` : ': try again in a moment';
  }
  return text;
}
