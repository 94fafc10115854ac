//! Queries. Every statement binds its values (`$n`), so the statement text
//! recorded on the span carries no data.

use chrono::{DateTime, SecondsFormat, Utc};
use mesh::{Db, Op, events::Outbox};
use sqlx::{Row as _, any::AnyRow};

use crate::{
    domain::{IdempotencyKey, RequestFingerprint},
    events::{
        PAYMENT_CAPTURED, PAYMENT_CAPTURED_VERSION, PAYMENT_REFUNDED, PAYMENT_REFUNDED_VERSION,
        PaymentCaptured, PaymentRefunded,
    },
    model::{DeclineReason, Payment, PaymentStatus},
};

/// Times are stored as RFC 3339 UTC with a fixed six fractional digits, so
/// ordering the text orders the instants.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn decode_error(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} {value:?} in the database").into())
}

fn payment(row: &AnyRow) -> Result<Payment, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let reason: Option<String> = row.try_get("decline_reason")?;
    let created_at: String = row.try_get("created_at")?;
    Ok(Payment {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        course_id: row.try_get("course_id")?,
        amount_cents: row.try_get("amount_cents")?,
        currency: row.try_get("currency")?,
        status: PaymentStatus::parse(&status).ok_or_else(|| decode_error("status", &status))?,
        decline_reason: reason
            .map(|r| DeclineReason::parse(&r).ok_or_else(|| decode_error("decline reason", &r)))
            .transpose()?,
        provider_reference: row.try_get("provider_reference")?,
        created_at: DateTime::parse_from_rfc3339(&created_at)
            .map_err(|_| decode_error("timestamp", &created_at))?
            .with_timezone(&Utc),
    })
}

/// Where the request holding an idempotency key has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Its owner is calling the provider.
    InProgress,
    /// The payment is recorded; `payment_id` names it.
    Completed,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
        }
    }
}

/// An `idempotency_keys` row.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub fingerprint: RequestFingerprint,
    pub state: KeyState,
    pub payment_id: Option<String>,
    /// The owner's last sign of life, as stored ([`timestamp`]).
    pub heartbeat_at: String,
}

/// How often the owner of an in-progress key renews its claim.
pub const KEY_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long an in-progress key is held without a heartbeat: three missed
/// beats. Past it the owner is taken for dead (its replica was killed
/// between claim and record) and the next request with the key and body
/// takes the charge over. Short, so that request is the client's own
/// retry, not a 409: the gateway's retry of a call lost with a killed
/// replica arrives about five seconds later (`mesh::Mesh::new`).
pub const KEY_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(3);

/// Who owns an in-progress key: one id per request that claimed it or
/// took it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner(String);

