//! The books balanced after a run: what payments charged, what progress
//! granted and what the outboxes and the broker still hold, read straight
//! from the services' databases (SQLite or PostgreSQL) and from JetStream.
//!
//! Each check is an invariant the system promises whatever happened
//! during the run (crashes, a broker outage, replicas racing):
//! - every captured payment's (learner, course) has exactly one
//!   enrollment, active or refunded, never pending;
//! - an enrollment bought by a payment is active while the payment is
//!   captured and refunded once it is refunded;
//! - no idempotency key was charged twice, and no learner holds two
//!   captured payments for one course;
//! - every outbox is drained;
//! - no event was dead-lettered.

use std::{collections::BTreeMap, fmt, time::Duration};

use sqlx::{AnyPool, Row as _};

use super::TestSystem;

/// What one look at the books found.
#[derive(Debug, Default)]
pub struct Books {
    /// Payments by status (`captured`, `refunded`, `declined`).
    pub payments: BTreeMap<String, i64>,
    /// Enrollments by status.
    pub enrollments: BTreeMap<String, i64>,
    /// Unpublished outbox rows per service.
    pub outbox_pending: BTreeMap<&'static str, i64>,
    /// Messages in the dead-letter stream.
    pub dead_letters: u64,
    /// Every broken invariant, one line each (at most 20 shown per kind).
    pub problems: Vec<String>,
}

impl Books {
    pub fn balanced(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn captured(&self) -> i64 {
        self.payments.get("captured").copied().unwrap_or(0)
    }
}

impl fmt::Display for Books {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "payments {:?}, enrollments {:?}, outbox pending {:?}, dead letters {}",
            self.payments, self.enrollments, self.outbox_pending, self.dead_letters
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

async fn pool(sys: &TestSystem, service: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let url = sys
        .system
        .database_url(service)
        .unwrap_or_else(|| panic!("{service} has a database"));
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {service}'s database: {e}"))
}

struct PaymentRow {
    id: String,
    user_id: String,
    course_id: String,
    status: String,
}

struct EnrollmentRow {
    status: String,
    payment_id: Option<String>,
}

/// One look at the books.
pub async fn books(sys: &TestSystem) -> Books {
    let payments_db = pool(sys, "payments").await;
    let progress_db = pool(sys, "progress").await;
    let users_db = pool(sys, "users").await;
    let mut books = Books::default();

    let payments: Vec<PaymentRow> =
        sqlx::query("SELECT id, user_id, course_id, status FROM payments")
            .fetch_all(&payments_db)
            .await
            .unwrap()
            .iter()
            .map(|r| PaymentRow {
                id: r.get("id"),
                user_id: r.get("user_id"),
                course_id: r.get("course_id"),
                status: r.get("status"),
            })
            .collect();
    let enrollments: BTreeMap<(String, String), EnrollmentRow> =
        sqlx::query("SELECT user_id, course_id, status, payment_id FROM enrollments")
            .fetch_all(&progress_db)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    (r.get("user_id"), r.get("course_id")),
                    EnrollmentRow {
                        status: r.get("status"),
                        payment_id: r.get("payment_id"),
                    },
                )
            })
            .collect();
    for p in &payments {
        *books.payments.entry(p.status.clone()).or_default() += 1;
    }
    for e in enrollments.values() {
        *books.enrollments.entry(e.status.clone()).or_default() += 1;
    }

    let mut problems: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in payments
        .iter()
        .filter(|p| p.status == "captured" || p.status == "refunded")
    {
        let key = (p.user_id.clone(), p.course_id.clone());
        let Some(e) = enrollments.get(&key) else {
            problems
                .entry("no enrollment")
                .or_default()
                .push(format!("{} payment {} has no enrollment", p.status, p.id));
            continue;
        };
        if e.status == "pending" {
            problems.entry("pending").or_default().push(format!(
                "{} payment {}: its enrollment is still pending",
                p.status, p.id
            ));
        } else if e.payment_id.as_deref() == Some(p.id.as_str()) {
            let expected = if p.status == "captured" {
                "active"
            } else {
                "refunded"
            };
            if e.status != expected {
                problems.entry("status").or_default().push(format!(
                    "{} payment {}: its enrollment is {}, not {expected}",
                    p.status, p.id, e.status
                ));
            }
        }
    }

    let charged_twice: Vec<String> = sqlx::query(
        "SELECT idempotency_key, COUNT(*) AS n FROM payments \
         GROUP BY idempotency_key HAVING COUNT(*) > 1",
    )
    .fetch_all(&payments_db)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        format!(
            "idempotency key {} has {} payments",
            r.get::<String, _>("idempotency_key"),
            r.get::<i64, _>("n")
        )
    })
    .collect();
    if !charged_twice.is_empty() {
        problems.insert("charged twice", charged_twice);
    }
    let mut bought: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for p in payments.iter().filter(|p| p.status == "captured") {
        *bought.entry((&p.user_id, &p.course_id)).or_default() += 1;
    }
    let bought_twice: Vec<String> = bought
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((user, course), n)| format!("{user} holds {n} captured payments for {course}"))
        .collect();
    if !bought_twice.is_empty() {
        problems.insert("bought twice", bought_twice);
    }

    for (service, db) in [
        ("payments", &payments_db),
        ("progress", &progress_db),
        ("users", &users_db),
    ] {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(db)
                .await
                .unwrap();
        books.outbox_pending.insert(service, pending);
        if pending > 0 {
            problems.entry("outbox").or_default().push(format!(
                "{service}'s outbox holds {pending} unpublished events"
            ));
        }
    }
    for db in [payments_db, progress_db, users_db] {
        db.close().await;
    }

    books.dead_letters = dead_letters(sys).await;
    if books.dead_letters > 0 {
        problems
            .entry("dead letters")
            .or_default()
            .push(format!("{} events were dead-lettered", books.dead_letters));
    }

    for (kind, lines) in problems {
        let n = lines.len();
        books.problems.extend(lines.into_iter().take(20));
        if n > 20 {
            books
                .problems
                .push(format!("... and {} more ({kind})", n - 20));
        }
    }
    books
}

/// Messages in the system's dead-letter stream (0 if it was never made).
async fn dead_letters(sys: &TestSystem) -> u64 {
    let client = sys.system.nats_client().await.expect("NATS is reachable");
    let js = async_nats::jetstream::new(client);
    let name = mesh::events::stream_names(sys.system.events_prefix())[1].clone();
    match js.get_stream(&name).await {
        Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Looks at the books until they balance or `within` has passed, and
/// fails the test with everything still wrong then. Returns the balanced
/// books.
pub async fn assert_balanced_within(sys: &TestSystem, within: Duration) -> Books {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let books = books(sys).await;
        if books.balanced() {
            return books;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the books did not balance within {within:?}:\n{books}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `SELECT COUNT(*) ...` on one service's database.
pub async fn count(sys: &TestSystem, service: &str, sql: &'static str) -> i64 {
    let db = pool(sys, service).await;
    let n = sqlx::query_scalar(sql).fetch_one(&db).await.unwrap();
    db.close().await;
    n
}
