-- The catalog. Ids are stable text ids (c0001, c0001-l03) so people and the
-- load generator can name real courses. Integers are BIGINT: sqlx's Any
-- driver decodes SQLite and PostgreSQL alike as i64 only from 64-bit columns.
CREATE TABLE courses (
    id            TEXT PRIMARY KEY,
    slug          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    summary       TEXT NOT NULL,
    instructor    TEXT NOT NULL,
    level         TEXT NOT NULL,
    -- Comma-separated copy of course_tags for reading a page in one query.
    tags          TEXT NOT NULL,
    price_cents   BIGINT NOT NULL CHECK (price_cents >= 0),
    currency      TEXT NOT NULL,
    popularity    DOUBLE PRECISION NOT NULL,
    lesson_count  BIGINT NOT NULL
);

CREATE INDEX courses_by_popularity ON courses (popularity DESC, id);

CREATE TABLE course_tags (
    course_id TEXT NOT NULL REFERENCES courses (id),
    tag       TEXT NOT NULL,
    PRIMARY KEY (course_id, tag)
);

CREATE INDEX course_tags_by_tag ON course_tags (tag, course_id);

CREATE TABLE lessons (
    id                TEXT PRIMARY KEY,
    course_id         TEXT NOT NULL REFERENCES courses (id),
    position          BIGINT NOT NULL,
    title             TEXT NOT NULL,
    duration_seconds  BIGINT NOT NULL,
    UNIQUE (course_id, position)
);
