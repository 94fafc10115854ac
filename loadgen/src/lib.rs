//! loadgen: load generator, scenario runner and local launcher for LearnSphere.

#![forbid(unsafe_code)]

pub mod capture;
pub mod check;
pub mod engine;
pub mod expect;
pub mod human;
pub mod journeys;
pub mod launcher;
pub mod otlp;
pub mod platform;
pub mod receiver;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scrape;
pub mod stage;
pub mod summary;
pub mod system;
pub mod timeline;
pub mod verdict;
