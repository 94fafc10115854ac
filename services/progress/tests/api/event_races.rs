//! The event consumers against the gateway's enroll, on PostgreSQL, with
//! the interleaving forced rather than hoped for.
//!
//! Under READ COMMITTED every statement sees what was committed when it
//! started, so a handler that reads, then writes on what it read, can be
//! overtaken between the two by a transaction that commits in between.
//! These tests hold a handler at exactly that point: an `AFTER UPDATE`
//! statement trigger on `enrollments` waits on an advisory lock the test
//! holds, so the handler's first `UPDATE` has run (and found no row to
//! change) when it stops. The test then commits an enroll, lets the
//! handler go, and checks the outcome.
//!
//! SQLite serialises writers, so the window does not exist there: these
//! tests need the suite's PostgreSQL pass (`TEST_DATABASE_URL`) and a NATS
//! server, and say so when skipped.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, Row as _};

use crate::helpers::{TestApp, payment_event, spawn_app_with_events};

/// The advisory lock key the trigger waits on.
const HOLD_KEY: i64 = 7_401;

/// A handler held after its first `UPDATE` of `enrollments`.
struct Hold {
    /// Holds the advisory lock while the hold is on.
    holder: sqlx::AnyConnection,
    database_url: String,
}

impl Hold {
    /// Installs the trigger and takes the lock: the next `UPDATE` of
    /// `enrollments` by anyone stops when it has run, until [`Hold::release`].
    async fn install(app: &TestApp) -> Self {
        let database_url = app.database_url().to_owned();
        let mut holder = sqlx::AnyConnection::connect(&database_url).await.unwrap();
        holder
            .execute(sqlx::raw_sql(
                "CREATE OR REPLACE FUNCTION hold_after_update() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                   PERFORM pg_advisory_lock(7401); PERFORM pg_advisory_unlock(7401); \
                   RETURN NULL; \
                 END $$; \
                 CREATE TRIGGER hold_after_update AFTER UPDATE ON enrollments \
                   FOR EACH STATEMENT EXECUTE FUNCTION hold_after_update();",
            ))
            .await
            .unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(HOLD_KEY)
            .execute(&mut holder)
            .await
            .unwrap();
        Self {
            holder,
            database_url,
        }
    }

    /// Waits until some statement is stopped by the hold.
    async fn wait_until_holding(&self) {
        let mut watcher = sqlx::AnyConnection::connect(&self.database_url)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .bind(HOLD_KEY)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting > 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the handler never reached its UPDATE of enrollments"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lets the held statement go on, and removes the trigger.
    async fn release(mut self) {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(HOLD_KEY)
            .execute(&mut self.holder)
            .await
            .unwrap();
        self.holder
            .execute(sqlx::raw_sql(
                "DROP TRIGGER hold_after_update ON enrollments",
            ))
            .await
            .unwrap();
        self.holder.close().await.unwrap();
    }
}

/// Progress with a real broker on PostgreSQL, or `None` (skipped) on the
/// SQLite pass.
async fn postgres_app() -> Option<TestApp> {
    if std::env::var("TEST_DATABASE_URL").map_or(true, |v| v.is_empty()) {
        eprintln!("skipped: the race needs PostgreSQL (the suite's TEST_DATABASE_URL pass)");
        return None;
    }
    let app = spawn_app_with_events().await;
    assert!(app.on_postgres());
    Some(app)
}

/// Waits until progress has processed (and committed) the event.
async fn wait_processed(app: &TestApp, event_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM processed_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if n == 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {event_id} was never processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The (status, payment id) of every enrollment of the user in the course.
async fn enrollment_rows(
    app: &TestApp,
    user_id: &str,
    course_id: &str,
) -> Vec<(String, Option<String>)> {
    sqlx::query("SELECT status, payment_id FROM enrollments WHERE user_id = $1 AND course_id = $2")
        .bind(user_id)
        .bind(course_id)
        .fetch_all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("status"), r.get("payment_id")))
        .collect()
}

/// The enroll commits after `payment.captured`'s handler looked for a
/// pending enrollment (and found none) and before it decided what to do:
/// the enrollment must still end active, not stay pending for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enroll_committed_while_the_capture_is_applied_ends_active() {
    let Some(app) = postgres_app().await else {
        return;
    };
    let (user, course, payment) = ("u-race-1", "c0001", "p-race-1");
    let hold = Hold::install(&app).await;
    let events = app.events.clone().unwrap();
    let event_id = events
        .publish(
            "payment.captured",
            "payments",
            payment_event(&app, payment, user, course, "captured_at").await,
        )
        .await;
    hold.wait_until_holding().await;

    let res = app
        .post_enrollment(&json!({"user_id": user, "course_id": course, "payment_id": payment}))
        .await;
    assert_eq!(res.status(), 201, "the enroll commits a pending enrollment");
    let enrolled: Value = res.json().await.unwrap();
    assert_eq!(enrolled["status"], "pending");

    hold.release().await;
    wait_processed(&app, &event_id).await;
    assert_eq!(
        enrollment_rows(&app, user, course).await,
        vec![("active".to_owned(), Some(payment.to_owned()))],
        "the captured payment's enrollment is active"
    );
    events.delete().await;
}

/// The enroll commits after `payment.refunded`'s handler looked for the
/// payment's enrollment (and found none) and before it decided what to
/// do: the refund must still reach the enrollment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enroll_committed_while_the_refund_is_applied_ends_refunded() {
    let Some(app) = postgres_app().await else {
        return;
    };
    let (user, course, payment) = ("u-race-2", "c0001", "p-race-2");
    let hold = Hold::install(&app).await;
    let events = app.events.clone().unwrap();
    let event_id = events
        .publish(
            "payment.refunded",
            "payments",
            payment_event(&app, payment, user, course, "refunded_at").await,
        )
        .await;
    hold.wait_until_holding().await;

    let res = app
        .post_enrollment(&json!({"user_id": user, "course_id": course, "payment_id": payment}))
        .await;
    assert_eq!(res.status(), 201, "the enroll commits a pending enrollment");

    hold.release().await;
    wait_processed(&app, &event_id).await;
    assert_eq!(
        enrollment_rows(&app, user, course).await,
        vec![("refunded".to_owned(), Some(payment.to_owned()))],
        "the refunded payment's enrollment is refunded"
    );
    events.delete().await;
}
