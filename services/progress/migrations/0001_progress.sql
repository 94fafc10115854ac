-- Enrollments and lesson completions. Ids are uuid v7 text (time-ordered,
-- portable); times are RFC 3339 UTC text with millisecond precision, whose
-- text order is their time order. Integers are BIGINT: sqlx's Any driver
-- decodes SQLite and PostgreSQL alike as i64 only from 64-bit columns.
CREATE TABLE enrollments (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    course_id     TEXT NOT NULL,
    -- The payment that bought the enrollment; NULL for free enrollments.
    payment_id    TEXT,
    status        TEXT NOT NULL,
    -- The course's lesson count when the user enrolled: progress is measured
    -- against what they signed up for, without asking courses on every read.
    lesson_count  BIGINT NOT NULL CHECK (lesson_count >= 0),
    enrolled_at   TEXT NOT NULL,
    -- One enrollment per user and course; enrolling again is a no-op
    -- (ON CONFLICT DO NOTHING), even when two requests race.
    UNIQUE (user_id, course_id)
);

CREATE TABLE lesson_completions (
    enrollment_id  TEXT NOT NULL REFERENCES enrollments (id),
    lesson_id      TEXT NOT NULL,
    completed_at   TEXT NOT NULL,
    -- Completing a lesson twice records it once.
    PRIMARY KEY (enrollment_id, lesson_id)
);
