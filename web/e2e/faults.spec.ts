// An operator breaks progress from the console for six seconds: the
// learner's course page says progress is unavailable instead of failing,
// the fault removes itself on time, and the page is whole again.
import {
  admin,
  expect,
  newLearner,
  openConsole,
  shot,
  signUpInUi,
  test,
} from './fixtures';

const COURSE = 'c0001';
const PROGRESS_ROUTE = '/users/{user_id}/courses/{course_id}/progress';
const EXPIRES_S = 6;

interface FaultsBody {
  services: {
    service: string;
    replicas: { replica: string; faults: { id: string; route?: string; method?: string; error?: { rate: number; status: number }; expires_at?: string }[]; error: string | null }[];
  }[];
}

test.afterEach(async ({ request, system }) => {
  // Whatever happened, leave progress without faults for the next test.
  await request.delete(`${system.controlUrl}/console/api/faults/progress`, { headers: admin(system) });
});

test('a fault injected from the console degrades the course page until it expires', async ({
  page,
  context,
  request,
  system,
}) => {
  // Signed in: the course page asks progress only for a learner.
  await signUpInUi(page, system, newLearner('faults'));
  await page.goto(`${system.gatewayUrl}/#/courses/${COURSE}`);
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Progress is unavailable' })).toHaveCount(0);

  const ops = await context.newPage();
  await openConsole(ops, system);
  await expect(ops.getByRole('heading', { level: 2, name: 'Services' })).toBeVisible();
  await expect(ops.getByRole('table', { name: 'Services and replicas' })).toContainText('progress');
  await expect(ops.getByRole('heading', { level: 2, name: 'Faults' })).toBeVisible();
  await shot(ops, 'console-services');

  await ops.getByLabel('Service', { exact: true }).selectOption('progress');
  await ops.getByLabel('Route', { exact: true }).fill(PROGRESS_ROUTE);
  await ops.getByLabel('Method', { exact: true }).selectOption('GET');
  await ops.getByLabel('Error rate (%)').fill('100');
  await ops.getByLabel('Error status').fill('503');
  await ops.getByLabel('Expires in').fill(`${EXPIRES_S}s`);
  const injected = ops.waitForResponse(
    (r) => new URL(r.url()).pathname === '/console/api/faults/progress' && r.request().method() === 'POST',
  );
  const injectedAt = Date.now();
  await ops.getByRole('button', { name: 'Inject fault' }).click();
  const answer = await injected;
  expect(answer.status()).toBe(201);
  const body = (await answer.json()) as { message: string; injected: unknown[]; failed: unknown[] };
  expect(body.injected).toHaveLength(1);
  expect(body.failed).toEqual([]);
  // The console says what the API did, in its words.
  expect(body.message).toMatch(/progress/);
  await expect(ops.locator('#outcome')).toContainText(body.message);
  const clearButtons = ops.getByRole('button', { name: /^Clear fault \S+ on progress(-\d+)?$/ });
  await expect(clearButtons).toHaveCount(1);
  await expect(ops.getByRole('button', { name: 'Clear all faults on progress' })).toBeVisible();

  // What the console sent, as progress holds it: 100 % -> rate 1.
  const listed = (await (
    await request.get(`${system.controlUrl}/console/api/faults`, { headers: admin(system) })
  ).json()) as FaultsBody;
  const faults = listed.services.find((s) => s.service === 'progress')?.replicas.flatMap((r) => r.faults) ?? [];
  expect(faults).toHaveLength(1);
  expect(faults[0]).toMatchObject({ route: PROGRESS_ROUTE, method: 'GET', error: { rate: 1, status: 503 } });
  const expiresAt = Date.parse(faults[0]?.expires_at ?? '');
  expect(expiresAt - injectedAt).toBeGreaterThan((EXPIRES_S - 1) * 1000);
  expect(expiresAt - injectedAt).toBeLessThan((EXPIRES_S + 2) * 1000);
  await shot(ops, 'console-faults');

  // The learner's course page, while it lasts.
  await page.reload();
  const degraded = page
    .getByRole('status')
    .filter({ has: page.getByRole('heading', { level: 2, name: 'Progress is unavailable' }) });
  await expect(degraded).toBeVisible();
  await expect(degraded).toContainText(/try again later/i);
  await expect(page.getByRole('heading', { level: 1 })).not.toBeEmpty();
  await expect(page.getByRole('heading', { level: 2, name: 'Lessons' })).toBeVisible();
  await shot(page, 'course-degraded');

  // It removes itself after 6 s; the console's list (refreshed every 2 s) follows.
  await expect(clearButtons).toHaveCount(0, { timeout: Math.max(1_000, EXPIRES_S * 1000 + 3_000 - (Date.now() - injectedAt)) });
  const goneAfter = Date.now() - injectedAt;
  expect(goneAfter, 'the fault was gone from the console after (ms)').toBeGreaterThanOrEqual(EXPIRES_S * 1000 - 500);
  expect(goneAfter).toBeLessThanOrEqual(EXPIRES_S * 1000 + 3_500);

  await page.reload();
  await expect(page.getByRole('heading', { level: 2, name: 'Lessons' })).toBeVisible();
  await expect(page.getByRole('button', { name: /^(Buy this course|Enroll for free)$/ })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Progress is unavailable' })).toHaveCount(0);
});
