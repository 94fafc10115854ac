//! What every handler can reach: the service's state, built by
//! [`crate::build`] and shared by its routes.

use std::sync::Arc;

use axum::extract::FromRef;
use courses::CoursesClient;
use mesh::auth::TokenKeys;
use payments::PaymentsClient;
use progress::ProgressClient;
use users::UsersClient;

/// What every handler can reach: a typed client per service, and the
/// token verifier.
#[derive(Clone)]
pub struct AppState {
    pub users: UsersClient,
    pub courses: CoursesClient,
    pub payments: PaymentsClient,
    pub progress: ProgressClient,
    pub tokens: Arc<TokenKeys>,
}

impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}
