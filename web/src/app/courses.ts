// Courses by id, cached for the tab (the catalog does not change while the
// page is open), shared by My courses and the lesson page.

import type { ApiResult, Scope } from '../common/api';
import { api } from './shell';
import type { Course } from './types';

const cache = new Map<string, Course>();

export function rememberCourse(course: Course): void {
  cache.set(course.id, course);
}

export async function getCourse(id: string, scope?: Scope): Promise<ApiResult<Course>> {
  const hit = cache.get(id);
  if (hit) return { kind: 'ok', status: 200, data: hit, traceId: null, headers: new Headers() };
  const result = await api<Course>(`/api/courses/${encodeURIComponent(id)}`, { scope });
  if (result.kind === 'ok') rememberCourse(result.data);
  return result;
}

export function courseHash(id: string): string {
  return `#/courses/${encodeURIComponent(id)}`;
}

export function lessonHash(courseId: string, lessonId: string): string {
  return `${courseHash(courseId)}/lessons/${encodeURIComponent(lessonId)}`;
}
