//! Queries. Every statement binds its values (`$n`), so the statement text
//! recorded on the span carries no data.

use mesh::{Db, Op};
use sqlx::{Row as _, any::AnyRow};

use crate::{
    catalog::Catalog,
    model::{Course, CourseSummary, Lesson},
};

fn summary(row: &AnyRow) -> Result<CourseSummary, sqlx::Error> {
    let tags: String = row.try_get("tags")?;
    Ok(CourseSummary {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        summary: row.try_get("summary")?,
        instructor: row.try_get("instructor")?,
        level: row.try_get("level")?,
        tags: tags
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        price_cents: row.try_get("price_cents")?,
        currency: row.try_get("currency")?,
        lesson_count: row.try_get("lesson_count")?,
        popularity: row.try_get("popularity")?,
    })
}

fn lesson(row: &AnyRow) -> Result<Lesson, sqlx::Error> {
    Ok(Lesson {
        id: row.try_get("id")?,
        course_id: row.try_get("course_id")?,
        position: row.try_get("position")?,
        title: row.try_get("title")?,
        duration_seconds: row.try_get("duration_seconds")?,
    })
}

/// The columns of a course summary, from `courses`.
macro_rules! summaries {
    ($rest:literal) => {
        concat!(
            "SELECT id, slug, title, summary, instructor, level, tags, price_cents, currency, lesson_count, popularity FROM courses",
            $rest
        )
    };
}
/// The tag filter, its value the first parameter.
macro_rules! tagged {
    () => {
        "id IN (SELECT course_id FROM course_tags WHERE tag = $1)"
    };
}
/// The search filter, its pattern parameter `$n` (twice: title and
/// instructor, separate parameters since SQLite does not reuse them).
macro_rules! searched {
    ($a:literal, $b:literal) => {
        concat!(
            "(LOWER(title) LIKE ",
            $a,
            " ESCAPE '\\' OR LOWER(instructor) LIKE ",
            $b,
            " ESCAPE '\\')"
        )
    };
}

const COUNT_ALL: &str = "SELECT COUNT(*) AS n FROM courses";
const COUNT_TAGGED: &str = "SELECT COUNT(*) AS n FROM course_tags WHERE tag = $1";
const COUNT_SEARCHED: &str = concat!(
    "SELECT COUNT(*) AS n FROM courses WHERE ",
    searched!("$1", "$2")
);
const COUNT_TAGGED_SEARCHED: &str = concat!(
    "SELECT COUNT(*) AS n FROM courses WHERE ",
    tagged!(),
    " AND ",
    searched!("$2", "$3")
);
const LIST_ALL: &str = summaries!(" ORDER BY popularity DESC, id LIMIT $1 OFFSET $2");
const LIST_TAGGED: &str = concat!(
    summaries!(" WHERE "),
    tagged!(),
    " ORDER BY popularity DESC, id LIMIT $2 OFFSET $3"
);
const LIST_SEARCHED: &str = concat!(
    summaries!(" WHERE "),
    searched!("$1", "$2"),
    " ORDER BY popularity DESC, id LIMIT $3 OFFSET $4"
);
const LIST_TAGGED_SEARCHED: &str = concat!(
    summaries!(" WHERE "),
    tagged!(),
    " AND ",
    searched!("$2", "$3"),
    " ORDER BY popularity DESC, id LIMIT $4 OFFSET $5"
);
/// A course and its lessons in one round trip: a row per lesson (one with
/// NULL lesson columns for a course without lessons).
const GET_COURSE: &str = "SELECT c.id AS id, c.slug AS slug, c.title AS title, c.summary AS summary, \
     c.instructor AS instructor, c.level AS level, c.tags AS tags, c.price_cents AS price_cents, \
     c.currency AS currency, c.lesson_count AS lesson_count, c.popularity AS popularity, \
     l.id AS lesson_id, l.position AS lesson_position, l.title AS lesson_title, \
     l.duration_seconds AS lesson_duration_seconds \
     FROM courses c LEFT JOIN lessons l ON l.course_id = c.id WHERE c.id = $1 ORDER BY l.position";
const GET_LESSON: &str = "SELECT id, course_id, position, title, duration_seconds FROM lessons WHERE course_id = $1 AND id = $2";

/// What a page of the catalog is filtered by.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Courses with this tag.
    pub tag: Option<&'a str>,
    /// Courses whose title or instructor contains this (lowercased).
    pub search: Option<&'a str>,
}

