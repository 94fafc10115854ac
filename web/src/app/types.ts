// The API's shapes the app reads (docs/api.md). Every string in them is
// untrusted: it is only ever shown as text.

export interface CourseSummary {
  id: string;
  slug: string;
  title: string;
  summary: string;
  instructor: string;
  level: string;
  tags: string[];
  price_cents: number;
  currency: string;
  lesson_count: number;
  popularity: number;
}

export interface Lesson {
  id: string;
  course_id: string;
  position: number;
  title: string;
  duration_seconds: number;
}

export interface Course extends CourseSummary {
  lessons: Lesson[];
}

export interface CoursePageData {
  course: Course;
  progress: CourseProgress | null;
  enrolled: boolean | null;
  degraded: string[];
}

export interface Page<T> {
  items: T[];
  page: number;
  per_page: number;
  total: number;
}

export interface CourseProgress {
  user_id: string;
  course_id: string;
  enrollment_id: string;
  completed_lessons: number;
  lesson_count: number;
  percent_complete: number;
  completed_lesson_ids: string[];
  last_activity_at: string;
}

export type EnrollmentStatus = 'pending' | 'active' | 'refunded';

export interface Enrollment {
  id: string;
  user_id: string;
  course_id: string;
  payment_id: string | null;
  status: EnrollmentStatus;
  lesson_count: number;
  enrolled_at: string;
}

export interface EnrollmentProgress extends Enrollment {
  completed_lessons: number;
  percent_complete: number;
}

export interface Payment {
  id: string;
  course_id: string;
  amount_cents: number;
  currency: string;
  status: string;
}

export interface Checkout {
  course: CourseSummary;
  payment: Payment | null;
  enrollment: Enrollment;
}

export interface User {
  id: string;
  email: string;
  display_name: string;
}

export interface Token {
  access_token: string;
  token_type: string;
  expires_in: number;
  user_id: string;
}
