// Playwright's global teardown: stops what e2e/system.ts started, as a
// person would (Ctrl-C: `up` stops its replicas gracefully, dependents
// first), with SIGKILL after 20 s; then the receiver and the data
// directory. KEEP_E2E_DATA=1 keeps the data directory to look at.
import * as fs from 'node:fs';
import type { FullConfig } from '@playwright/test';
import { stateFile, stopProcess, tail, webDir, type SystemInfo } from './system';

export default async function globalTeardown(config: FullConfig): Promise<void> {
  const file = stateFile(webDir(config));
  if (!fs.existsSync(file)) return; // setup failed and cleaned up after itself
  const info = JSON.parse(fs.readFileSync(file, 'utf8')) as SystemInfo;
  const graceful = await stopProcess(info.upPid, 'SIGINT', 20_000);
  await stopProcess(info.receivePid, 'SIGINT', 5_000);
  if (!graceful) {
    console.error(`loadgen up did not stop within 20 s of SIGINT and was killed; last lines of ${info.logs.up}:`);
    console.error(tail(info.logs.up));
  }
  if (process.env.KEEP_E2E_DATA !== '1') {
    fs.rmSync(info.dataDir, { recursive: true, force: true });
  }
  fs.rmSync(file, { force: true });
}
