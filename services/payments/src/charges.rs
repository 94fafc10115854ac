//! Charging exactly once per `Idempotency-Key` (Stripe's semantics).
//!
//! 1. Claim the key by inserting its row (`in_progress`, with the request's
//!    fingerprint). The primary key lets one request win; every concurrent
//!    duplicate sees the row instead.
//! 2. The winner calls the provider, then stores the payment and marks the
//!    key `completed` in one transaction.
//! 3. A duplicate with the same body waits for `completed` and replays the
//!    stored payment; one with a different body is rejected. If the
//!    provider fails, the claim is deleted, so a retry starts afresh.
//!
//! The provider is called only by the request that inserted the row, so
//! any number of duplicates, on any number of replicas sharing the
//! database, cause one provider call.
//!
//! Before it calls the provider, the key's owner also checks the charge
//! against the catalog (the amount and currency must be the course's
//! price) and claims the learner's purchase of the course
//! ([`db::claim_purchase`]): one purchase per learner and course, so a
//! double-click with two keys charges once, and the second click is told
//! the course is bought, or being bought.
//!
//! Known limit: a replica killed between claim and record leaves its key
//! `in_progress`, and duplicates get 409 until the row is deleted. A
//! production system would give claims a lease (Stripe expires keys after
//! 24 hours) and reconcile with the provider, which holds the key too.

use std::time::Duration;

use chrono::{SubsecRound as _, Utc};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::{
    AppState,
    db::{self, KeyRecord, KeyState, PurchaseClaim},
    domain::{IdempotencyKey, NewCharge},
    error::{AppError, Result},
    model::{Charge, Payment, PaymentStatus},
    provider::Decision,
};

