//! The events users publishes (docs/events.md), through its outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `user.registered`: an account was created.
pub const USER_REGISTERED: &str = "user.registered";
/// The `schema_version` of [`UserRegistered`].
pub const USER_REGISTERED_VERSION: u32 = 1;

/// `data` of a `user.registered` event, schema version 1. No email: the
/// consumers need none, and an event stream is one more place personal
/// data would have to be erased from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: String,
    pub display_name: String,
    pub registered_at: DateTime<Utc>,
}
