// An operator runs the `steady` scenario from the console, at a tenth of
// its duration: live progress while it runs, a verdict at the end, the
// run's report one click away; a second start while it runs is refused.
import {
  FAILED_RESOURCE,
  admin,
  apiError,
  expect,
  expectErrorShown,
  openConsole,
  shot,
  test,
} from './fixtures';

interface Run {
  id: string;
  scenario: string;
  state: 'running' | 'passed' | 'failed' | 'error' | 'stopped';
  progress: { phase: string; elapsed_seconds: number } | null;
  verdict: { passed: boolean } | null;
  report_url: string | null;
}

// The refused second start is logged by the browser as a failed resource.
test.use({ allowedConsoleErrors: [FAILED_RESOURCE(409)] });

test.afterEach(async ({ request, system }) => {
  // A run left going would load the system under the tests after this one.
  const runs = await request.get(`${system.controlUrl}/console/api/runs`, { headers: admin(system) });
  if (!runs.ok()) return;
  for (const run of ((await runs.json()) as { runs: Run[] }).runs) {
    if (run.state === 'running') {
      await request.delete(`${system.controlUrl}/console/api/runs/${run.id}`, { headers: admin(system) });
    }
  }
});

test('the steady scenario runs from the console to a verdict and a report', async ({ page, request, system }) => {
  test.setTimeout(150_000);
  await openConsole(page, system);
  await expect(page.getByRole('heading', { level: 2, name: 'Scenarios' })).toBeVisible();
  await page.getByLabel('Scenario', { exact: true }).selectOption('steady');
  await expect(page.getByLabel('Duration scale')).toHaveValue('0.1');
  await page.getByLabel('Duration scale').fill('0.1');
  await page.getByRole('button', { name: 'Start scenario' }).click();

  const panel = page.getByRole('region', { name: 'Scenario run' });
  const stop = page.getByRole('button', { name: 'Stop scenario' });
  await expect(stop).toBeVisible();

  // Only one run at a time: the API says 409, and so does the page if it
  // still offers to start one.
  const again = await request.post(`${system.controlUrl}/console/api/runs`, {
    headers: admin(system),
    data: { scenario: 'steady', duration_scale: 0.1 },
  });
  const refused = await apiError(again);
  expect(refused).toMatchObject({ status: 409, code: 'run_in_progress' });
  const start = page.getByRole('button', { name: 'Start scenario' });
  if ((await start.isVisible()) && (await start.isEnabled())) {
    await start.click();
    await expectErrorShown(page, refused);
  }
  const during = (await (
    await request.get(`${system.controlUrl}/console/api/runs`, { headers: admin(system) })
  ).json()) as { runs: Run[] };
  expect(during.runs.filter((r) => r.state === 'running'), 'runs going at once').toHaveLength(1);

  // Live progress: the run's phase, as the API has it, on the panel while it runs.
  await expect(async () => {
    const runs = (await (
      await request.get(`${system.controlUrl}/console/api/runs`, { headers: admin(system) })
    ).json()) as { runs: Run[] };
    const run = runs.runs[0];
    expect(run?.state).toBe('running');
    expect(run?.progress, 'progress of the running run').toBeTruthy();
    await expect(stop).toBeVisible({ timeout: 100 });
    await expect(panel).toContainText(/elapsed\D*\d/i, { timeout: 100 });
    await expect(panel).toContainText(/rate\D*\d/i, { timeout: 100 });
    if (run?.progress?.phase) await expect(panel).toContainText(run.progress.phase, { timeout: 100 });
  }).toPass({ timeout: 60_000, intervals: [250] });

  const verdict = panel.getByText(/Verdict: (passed|failed)/);
  await expect(verdict).toBeVisible({ timeout: 90_000 });
  await expect(stop).toBeHidden();
  const runs = (await (
    await request.get(`${system.controlUrl}/console/api/runs`, { headers: admin(system) })
  ).json()) as { runs: Run[] };
  const run = runs.runs[0];
  expect(run?.scenario).toBe('steady');
  expect(['passed', 'failed']).toContain(run?.state);
  // The page says what the API says.
  await expect(verdict).toContainText(`Verdict: ${run?.state ?? '?'}`);
  await shot(page, 'console-scenario-verdict');

  const report = page.getByRole('link', { name: 'Open report' }).first();
  await expect(report).toBeVisible();
  const href = (await report.getAttribute('href')) ?? '';
  expect(href).toBe(run?.report_url);
  const answer = await request.get(new URL(href, `${system.controlUrl}/console`).toString());
  expect(answer.status()).toBe(200);
  expect(answer.headers()['content-type']).toMatch(/^text\/html/);
  expect(await answer.text()).toContain('steady');
});
