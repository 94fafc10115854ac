// #/ : the catalog, filtered on the server (`q`, `tag`), 12 a page.

import { el, replace, srOnly } from '../../common/dom';
import { formatPrice, plural } from '../../common/format';
import { courseHash } from '../courses';
import { api, heading, navigate, outcome, report, runAction, type View } from '../shell';
import { traced } from '../tracing';
import type { CourseSummary, Page } from '../types';

const PER_PAGE = 12;

interface Filters {
  q: string;
  tag: string;
  page: number;
}

export function catalogHash(f: Partial<Filters>): string {
  const params = new URLSearchParams();
  if (f.q) params.set('q', f.q);
  if (f.tag) params.set('tag', f.tag);
  if (f.page && f.page > 1) params.set('page', String(f.page));
  const query = params.toString();
  return query ? `#/?${query}` : '#/';
}

function filtersOf(query: URLSearchParams): Filters {
  const page = Number(query.get('page') ?? '1');
  return {
    q: query.get('q') ?? '',
    tag: query.get('tag') ?? '',
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

function courseCard(course: CourseSummary, onTag: (tag: string, button: HTMLButtonElement) => void): HTMLLIElement {
  const tags = el('ul', { class: 'tags' });
  for (const tag of course.tags) {
    const button = el('button', { type: 'button', class: 'tag' }, srOnly('Tag '), tag);
    button.addEventListener('click', () => onTag(tag, button));
    tags.append(el('li', null, button));
  }
  return el(
    'li',
    { class: 'card course-card' },
    el('h2', { class: 'card-title' }, el('a', { href: courseHash(course.id) }, course.title)),
    el('p', { class: 'summary' }, course.summary),
    el(
      'p',
      { class: 'meta' },
      course.instructor,
      el('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
      srOnly(', '),
      course.level,
      el('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
      srOnly(', '),
      plural(course.lesson_count, 'lesson', 'lessons'),
    ),
    el('p', { class: 'price' }, formatPrice(course.price_cents, course.currency)),
    course.tags.length > 0 ? tags : null,
  );
}

export async function catalogView(v: View): Promise<void> {
  const filters = filtersOf(v.query);
  const h1 = heading('Courses');
  const qInput = el('input', { id: 'catalog-q', name: 'q', type: 'search', value: filters.q, autocomplete: 'off' });
  const tagInput = el('input', { id: 'catalog-tag', name: 'tag', type: 'text', value: filters.tag, autocomplete: 'off' });
  const apply = el('button', { type: 'submit' }, 'Apply');
  const form = el(
    'form',
    { class: 'filters', role: 'search', novalidate: true },
    el('div', { class: 'field' }, el('label', { for: 'catalog-q' }, 'Search'), qInput),
    el('div', { class: 'field' }, el('label', { for: 'catalog-tag' }, 'Tag'), tagInput),
    el('div', { class: 'field field-button' }, apply),
  );
  const results = el('div', { class: 'results' }, el('p', { class: 'loading' }, 'Loading courses…'));
  const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' });
  replace(v.root, h1, form, results, pager);

  // Filtering, tags and pages are actions: their span is the parent of the
  // catalog load they cause, and the outcome region says what was found.
  const go = (name: string, trigger: HTMLElement, next: Filters): Promise<void> =>
    runAction(name, trigger, async (t) => {
      await navigate(catalogHash(next), { parent: t.context });
    });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void go('submit Apply', apply, { q: qInput.value.trim(), tag: tagInput.value.trim(), page: 1 });
  });
  const onTag = (tag: string, button: HTMLButtonElement): void => {
    void go(`click Tag ${tag}`, button, { q: '', tag, page: 1 });
  };

  await traced(
    'load catalog',
    async (t) => {
      const params = new URLSearchParams({ page: String(filters.page), per_page: String(PER_PAGE) });
      if (filters.tag) params.set('tag', filters.tag);
      if (filters.q) params.set('q', filters.q);
      const result = await api<Page<CourseSummary>>(`/api/courses?${params.toString()}`, { scope: t.scope });
      if (!v.alive()) return;
      if (result.kind !== 'ok') {
        replace(results, el('p', { class: 'empty' }, 'The courses could not be loaded.'));
        report(t, result);
        return;
      }
      const { items, total, per_page } = result.data;
      const pages = Math.max(1, Math.ceil(total / Math.max(1, per_page)));
      if (items.length === 0) {
        replace(results, el('p', { class: 'empty' }, 'No courses match.'));
      } else {
        replace(results, el('ul', { class: 'course-grid' }, items.map((c) => courseCard(c, onTag))));
      }
      const prev = el('button', { type: 'button', 'aria-disabled': filters.page <= 1 ? 'true' : null }, 'Previous page');
      const next = el('button', { type: 'button', 'aria-disabled': filters.page >= pages ? 'true' : null }, 'Next page');
      prev.addEventListener('click', () => {
        if (filters.page > 1) void go('click Previous page', prev, { ...filters, page: filters.page - 1 });
      });
      next.addEventListener('click', () => {
        if (filters.page < pages) void go('click Next page', next, { ...filters, page: filters.page + 1 });
      });
      replace(pager, prev, el('p', { class: 'page-info' }, `Page ${filters.page} of ${pages}`), next);
      if (v.parent) {
        const first = (filters.page - 1) * per_page + 1;
        outcome.success(
          total === 0
            ? 'No courses found'
            : items.length === 0
              ? `${plural(total, 'course', 'courses')} found; this page is past the last one`
              : `${plural(total, 'course', 'courses')} found: showing ${first}–${first + items.length - 1}`,
          { traceId: result.traceId },
        );
      }
    },
    v.parent,
  );
}