/// `search` as a `LIKE` pattern that matches it anywhere, its own `%`,
/// `_` and `\` taken literally.
fn contains_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of courses, most popular first, filtered by tag and search.
pub async fn list_courses(
    db: &Db,
    filter: Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<CourseSummary>, i64), sqlx::Error> {
    let pattern = filter.search.map(contains_pattern);
    // Each filter's values first, in the order of its statement's
    // parameters; then the page's.
    let mut values: Vec<&str> = Vec::new();
    values.extend(filter.tag);
    if let Some(p) = &pattern {
        values.extend([p.as_str(), p.as_str()]);
    }
    let (list, count, collection) = match (filter.tag.is_some(), pattern.is_some()) {
        (false, false) => (LIST_ALL, COUNT_ALL, "courses"),
        (true, false) => (LIST_TAGGED, COUNT_TAGGED, "course_tags"),
        (false, true) => (LIST_SEARCHED, COUNT_SEARCHED, "courses"),
        (true, true) => (LIST_TAGGED_SEARCHED, COUNT_TAGGED_SEARCHED, "courses"),
    };
    let mut query = sqlx::query(list);
    for value in &values {
        query = query.bind(*value);
    }
    let rows = db
        .run(
            Op::new("SELECT", "courses", list),
            query.bind(limit).bind(offset).fetch_all(db.pool()),
        )
        .await?;
    let mut query = sqlx::query(count);
    for value in &values {
        query = query.bind(*value);
    }
    let total = db
        .run(
            Op::new("SELECT", collection, count),
            query.fetch_one(db.pool()),
        )
        .await?;
    let items = rows.iter().map(summary).collect::<Result<_, _>>()?;
    Ok((items, total.try_get("n")?))
}

/// A course with its lessons, or `None`: one query, the lessons joined.
pub async fn get_course(db: &Db, id: &str) -> Result<Option<Course>, sqlx::Error> {
    let rows = db
        .run(
            Op::new("SELECT", "courses", GET_COURSE),
            sqlx::query(GET_COURSE).bind(id).fetch_all(db.pool()),
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let summary = summary(first)?;
    let mut lessons = Vec::with_capacity(rows.len());
    for row in &rows {
        // NULL lesson columns: the course has no lessons.
        let Some(lesson_id) = row.try_get::<Option<String>, _>("lesson_id")? else {
            continue;
        };
        lessons.push(Lesson {
            id: lesson_id,
            course_id: summary.id.clone(),
            position: row.try_get("lesson_position")?,
            title: row.try_get("lesson_title")?,
            duration_seconds: row.try_get("lesson_duration_seconds")?,
        });
    }
    Ok(Some(Course { summary, lessons }))
}

/// The lesson `lesson_id` if it belongs to `course_id`.
pub async fn get_lesson(
    db: &Db,
    course_id: &str,
    lesson_id: &str,
) -> Result<Option<Lesson>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "lessons", GET_LESSON),
        sqlx::query(GET_LESSON)
            .bind(course_id)
            .bind(lesson_id)
            .fetch_optional(db.pool()),
    )
    .await?
    .as_ref()
    .map(lesson)
    .transpose()
}

/// Inserts the seed catalog unless the database already holds courses.
///
/// Replicas starting together may race here: `ON CONFLICT DO NOTHING` makes
/// the loser's inserts no-ops instead of errors. One span covers the whole
/// seeding rather than one per row.
#[tracing::instrument(name = "seed catalog", skip_all, fields(courses = catalog.courses.len()))]
pub async fn seed(db: &Db, catalog: &Catalog) -> Result<bool, sqlx::Error> {
    let existing: i64 = sqlx::query(COUNT_ALL)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    if existing > 0 {
        return Ok(false);
    }
    let mut tx = db.pool().begin().await?;
    for c in &catalog.courses {
        sqlx::query(
            "INSERT INTO courses (id, slug, title, summary, instructor, level, tags, price_cents, currency, popularity, lesson_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        )
        .bind(&c.id)
        .bind(&c.slug)
        .bind(&c.title)
        .bind(&c.summary)
        .bind(&c.instructor)
        .bind(c.level.as_str())
        .bind(c.tags.join(","))
        .bind(c.price_cents)
        .bind(c.currency)
        .bind(c.popularity)
        .bind(c.lessons.len() as i64)
        .execute(&mut *tx)
        .await?;
        for tag in &c.tags {
            sqlx::query(
                "INSERT INTO course_tags (course_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&c.id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        }
        for l in &c.lessons {
            sqlx::query(
                "INSERT INTO lessons (id, course_id, position, title, duration_seconds) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&l.id)
            .bind(&c.id)
            .bind(i64::from(l.position))
            .bind(&l.title)
            .bind(i64::from(l.duration_seconds))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}
