// The log-in form works from the keyboard alone: Tab reaches Email, then
// Password, then the Log in button, and Enter submits.
import { expect, newLearner, shot, signUpViaApi, test } from './fixtures';

test('log in with the keyboard only', async ({ page, request, system }) => {
  const learner = newLearner('keyboard');
  await signUpViaApi(request, system, learner);
  await page.goto(`${system.gatewayUrl}/#/login`);
  await expect(page.getByRole('heading', { level: 1, name: 'Log in' })).toBeVisible();
  await shot(page, 'log-in');

  const email = page.getByLabel('Email', { exact: true });
  const password = page.getByLabel('Password', { exact: true });
  const submit = page.getByRole('button', { name: 'Log in', exact: true });
  // From the top of the page, through the header's links, to the form.
  let tabs = 0;
  while (!(await email.evaluate((el) => el === document.activeElement))) {
    tabs += 1;
    expect(tabs, 'Tab presses to reach Email').toBeLessThanOrEqual(20);
    await page.keyboard.press('Tab');
  }
  await page.keyboard.type(learner.email);
  await page.keyboard.press('Tab');
  await expect(password).toBeFocused();
  await page.keyboard.type(learner.password);
  await page.keyboard.press('Tab');
  await expect(submit).toBeFocused();
  await page.keyboard.press('Enter');

  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible({ timeout: 20_000 });
  await expect(page.getByText(learner.displayName).first()).toBeVisible();
});
