//! What the console keeps of the scenario runs it started.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use serde::Serialize;

use crate::run::ProgressLine;

/// Runs remembered (the oldest finished ones are forgotten first).
pub(super) const KEPT_RUNS: usize = 20;

pub(super) struct Runs {
    pub(super) runs: Mutex<VecDeque<Arc<Mutex<RunView>>>>,
    /// The background scenario's process: being started, or running.
    pub(super) background: Mutex<Background>,
    /// True while an operator's run is on (or starting): the background
    /// loop waits.
    pub(super) paused: tokio::sync::watch::Sender<bool>,
}

/// Where the background loop is. Its check of `paused` and the move to
/// `Starting` happen under one lock, and an operator's run sets `paused`
/// before it looks here, so it always sees a background run it must wait
/// for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Background {
    #[default]
    Idle,
    Starting,
    Running(u32),
}

impl Default for Runs {
    fn default() -> Self {
        Self {
            runs: Mutex::default(),
            background: Mutex::default(),
            paused: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// What the console shows of a run.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunView {
    pub(super) id: String,
    pub(super) scenario: String,
    pub(super) duration_scale: f64,
    /// `running`, `passed`, `failed`, `stopped` (and judged), `error`
    /// (could not be made).
    pub(super) state: &'static str,
    pub(super) started_at: String,
    pub(super) finished_at: Option<String>,
    pub(super) progress: Option<ProgressLine>,
    pub(super) verdict: Option<VerdictView>,
    pub(super) report_url: Option<String>,
    pub(super) message: Option<String>,
    #[serde(skip)]
    pub(super) pid: Option<u32>,
    #[serde(skip)]
    pub(super) out: PathBuf,
    #[serde(skip)]
    pub(super) stop_asked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct VerdictView {
    pub(super) passed: bool,
    pub(super) aborted: Option<String>,
    pub(super) checks: Vec<CheckView>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct CheckView {
    pub(super) name: String,
    pub(super) passed: bool,
    pub(super) detail: String,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
