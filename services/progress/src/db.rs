//! Queries. Every statement binds its values (`$n`), so the statement text
//! recorded on the span carries no data.
//!
//! Times are stored as RFC 3339 UTC text with exactly three fractional
//! digits, so text order is time order on both SQLite and PostgreSQL.

use chrono::{DateTime, SecondsFormat, SubsecRound as _, Utc};
use mesh::{Db, Op, events::Outbox};
use sqlx::{Row as _, any::AnyRow};

use crate::{
    domain::Id,
    events::{COURSE_COMPLETED, COURSE_COMPLETED_VERSION, CourseCompleted},
    model::{Enrollment, EnrollmentStatus, LearnerProfile},
};

/// A recorded lesson completion.
#[derive(Debug, Clone)]
pub struct Completion {
    pub lesson_id: String,
    pub completed_at: DateTime<Utc>,
}

/// The current time at the precision the database keeps, so a value
/// returned straight after an insert equals the one read back later.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

pub(crate) fn store_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn load_time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
}

fn enrollment(row: &AnyRow) -> Result<Enrollment, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Enrollment {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        course_id: row.try_get("course_id")?,
        payment_id: row.try_get("payment_id")?,
        status: status
            .parse::<EnrollmentStatus>()
            .map_err(|e| sqlx::Error::ColumnDecode {
                index: "status".to_owned(),
                source: Box::new(e),
            })?,
        lesson_count: row.try_get("lesson_count")?,
        enrolled_at: load_time(row, "enrolled_at")?,
    })
}

// The conflict targets are named so only the duplicate we expect is
// ignored; any other constraint still fails loudly.
const INSERT_ENROLLMENT: &str = "INSERT INTO enrollments (id, user_id, course_id, payment_id, status, lesson_count, enrolled_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, course_id) DO NOTHING";
const GET_ENROLLMENT: &str = "SELECT id, user_id, course_id, payment_id, status, lesson_count, enrolled_at \
     FROM enrollments WHERE user_id = $1 AND course_id = $2";
const GET_ENROLLMENT_BY_ID: &str = "SELECT id, user_id, course_id, payment_id, status, lesson_count, enrolled_at \
     FROM enrollments WHERE id = $1";
// Only a refunded row: if the new payment's event got there first, the
// row is active already and stays so.
const PEND_REFUNDED: &str = "UPDATE enrollments SET status = 'pending', payment_id = $1 WHERE id = $2 AND status = 'refunded'";
// The UNIQUE (user_id, course_id) index serves the user_id lookup.
const ENROLLMENTS_OF_USER: &str = "SELECT e.id, e.user_id, e.course_id, e.payment_id, e.status, e.lesson_count, e.enrolled_at, \
     (SELECT COUNT(*) FROM lesson_completions c WHERE c.enrollment_id = e.id) AS completed_lessons \
     FROM enrollments e WHERE e.user_id = $1 ORDER BY e.enrolled_at, e.id";
const INSERT_COMPLETION: &str = "INSERT INTO lesson_completions (enrollment_id, lesson_id, completed_at) \
     VALUES ($1, $2, $3) ON CONFLICT (enrollment_id, lesson_id) DO NOTHING";
const LOCK_ENROLLMENT: &str = "UPDATE enrollments SET status = status WHERE id = $1";
const COUNT_COMPLETIONS: &str = "SELECT COUNT(*) FROM lesson_completions WHERE enrollment_id = $1";
const GET_PROFILE: &str =
    "SELECT user_id, display_name, registered_at FROM learner_profiles WHERE user_id = $1";
const COMPLETIONS_OF: &str = "SELECT lesson_id, completed_at FROM lesson_completions \
     WHERE enrollment_id = $1 ORDER BY lesson_id";

/// Stores `e` unless the user is already enrolled in the course; `false`
/// means a row for (user, course) already existed (perhaps inserted a
/// moment ago by a concurrent duplicate request).
pub async fn insert_enrollment(db: &Db, e: &Enrollment) -> Result<bool, sqlx::Error> {
    let done = db
        .run(
            Op::new("INSERT", "enrollments", INSERT_ENROLLMENT),
            sqlx::query(INSERT_ENROLLMENT)
                .bind(&e.id)
                .bind(&e.user_id)
                .bind(&e.course_id)
                .bind(e.payment_id.as_deref())
                .bind(e.status.as_str())
                .bind(e.lesson_count)
                .bind(store_time(e.enrolled_at))
                .execute(db.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The user's enrollment in the course, or `None`.
pub async fn enrollment_of(
    db: &Db,
    user_id: &Id,
    course_id: &Id,
) -> Result<Option<Enrollment>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "enrollments", GET_ENROLLMENT),
        sqlx::query(GET_ENROLLMENT)
            .bind(user_id.as_str())
            .bind(course_id.as_str())
            .fetch_optional(db.pool()),
    )
    .await?
    .as_ref()
    .map(enrollment)
    .transpose()
}

