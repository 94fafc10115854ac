// Playwright's global setup: the system under test, started from the Rust
// build as a person would start it (docs/launcher.md), with a receiver of
// its own standing in for the OpenTelemetry Collector so the tests can
// read the traces their clicks made.
//
//   loadgen receive   OTLP/gRPC (services), OTLP/HTTP (the browser, with
//                     CORS), and the query API GET /api/traces/{id}
//   loadgen up        every service, --ports auto, a fresh data directory,
//                     the control API (and the console) on a free port
//
// What the tests need (URLs, the admin token) goes to the workers through
// environment variables (inherited from this process) and to
// test-output/system.json, which e2e/teardown.ts reads to stop both.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FullConfig } from '@playwright/test';

/** What the tests and the teardown read (test-output/system.json). */
export interface SystemInfo {
  gatewayUrl: string;
  controlUrl: string;
  adminToken: string;
  /** The receiver's query API: GET {queryUrl}/api/traces/{trace_id}. */
  queryUrl: string;
  /** What the learner app exports its spans to (WEB_OTLP_TRACES_URL). */
  otlpTracesUrl: string;
  dataDir: string;
  upPid: number;
  receivePid: number;
  logs: { up: string; receive: string };
}

const SERVICES = ['gateway', 'users', 'courses', 'payments', 'progress'];
const START_TIMEOUT_MS = 120_000;

/** web/ (the config file's directory). */
export function webDir(config: FullConfig): string {
  return config.configFile ? path.dirname(config.configFile) : process.cwd();
}

export function outputDir(web: string): string {
  return path.join(web, 'test-output');
}

export function stateFile(web: string): string {
  return path.join(outputDir(web), 'system.json');
}

/** A free loopback port: the OS picks it, we close it and hand it on. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function get(url: string): Promise<number | string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * For a failure message: the log's error lines (a backtrace can bury them),
 * then its last `lines` lines.
 */
export function tail(file: string, lines = 40): string {
  let text: string[];
  try {
    text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  } catch (e) {
    return `(cannot read ${file}: ${e instanceof Error ? e.message : String(e)})`;
  }
  const errors = text.filter((line) => /\berror\b|panicked/i.test(line)).slice(0, 10);
  const last = text.slice(-lines);
  return errors.length > 0 && text.length > lines
    ? `${errors.join('\n')}\n...\n${last.join('\n')}`
    : last.join('\n');
}

function start(
  bin: string,
  args: string[],
  log: string,
  env: NodeJS.ProcessEnv,
): ChildProcess {
  const fd = fs.openSync(log, 'w');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], env });
  fs.closeSync(fd);
  // The runner must not wait on them: the teardown stops them by pid.
  child.unref();
  return child;
}