/// First pause of a duplicate waiting for the key's owner; it doubles up to
/// [`MAX_BACKOFF`]. Short, because a provider call takes tens of
/// milliseconds; capped, so a long wait costs a query every 100 ms at most.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Charges `charge` once for `key`, or returns what the first request with
/// `key` got (`replayed: true`). A declined charge is a `Payment` with
/// status `declined`, replayed like any other.
pub async fn charge(state: &AppState, key: IdempotencyKey, charge: NewCharge) -> Result<Charge> {
    let fingerprint = charge.fingerprint();
    let deadline = Instant::now() + state.idempotency_wait;
    let mut backoff = FIRST_BACKOFF;
    loop {
        if db::claim_key(&state.db, &key, &fingerprint, Utc::now()).await? {
            // The charge runs in its own task: if the client hangs up, the
            // handler's future is dropped, but the provider call and the
            // record still finish, so the key never stays `in_progress`
            // and the client's retry replays the result.
            let task = tokio::spawn(
                execute(state.clone(), key, charge).instrument(tracing::Span::current()),
            );
            let payment = task.await??;
            return Ok(Charge {
                payment,
                replayed: false,
            });
        }
        match db::find_key(&state.db, &key).await? {
            Some(record) if record.fingerprint != fingerprint => {
                return Err(AppError::IdempotencyKeyReused);
            }
            Some(KeyRecord {
                state: KeyState::Completed,
                payment_id,
                ..
            }) => {
                let payment = match payment_id {
                    Some(id) => db::get_payment(&state.db, &id).await?,
                    None => None,
                };
                // `record_payment` writes both in one transaction, so this
                // only fails if someone edited the tables by hand.
                let payment = payment.ok_or_else(|| {
                    sqlx::Error::Decode("completed idempotency key without its payment".into())
                })?;
                tracing::info!(payment.id = %payment.id, "replaying the stored answer for this Idempotency-Key");
                return Ok(Charge {
                    payment,
                    replayed: true,
                });
            }
            // Another request owns the key: wait for it, within bounds.
            Some(_) => {
                if Instant::now() + backoff > deadline {
                    return Err(AppError::RequestInProgress);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            // The owner's provider call failed and it released the key
            // between our claim and our read: claim it again, unless the
            // wait is over (so the loop is bounded whatever others do).
            None => {
                if Instant::now() > deadline {
                    return Err(AppError::RequestInProgress);
                }
            }
        }
    }
}

/// The owner's part: price the charge from the catalog, claim the
/// learner's purchase of the course, call the provider, then record the
/// payment. Whatever stops it before the provider answers gives the key
/// and the claim back: nothing was charged, and a retry starts afresh.
async fn execute(state: AppState, key: IdempotencyKey, charge: NewCharge) -> Result<Payment> {
    let user_id = charge.user_id.as_str();
    let course_id = charge.course_id.as_str();
    if let Err(error) = check_price(&state, &charge).await {
        release(&state, &key).await;
        return Err(error);
    }
    match db::claim_purchase(&state.db, user_id, course_id, &key, Utc::now()).await {
        Ok(PurchaseClaim::Held) => {}
        Ok(PurchaseClaim::Bought(payment_id)) => {
            release(&state, &key).await;
            return Err(AppError::AlreadyPurchased(payment_id));
        }
        Ok(PurchaseClaim::InFlight) => {
            release(&state, &key).await;
            return Err(AppError::PurchaseInProgress);
        }
        Err(error) => {
            release(&state, &key).await;
            return Err(error.into());
        }
    }
    let answer = match state.provider.charge(&key, &charge.amount).await {
        Ok(answer) => answer,
        Err(error) => {
            // Nothing was charged: free the key so a retry is a new attempt.
            release_purchase(&state, &charge, &key).await;
            release(&state, &key).await;
            return Err(error.into());
        }
    };
    let (status, decline_reason) = match answer.decision {
        Decision::Approved => (PaymentStatus::Captured, None),
        Decision::Declined(reason) => (PaymentStatus::Declined, Some(reason)),
    };
    let payment = Payment {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        course_id: course_id.to_owned(),
        amount_cents: charge.amount.cents(),
        currency: charge.amount.currency().as_str().to_owned(),
        status,
        decline_reason,
        provider_reference: Some(answer.reference),
        // The precision the database stores, so the first answer and
        // every replay carry the same timestamp.
        created_at: Utc::now().trunc_subsecs(6),
    };
    if let Err(error) = db::record_payment(&state.db, &state.outbox, &key, &payment).await {
        // The provider acted but we could not record it. Keeping the claim
        // would answer every retry with 409 forever; releasing it lets the
        // client retry. The provider call carries the key, which a real
        // processor uses to return the first charge instead of a second.
        tracing::error!(
            payment.id = %payment.id,
            payment.provider.reference = payment.provider_reference.as_deref(),
            "provider answered but the payment could not be recorded",
        );
        release_purchase(&state, &charge, &key).await;
        release(&state, &key).await;
        return Err(error.into());
    }
    Ok(payment)
}

/// The charge must be the course's price, in an allowed currency: the
/// client says what it agreed to pay, and the catalog says what the
/// course costs. Any difference charges nothing.
async fn check_price(state: &AppState, charge: &NewCharge) -> Result<()> {
    let course_id = charge.course_id.as_str();
    let course = state.courses.get(course_id).await.map_err(|e| {
        if e.status() == Some(http::StatusCode::NOT_FOUND) && e.code() == Some("not_found") {
            AppError::UnknownCourse(course_id.to_owned())
        } else {
            AppError::CatalogUnavailable(e)
        }
    })?;
    let price = &course.summary;
    if price.price_cents <= 0 {
        return Err(AppError::CourseIsFree(course_id.to_owned()));
    }
    let (amount_cents, currency) = (charge.amount.cents(), charge.amount.currency().as_str());
    if price.price_cents != amount_cents || price.currency != currency {
        return Err(AppError::PriceMismatch {
            course: course_id.to_owned(),
            price_cents: price.price_cents,
            price_currency: price.currency.clone(),
            amount_cents,
            currency: currency.to_owned(),
        });
    }
    Ok(())
}

/// Gives back a purchase claim; a failure is logged (the claim's lease
/// frees it later).
async fn release_purchase(state: &AppState, charge: &NewCharge, key: &IdempotencyKey) {
    let released = db::release_purchase(
        &state.db,
        charge.user_id.as_str(),
        charge.course_id.as_str(),
        key,
    )
    .await;
    if let Err(error) = released {
        tracing::error!(%error, "could not release the purchase claim; its lease will");
    }
}

/// Deletes an in-progress claim; a failure is logged, since the caller is
/// already answering with the error that made it release.
async fn release(state: &AppState, key: &IdempotencyKey) {
    if let Err(error) = db::release_key(&state.db, key).await {
        tracing::error!(%error, "could not release the Idempotency-Key claim; it stays in progress");
    }
}
