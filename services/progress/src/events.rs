//! The events progress consumes and publishes (docs/events.md).
//!
//! `user.registered` creates the learner's profile here.
//!
//! `course.completed` is published, through progress's outbox, when a
//! learner completes the last lesson of a course.
//!
//! `payment.captured` activates the enrollment the payment bought. The
//! gateway enrolls right after the charge, so the row is usually there,
//! `pending`, when the event lands; if the event comes first, the
//! enrollment is created here, active, and the gateway's enroll finds it.
//! Either order ends with one active enrollment: the last step on both
//! paths is a write on the (user, course) unique key.

use std::sync::Arc;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use courses::CoursesClient;
use mesh::{
    Db, Op,
    events::{ConsumerSpec, Envelope, HandleError, Handler},
};
use payments::events::{
    PAYMENT_CAPTURED_VERSION, PAYMENT_REFUNDED_VERSION, PaymentCaptured, PaymentRefunded,
};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};
use users::events::{USER_REGISTERED_VERSION, UserRegistered};

use crate::db::{now, store_time};

pub(crate) const PAYMENT_CAPTURED: ConsumerSpec = ConsumerSpec {
    name: "progress-payment-captured",
    event_type: payments::events::PAYMENT_CAPTURED,
    producer: payments::NAME,
    max_deliver: 5,
};

pub(crate) const USER_REGISTERED: ConsumerSpec = ConsumerSpec {
    name: "progress-user-registered",
    event_type: users::events::USER_REGISTERED,
    producer: users::NAME,
    max_deliver: 5,
};

/// `course.completed`: a learner completed every lesson of a course.
pub const COURSE_COMPLETED: &str = "course.completed";
/// The `schema_version` of [`CourseCompleted`].
pub const COURSE_COMPLETED_VERSION: u32 = 1;

/// `data` of a `course.completed` event, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseCompleted {
    pub user_id: String,
    pub course_id: String,
    pub enrollment_id: String,
    pub lesson_count: i64,
    pub completed_at: DateTime<Utc>,
}

const INSERT_PROFILE: &str = "INSERT INTO learner_profiles (user_id, display_name, registered_at, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING";

/// The `user.registered` handler: the learner's profile.
pub(crate) fn user_registered(db: Db) -> Handler {
    Arc::new(move |envelope, tx| {
        let db = db.clone();
        Box::pin(async move { create_profile(&db, envelope, tx).await })
    })
}

async fn create_profile(
    db: &Db,
    envelope: Envelope,
    mut tx: Transaction<'static, Any>,
) -> Result<Transaction<'static, Any>, HandleError> {
    let user: UserRegistered = envelope.data_as(USER_REGISTERED_VERSION)?;
    db.run(
        Op::new("INSERT", "learner_profiles", INSERT_PROFILE),
        sqlx::query(INSERT_PROFILE)
            .bind(&user.user_id)
            .bind(&user.display_name)
            .bind(store_time(user.registered_at))
            .bind(store_time(now()))
            .execute(&mut *tx),
    )
    .await?;
    Ok(tx)
}

// Only a pending enrollment is activated: a refunded one stays refunded,
// whichever of the two events is processed first.
const ACTIVATE: &str = "UPDATE enrollments SET status = $1, payment_id = COALESCE(payment_id, $2) \
     WHERE user_id = $3 AND course_id = $4 AND status = 'pending'";
const EXISTS: &str = "SELECT COUNT(*) FROM enrollments WHERE user_id = $1 AND course_id = $2";
// The same decision as ACTIVATE, made by the (user, course) unique key:
// insert the enrollment active, or, if a row is there, activate it if and
// only if it is pending.
const UPSERT_ACTIVE: &str = "INSERT INTO enrollments (id, user_id, course_id, payment_id, status, lesson_count, enrolled_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (user_id, course_id) DO UPDATE \
     SET status = excluded.status, payment_id = COALESCE(enrollments.payment_id, excluded.payment_id) \
     WHERE enrollments.status = 'pending'";
const REFUND: &str =
    "UPDATE enrollments SET status = $1 WHERE user_id = $2 AND course_id = $3 AND payment_id = $4";

pub(crate) const PAYMENT_REFUNDED: ConsumerSpec = ConsumerSpec {
    name: "progress-payment-refunded",
    event_type: payments::events::PAYMENT_REFUNDED,
    producer: payments::NAME,
    max_deliver: 8,
};

/// The `payment.refunded` handler: the enrollment the payment bought
/// becomes `refunded`. If that enrollment is not there yet (the refund's
/// event overtook the capture's, which another consumer handles), the
/// event is retried until it is. A refund of a payment that did not buy
/// the enrollment (a second, concurrent purchase) changes nothing.
pub(crate) fn payment_refunded(db: Db) -> Handler {
    Arc::new(move |envelope, tx| {
        let db = db.clone();
        Box::pin(async move { refund(&db, envelope, tx).await })
    })
}

