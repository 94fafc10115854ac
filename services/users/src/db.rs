//! Queries. Every statement binds its values (`$n`), so the statement text
//! recorded on the span carries no data: no email, and never a hash.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use mesh::{Db, Op, events::Outbox};
use sqlx::{Row as _, any::AnyRow};

use crate::{
    domain::Email,
    events::{USER_REGISTERED, USER_REGISTERED_VERSION, UserRegistered},
    lockout::Source,
    model::User,
    password::HashedPassword,
};

/// An account as login needs it: the profile and the stored hash.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub password_hash: HashedPassword,
}

/// What inserting an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// The email's UNIQUE constraint refused the row.
    EmailTaken,
}

const INSERT_USER: &str = "INSERT INTO users (id, email, display_name, password_hash, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
const ACCOUNT_BY_EMAIL: &str =
    "SELECT id, email, display_name, password_hash, created_at FROM users WHERE email = $1";
const USER_BY_ID: &str = "SELECT id, email, display_name, created_at FROM users WHERE id = $1";
// Refreshes `last_login_at` at most once an hour per (account, source):
// an account logging in all day long does not write all day long.
const REMEMBER_SOURCE: &str = "INSERT INTO login_sources (user_id, source, last_login_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (user_id, source) DO UPDATE SET last_login_at = excluded.last_login_at \
     WHERE login_sources.last_login_at < $4";
const PRUNE_SOURCES: &str = "DELETE FROM login_sources WHERE user_id = $1 AND (last_login_at < $2 \
     OR source NOT IN (SELECT source FROM login_sources WHERE user_id = $3 \
     ORDER BY last_login_at DESC, source LIMIT $4))";
const IS_KNOWN_SOURCE: &str = "SELECT COUNT(*) AS n FROM login_sources s JOIN users u ON u.id = s.user_id \
     WHERE u.email = $1 AND s.source = $2 AND s.last_login_at >= $3";

/// How long a source an account logged in from stays known to it.
pub const KNOWN_SOURCE_FOR: TimeDelta = TimeDelta::days(30);
/// The most sources an account keeps (its most recent ones): a home, an
/// office, a phone's networks, a few trips.
pub const KNOWN_SOURCES_PER_ACCOUNT: i64 = 8;

/// Times are stored as RFC 3339 text, which sorts and decodes the same on
/// SQLite and PostgreSQL through the `Any` driver.
fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn user(row: &AnyRow) -> Result<User, sqlx::Error> {
    let created_at: String = row.try_get("created_at")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        created_at: DateTime::parse_from_rfc3339(&created_at)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
            .with_timezone(&Utc),
    })
}

/// Inserts a new account.
///
/// There is no "is this email free?" query first: it would race with a
/// concurrent sign-up. The UNIQUE constraint decides atomically, and its
/// violation is the answer. (The primary key is a fresh UUIDv7, so the
/// email is the only constraint a new row can violate.)
///
/// The account and its `user.registered` event commit together.
pub async fn insert_user(
    db: &Db,
    outbox: &Outbox,
    user: &User,
    password_hash: &HashedPassword,
) -> Result<Inserted, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let result = db
        .run(
            Op::new("INSERT", "users", INSERT_USER),
            sqlx::query(INSERT_USER)
                .bind(&user.id)
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(password_hash.as_str())
                .bind(timestamp(&user.created_at))
                .execute(&mut *tx),
        )
        .await;
    match result {
        Ok(_) => {}
        // Dropping the transaction rolls it back.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Ok(Inserted::EmailTaken);
        }
        Err(e) => return Err(e),
    }
    let registered = UserRegistered {
        user_id: user.id.clone(),
        display_name: user.display_name.clone(),
        registered_at: user.created_at,
    };
    outbox
        .enqueue(
            &mut tx,
            USER_REGISTERED,
            USER_REGISTERED_VERSION,
            registered,
        )
        .await?;
    db.run(Op::new("COMMIT", "users", "COMMIT"), tx.commit())
        .await?;
    outbox.committed();
    Ok(Inserted::Created)
}

/// The account registered under `email`, if any.
pub async fn account_by_email(db: &Db, email: &Email) -> Result<Option<Account>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "users", ACCOUNT_BY_EMAIL),
        sqlx::query(ACCOUNT_BY_EMAIL)
            .bind(email.as_str())
            .fetch_optional(db.pool()),
    )
    .await?
    .map(|row| {
        Ok(Account {
            user: user(&row)?,
            password_hash: HashedPassword::from_stored(row.try_get("password_hash")?),
        })
    })
    .transpose()
}

/// Remembers that `user_id` logged in from `source` at `now`, and keeps
/// the account's sources bounded (see [`KNOWN_SOURCES_PER_ACCOUNT`] and
/// [`KNOWN_SOURCE_FOR`]).
///
/// Two logins from one new source at once both insert the same row: the
/// upsert makes the second an update (PostgreSQL waits on the first's
/// uncommitted row, then takes the conflict branch), never a unique
/// violation.
pub async fn remember_source(
    db: &Db,
    user_id: &str,
    source: Source,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let source = source.to_string();
    let written = db
        .run(
            Op::new("INSERT", "login_sources", REMEMBER_SOURCE),
            sqlx::query(REMEMBER_SOURCE)
                .bind(user_id)
                .bind(&source)
                .bind(timestamp(&now))
                .bind(timestamp(&(now - TimeDelta::hours(1))))
                .execute(db.pool()),
        )
        .await?
        .rows_affected();
    if written > 0 {
        db.run(
            Op::new("DELETE", "login_sources", PRUNE_SOURCES),
            sqlx::query(PRUNE_SOURCES)
                .bind(user_id)
                .bind(timestamp(&(now - KNOWN_SOURCE_FOR)))
                .bind(user_id)
                .bind(KNOWN_SOURCES_PER_ACCOUNT)
                .execute(db.pool()),
        )
        .await?;
    }
    Ok(())
}

/// Whether the account registered under `email` logged in from `source`
/// since `now - KNOWN_SOURCE_FOR`. `false` for an email no account has,
/// as for a source the account does not know.
pub async fn is_known_source(
    db: &Db,
    email: &Email,
    source: Source,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let row = db
        .run(
            Op::new("SELECT", "login_sources", IS_KNOWN_SOURCE),
            sqlx::query(IS_KNOWN_SOURCE)
                .bind(email.as_str())
                .bind(source.to_string())
                .bind(timestamp(&(now - KNOWN_SOURCE_FOR)))
                .fetch_one(db.pool()),
        )
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// The profile of user `id`, if any.
pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "users", USER_BY_ID),
        sqlx::query(USER_BY_ID).bind(id).fetch_optional(db.pool()),
    )
    .await?
    .as_ref()
    .map(user)
    .transpose()
}
