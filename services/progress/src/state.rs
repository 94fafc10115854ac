//! What every handler can reach: the service's state, built by
//! [`crate::build`] and shared by its routes.

use std::sync::Arc;

use axum::extract::FromRef;
use courses::CoursesClient;
use mesh::{Db, auth::TokenKeys, events::Outbox};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub courses: CoursesClient,
    /// `course.completed` goes here, in the completing transaction.
    pub outbox: Outbox,
    /// Verifies the callers' tokens: every route is a user's own.
    pub tokens: Arc<TokenKeys>,
}

/// What the [`mesh::auth::Caller`] extractor verifies tokens with.
impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}