impl KeyOwner {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const CLAIM_KEY: &str = "INSERT INTO idempotency_keys (key, request_hash, state, payment_id, created_at, owner, heartbeat_at) \
     VALUES ($1, $2, $3, NULL, $4, $5, $4) ON CONFLICT (key) DO NOTHING";
// Keys claimed before leases existed have no heartbeat: their creation
// is their last sign of life.
const GET_KEY: &str = "SELECT request_hash, state, payment_id, COALESCE(heartbeat_at, created_at) AS heartbeat_at \
     FROM idempotency_keys WHERE key = $1";
const HEARTBEAT: &str = "UPDATE idempotency_keys SET heartbeat_at = $1 \
     WHERE key = $2 AND state = $3 AND owner = $4";
// Only while the heartbeat is still the one seen stale: of two takers, the
// first moves it and the second's condition no longer holds (PostgreSQL
// re-checks it on the updated row; SQLite runs one writer at a time).
const TAKE_OVER_KEY: &str = "UPDATE idempotency_keys SET owner = $1, heartbeat_at = $2 \
     WHERE key = $3 AND state = $4 AND COALESCE(heartbeat_at, created_at) = $5";
const RELEASE_KEY: &str =
    "DELETE FROM idempotency_keys WHERE key = $1 AND state = $2 AND owner = $3";
const COMPLETE_KEY: &str = "UPDATE idempotency_keys SET state = $1, payment_id = $2 \
     WHERE key = $3 AND state = $4 AND owner = $5";
const INSERT_PAYMENT: &str = "INSERT INTO payments \
     (id, user_id, course_id, amount_cents, currency, status, decline_reason, provider_reference, idempotency_key, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const GET_PAYMENT: &str = "SELECT id, user_id, course_id, amount_cents, currency, status, decline_reason, provider_reference, created_at \
     FROM payments WHERE id = $1";
const REFUND: &str = "UPDATE payments SET status = $1 WHERE id = $2 AND status = $3";
const CLAIM_PURCHASE: &str = "INSERT INTO purchases (user_id, course_id, idempotency_key, payment_id, claimed_at) \
     VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (user_id, course_id) DO NOTHING";
const GET_PURCHASE: &str = "SELECT idempotency_key, payment_id, claimed_at FROM purchases \
     WHERE user_id = $1 AND course_id = $2";
// Only a claim still without a payment, still held by the key that was
// seen stale: of two takers, one wins.
const TAKE_OVER_PURCHASE: &str = "UPDATE purchases SET idempotency_key = $1, claimed_at = $2 \
     WHERE user_id = $3 AND course_id = $4 AND idempotency_key = $5 AND payment_id IS NULL";
const RELEASE_PURCHASE: &str = "DELETE FROM purchases \
     WHERE user_id = $1 AND course_id = $2 AND idempotency_key = $3 AND payment_id IS NULL";
const COMPLETE_PURCHASE: &str = "UPDATE purchases SET payment_id = $1 \
     WHERE user_id = $2 AND course_id = $3 AND idempotency_key = $4";
const FREE_PURCHASE: &str = "DELETE FROM purchases WHERE payment_id = $1";
const LIST_FOR_USER: &str = "SELECT id, user_id, course_id, amount_cents, currency, status, decline_reason, provider_reference, created_at \
     FROM payments WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2";

/// Claims `key` for this request: true if this request inserted the row
/// and so owns the charge, false if the key already existed.
///
/// The primary key makes this the one atomic decision among concurrent
/// requests with the same key; `ON CONFLICT DO NOTHING` turns losing it
/// into an answer rather than an error, on SQLite and PostgreSQL alike.
pub async fn claim_key(
    db: &Db,
    key: &IdempotencyKey,
    fingerprint: &RequestFingerprint,
    owner: &KeyOwner,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = db
        .run(
            Op::new("INSERT", "idempotency_keys", CLAIM_KEY),
            sqlx::query(CLAIM_KEY)
                .bind(key.as_str())
                .bind(fingerprint.as_str())
                .bind(KeyState::InProgress.as_str())
                .bind(timestamp(now))
                .bind(owner.as_str())
                .execute(db.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Renews `owner`'s claim on `key`; false if it no longer holds it (the
/// claim was taken over, or the key completed or released).
pub async fn heartbeat(
    db: &Db,
    key: &IdempotencyKey,
    owner: &KeyOwner,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = db
        .run(
            Op::new("UPDATE", "idempotency_keys", HEARTBEAT),
            sqlx::query(HEARTBEAT)
                .bind(timestamp(now))
                .bind(key.as_str())
                .bind(KeyState::InProgress.as_str())
                .bind(owner.as_str())
                .execute(db.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether an in-progress key last beaten at `heartbeat_at` has outlived
/// its lease at `now`.
pub fn lease_expired(heartbeat_at: &str, now: DateTime<Utc>) -> bool {
    heartbeat_at < timestamp(now - KEY_LEASE).as_str()
}

/// Takes over an in-progress key whose owner stopped beating at
/// `seen_heartbeat`; true if this request is now its owner.
pub async fn take_over_key(
    db: &Db,
    key: &IdempotencyKey,
    owner: &KeyOwner,
    seen_heartbeat: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = db
        .run(
            Op::new("UPDATE", "idempotency_keys", TAKE_OVER_KEY),
            sqlx::query(TAKE_OVER_KEY)
                .bind(owner.as_str())
                .bind(timestamp(now))
                .bind(key.as_str())
                .bind(KeyState::InProgress.as_str())
                .bind(seen_heartbeat)
                .execute(db.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The key's row, or `None` if nobody holds it.
pub async fn find_key(db: &Db, key: &IdempotencyKey) -> Result<Option<KeyRecord>, sqlx::Error> {
    let Some(row) = db
        .run(
            Op::new("SELECT", "idempotency_keys", GET_KEY),
            sqlx::query(GET_KEY)
                .bind(key.as_str())
                .fetch_optional(db.pool()),
        )
        .await?
    else {
        return Ok(None);
    };
    let state: String = row.try_get("state")?;
    let state = match state.as_str() {
        "in_progress" => KeyState::InProgress,
        "completed" => KeyState::Completed,
        _ => return Err(decode_error("idempotency key state", &state)),
    };
    Ok(Some(KeyRecord {
        fingerprint: RequestFingerprint::from_stored(row.try_get("request_hash")?),
        state,
        payment_id: row.try_get("payment_id")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
    }))
}

/// Gives up `owner`'s in-progress claim so the client can retry with the
/// key, and with it the learner's purchase of the course if the key
/// claimed it: in one transaction, and only while `owner` still holds the key,
/// so an owner that lost its key to a successor cannot free the
/// successor's purchase. A completed key is never released: its payment
/// is the answer for good.
pub async fn release_key(
    db: &Db,
    key: &IdempotencyKey,
    owner: &KeyOwner,
    (user_id, course_id): (&str, &str),
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let released = db
        .run(
            Op::new("DELETE", "idempotency_keys", RELEASE_KEY),
            sqlx::query(RELEASE_KEY)
                .bind(key.as_str())
                .bind(KeyState::InProgress.as_str())
                .bind(owner.as_str())
                .execute(&mut *tx),
        )
        .await?
        .rows_affected()
        == 1;
    if released {
        db.run(
            Op::new("DELETE", "purchases", RELEASE_PURCHASE),
            sqlx::query(RELEASE_PURCHASE)
                .bind(user_id)
                .bind(course_id)
                .bind(key.as_str())
                .execute(&mut *tx),
        )
        .await?;
    }
    db.run(Op::new("COMMIT", "payments", "COMMIT"), tx.commit())
        .await
}

/// Who holds a learner's purchase of a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseClaim {
    /// This charge holds it: it may call the provider.
    Held,
    /// The course is bought: by this payment.
    Bought(String),
    /// Another charge holds it and is still running.
    InFlight,
}

/// How long a claim without a payment holds the pair: far longer than a
/// charge takes (the provider's timeout and the idempotency wait are
/// seconds), so only a claim whose charge died (its replica killed
/// between claim and record) is ever taken over.
pub const PURCHASE_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Claims the learner's purchase of the course for the charge with
/// `key`, before the provider is called. The (user, course) primary key
/// makes this the one decision among concurrent charges, on any replica:
/// exactly one inserts the row.
pub async fn claim_purchase(
    db: &Db,
    user_id: &str,
    course_id: &str,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<PurchaseClaim, sqlx::Error> {
    // Bounded: each round either decides or saw the row vanish (its
    // charge released it), which a charge does once.
    for _ in 0..3 {
        let inserted = db
            .run(
                Op::new("INSERT", "purchases", CLAIM_PURCHASE),
                sqlx::query(CLAIM_PURCHASE)
                    .bind(user_id)
                    .bind(course_id)
                    .bind(key.as_str())
                    .bind(timestamp(now))
                    .execute(db.pool()),
            )
            .await?
            .rows_affected()
            == 1;
        if inserted {
            return Ok(PurchaseClaim::Held);
        }
        let Some(row) = db
            .run(
                Op::new("SELECT", "purchases", GET_PURCHASE),
                sqlx::query(GET_PURCHASE)
                    .bind(user_id)
                    .bind(course_id)
                    .fetch_optional(db.pool()),
            )
            .await?
        else {
            continue;
        };
        let holder: String = row.try_get("idempotency_key")?;
        let payment_id: Option<String> = row.try_get("payment_id")?;
        let claimed_at: String = row.try_get("claimed_at")?;
        if let Some(payment_id) = payment_id {
            return Ok(PurchaseClaim::Bought(payment_id));
        }
        // A retry of a charge whose earlier attempt claimed the pair and
        // then lost its key claim (released after a provider failure).
        if holder == key.as_str() {
            return Ok(PurchaseClaim::Held);
        }
        if claimed_at >= timestamp(now - PURCHASE_LEASE) {
            return Ok(PurchaseClaim::InFlight);
        }
        let taken = db
            .run(
                Op::new("UPDATE", "purchases", TAKE_OVER_PURCHASE),
                sqlx::query(TAKE_OVER_PURCHASE)
                    .bind(key.as_str())
                    .bind(timestamp(now))
                    .bind(user_id)
                    .bind(course_id)
                    .bind(&holder)
                    .execute(db.pool()),
            )
            .await?
            .rows_affected()
            == 1;
        if taken {
            tracing::warn!(
                stale_since = claimed_at,
                "took over a purchase claim whose charge never finished"
            );
            return Ok(PurchaseClaim::Held);
        }
    }
    Ok(PurchaseClaim::InFlight)
}

/// Stores the payment and marks its key completed, in one transaction: a
/// waiting duplicate sees either no payment and `in_progress`, or both.
/// The purchase the charge claimed is, in the same transaction, bought by
/// the payment if it was captured, and given back if it was declined.
///
/// Only `owner` may complete the key: false, with nothing written, if it
/// no longer holds it (it was too slow, and another request took the
/// charge over and may have recorded it).
pub async fn record_payment(
    db: &Db,
    outbox: &Outbox,
    key: &IdempotencyKey,
    owner: &KeyOwner,
    payment: &Payment,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let completed = db
        .run(
            Op::new("UPDATE", "idempotency_keys", COMPLETE_KEY),
            sqlx::query(COMPLETE_KEY)
                .bind(KeyState::Completed.as_str())
                .bind(&payment.id)
                .bind(key.as_str())
                .bind(KeyState::InProgress.as_str())
                .bind(owner.as_str())
                .execute(&mut *tx),
        )
        .await?
        .rows_affected()
        == 1;
    if !completed {
        // Dropping the transaction rolls it back.
        return Ok(false);
    }
    db.run(
        Op::new("INSERT", "payments", INSERT_PAYMENT),
        sqlx::query(INSERT_PAYMENT)
            .bind(&payment.id)
            .bind(&payment.user_id)
            .bind(&payment.course_id)
            .bind(payment.amount_cents)
            .bind(&payment.currency)
            .bind(payment.status.as_str())
            .bind(payment.decline_reason.map(DeclineReason::as_str))
            .bind(payment.provider_reference.as_deref())
            .bind(key.as_str())
            .bind(timestamp(payment.created_at))
            .execute(&mut *tx),
    )
    .await?;
    let purchase = if payment.status == PaymentStatus::Captured {
        Op::new("UPDATE", "purchases", COMPLETE_PURCHASE)
    } else {
        Op::new("DELETE", "purchases", RELEASE_PURCHASE)
    };
    let statement = if payment.status == PaymentStatus::Captured {
        sqlx::query(COMPLETE_PURCHASE).bind(&payment.id)
    } else {
        sqlx::query(RELEASE_PURCHASE)
    };
    db.run(
        purchase,
        statement
            .bind(&payment.user_id)
            .bind(&payment.course_id)
            .bind(key.as_str())
            .execute(&mut *tx),
    )
    .await?;
    if payment.status == PaymentStatus::Captured {
        let captured = PaymentCaptured {
            payment_id: payment.id.clone(),
            user_id: payment.user_id.clone(),
            course_id: payment.course_id.clone(),
            amount_cents: payment.amount_cents,
            currency: payment.currency.clone(),
            captured_at: payment.created_at,
        };
        outbox
            .enqueue(
                &mut tx,
                PAYMENT_CAPTURED,
                PAYMENT_CAPTURED_VERSION,
                captured,
            )
            .await?;
    }
    db.run(Op::new("COMMIT", "payments", "COMMIT"), tx.commit())
        .await?;
    outbox.committed();
    Ok(true)
}

/// What a refund found.
#[derive(Debug)]
pub enum Refund {
    /// Refunded now; `payment.refunded` is in the outbox.
    Refunded(Payment),
    /// Not captured (declined, or refunded before): unchanged.
    Unchanged(Payment),
    NotFound,
}

/// Refunds a captured payment: its status and its `payment.refunded`
/// event commit together. Only a captured payment changes, so a repeated
/// or concurrent refund refunds (and publishes) once.
pub async fn refund(
    db: &Db,
    outbox: &Outbox,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Result<Refund, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let updated = db
        .run(
            Op::new("UPDATE", "payments", REFUND),
            sqlx::query(REFUND)
                .bind(PaymentStatus::Refunded.as_str())
                .bind(payment_id)
                .bind(PaymentStatus::Captured.as_str())
                .execute(&mut *tx),
        )
        .await?;
    if updated.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(match get_payment(db, payment_id).await? {
            Some(payment) => Refund::Unchanged(payment),
            None => Refund::NotFound,
        });
    }
    let row = db
        .run(
            Op::new("SELECT", "payments", GET_PAYMENT),
            sqlx::query(GET_PAYMENT)
                .bind(payment_id)
                .fetch_one(&mut *tx),
        )
        .await?;
    let refunded = payment(&row)?;
    // The learner may buy the course again.
    db.run(
        Op::new("DELETE", "purchases", FREE_PURCHASE),
        sqlx::query(FREE_PURCHASE)
            .bind(payment_id)
            .execute(&mut *tx),
    )
    .await?;
    let event = PaymentRefunded {
        payment_id: refunded.id.clone(),
        user_id: refunded.user_id.clone(),
        course_id: refunded.course_id.clone(),
        amount_cents: refunded.amount_cents,
        currency: refunded.currency.clone(),
        refunded_at: now,
    };
    outbox
        .enqueue(&mut tx, PAYMENT_REFUNDED, PAYMENT_REFUNDED_VERSION, event)
        .await?;
    db.run(Op::new("COMMIT", "payments", "COMMIT"), tx.commit())
        .await?;
    outbox.committed();
    Ok(Refund::Refunded(refunded))
}

/// The payment, or `None`.
pub async fn get_payment(db: &Db, id: &str) -> Result<Option<Payment>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "payments", GET_PAYMENT),
        sqlx::query(GET_PAYMENT).bind(id).fetch_optional(db.pool()),
    )
    .await?
    .as_ref()
    .map(payment)
    .transpose()
}

/// A user's payments, newest first, at most `limit`.
pub async fn list_for_user(
    db: &Db,
    user_id: &str,
    limit: i64,
) -> Result<Vec<Payment>, sqlx::Error> {
    db.run(
        Op::new("SELECT", "payments", LIST_FOR_USER),
        sqlx::query(LIST_FOR_USER)
            .bind(user_id)
            .bind(limit)
            .fetch_all(db.pool()),
    )
    .await?
    .iter()
    .map(payment)
    .collect()
}
