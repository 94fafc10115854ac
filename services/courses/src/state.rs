//! What every handler can reach: the service's state, built by
//! [`crate::build`] and shared by its routes.

use mesh::Db;

use crate::cache::CatalogCache;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    /// The catalog as already sent, read through on a miss.
    pub cache: CatalogCache,
}
