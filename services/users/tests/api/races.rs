//! Requests racing on one row, on PostgreSQL, with the interleaving forced
//! rather than hoped for.
//!
//! An `AFTER INSERT` trigger waits on an advisory lock the test holds, so
//! the first request stops with its row inserted and not committed. The
//! test then sends the second request, waits until PostgreSQL has it
//! waiting too (on the first's row, or on the same lock), lets go, and
//! checks what both got.
//!
//! SQLite serialises writers, so the window does not exist there: these
//! tests need the suite's PostgreSQL pass (`TEST_DATABASE_URL`) and say so
//! when skipped.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use sqlx::{Connection as _, Executor as _, Row as _};

use crate::helpers::{self, TestApp, assert_error, spawn_app};

/// The advisory lock key the triggers wait on.
const HOLD_KEY: i64 = 7_402;

/// Inserts into one table held after they have run, until released.
struct Hold {
    /// Holds the advisory lock while the hold is on.
    holder: sqlx::AnyConnection,
    database_url: String,
    table: &'static str,
}

impl Hold {
    /// Installs the trigger on `table` and takes the lock.
    async fn install(app: &TestApp, table: &'static str) -> Self {
        let database_url = app.database_url().to_owned();
        let mut holder = sqlx::AnyConnection::connect(&database_url).await.unwrap();
        holder
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE OR REPLACE FUNCTION hold_after_insert() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                   PERFORM pg_advisory_lock({HOLD_KEY}); PERFORM pg_advisory_unlock({HOLD_KEY}); \
                   RETURN NULL; \
                 END $$; \
                 CREATE TRIGGER hold_after_insert AFTER INSERT ON {table} \
                   FOR EACH ROW EXECUTE FUNCTION hold_after_insert();"
            ))))
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
            table,
        }
    }

    /// Waits until `n` statements of this database wait on a lock: held by
    /// the trigger, or behind a row a held statement has not committed.
    async fn wait_for_waiting(&self, n: i64) {
        let mut watcher = sqlx::AnyConnection::connect(&self.database_url)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
            if waiting >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {waiting} of {n} statements ever waited"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lets the held statements go on, and removes the trigger.
    async fn release(mut self) {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(HOLD_KEY)
            .execute(&mut self.holder)
            .await
            .unwrap();
        self.holder
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP TRIGGER hold_after_insert ON {}",
                self.table
            )))
            .await
            .unwrap();
        self.holder.close().await.unwrap();
    }
}

/// A users server on PostgreSQL, or `None` (skipped) on the SQLite pass.
async fn postgres_app() -> Option<TestApp> {
    if std::env::var("TEST_DATABASE_URL").map_or(true, |v| v.is_empty()) {
        eprintln!("skipped: the race needs PostgreSQL (the suite's TEST_DATABASE_URL pass)");
        return None;
    }
    let app = spawn_app().await;
    assert!(app.on_postgres());
    Some(app)
}

/// Two sign-ups whose emails differ as sent and are one once normalised:
/// the second arrives while the first's row is inserted and uncommitted.
/// The UNIQUE constraint on the normalised email makes it wait for the
/// first, then refuses it (409). Before emails were normalised, both
/// committed: two accounts for one address.
#[tokio::test]
async fn look_alike_sign_ups_racing_create_one_account() {
    let Some(app) = postgres_app().await else {
        return;
    };
    let hold = Hold::install(&app, "users").await;
    let sign_up =
        |email: &str| json!({"email": email, "display_name": "Ada", "password": "long enough"});
    let (ada, look_alike) = (
        sign_up("ada@example.com"),
        sign_up("\u{FF21}da@example.com"),
    );
    let first = app.register(&ada);
    let second = async {
        hold.wait_for_waiting(1).await;
        let second = app.register(&look_alike);
        let release = async {
            hold.wait_for_waiting(2).await;
            hold.release().await;
        };
        tokio::join!(second, release).0
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_error(second, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(app.user_count().await, 1);
}

/// Two logins of one account from one new address: both remember the
/// address, and the second arrives while the first's row is inserted and
/// uncommitted. The upsert makes the second wait, then take the conflict
/// branch: both logins succeed, one row. A plain INSERT would fail the
/// second with a unique violation (500).
#[tokio::test]
async fn two_logins_from_one_new_address_remember_it_once() {
    let Some(app) = postgres_app().await else {
        return;
    };
    let registration = helpers::new_registration();
    app.client.register(&registration).await.unwrap();
    let hold = Hold::install(&app, "login_sources").await;
    let body = json!({"email": registration.email, "password": registration.password});
    let first = app.login(&body);
    let second = async {
        hold.wait_for_waiting(1).await;
        let second = app.login(&body);
        let release = async {
            hold.wait_for_waiting(2).await;
            hold.release().await;
        };
        tokio::join!(second, release).0
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM login_sources")
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(rows, 1);
}
