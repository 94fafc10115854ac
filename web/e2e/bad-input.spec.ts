// Every form, given input the API refuses, shows the API's own answer (its
// message and code) and changes nothing. Each expected answer is the
// API's reply to the same input, asked directly, so the test follows the
// API's wording instead of copying it.
import {
  FAILED_RESOURCE,
  PASSWORD,
  admin,
  apiError,
  expect,
  expectErrorShown,
  newLearner,
  openConsole,
  shot,
  signUpViaApi,
  test,
  type ApiError,
} from './fixtures';
import type { APIRequestContext, Page } from '@playwright/test';
import type { SystemInfo } from './system';

// Refused requests are logged by the browser as failed resources.
test.use({ allowedConsoleErrors: [FAILED_RESOURCE('4\\d\\d')] });

const LONG = 'x'.repeat(65);

async function refusedSignUp(
  request: APIRequestContext,
  system: SystemInfo,
  body: { email: string; display_name: string; password: string },
): Promise<ApiError> {
  return apiError(await request.post(`${system.gatewayUrl}/api/users`, { data: body }));
}

async function fillSignUp(page: Page, system: SystemInfo, body: { email: string; display_name: string; password: string }) {
  // A fresh document, so no message of the case before is still shown.
  await page.goto('about:blank');
  await page.goto(`${system.gatewayUrl}/#/signup`);
  await expect(page.getByRole('heading', { level: 1, name: 'Sign up' })).toBeVisible();
  await page.getByLabel('Email', { exact: true }).fill(body.email);
  await page.getByLabel('Display name', { exact: true }).fill(body.display_name);
  await page.getByLabel('Password', { exact: true }).fill(body.password);
  await page.getByRole('button', { name: 'Sign up', exact: true }).click();
}

async function expectSignedOut(page: Page, heading: string): Promise<void> {
  await expect(page.getByRole('heading', { level: 1, name: heading })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
  expect(await page.evaluate(() => sessionStorage.getItem('learnsphere.session'))).toBeNull();
}

test.describe('learner app', () => {
  test('sign-up with a bad email, a short password, a taken email', async ({ page, request, system }) => {
    const cases = [
      { email: 'not-an-email', display_name: 'E2E bad email', password: PASSWORD },
      { email: newLearner('short').email, display_name: 'E2E short password', password: 'short' },
    ];
    for (const body of cases) {
      const expected = await refusedSignUp(request, system, body);
      expect(expected.status).toBe(422);
      await fillSignUp(page, system, body);
      await expectErrorShown(page, expected);
      await expectSignedOut(page, 'Sign up');
    }
    await shot(page, 'sign-up-error');

    const taken = newLearner('taken');
    await signUpViaApi(request, system, taken);
    const body = { email: taken.email, display_name: 'E2E someone else', password: PASSWORD };
    const expected = await refusedSignUp(request, system, body);
    expect(expected).toMatchObject({ status: 409, code: 'email_taken' });
    await fillSignUp(page, system, body);
    await expectErrorShown(page, expected);
    await expectSignedOut(page, 'Sign up');
  });

  test('log-in with a wrong password', async ({ page, request, system }) => {
    const learner = newLearner('wrong-password');
    await signUpViaApi(request, system, learner);
    const body = { email: learner.email, password: 'not the password at all' };
    const expected = await apiError(await request.post(`${system.gatewayUrl}/api/sessions`, { data: body }));
    expect(expected).toMatchObject({ status: 401, code: 'invalid_credentials' });

    await page.goto(`${system.gatewayUrl}/#/login`);
    await page.getByLabel('Email', { exact: true }).fill(body.email);
    await page.getByLabel('Password', { exact: true }).fill(body.password);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await expectErrorShown(page, expected);
    await expectSignedOut(page, 'Log in');
  });

  test('catalog with a tag or a search over 64 characters', async ({ page, request, system }) => {
    for (const [label, param] of [
      ['Tag', 'tag'],
      ['Search', 'q'],
    ] as const) {
      const expected = await apiError(
        await request.get(`${system.gatewayUrl}/api/courses?page=1&per_page=12&${param}=${LONG}`),
      );
      expect(expected.status).toBe(422);
      await page.goto('about:blank');
      await page.goto(`${system.gatewayUrl}/`);
      await expect(page.getByRole('heading', { level: 1, name: 'Courses' })).toBeVisible();
      await page.getByLabel(label, { exact: true }).fill(LONG);
      await page.getByRole('button', { name: 'Apply' }).click();
      await expectErrorShown(page, expected);
    }
    await shot(page, 'catalog-error');
  });
});

test.describe('console', () => {
  test('a wrong admin token', async ({ page, request, system }) => {
    const expected = await apiError(
      await request.get(`${system.controlUrl}/services`, { headers: { authorization: 'Bearer wrong-token' } }),
    );
    expect(expected).toMatchObject({ status: 401, code: 'unauthorized' });
    await openConsole(page, system, 'wrong-token');
    await expectErrorShown(page, expected);
    // The form is back, the token forgotten; the right one then works.
    await expect(page.getByLabel('Admin token')).toBeVisible();
    expect(await page.evaluate(() => sessionStorage.getItem('learnsphere.console.token'))).toBeNull();
    await expect(page.getByRole('heading', { level: 2, name: 'Services' })).toBeHidden();
    await shot(page, 'console-token');
    await page.getByLabel('Admin token').fill(system.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await expect(page.getByRole('table', { name: 'Services and replicas' })).toContainText('progress');
  });

  test('a fault with an error rate of 150 %', async ({ page, request, system }) => {
    const expected = await apiError(
      await request.post(`${system.controlUrl}/console/api/faults/progress`, {
        headers: admin(system),
        data: { error: { rate: 1.5, status: 503 }, expires_in: '60s' },
      }),
    );
    expect(expected.status).toBe(422);
    await openConsole(page, system);
    await page.getByLabel('Service', { exact: true }).selectOption('progress');
    await page.getByLabel('Error rate (%)').fill('150');
    await page.getByRole('button', { name: 'Inject fault' }).click();
    await expectErrorShown(page, expected);
    // Nothing injected anywhere.
    const faults = (await (
      await request.get(`${system.controlUrl}/console/api/faults`, { headers: admin(system) })
    ).json()) as { services: { replicas: { faults: unknown[] }[] }[] };
    expect(faults.services.flatMap((s) => s.replicas.flatMap((r) => r.faults))).toEqual([]);
    await expect(page.getByRole('button', { name: /^Clear fault / })).toHaveCount(0);
  });

  test('scaling to 0 or 17 replicas', async ({ page, request, system }) => {
    await openConsole(page, system);
    const replicas = page.getByLabel('Replicas of progress');
    for (const n of [0, 17]) {
      const expected = await apiError(
        await request.post(`${system.controlUrl}/services/progress/scale`, {
          headers: admin(system),
          data: { replicas: n },
        }),
      );
      expect(expected).toMatchObject({ status: 422, code: 'invalid_replicas' });
      await replicas.fill(String(n));
      await page.getByRole('button', { name: 'Scale progress' }).click();
      await expectErrorShown(page, expected);
    }
    const progress = (await (
      await request.get(`${system.controlUrl}/services/progress`, { headers: admin(system) })
    ).json()) as { desired: number; replicas: unknown[] };
    expect(progress.desired).toBe(1);
    expect(progress.replicas).toHaveLength(1);
  });
});
