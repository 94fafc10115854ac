//! The events progress consumes (docs/events.md), and what it does with
//! them.
//!
//! `user.registered` creates the learner's profile here.
//!
//! `payment.captured` and `payment.refunded` decide what an enrollment
//! grants. Each records its fact about the payment in `enrollment_payments`; the
//! enrollment's status is then derived from all its payments ([`apply`]),
//! so the events and the gateway's enroll may arrive in any order, on any
//! replica, and end the same way. A capture that did not pay the
//! catalog's price grants nothing.

use std::sync::Arc;

use anyhow::anyhow;
use courses::CoursesClient;
use mesh::{
    Db, Op,
    events::{ConsumerSpec, Envelope, HandleError, Handler},
};
use payments::events::{
    PAYMENT_CAPTURED_VERSION, PAYMENT_REFUNDED_VERSION, PaymentCaptured, PaymentRefunded,
};
use sqlx::{Any, Transaction};
use users::events::{USER_REGISTERED_VERSION, UserRegistered};

use crate::{
    db::{now, store_time},
    model::EnrollmentStatus,
};

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

pub(crate) const PAYMENT_REFUNDED: ConsumerSpec = ConsumerSpec {
    name: "progress-payment-refunded",
    event_type: payments::events::PAYMENT_REFUNDED,
    producer: payments::NAME,
    max_deliver: 8,
};

/// The `payment.refunded` handler: the payment is marked refunded, and
/// the enrollment it bought loses its access, whichever of the payment's
/// two events comes first.
pub(crate) fn payment_refunded(db: Db, courses: CoursesClient) -> Handler {
    Arc::new(move |envelope, tx| {
        let db = db.clone();
        let courses = courses.clone();
        Box::pin(async move {
            let refunded: PaymentRefunded = envelope.data_as(PAYMENT_REFUNDED_VERSION)?;
            let fact = PaymentFact {
                payment_id: refunded.payment_id,
                user_id: refunded.user_id,
                course_id: refunded.course_id,
                kind: FactKind::Refunded,
            };
            apply(&db, &courses, fact, None, tx).await
        })
    })
}