/** Whether `pid` still runs (a zombie, exited but not yet reaped, does not). */
export function running(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ...", comm may hold spaces.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/**
 * Sends `signal`, waits up to `graceMs` for the process to exit, then
 * SIGKILL. Returns whether it exited within the grace period.
 */
export async function stopProcess(pid: number, signal: NodeJS.Signals, graceMs: number): Promise<boolean> {
  if (!running(pid)) return true;
  try {
    process.kill(pid, signal);
  } catch {
    return true;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!running(pid)) return true;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  return false;
}

/** Resolves once `ready()` is true; throws if `child` exits or time runs out. */
async function waitFor(
  what: string,
  child: ChildProcess,
  ready: () => Promise<boolean>,
  lastState: () => string,
  timeoutMs = START_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})`);
    }
    if (await ready()) return;
    await sleep(250);
  }
  throw new Error(`${what}: not ready after ${timeoutMs / 1000} s (${lastState()})`);
}

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

function readTargets(file: string): TargetGroup[] {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(parsed) ? (parsed as TargetGroup[]) : [];
  } catch {
    return [];
  }
}

export default async function globalSetup(config: FullConfig): Promise<void> {
  const web = webDir(config);
  const repo = path.resolve(web, '..');
  const out = outputDir(web);
  const bin = process.env.LOADGEN_BIN || path.join(repo, 'target', 'debug', 'loadgen');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} does not exist: run \`cargo build -p loadgen\` first (or set LOADGEN_BIN)`);
  }
  fs.mkdirSync(path.join(out, 'system'), { recursive: true });
  // Screenshots are this run's only.
  fs.rmSync(path.join(out, 'screenshots'), { recursive: true, force: true });
  fs.mkdirSync(path.join(out, 'screenshots'), { recursive: true });
  fs.rmSync(stateFile(web), { force: true });

  const [grpc, http, query, control] = await distinctFreePorts(4);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'learnsphere-e2e-'));
  const logs = {
    receive: path.join(out, 'system', 'receive.log'),
    up: path.join(out, 'system', 'up.log'),
  };
  // A failure prints these: never the lines of an earlier run.
  for (const log of Object.values(logs)) fs.rmSync(log, { force: true });
  const queryUrl = `http://127.0.0.1:${query}`;
  const controlUrl = `http://127.0.0.1:${control}`;
  const otlpTracesUrl = `http://127.0.0.1:${http}/v1/traces`;

  const started: ChildProcess[] = [];
  try {
    const receive = start(
      bin,
      [
        'receive',
        '--grpc', `127.0.0.1:${grpc}`,
        '--http', `127.0.0.1:${http}`,
        '--query', `127.0.0.1:${query}`,
        '--print-logs', 'off',
      ],
      logs.receive,
      { ...process.env, RUST_LOG: 'warn' },
    );
    started.push(receive);
    let receiveState = 'not asked yet';
    await waitFor(
      'loadgen receive',
      receive,
      async () => {
        const status = await get(`${queryUrl}/api/stats`);
        receiveState = `GET /api/stats: ${status}`;
        return status === 200;
      },
      () => receiveState,
      30_000,
    );

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${grpc}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      WEB_OTLP_TRACES_URL: otlpTracesUrl,
      RUST_LOG: 'warn',
      // The simulated card processor declines 2 % of charges by default: the
      // learner's one purchase must not fail by chance.
      PROVIDER_DECLINE_RATE: '0',
    };
    // Whatever the caller's shell says, the system gets its own token.
    delete env.ADMIN_TOKEN;
    const up = start(
      bin,
      ['up', '--ports', 'auto', '--data-dir', dataDir, '--control-addr', `127.0.0.1:${control}`],
      logs.up,
      env,
    );
    started.push(up);

    const targetsFile = path.join(dataDir, 'targets.json');
    let gatewayUrl = '';
    let upState = 'no targets.json yet';
    await waitFor(
      'loadgen up',
      up,
      async () => {
        const groups = readTargets(targetsFile);
        const listed = new Set(groups.map((g) => g.labels.service));
        const missing = SERVICES.filter((s) => !listed.has(s));
        if (missing.length > 0) {
          upState = `targets.json lacks ${missing.join(', ')}`;
          return false;
        }
        const gateway = groups.find((g) => g.labels.service === 'gateway' && g.labels.replica === '0');
        const target = gateway?.targets[0];
        if (!target) {
          upState = 'targets.json has no gateway replica 0';
          return false;
        }
        gatewayUrl = `http://${target}`;
        const status = await get(`${gatewayUrl}/readyz`);
        upState = `gateway ${gatewayUrl}/readyz: ${status}`;
        return status === 200;
      },
      () => upState,
    );
    const adminToken = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    if (!adminToken) throw new Error(`${dataDir}/admin-token is empty`);
    // The console is on the control API's listener: it must answer too.
    let controlState = 'not asked yet';
    await waitFor(
      'the control API',
      up,
      async () => {
        const status = await get(`${controlUrl}/metrics`);
        controlState = `GET /metrics: ${status}`;
        return status === 200;
      },
      () => controlState,
      30_000,
    );

    const info: SystemInfo = {
      gatewayUrl,
      controlUrl,
      adminToken,
      queryUrl,
      otlpTracesUrl,
      dataDir,
      upPid: up.pid ?? 0,
      receivePid: receive.pid ?? 0,
      logs,
    };
    fs.writeFileSync(stateFile(web), JSON.stringify(info, null, 2), { mode: 0o600 });
    process.env.LEARNSPHERE_E2E_SYSTEM = JSON.stringify(info);
    console.log(`system under test: gateway ${gatewayUrl}, console ${controlUrl}/console, receiver ${queryUrl}`);
  } catch (e) {
    // `up` first (SIGINT: it stops its replicas and its nats-server).
    for (const child of started.reverse()) {
      if (child.pid) await stopProcess(child.pid, 'SIGINT', 20_000);
    }
    console.error(`--- ${logs.receive} (last lines) ---\n${tail(logs.receive)}`);
    console.error(`--- ${logs.up} (last lines) ---\n${tail(logs.up)}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
}
