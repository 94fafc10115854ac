//! What every handler can reach: the service's state, built by
//! [`crate::build`] and shared by its routes.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use mesh::{Db, auth::TokenKeys, events::Outbox};

use crate::provider::Provider;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub provider: Provider,
    /// `payment.captured` goes here, in the payment's transaction.
    pub outbox: Outbox,
    /// How long a duplicate request waits for the key's owner (see
    /// [`crate::config::Config::idempotency_wait`]).
    pub idempotency_wait: Duration,
    /// Verifies the callers' tokens: every route is a user's own.
    pub tokens: Arc<TokenKeys>,
    /// The catalog every charge is priced from.
    pub courses: courses::CoursesClient,
    /// The currencies charges may be in.
    pub currencies: Arc<[String]>,
}

/// What the [`mesh::auth::Caller`] extractor verifies tokens with.
impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}
