//! What every handler can reach: the service's state, built by
//! [`crate::build`] and shared by its routes.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use mesh::{Db, auth::TokenKeys, events::Outbox};

use crate::{lockout::FailedLogins, password::PasswordHasher};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub passwords: PasswordHasher,
    pub tokens: Arc<TokenKeys>,
    /// Lifetime of the tokens issued at login.
    pub token_ttl: Duration,
    /// `user.registered` goes here, in the account's transaction.
    pub outbox: Outbox,
    /// Failed logins per account and source, in this replica's memory.
    pub failed_logins: FailedLogins,
}

/// What the [`mesh::auth::Caller`] extractor verifies tokens with.
impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}
