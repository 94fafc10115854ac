//! HTTP routes, one file per group.

pub mod enrollments;
pub mod lessons;
pub mod profiles;
