//! HTTP routes, one file per group.

pub mod courses;
