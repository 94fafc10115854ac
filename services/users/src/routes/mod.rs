//! HTTP routes, one file per group.

pub mod sessions;
pub mod users;