/// The enrollment with this id, or `None`.
pub async fn enrollment_by_id(db: &Db, id: &str) -> Result<Option<Enrollment>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "enrollments", GET_ENROLLMENT_BY_ID),
        sqlx::query(GET_ENROLLMENT_BY_ID)
            .bind(id)
            .fetch_optional(db.pool()),
    )
    .await?
    .as_ref()
    .map(enrollment)
    .transpose()
}

/// A refunded enrollment bought again: `pending` on the new payment.
pub async fn pend_refunded(db: &Db, id: &str, payment_id: &str) -> Result<(), sqlx::Error> {
    db.run(
        Op::new("UPDATE", "enrollments", PEND_REFUNDED),
        sqlx::query(PEND_REFUNDED)
            .bind(payment_id)
            .bind(id)
            .execute(db.pool()),
    )
    .await?;
    Ok(())
}

/// All of the user's enrollments, oldest first, each with its number of
/// completed lessons (one query, not one per enrollment).
pub async fn enrollments_of_user(
    db: &Db,
    user_id: &Id,
) -> Result<Vec<(Enrollment, i64)>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "enrollments", ENROLLMENTS_OF_USER),
        sqlx::query(ENROLLMENTS_OF_USER)
            .bind(user_id.as_str())
            .fetch_all(db.pool()),
    )
    .await?
    .iter()
    .map(|row| Ok((enrollment(row)?, row.try_get("completed_lessons")?)))
    .collect()
}

/// Records that the lesson was completed; `false` if it already was (the
/// first completion time is kept). The completion that finishes the
/// course adds `course.completed` to the outbox in the same transaction.
pub async fn record_completion(
    db: &Db,
    outbox: &Outbox,
    enrollment: &Enrollment,
    lesson_id: &Id,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    // A no-op write that locks the enrollment's row: two completions of
    // the last two lessons at once are counted one after the other, so
    // exactly one of them sees the course complete.
    db.run(
        Op::new("UPDATE", "enrollments", LOCK_ENROLLMENT),
        sqlx::query(LOCK_ENROLLMENT)
            .bind(&enrollment.id)
            .execute(&mut *tx),
    )
    .await?;
    let done = db
        .run(
            Op::new("INSERT", "lesson_completions", INSERT_COMPLETION),
            sqlx::query(INSERT_COMPLETION)
                .bind(&enrollment.id)
                .bind(lesson_id.as_str())
                .bind(store_time(at))
                .execute(&mut *tx),
        )
        .await?;
    let inserted = done.rows_affected() == 1;
    let mut completed = false;
    if inserted && enrollment.lesson_count > 0 {
        let count: i64 = db
            .run(
                Op::new("SELECT", "lesson_completions", COUNT_COMPLETIONS),
                sqlx::query_scalar(COUNT_COMPLETIONS)
                    .bind(&enrollment.id)
                    .fetch_one(&mut *tx),
            )
            .await?;
        if count == enrollment.lesson_count {
            let event = CourseCompleted {
                user_id: enrollment.user_id.clone(),
                course_id: enrollment.course_id.clone(),
                enrollment_id: enrollment.id.clone(),
                lesson_count: enrollment.lesson_count,
                completed_at: at,
            };
            outbox
                .enqueue(&mut tx, COURSE_COMPLETED, COURSE_COMPLETED_VERSION, event)
                .await?;
            completed = true;
        }
    }
    db.run(
        Op::new("COMMIT", "lesson_completions", "COMMIT"),
        tx.commit(),
    )
    .await?;
    if completed {
        outbox.committed();
    }
    Ok(inserted)
}

/// The learner's profile (from `user.registered`), or `None`.
pub async fn profile_of(db: &Db, user_id: &Id) -> Result<Option<LearnerProfile>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "learner_profiles", GET_PROFILE),
        sqlx::query(GET_PROFILE)
            .bind(user_id.as_str())
            .fetch_optional(db.pool()),
    )
    .await?
    .map(|row| {
        Ok(LearnerProfile {
            user_id: row.try_get("user_id")?,
            display_name: row.try_get("display_name")?,
            registered_at: load_time(&row, "registered_at")?,
        })
    })
    .transpose()
}

/// The enrollment's completed lessons, by lesson id.
pub async fn completions_of(db: &Db, enrollment_id: &str) -> Result<Vec<Completion>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "lesson_completions", COMPLETIONS_OF),
        sqlx::query(COMPLETIONS_OF)
            .bind(enrollment_id)
            .fetch_all(db.pool()),
    )
    .await?
    .iter()
    .map(|row| {
        Ok(Completion {
            lesson_id: row.try_get("lesson_id")?,
            completed_at: load_time(row, "completed_at")?,
        })
    })
    .collect()
}
