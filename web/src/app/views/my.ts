// #/my : the learner's enrollments. While one is pending (its payment not
// confirmed yet) or a refund is on its way, the list is polled every second,
// for at most a minute.

import type { Scope } from '../../common/api';
import { el, replace, syncKeyed, type Keyed } from '../../common/dom';
import { courseHash, getCourse, lessonHash } from '../courses';
import { progressText } from '../progress';
import { getSession } from '../session';
import { api, heading, outcome, report, runAction, type View } from '../shell';
import { traced, type Traced } from '../tracing';
import type { Course, CourseProgress, EnrollmentProgress, Payment } from '../types';

const POLL_MS = 1000;
const POLL_FOR_MS = 60_000;

interface Row {
  enrollment: EnrollmentProgress;
  course: Course | null;
  /** The lesson "Continue" opens. */
  next: string | null;
}

export async function myView(v: View): Promise<void> {
  const h1 = heading('My courses');
  const session = getSession();
  if (!session) {
    replace(
      v.root,
      h1,
      el('p', null, 'Your courses are shown once you are logged in.'),
      el('p', null, el('a', { href: `#/login?next=${encodeURIComponent('/my')}` }, 'Log in to see your courses')),
    );
    return;
  }
  const list = el('ul', { class: 'enrollments' });
  const note = el('p', { class: 'waiting' });
  const empty = el('p', { class: 'loading' }, 'Loading your courses…');
  replace(v.root, h1, note, empty, list);

  const rows = new Map<string, Keyed<Row>>();
  /** Continue targets by `course:completed count`, so a poll asks progress only when it changed. */
  const nextLessons = new Map<string, string | null>();
  /** Enrollments refunded here whose status has not caught up yet. */
  const refunding = new Set<string>();
  let pollUntil = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pollErrorShown = false;
  v.onCleanup(() => clearTimeout(timer));

  async function nextLesson(e: EnrollmentProgress, course: Course | null, scope: Scope): Promise<string | null> {
    if (!course || course.lessons.length === 0) return null;
    const cacheKey = `${e.course_id}:${e.completed_lessons}`;
    if (nextLessons.has(cacheKey)) return nextLessons.get(cacheKey) ?? null;
    let done = new Set<string>();
    if (e.completed_lessons > 0) {
      const progress = await api<CourseProgress>(
        `/api/users/${encodeURIComponent(session!.user_id)}/courses/${encodeURIComponent(e.course_id)}/progress`,
        { auth: true, scope },
      );
      if (progress.kind === 'ok') done = new Set(progress.data.completed_lesson_ids);
    }
    const next = (course.lessons.find((l) => !done.has(l.id)) ?? course.lessons[0])!.id;
    nextLessons.set(cacheKey, next);
    return next;
  }

  function renderRow(row: Row, item: HTMLLIElement): void {
    const { enrollment: e, course } = row;
    const title = course?.title ?? `Course ${e.course_id}`;
    const actions = el('div', { class: 'actions' });
    if (e.status === 'active') {
      if (row.next) actions.append(el('a', { class: 'button-link', href: lessonHash(e.course_id, row.next) }, 'Continue'));
      if (e.payment_id) {
        const paymentId = e.payment_id;
        const refund = el('button', { type: 'button' }, 'Refund');
        refund.addEventListener('click', () => {
          void runAction('click Refund', refund, async (t) => {
            const result = await api<Payment>(`/api/payments/${encodeURIComponent(paymentId)}/refund`, {
              method: 'POST',
              auth: true,
              scope: t.scope,
            });
            if (result.kind !== 'ok') {
              report(t, result);
              return;
            }
            outcome.success(`Refunded ${title}: the enrollment is being closed`, { traceId: result.traceId });
            refunding.add(e.id);
            pollUntil = Date.now() + POLL_FOR_MS;
            if (await refresh(t)) schedule();
          });
        });
        actions.append(refund);
      }
    }
    replace(
      item,
      el('h2', { class: 'card-title' }, el('a', { href: courseHash(e.course_id) }, title)),
      el('p', null, 'Status: ', el('span', { class: `status status-${e.status}` }, e.status)),
      e.status === 'refunded'
        ? null
        : el('p', { class: 'progress' }, progressText(e.completed_lessons, e.lesson_count, e.percent_complete)),
      actions.childElementCount > 0 ? actions : null,
    );
  }

  function signature(row: Row): string {
    const e = row.enrollment;
    return JSON.stringify([e.status, e.completed_lessons, e.percent_complete, e.payment_id, row.course?.title, row.next]);
  }

  function show(items: Row[]): void {
    empty.remove();
    if (items.length === 0) {
      replace(list);
      replace(note, "You have no courses yet. ", el('a', { href: '#/' }, 'Browse the catalog'), '.');
      return;
    }
    syncKeyed(list, rows, items, (r) => r.enrollment.id, (first) => {
      const item = el('li', { class: 'card enrollment' });
      let sig = signature(first);
      renderRow(first, item);
      return {
        el: item,
        update(row) {
          const s = signature(row);
          if (s !== sig) {
            sig = s;
            renderRow(row, item);
          }
        },
      };
    });
  }

  /** Loads the list once; true when it should be polled again. */
  async function refresh(t: Traced): Promise<boolean> {
    const result = await api<{ items: EnrollmentProgress[] }>(
      `/api/users/${encodeURIComponent(session!.user_id)}/enrollments`,
      { auth: true, scope: t.scope },
    );
    if (!v.alive()) return false;
    if (result.kind !== 'ok') {
      if (!pollErrorShown) report(t, result);
      pollErrorShown = true;
      if (result.kind === 'error' && result.status === 401) {
        replace(note, 'Your session has ended. ', el('a', { href: '#/login?next=%2Fmy' }, 'Log in to see your courses'));
        empty.remove();
        return false;
      }
      empty.textContent = 'Your courses could not be loaded.';
      return true;
    }
    const items: Row[] = [];
    for (const enrollment of result.data.items) {
      const course = await getCourse(enrollment.course_id, t.scope);
      const c = course.kind === 'ok' ? course.data : null;
      const next = enrollment.status === 'active' ? await nextLesson(enrollment, c, t.scope) : null;
      items.push({ enrollment, course: c, next });
      if (enrollment.status !== 'active') refunding.delete(enrollment.id);
    }
    if (!v.alive()) return false;
    show(items);
    const waiting = items.some((r) => r.enrollment.status === 'pending');
    const still = waiting || items.some((r) => refunding.has(r.enrollment.id) && r.enrollment.status === 'active');
    if (waiting) {
      note.textContent = 'Waiting for the payment to be confirmed…';
    } else if (still) {
      note.textContent = 'Waiting for the refund to be recorded…';
    } else if (items.length > 0) {
      note.textContent = '';
    }
    return still;
  }

  function schedule(): void {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!v.alive()) return;
      if (Date.now() > pollUntil) {
        note.textContent = 'This is taking longer than expected. Reload the page to check again.';
        return;
      }
      void traced('poll my courses', refresh).then((again) => {
        if (again && v.alive()) schedule();
      });
    }, POLL_MS);
  }

  pollUntil = Date.now() + POLL_FOR_MS;
  const again = await traced('load my courses', refresh, v.parent);
  if (again && v.alive()) schedule();
}
