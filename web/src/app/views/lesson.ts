// #/courses/{cid}/lessons/{lid} : one lesson, and marking it complete.

import { el, replace } from '../../common/dom';
import { formatDuration, formatPercent } from '../../common/format';
import { courseHash, getCourse, lessonHash } from '../courses';
import { progressText } from '../progress';
import { getSession } from '../session';
import { api, heading, outcome, report, runAction, setHeading, type View } from '../shell';
import { traced } from '../tracing';
import type { CourseProgress } from '../types';

export async function lessonView(v: View): Promise<void> {
  const courseId = v.params[0] ?? '';
  const lessonId = v.params[1] ?? '';
  const h1 = heading('Lesson');
  const body = el('div', { class: 'lesson-page' }, el('p', { class: 'loading' }, 'Loading the lesson…'));
  replace(v.root, h1, body);

  await traced(
    'load lesson',
    async (t) => {
      const result = await getCourse(courseId, t.scope);
      if (!v.alive()) return;
      if (result.kind !== 'ok') {
        setHeading(h1, 'Lesson unavailable');
        replace(body, el('p', null, el('a', { href: '#/' }, 'Back to the courses')));
        report(t, result);
        return;
      }
      const course = result.data;
      const index = course.lessons.findIndex((l) => l.id === lessonId);
      const lesson = course.lessons[index];
      if (!lesson) {
        setHeading(h1, 'Lesson not found');
        replace(body, el('p', null, el('a', { href: courseHash(course.id) }, 'Back to course')));
        outcome.failure(`${course.title} has no lesson ${lessonId}.`);
        return;
      }
      setHeading(h1, lesson.title);

      const session = getSession();
      let progress: CourseProgress | null = null;
      let notEnrolled = false;
      if (session) {
        const p = await api<CourseProgress>(
          `/api/users/${encodeURIComponent(session.user_id)}/courses/${encodeURIComponent(course.id)}/progress`,
          { auth: true, scope: t.scope },
        );
        if (!v.alive()) return;
        if (p.kind === 'ok') progress = p.data;
        else if (p.kind === 'error' && (p.status === 404 || p.status === 403)) notEnrolled = true;
      }

      const state = el('div', { class: 'lesson-state' });
      const showProgress = (pr: CourseProgress): void => {
        const done = pr.completed_lesson_ids.includes(lesson.id);
        replace(
          state,
          done
            ? el(
                'p',
                { class: 'lesson-status' },
                el('span', { class: 'badge badge-done' }, 'Completed'),
                ` ${formatPercent(pr.percent_complete)} of the course done`,
              )
            : null,
          el('p', { class: 'progress' }, progressText(pr.completed_lessons, pr.lesson_count, pr.percent_complete)),
        );
      };
      if (progress) showProgress(progress);

      let action: HTMLElement | null = null;
      if (!session) {
        action = el('p', null, el('a', { href: `#/login?next=${encodeURIComponent(`/courses/${course.id}`)}` }, 'Log in to track your progress'));
      } else {
        const button = el('button', { type: 'button', class: 'primary' }, 'Mark lesson complete');
        button.addEventListener('click', () => {
          void runAction('click Mark lesson complete', button, async (a) => {
            const done = await api<CourseProgress>(
              `/api/users/${encodeURIComponent(session.user_id)}/courses/${encodeURIComponent(course.id)}/lessons/${encodeURIComponent(lesson.id)}/complete`,
              { method: 'POST', auth: true, scope: a.scope },
            );
            if (done.kind !== 'ok') {
              report(a, done);
              return;
            }
            if (v.alive()) showProgress(done.data);
            outcome.success(
              `Marked lesson ${lesson.position} complete: ${progressText(done.data.completed_lessons, done.data.lesson_count, done.data.percent_complete)}`,
              { traceId: done.traceId },
            );
          });
        });
        action = el('div', { class: 'actions' }, button);
      }

      const prev = course.lessons[index - 1];
      const next = course.lessons[index + 1];
      replace(
        body,
        el('p', { class: 'lead' }, `Lesson ${index + 1} of ${course.lessons.length}`, ' · ', course.title),
        el('p', { class: 'muted' }, `Duration: ${formatDuration(lesson.duration_seconds)}`),
        notEnrolled ? el('p', { class: 'note' }, 'You are not enrolled in this course (or the enrollment is not active), so progress is not recorded.') : null,
        state,
        action,
        el(
          'nav',
          { class: 'lesson-nav', 'aria-label': 'Lesson navigation' },
          prev ? el('a', { href: lessonHash(course.id, prev.id), rel: 'prev' }, 'Previous lesson') : null,
          el('a', { href: courseHash(course.id) }, 'Back to course'),
          next ? el('a', { href: lessonHash(course.id, next.id), rel: 'next' }, 'Next lesson') : null,
        ),
      );
    },
    v.parent,
  );
}
