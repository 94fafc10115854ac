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
//! A claim is a lease. Its owner (one id per request) renews a heartbeat
//! every [`db::KEY_HEARTBEAT`] while it works; a duplicate that finds the
//! heartbeat older than [`db::KEY_LEASE`] takes for dead the replica that
//! claimed the key (killed between claim and record) and takes the charge
//! over: it prices, claims the purchase (already the key's) and calls the
//! provider with the same key. The provider call carries the key, which a
//! real processor uses to return the first charge instead of making a
//! second, so a takeover after the dead owner's provider call charged
//! nothing twice; the simulated provider keeps no such memory, and the
//! books hold one payment either way. Only the owner may complete or
//! release the key: an owner that was merely slow finds its key taken and
//! answers with what its successor recorded.

use std::time::Duration;

use chrono::{SubsecRound as _, Utc};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::{
    db::{self, KeyOwner, KeyRecord, KeyState, PurchaseClaim},
    domain::{IdempotencyKey, NewCharge},
    error::{AppError, Result},
    model::{Charge, Payment, PaymentStatus},
    provider::Decision,
    state::AppState,
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
    let owner = KeyOwner::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut owns = db::claim_key(&state.db, &key, &fingerprint, &owner, Utc::now()).await?;
        if !owns {
            match db::find_key(&state.db, &key).await? {
                Some(record) if record.fingerprint != fingerprint => {
                    return Err(AppError::IdempotencyKeyReused);
                }
                Some(KeyRecord {
                    state: KeyState::Completed,
                    payment_id,
                    ..
                }) => return replay(state, payment_id).await,
                // Another request owns the key. If its heartbeat stopped,
                // it died mid-charge: take over. Else wait, within bounds.
                Some(KeyRecord { heartbeat_at, .. }) => {
                    let now = Utc::now();
                    if db::lease_expired(&heartbeat_at, now) {
                        owns =
                            db::take_over_key(&state.db, &key, &owner, &heartbeat_at, now).await?;
                        if owns {
                            tracing::warn!(
                                last_heartbeat = heartbeat_at,
                                "took over an Idempotency-Key whose owner stopped mid-charge"
                            );
                        }
                    }
                    if !owns {
                        if Instant::now() + backoff > deadline {
                            return Err(AppError::RequestInProgress);
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
                // The owner's provider call failed and it released the key
                // between our claim and our read: claim it again, unless
                // the wait is over (so the loop is bounded whatever others
                // do).
                None => {
                    if Instant::now() > deadline {
                        return Err(AppError::RequestInProgress);
                    }
                    continue;
                }
            }
        }
        // This request owns the key. The charge runs in its own task: if
        // the client hangs up, the handler's future is dropped, but the
        // provider call and the record still finish, so the key never
        // stays `in_progress` and the client's retry replays the result.
        let task = tokio::spawn(
            execute(state.clone(), key.clone(), owner.clone(), charge.clone())
                .instrument(tracing::Span::current()),
        );
        if let Some(payment) = task.await?? {
            return Ok(Charge {
                payment,
                replayed: false,
            });
        }
        // Our claim was taken over while we worked: answer with what the
        // successor records, as any duplicate would.
        if Instant::now() > deadline {
            return Err(AppError::RequestInProgress);
        }
    }
}

/// The stored answer of a completed key.
async fn replay(state: &AppState, payment_id: Option<String>) -> Result<Charge> {
    let payment = match payment_id {
        Some(id) => db::get_payment(&state.db, &id).await?,
        None => None,
    };
    // `record_payment` writes both in one transaction, so this only fails
    // if someone edited the tables by hand.
    let payment = payment.ok_or_else(|| {
        sqlx::Error::Decode("completed idempotency key without its payment".into())
    })?;
    tracing::info!(payment.id = %payment.id, "replaying the stored answer for this Idempotency-Key");
    Ok(Charge {
        payment,
        replayed: true,
    })
}

/// Renews `owner`'s claim on `key` until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(state: &AppState, key: &IdempotencyKey, owner: &KeyOwner) -> Self {
        let (db, key, owner) = (state.db.clone(), key.clone(), owner.clone());
        Self(tokio::spawn(async move {
            let mut beat = tokio::time::interval(db::KEY_HEARTBEAT);
            beat.tick().await;
            loop {
                beat.tick().await;
                match db::heartbeat(&db, &key, &owner, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            "lost the Idempotency-Key to another request; stopping the heartbeat"
                        );
                        return;
                    }
                    // The next beat may get through; the lease allows
                    // missing two.
                    Err(error) => {
                        tracing::warn!(%error, "could not renew the Idempotency-Key claim")
                    }
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The owner's part: price the charge from the catalog, claim the
/// learner's purchase of the course, call the provider, then record the
/// payment, renewing the key's lease all along. Whatever stops it before
/// the provider answers gives the key and the claim back: nothing was
/// charged, and a retry starts afresh. `None` if the key was taken over
/// before the payment could be recorded.
async fn execute(
    state: AppState,
    key: IdempotencyKey,
    owner: KeyOwner,
    charge: NewCharge,
) -> Result<Option<Payment>> {
    let _heartbeat = Heartbeat::start(&state, &key, &owner);
    let user_id = charge.user_id.as_str();
    let course_id = charge.course_id.as_str();
    if let Err(error) = check_price(&state, &charge).await {
        release(&state, &key, &owner, &charge).await;
        return Err(error);
    }
    let refused = match db::claim_purchase(&state.db, user_id, course_id, &key, Utc::now()).await {
        Ok(PurchaseClaim::Held) => None,
        Ok(PurchaseClaim::Bought(payment_id)) => Some(AppError::AlreadyPurchased(payment_id)),
        Ok(PurchaseClaim::InFlight) => Some(AppError::PurchaseInProgress),
        Err(error) => Some(error.into()),
    };
    if let Some(error) = refused {
        release(&state, &key, &owner, &charge).await;
        return Err(error);
    }
    let answer = match state.provider.charge(&key, &charge.amount).await {
        Ok(answer) => answer,
        Err(error) => {
            // Nothing was charged: free the key so a retry is a new attempt.
            release(&state, &key, &owner, &charge).await;
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
    match db::record_payment(&state.db, &state.outbox, &key, &owner, &payment).await {
        Ok(true) => {
            tracing::info!(
                payment.id = %payment.id,
                status = payment.status.as_str(),
                "payment recorded"
            );
            Ok(Some(payment))
        }
        Ok(false) => {
            tracing::warn!(
                payment.provider.reference = payment.provider_reference.as_deref(),
                "the Idempotency-Key was taken over before this charge was recorded; \
                 answering with what the new owner records",
            );
            Ok(None)
        }
        Err(error) => {
            // The provider acted but we could not record it. Keeping the
            // claim would answer every retry with 409 until its lease ran
            // out; releasing it lets the client retry now. The provider
            // call carries the key, which a real processor uses to return
            // the first charge instead of a second.
            tracing::error!(
                payment.id = %payment.id,
                payment.provider.reference = payment.provider_reference.as_deref(),
                "provider answered but the payment could not be recorded",
            );
            release(&state, &key, &owner, &charge).await;
            Err(error.into())
        }
    }
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

/// Gives back the key and the purchase it claimed, while `owner` still
/// holds the key; a failure is logged, since the caller is already
/// answering with the error that made it release (the key's lease frees
/// both later).
async fn release(state: &AppState, key: &IdempotencyKey, owner: &KeyOwner, charge: &NewCharge) {
    let purchase = (charge.user_id.as_str(), charge.course_id.as_str());
    if let Err(error) = db::release_key(&state.db, key, owner, purchase).await {
        tracing::error!(%error, "could not release the Idempotency-Key claim; its lease will");
    }
}
