//! loadgen: load generator, scenario runner and local launcher for LearnSphere.

#![forbid(unsafe_code)]

pub mod capture;
pub mod check;
mod control;
pub mod engine;
pub mod launcher;
pub mod receiver;
pub mod report;
pub mod scrape;