async fn refund(
    db: &Db,
    envelope: Envelope,
    mut tx: Transaction<'static, Any>,
) -> Result<Transaction<'static, Any>, HandleError> {
    let refunded: PaymentRefunded = envelope.data_as(PAYMENT_REFUNDED_VERSION)?;
    // Under READ COMMITTED the gateway's enroll can commit the payment's
    // enrollment between any two statements here. So a miss is never
    // taken for an answer: if the row exists once we look again, REFUND
    // runs again, and that statement sees it (each statement sees what
    // was committed when it started). Only a row that is there and was
    // bought by another payment is left alone.
    if refund_rows(db, &mut tx, &refunded).await? == 0 {
        if !enrolled(db, &mut tx, &refunded.user_id, &refunded.course_id).await? {
            return Err(HandleError::Retry(anyhow!(
                "no enrollment for payment {} yet: its payment.captured is not processed",
                refunded.payment_id
            )));
        }
        refund_rows(db, &mut tx, &refunded).await?;
    }
    Ok(tx)
}

/// Marks the enrollment `refunded.payment_id` bought refunded; the number
/// of rows changed (0 or 1).
async fn refund_rows(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    refunded: &PaymentRefunded,
) -> Result<u64, sqlx::Error> {
    Ok(db
        .run(
            Op::new("UPDATE", "enrollments", REFUND),
            sqlx::query(REFUND)
                .bind(crate::model::EnrollmentStatus::Refunded.as_str())
                .bind(&refunded.user_id)
                .bind(&refunded.course_id)
                .bind(&refunded.payment_id)
                .execute(&mut **tx),
        )
        .await?
        .rows_affected())
}

async fn enrolled(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    course_id: &str,
) -> Result<bool, sqlx::Error> {
    let n: i64 = db
        .run(
            Op::new("SELECT", "enrollments", EXISTS),
            sqlx::query_scalar(EXISTS)
                .bind(user_id)
                .bind(course_id)
                .fetch_one(&mut **tx),
        )
        .await?;
    Ok(n > 0)
}

/// The `payment.captured` handler.
pub(crate) fn payment_captured(db: Db, courses: CoursesClient) -> Handler {
    Arc::new(move |envelope, tx| {
        let db = db.clone();
        let courses = courses.clone();
        Box::pin(async move { activate(&db, &courses, envelope, tx).await })
    })
}

async fn activate(
    db: &Db,
    courses: &CoursesClient,
    envelope: Envelope,
    mut tx: Transaction<'static, Any>,
) -> Result<Transaction<'static, Any>, HandleError> {
    let captured: PaymentCaptured = envelope.data_as(PAYMENT_CAPTURED_VERSION)?;
    // The common case: the gateway's enroll is committed, pending.
    if activate_rows(db, &mut tx, &captured).await? == 1 {
        tracing::info!(payment.id = %captured.payment_id, "enrollment activated");
        return Ok(tx);
    }
    // A miss is not an answer. Under READ COMMITTED the enroll can commit
    // between this handler's statements (a COUNT after the miss would see
    // a pending row the UPDATE did not, and the enrollment would stay
    // pending for good), so what follows decides with one statement each:
    // - the row exists now: ACTIVATE again, which sees it;
    // - it does not: UPSERT_ACTIVE, whose conflict on the (user, course)
    //   key makes insert-or-activate atomic, waiting for an enroll still
    //   in flight and activating its row once it commits.
    if enrolled(db, &mut tx, &captured.user_id, &captured.course_id).await? {
        activate_rows(db, &mut tx, &captured).await?;
        tracing::info!(payment.id = %captured.payment_id, "enrollment activated");
        return Ok(tx);
    }
    // The event came before the gateway's enroll: create the enrollment
    // here, with the lesson count the enroll would have taken from courses.
    let course = courses.get(&captured.course_id).await.map_err(|e| {
        if e.status() == Some(http::StatusCode::NOT_FOUND) {
            HandleError::Reject(anyhow!("course {} does not exist", captured.course_id))
        } else {
            HandleError::Retry(anyhow!("asking courses for {}: {e}", captured.course_id))
        }
    })?;
    let active = crate::model::EnrollmentStatus::Active.as_str();
    db.run(
        Op::new("INSERT", "enrollments", UPSERT_ACTIVE),
        sqlx::query(UPSERT_ACTIVE)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&captured.user_id)
            .bind(&captured.course_id)
            .bind(&captured.payment_id)
            .bind(active)
            .bind(course.summary.lesson_count)
            .bind(store_time(now()))
            .execute(&mut *tx),
    )
    .await?;
    tracing::info!(
        payment.id = %captured.payment_id,
        "enrollment activated (the event came before the enroll)"
    );
    Ok(tx)
}

/// Activates the pending enrollment `captured` bought; the number of rows
/// changed (0 or 1).
async fn activate_rows(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    captured: &PaymentCaptured,
) -> Result<u64, sqlx::Error> {
    Ok(db
        .run(
            Op::new("UPDATE", "enrollments", ACTIVATE),
            sqlx::query(ACTIVATE)
                .bind(crate::model::EnrollmentStatus::Active.as_str())
                .bind(&captured.payment_id)
                .bind(&captured.user_id)
                .bind(&captured.course_id)
                .execute(&mut **tx),
        )
        .await?
        .rows_affected())
}
