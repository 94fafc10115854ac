//! The public API, one file per group; everything is under `/api`.

pub mod accounts;
pub mod catalog;
pub mod checkout;
pub mod learning;
