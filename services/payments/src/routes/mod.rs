//! HTTP routes, one file per group.

pub mod payments;
