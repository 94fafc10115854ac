//! What every handler can reach: the service's state, built by
//! [`crate::build`] and shared by its routes.

use mesh::Db;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
}
