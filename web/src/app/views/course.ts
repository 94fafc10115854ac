// #/courses/{id} : a course, the learner's progress in it, and buying it.

import { describeProblem } from '../../common/api';
import { el, replace, srOnly } from '../../common/dom';
import { formatDuration, formatPrice, plural } from '../../common/format';
import { lessonHash, rememberCourse } from '../courses';
import { progressText } from '../progress';
import { getSession } from '../session';
import {
  api,
  heading,
  navigate,
  newIdempotencyKey,
  outcome,
  report,
  runAction,
  setHeading,
  sleep,
  type View,
} from '../shell';
import { traced, type Traced } from '../tracing';
import type { Checkout, Course, CoursePageData } from '../types';

/** Retries of one click's checkout (same key) after a network error or 409 in progress. */
const CHECKOUT_ATTEMPTS = 5;
const RETRYABLE = new Set(['request_in_progress', 'purchase_in_progress']);

function detail(term: string, ...value: (Node | string)[]): HTMLElement[] {
  return [el('dt', null, term), el('dd', null, ...value)];
}

async function checkout(t: Traced, course: Course): Promise<Checkout | null> {
  // One key per click: every retry of this click reuses it, so the
  // purchase is made at most once however often the network fails.
  const key = newIdempotencyKey();
  for (let attempt = 1; ; attempt++) {
    const result = await api<Checkout>('/api/checkout', {
      method: 'POST',
      auth: true,
      body: { course_id: course.id },
      headers: { 'Idempotency-Key': key },
      scope: t.scope,
    });
    if (result.kind === 'ok') {
      outcome.success(
        `${result.data.payment ? 'Purchased' : 'Enrolled in'} ${result.data.course.title}: enrollment ${result.data.enrollment.status}`,
        { traceId: result.traceId, extra: [el('a', { href: '#/my', class: 'outcome-link' }, 'My courses')] },
      );
      return result.data;
    }
    const retryable =
      result.kind === 'network' || (result.status === 409 && RETRYABLE.has(result.error.code));
    if (!retryable || attempt >= CHECKOUT_ATTEMPTS) {
      report(t, result);
      return null;
    }
    const wait = result.kind === 'error' && result.retryAfter !== null ? Math.min(result.retryAfter, 5) : attempt;
    outcome.success(`${describeProblem(result)}. Trying again in ${wait} s with the same purchase…`);
    await sleep(Math.max(1, wait) * 1000);
  }
}

export async function courseView(v: View): Promise<void> {
  const courseId = v.params[0] ?? '';
  const h1 = heading('Course');
  const body = el('div', { class: 'course' }, el('p', { class: 'loading' }, 'Loading the course…'));
  replace(v.root, h1, body);

  await traced(
    'load course',
    async (t) => {
      const path = `/api/courses/${encodeURIComponent(courseId)}/page`;
      let result = await api<CoursePageData>(path, { auth: true, scope: t.scope });
      if (result.kind === 'error' && result.status === 401 && getSession() === null) {
        // The token was refused (the session ended with it): say so, and
        // show the course as to anyone.
        report(t, result);
        result = await api<CoursePageData>(path, { scope: t.scope });
      }
      const session = getSession();
      if (!v.alive()) return;
      if (result.kind !== 'ok') {
        setHeading(h1, result.kind === 'error' && result.status === 404 ? 'Course not found' : 'Course unavailable');
        replace(body, el('p', null, el('a', { href: '#/' }, 'Back to the courses')));
        report(t, result);
        return;
      }
      const { course, progress, enrolled, degraded } = result.data;
      rememberCourse(course);
      setHeading(h1, course.title);
      const completed = new Set(progress?.completed_lesson_ids ?? []);

      const tags = course.tags.length > 0 ? course.tags.join(', ') : 'none';
      const facts = el(
        'dl',
        { class: 'facts' },
        detail('Instructor', course.instructor),
        detail('Level', course.level),
        detail('Tags', tags),
        detail('Price', formatPrice(course.price_cents, course.currency)),
        detail('Length', plural(course.lesson_count, 'lesson', 'lessons')),
      );

      const panel = degraded.includes('progress')
        ? el(
            'section',
            { role: 'status', class: 'panel panel-warning', 'aria-labelledby': 'degraded-title' },
            el('h2', { id: 'degraded-title' }, 'Progress is unavailable'),
            el(
              'p',
              null,
              'This course is shown without your progress: the progress service did not answer. Try again later.',
            ),
          )
        : null;

      const purchase = el('div', { class: 'purchase' });
      if (!session) {
        purchase.append(
          el('a', { class: 'button-link', href: `#/login?next=${encodeURIComponent(`/courses/${course.id}`)}` }, 'Log in to buy'),
        );
      } else if (enrolled === true && progress) {
        purchase.append(
          el('p', { class: 'progress' }, progressText(progress.completed_lessons, progress.lesson_count, progress.percent_complete)),
        );
      } else if (enrolled === false) {
        const label = course.price_cents > 0 ? 'Buy this course' : 'Enroll for free';
        const button = el('button', { type: 'button', class: 'primary' }, label);
        button.addEventListener('click', () => {
          void runAction(`click ${label}`, button, async (a) => {
            const done = await checkout(a, course);
            if (!done || !v.alive()) return;
            if (done.enrollment.status === 'active') {
              await navigate(location.hash, { parent: a.context });
            } else {
              replace(
                purchase,
                el('p', { class: 'pending' }, 'Enrollment pending: waiting for the payment to be confirmed.'),
              );
            }
          });
        });
        purchase.append(
          el('p', { class: 'price-large' }, formatPrice(course.price_cents, course.currency)),
          button,
        );
      }

      const lessons = el(
        'ol',
        { class: 'lessons' },
        course.lessons.map((lesson) =>
          el(
            'li',
            { class: completed.has(lesson.id) ? 'lesson done' : 'lesson' },
            enrolled === true ? el('a', { href: lessonHash(course.id, lesson.id) }, lesson.title) : lesson.title,
            ' ',
            el('span', { class: 'muted' }, `(${formatDuration(lesson.duration_seconds)})`),
            completed.has(lesson.id) ? el('span', { class: 'check' }, ' ', srOnly('completed'), el('span', { 'aria-hidden': 'true' }, '✓')) : null,
          ),
        ),
      );

      replace(
        body,
        el('p', { class: 'lead' }, course.summary),
        facts,
        panel,
        purchase,
        el('h2', null, 'Lessons'),
        lessons,
      );
    },
    v.parent,
  );
}
