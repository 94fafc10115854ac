// Real-browser tests of the learner app and the operator console
// (web/e2e). Playwright's own browser builds cannot be downloaded here,
// so the tests drive Debian's chromium (CHROMIUM_PATH overrides); never
// run `npx playwright install`. e2e/system.ts starts the system under
// test from the Rust build (target/debug/loadgen, LOADGEN_BIN overrides)
// before the first test and stops it after the last.
import { defineConfig, devices } from '@playwright/test';

export default defineConfig({
  testDir: './e2e',
  testMatch: '*.spec.ts',
  globalSetup: './e2e/system.ts',
  globalTeardown: './e2e/teardown.ts',
  // One worker: the tests share one system on a two-core machine, and a
  // fault injected by one must not surprise another.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // The whole suite takes under 3 minutes; this only stops a hung one.
  globalTimeout: 10 * 60_000,
  reporter: 'list',
  outputDir: 'test-output/results',
  use: {
    screenshot: 'only-on-failure',
    trace: 'off',
    video: 'off',
    actionTimeout: 15_000,
    navigationTimeout: 20_000,
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        headless: true,
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
          args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
        },
      },
    },
  ],
});