/// The `payment.captured` handler: if the payment paid the catalog's
/// price, it is marked captured and the enrollment it bought becomes
/// active. A payment of anything else grants nothing: it is rejected, and
/// so dead-lettered with the reason, for someone to look at.
pub(crate) fn payment_captured(db: Db, courses: CoursesClient) -> Handler {
    Arc::new(move |envelope, tx| {
        let db = db.clone();
        let courses = courses.clone();
        Box::pin(async move {
            let captured: PaymentCaptured = envelope.data_as(PAYMENT_CAPTURED_VERSION)?;
            let paid = (captured.amount_cents, captured.currency.clone());
            let fact = PaymentFact {
                payment_id: captured.payment_id,
                user_id: captured.user_id,
                course_id: captured.course_id,
                kind: FactKind::Captured,
            };
            apply(&db, &courses, fact, Some(paid), tx).await
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactKind {
    Captured,
    Refunded,
}

/// What one payment event says.
#[derive(Debug)]
struct PaymentFact {
    payment_id: String,
    user_id: String,
    course_id: String,
    kind: FactKind,
}

// A no-op write that locks the enrollment's row, if there is one.
const LOCK_ENROLLMENT: &str =
    "UPDATE enrollments SET status = status WHERE user_id = $1 AND course_id = $2";
// Creates the enrollment (pending: what it grants is decided below from
// its payments) or, if an enroll got there first, locks that row: in one
// statement, on the (user, course) key, so the two cannot interleave.
const CREATE_OR_LOCK_ENROLLMENT: &str = "INSERT INTO enrollments (id, user_id, course_id, payment_id, status, lesson_count, enrolled_at) \
     VALUES ($1, $2, $3, $4, 'pending', $5, $6) \
     ON CONFLICT (user_id, course_id) DO UPDATE SET status = enrollments.status";
const RECORD_CAPTURE: &str = "INSERT INTO enrollment_payments (payment_id, user_id, course_id, captured_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (payment_id) DO UPDATE SET captured_at = COALESCE(enrollment_payments.captured_at, excluded.captured_at) \
     WHERE enrollment_payments.user_id = excluded.user_id AND enrollment_payments.course_id = excluded.course_id";
const RECORD_REFUND: &str = "INSERT INTO enrollment_payments (payment_id, user_id, course_id, refunded_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (payment_id) DO UPDATE SET refunded_at = COALESCE(enrollment_payments.refunded_at, excluded.refunded_at) \
     WHERE enrollment_payments.user_id = excluded.user_id AND enrollment_payments.course_id = excluded.course_id";
const PURCHASES_OF: &str = "SELECT payment_id, captured_at, refunded_at FROM enrollment_payments \
     WHERE user_id = $1 AND course_id = $2";
const SET_STATUS: &str =
    "UPDATE enrollments SET status = $1, payment_id = $2 WHERE user_id = $3 AND course_id = $4";

/// Applies one payment event, in the consumer's transaction:
///
/// 1. Lock the enrollment's row, creating it if the event is the first to
///    arrive (the gateway's enroll may come later, or never).
/// 2. Record what the event says about its payment.
/// 3. Derive the enrollment's status from all its payments: `active` while
///    one is captured and not refunded (the newest such backs it),
///    `refunded` when every captured one was refunded, else as it was
///    (`pending`: bought, nothing heard yet).
///
/// The lock comes first so that two events about one enrollment (two
/// replicas, a capture and a refund) are applied one after the other,
/// and the second sees the first's payment rows: under READ COMMITTED each
/// statement sees what was committed when it started, and the second
/// event's statements start after the first committed, since they wait
/// for its lock. Deriving the status from the facts, rather than moving it
/// one step per event, makes the order of the events irrelevant.
async fn apply(
    db: &Db,
    courses: &CoursesClient,
    fact: PaymentFact,
    paid: Option<(i64, String)>,
    mut tx: Transaction<'static, Any>,
) -> Result<Transaction<'static, Any>, HandleError> {
    // A capture is checked against the catalog before anything is
    // written; a refund needs the course only to create the row.
    let mut course = None;
    if let Some((amount_cents, currency)) = &paid {
        let summary = course_of(courses, &fact.course_id).await?;
        if summary.price_cents != *amount_cents || &summary.currency != currency {
            return Err(HandleError::Reject(anyhow!(
                "payment {} paid {amount_cents} {currency} for {}, which costs {} {}: no access granted",
                fact.payment_id,
                fact.course_id,
                summary.price_cents,
                summary.currency
            )));
        }
        course = Some(summary);
    }
    let locked = db
        .run(
            Op::new("UPDATE", "enrollments", LOCK_ENROLLMENT),
            sqlx::query(LOCK_ENROLLMENT)
                .bind(&fact.user_id)
                .bind(&fact.course_id)
                .execute(&mut *tx),
        )
        .await?
        .rows_affected()
        == 1;
    if !locked {
        let summary = match course {
            Some(summary) => summary,
            None => course_of(courses, &fact.course_id).await?,
        };
        db.run(
            Op::new("INSERT", "enrollments", CREATE_OR_LOCK_ENROLLMENT),
            sqlx::query(CREATE_OR_LOCK_ENROLLMENT)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&fact.user_id)
                .bind(&fact.course_id)
                .bind(&fact.payment_id)
                .bind(summary.lesson_count)
                .bind(store_time(now()))
                .execute(&mut *tx),
        )
        .await?;
    }
    let record = match fact.kind {
        FactKind::Captured => RECORD_CAPTURE,
        FactKind::Refunded => RECORD_REFUND,
    };
    let recorded = db
        .run(
            Op::new("INSERT", "enrollment_payments", record),
            sqlx::query(record)
                .bind(&fact.payment_id)
                .bind(&fact.user_id)
                .bind(&fact.course_id)
                .bind(store_time(now()))
                .execute(&mut *tx),
        )
        .await?;
    // A payment belongs to one learner's purchase of one course: an event
    // naming a known payment with anyone else is not applied to either.
    if recorded.rows_affected() == 0 {
        return Err(HandleError::Reject(anyhow!(
            "payment {} belongs to another learner or course",
            fact.payment_id
        )));
    }
    let purchases: Vec<(String, Option<String>, Option<String>)> = db
        .run(
            Op::new("SELECT", "enrollment_payments", PURCHASES_OF),
            sqlx::query_as(PURCHASES_OF)
                .bind(&fact.user_id)
                .bind(&fact.course_id)
                .fetch_all(&mut *tx),
        )
        .await?;
    if let Some((status, payment_id)) = derive_status(&purchases) {
        db.run(
            Op::new("UPDATE", "enrollments", SET_STATUS),
            sqlx::query(SET_STATUS)
                .bind(status.as_str())
                .bind(payment_id)
                .bind(&fact.user_id)
                .bind(&fact.course_id)
                .execute(&mut *tx),
        )
        .await?;
        tracing::info!(
            payment.id = %fact.payment_id,
            enrollment.status = status.as_str(),
            "enrollment updated from its payments"
        );
    }
    Ok(tx)
}

/// The course from courses: a course it does not know is an event that
/// can never apply; courses not answering is worth another try.
async fn course_of(
    courses: &CoursesClient,
    course_id: &str,
) -> Result<courses::model::CourseSummary, HandleError> {
    courses
        .get(course_id)
        .await
        .map(|c| c.summary)
        .map_err(|e| {
            if e.status() == Some(http::StatusCode::NOT_FOUND) {
                HandleError::Reject(anyhow!("course {course_id} does not exist"))
            } else {
                HandleError::Retry(anyhow!("asking courses for {course_id}: {e}"))
            }
        })
}

/// An enrollment's status from its payments (payment id, captured at,
/// refunded at; times as stored, whose text order is time order):
/// `active`, backed by the newest payment captured and not refunded;
/// else `refunded`, by the last refunded one; `None` when no payment was
/// captured or refunded (the status stays as it is).
fn derive_status(
    purchases: &[(String, Option<String>, Option<String>)],
) -> Option<(EnrollmentStatus, String)> {
    let active = purchases
        .iter()
        .filter(|(_, captured, refunded)| captured.is_some() && refunded.is_none())
        .max_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    if let Some((payment_id, _, _)) = active {
        return Some((EnrollmentStatus::Active, payment_id.clone()));
    }
    purchases
        .iter()
        .filter(|(_, _, refunded)| refunded.is_some())
        .max_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)))
        .map(|(payment_id, _, _)| (EnrollmentStatus::Refunded, payment_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(
        id: &str,
        captured: Option<&str>,
        refunded: Option<&str>,
    ) -> (String, Option<String>, Option<String>) {
        (
            id.into(),
            captured.map(Into::into),
            refunded.map(Into::into),
        )
    }

    #[test]
    fn a_captured_payment_makes_the_enrollment_active() {
        assert_eq!(
            derive_status(&[p("p1", Some("2026-01-01T00:00:00.000Z"), None)]),
            Some((EnrollmentStatus::Active, "p1".into()))
        );
    }

    #[test]
    fn a_refund_ends_access_whether_it_came_before_or_after_the_capture() {
        let refunded = Some((EnrollmentStatus::Refunded, "p1".into()));
        assert_eq!(derive_status(&[p("p1", Some("t1"), Some("t2"))]), refunded);
        assert_eq!(derive_status(&[p("p1", None, Some("t2"))]), refunded);
    }

    #[test]
    fn buying_again_after_a_refund_is_active_on_the_new_payment_in_any_order() {
        let both = [p("p1", Some("t1"), Some("t2")), p("p2", Some("t3"), None)];
        assert_eq!(
            derive_status(&both),
            Some((EnrollmentStatus::Active, "p2".into()))
        );
        // The first purchase's refund processed after the second's capture.
        let late_refund = [p("p2", Some("t3"), None), p("p1", Some("t1"), Some("t4"))];
        assert_eq!(
            derive_status(&late_refund),
            Some((EnrollmentStatus::Active, "p2".into()))
        );
    }

    #[test]
    fn no_payment_heard_of_changes_nothing() {
        assert_eq!(derive_status(&[]), None);
    }
}
