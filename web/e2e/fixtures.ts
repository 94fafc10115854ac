// What every spec shares: the system under test (from e2e/system.ts), a
// guard that fails a test on any page error, CSP violation or console
// error it did not expect, and helpers for the steps several specs take
// (sign up, enter the admin token, read an API error, read a trace).
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  test as base,
  expect,
  type APIRequestContext,
  type APIResponse,
  type ConsoleMessage,
  type Locator,
  type Page,
} from '@playwright/test';
import type { SystemInfo } from './system';

export { expect };

function loadSystem(testDir: string): SystemInfo {
  const fromEnv = process.env.LEARNSPHERE_E2E_SYSTEM;
  if (fromEnv) return JSON.parse(fromEnv) as SystemInfo;
  const file = path.join(testDir, '..', 'test-output', 'system.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SystemInfo;
}

interface Fixtures {
  system: SystemInfo;
  /**
   * Console errors a test expects besides failed OTLP exports, e.g. the
   * browser's "Failed to load resource: ... status of 422" for a request
   * that is refused on purpose.
   */
  allowedConsoleErrors: RegExp[];
  consoleGuard: void;
}

/** Chromium's line for a response with an error status (4xx, 5xx). */
export const FAILED_RESOURCE = (status: number | string): RegExp =>
  new RegExp(`^Failed to load resource: the server responded with a status of ${status}\\b`);

export const test = base.extend<Fixtures>({
  system: async ({}, use, testInfo) => {
    await use(loadSystem(testInfo.project.testDir));
  },
  allowedConsoleErrors: [[], { option: true }],
  consoleGuard: [
    async ({ context, system, allowedConsoleErrors }, use, testInfo) => {
      const otlp = new URL(system.otlpTracesUrl);
      const problems: string[] = [];
      const isOtlpExport = (msg: ConsoleMessage): boolean => {
        const where = msg.location().url;
        return (
          where.startsWith(otlp.origin) ||
          msg.text().includes(otlp.origin) ||
          // OpenTelemetry's own diagnostics about a failed export.
          /OTLPExporter|export(ing)? (of )?spans? failed/i.test(msg.text())
        );
      };
      context.on('console', (msg) => {
        const text = msg.text();
        // Every CSP violation fails, whatever its level.
        if (/Content Security Policy/i.test(text)) {
          problems.push(`CSP violation: ${text}`);
          return;
        }
        if (msg.type() !== 'error') return;
        if (isOtlpExport(msg)) return;
        if (allowedConsoleErrors.some((re) => re.test(text))) return;
        problems.push(`console error on ${msg.page()?.url() ?? '?'}: ${text} (${msg.location().url})`);
      });
      context.on('weberror', (error) => {
        problems.push(`page error on ${error.page()?.url() ?? '?'}: ${error.error().stack ?? error.error().message}`);
      });
      await use();
      // Not when the test failed already: its own failure says more.
      if (testInfo.status === testInfo.expectedStatus) {
        expect(problems, 'page errors, CSP violations and unexpected console errors').toEqual([]);
      } else if (problems.length > 0) {
        await testInfo.attach('console problems', { body: problems.join('\n'), contentType: 'text/plain' });
      }
    },
    { auto: true },
  ],
});

/** A full-page screenshot into test-output/screenshots/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  const dir = path.join(test.info().project.testDir, '..', 'test-output', 'screenshots');
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

let counter = 0;
/** An email no other test (or earlier run on the same data) has used. */
export function uniqueEmail(tag: string): string {
  counter += 1;
  const random = Math.random().toString(36).slice(2, 8);
  return `e2e-${tag}-${Date.now()}-${counter}-${random}@example.com`;
}

export const PASSWORD = 'correct horse battery staple';

export interface Learner {
  email: string;
  displayName: string;
  password: string;
}

export function newLearner(tag: string): Learner {
  return { email: uniqueEmail(tag), displayName: `E2E ${tag}`, password: PASSWORD };
}

/** An account made through the API (for tests about something else). */
export async function signUpViaApi(request: APIRequestContext, system: SystemInfo, learner: Learner): Promise<void> {
  const response = await request.post(`${system.gatewayUrl}/api/users`, {
    data: { email: learner.email, display_name: learner.displayName, password: learner.password },
  });
  expect(response.status(), await response.text()).toBe(201);
}

/** Signs up through the learner app's form; ends signed in on the catalog. */
export async function signUpInUi(page: Page, system: SystemInfo, learner: Learner): Promise<void> {
  await page.goto(`${system.gatewayUrl}/#/signup`);
  await expect(page.getByRole('heading', { level: 1, name: 'Sign up' })).toBeVisible();
  await page.getByLabel('Email', { exact: true }).fill(learner.email);
  await page.getByLabel('Display name', { exact: true }).fill(learner.displayName);
  await page.getByLabel('Password', { exact: true }).fill(learner.password);
  await page.getByRole('button', { name: 'Sign up', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible({ timeout: 20_000 });
  await expect(page.getByRole('heading', { level: 1, name: 'Courses' })).toBeVisible();
}

export interface Session {
  access_token: string;
  user_id: string;
  display_name: string;
}

/** The learner app's session (sessionStorage `learnsphere.session`). */
export async function sessionOf(page: Page): Promise<Session> {
  const raw = await page.evaluate(() => sessionStorage.getItem('learnsphere.session'));
  expect(raw, 'sessionStorage learnsphere.session').toBeTruthy();
  return JSON.parse(raw ?? '{}') as Session;
}

/** Opens the console and enters the admin token. */
export async function openConsole(page: Page, system: SystemInfo, token = system.adminToken): Promise<void> {
  await page.goto(`${system.controlUrl}/console`);
  await expect(page.getByRole('heading', { level: 1, name: 'LearnSphere console' })).toBeVisible();
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Use token' }).click();
}

/** `Authorization` for the control API and the console's endpoints. */
export function admin(system: SystemInfo): Record<string, string> {
  return { authorization: `Bearer ${system.adminToken}` };
}

export interface ApiError {
  status: number;
  code: string;
  message: string;
}

/** The `{"error": {code, message}}` of a refused request. */
export async function apiError(response: APIResponse): Promise<ApiError> {
  const text = await response.text();
  expect(response.status(), `expected an error, got ${response.status()}: ${text}`).toBeGreaterThanOrEqual(400);
  const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
  expect(body.error?.code, text).toBeTruthy();
  expect(body.error?.message, text).toBeTruthy();
  return { status: response.status(), code: body.error?.code ?? '', message: body.error?.message ?? '' };
}

/**
 * The page shows `expected` (the API's own answer to the same input) in an
 * alert: its message and its code, and nothing a person should not see.
 */
export async function expectErrorShown(page: Page, expected: ApiError): Promise<Locator> {
  const alert = page.getByRole('alert').filter({ hasText: expected.code });
  await expect(alert, `an alert with ${expected.code}`).toHaveCount(1);
  await expect(alert).toContainText(expected.message);
  await expectReadable(alert);
  return alert;
}

/** Not blank, no stack trace, no `[object Object]`, no `undefined`. */
export async function expectReadable(element: Locator): Promise<void> {
  const text = (await element.innerText()).trim();
  expect(text.length, 'message text').toBeGreaterThan(0);
  expect(text).not.toContain('[object Object]');
  expect(text).not.toMatch(/\bundefined\b/);
  expect(text).not.toMatch(/\bNaN\b/);
  expect(text).not.toMatch(/^\s*(Type|Reference|Syntax)?Error:/m);
  expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
}

// ---- traces (the receiver's query API) ----

export type AttrValue = string | number | boolean | null | AttrValue[] | { [key: string]: AttrValue };

/** A span as the receiver serialises it (crates/otlp-sink/src/span.rs). */
export interface CapturedSpan {
  service_name: string;
  resource: Record<string, AttrValue>;
  scope_name: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: 'unspecified' | 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  attributes: Record<string, AttrValue>;
  status: { code: 'unset' | 'ok' | 'error'; message: string };
  start_unix_nano: number;
  end_unix_nano: number;
  events: { name: string; time_unix_nano: number; attributes: Record<string, AttrValue> }[];
  links: [string, string][];
  transport: 'grpc' | 'http_protobuf' | 'http_json';
}

export interface Trace {
  trace_id: string;
  spans: CapturedSpan[];
  logs: unknown[];
}

export async function fetchTrace(request: APIRequestContext, system: SystemInfo, traceId: string): Promise<Trace> {
  const response = await request.get(`${system.queryUrl}/api/traces/${traceId}`);
  if (response.status() === 404) return { trace_id: traceId, spans: [], logs: [] };
  expect(response.status()).toBe(200);
  return (await response.json()) as Trace;
}

/** Every string (and number, as text) in an attribute value, recursively. */
export function attrTexts(value: AttrValue): string[] {
  if (value === null) return [];
  if (Array.isArray(value)) return value.flatMap(attrTexts);
  if (typeof value === 'object') return Object.values(value).flatMap(attrTexts);
  return [String(value)];
}

export function describeSpans(spans: CapturedSpan[]): string {
  return spans
    .map((s) => `${s.service_name} ${s.kind} "${s.name}" ${s.span_id} <- ${s.parent_span_id ?? 'root'}`)
    .join('\n');
}
