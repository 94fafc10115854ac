// The learner's story in a real browser: sign up, buy a paid course, wait
// for the payment to be confirmed, study a lesson; and the purchase's
// trace, from the click in the browser through the gateway to payments,
// with nothing personal in it.
import {
  admin,
  attrTexts,
  describeSpans,
  expect,
  fetchTrace,
  newLearner,
  sessionOf,
  shot,
  signUpInUi,
  test,
  type CapturedSpan,
} from './fixtures';

interface Course {
  id: string;
  title: string;
  price_cents: number;
  currency: string;
  lesson_count: number;
  lessons?: { id: string; title: string; position: number }[];
}

test('a learner signs up, buys a course, completes a lesson; the click is traced end to end', async ({
  page,
  request,
  system,
}) => {
  const learner = newLearner('learner');

  await page.goto(`${system.gatewayUrl}/`);
  await expect(page.getByRole('heading', { level: 1, name: 'Courses' })).toBeVisible();
  // The first page of the catalog as the app asks for it: a paid course on it.
  const catalog = await request.get(`${system.gatewayUrl}/api/courses?page=1&per_page=12`);
  expect(catalog.status()).toBe(200);
  const items = ((await catalog.json()) as { items: Course[] }).items;
  const course = items.find((c) => c.price_cents > 0 && items.filter((o) => o.title === c.title).length === 1);
  expect(course, 'a paid course on the first page of the catalog').toBeTruthy();
  if (!course) return;
  const price = `$${(course.price_cents / 100).toFixed(2)}`;
  await expect(page.getByRole('link', { name: course.title, exact: true })).toBeVisible();
  await shot(page, 'catalog');

  await page.getByRole('link', { name: 'Sign up', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Sign up' })).toBeVisible();
  await shot(page, 'sign-up');
  await signUpInUi(page, system, learner);
  await expect(page.getByText(learner.displayName).first()).toBeVisible();
  const session = await sessionOf(page);
  expect(session.access_token).toMatch(/^eyJ/);

  // The course page, from its link in the catalog.
  await page.getByRole('link', { name: course.title, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: course.title })).toBeVisible();
  await expect(page.getByRole('heading', { level: 2, name: 'Lessons' })).toBeVisible();
  if (course.currency === 'USD') await expect(page.getByText(price).first()).toBeVisible();
  const buy = page.getByRole('button', { name: 'Buy this course' });
  let traceId = '';
  const myStatus = () => page.getByRole('listitem').filter({ hasText: course.title }).locator('.status');
  await expect(buy).toBeVisible();
  await shot(page, 'course');

  // The event bus taken away (the launcher's NATS proxy scaled to 0, as
  // the broker-outage scenario does): payments captures the charge and
  // keeps its event in its outbox, so the enrollment stays pending until
  // the bus is back. On one machine the event is otherwise processed
  // before the page could ever show "pending".
  const broker = async (replicas: number) => {
    const res = await request.post(`${system.controlUrl}/services/nats/scale`, {
      headers: { ...admin(system), 'content-type': 'application/json' },
      data: { replicas },
    });
    expect(res.status(), `scale nats to ${replicas}: ${await res.text()}`).toBe(200);
  };
  await broker(0);
  let brokerDown = true;
  try {
    const checkout = page.waitForResponse(
      (r) => new URL(r.url()).pathname === '/api/checkout' && r.request().method() === 'POST',
    );
    await buy.click();
    const answer = await checkout;
    expect(answer.status()).toBe(201);
    const sent = answer.request().headers();
    expect(sent['idempotency-key']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // The browser started the trace: its traceparent, continued by the gateway.
    traceId = /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(sent['traceparent'] ?? '')?.[1] ?? '';
    expect(traceId, `traceparent ${sent['traceparent']}`).toMatch(/^[0-9a-f]{32}$/);
    expect(answer.headers()['traceresponse']).toContain(`00-${traceId}-`);
    const enrollment = ((await answer.json()) as { enrollment: { status: string } }).enrollment.status;
    expect(enrollment).toBe('pending');
    const outcome = page.locator('#outcome');
    await expect(outcome).toContainText(`Purchased ${course.title}: enrollment pending`);
    const traceLink = outcome.getByRole('link', { name: /^Open trace [0-9a-f]{32} in Jaeger$/ });
    await expect(traceLink).toBeVisible();
    const jaeger = await page.locator('meta[name="learnsphere-jaeger-url"]').getAttribute('content');
    expect(jaeger, 'the learnsphere-jaeger-url meta').toMatch(/^https?:\/\//);
    await expect(traceLink).toHaveAttribute('href', `${jaeger?.replace(/\/+$/, '')}/trace/${traceId}`);
    await expect(traceLink).toHaveText(`Trace ${traceId.slice(0, 8)}…`);
    await expect(traceLink).toHaveAttribute('target', '_blank');
    await expect(traceLink).toHaveAttribute('rel', /noopener/);

    // My courses: pending while the bus is away (the page polls)...
    await outcome.getByRole('link', { name: 'My courses' }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'My courses' })).toBeVisible();
    await expect(myStatus()).toHaveText('pending');
    await expect(myStatus()).toHaveClass('status status-pending');
    await shot(page, 'my-courses-pending');
    // ...and active, without a reload, once it is back and progress has
    // processed payments' capture.
    await broker(1);
    brokerDown = false;
  } finally {
    if (brokerDown) await broker(1);
  }
  await expect(myStatus()).toHaveText('active', { timeout: 30_000 });
  await expect(myStatus()).toHaveClass('status status-active');
  const item = page.getByRole('listitem').filter({ hasText: course.title });
  await expect(item.getByRole('button', { name: 'Refund' })).toBeVisible();
  await shot(page, 'my-courses');

  // The first lesson, through "Continue".
  const full = (await (await request.get(`${system.gatewayUrl}/api/courses/${course.id}`)).json()) as Course;
  const lessons = [...(full.lessons ?? [])].sort((a, b) => a.position - b.position);
  const first = lessons[0];
  expect(first, 'the course has lessons').toBeTruthy();
  if (!first) return;
  await item.getByRole('link', { name: 'Continue' }).click();
  await expect(page.getByRole('heading', { level: 1, name: first.title })).toBeVisible();
  await expect(page.getByText(`Lesson 1 of ${lessons.length}`)).toBeVisible();
  await page.getByRole('button', { name: 'Mark lesson complete' }).click();
  await expect(page.getByText(/\bCompleted\b/).first()).toBeVisible();
  await expect(page.getByRole('link', { name: 'Back to course' })).toBeVisible();
  await shot(page, 'lesson');
  const progress = await request.get(
    `${system.gatewayUrl}/api/users/${session.user_id}/courses/${course.id}/progress`,
    { headers: { authorization: `Bearer ${session.access_token}` } },
  );
  expect(progress.status()).toBe(200);
  const done = (await progress.json()) as { completed_lesson_ids: string[]; percent_complete: number };
  expect(done.completed_lesson_ids).toEqual([first.id]);

  // The checkout's trace: click -> fetch -> gateway -> payments.
  let spans: CapturedSpan[] = [];
  await expect(async () => {
    spans = (await fetchTrace(request, system, traceId)).spans;
    const gateway = spans.find(
      (s) => s.service_name === 'gateway' && s.kind === 'server' && s.attributes['http.route'] === '/api/checkout',
    );
    expect(gateway, `the gateway's server span of /api/checkout in\n${describeSpans(spans)}`).toBeTruthy();
    const fetchSpan = spans.find((s) => s.span_id === gateway?.parent_span_id);
    expect(fetchSpan, `the parent of the gateway's span in\n${describeSpans(spans)}`).toBeTruthy();
    expect(fetchSpan?.service_name).toBe('web');
    expect(fetchSpan?.kind).toBe('client');
    expect(fetchSpan?.attributes['url.full']).toMatch(/\/api\/checkout$/);
    const click = spans.find((s) => s.span_id === fetchSpan?.parent_span_id);
    expect(click, `the parent of the fetch span in\n${describeSpans(spans)}`).toBeTruthy();
    expect(click?.service_name).toBe('web');
    expect(click?.name).toMatch(/^click /);
    expect(spans.some((s) => s.service_name === 'payments'), `payments in\n${describeSpans(spans)}`).toBe(true);
  }).toPass({ timeout: 15_000, intervals: [250, 500, 1_000] });

  await test.info().attach('checkout trace', { body: describeSpans(spans), contentType: 'text/plain' });

  // Nothing personal in any attribute of the trace, the browser's included.
  const secrets = [learner.email, session.access_token, session.access_token.split('.')[2] ?? session.access_token];
  const leaks: string[] = [];
  for (const span of spans) {
    const values = [
      ...Object.entries(span.attributes),
      ...span.events.flatMap((e) => Object.entries(e.attributes)),
    ];
    for (const [key, value] of values) {
      for (const text of attrTexts(value)) {
        if (secrets.some((secret) => text.includes(secret)) || /(?<![0-9A-Za-z])\d{16}(?![0-9A-Za-z])/.test(text)) {
          leaks.push(`${span.service_name} "${span.name}" ${key}=${text}`);
        }
      }
    }
  }
  expect(leaks, 'attributes holding the email, the token or a card-like number').toEqual([]);
});
