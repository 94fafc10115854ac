//! What a run says while it runs, besides the progress line on a
//! terminal: `--progress-json` for a program watching it (the operator
//! console), and what Ctrl-C or SIGTERM does (end the schedule early; the
//! run is still judged and the system restored).

use std::time::Duration;

use load_engine::{Live, Recent};
use tokio::task::JoinHandle;

/// One line of `--progress-json`: the last five seconds of the run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ProgressLine {
    pub elapsed_seconds: f64,
    pub planned_seconds: f64,
    /// What the timeline is doing (`payments down`), or empty.
    pub phase: String,
    /// Journeys due and started per second.
    pub target_rate: f64,
    pub achieved_rate: f64,
    /// Corrected latency of the journeys completed in the window.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Journeys failed and completed in the window.
    pub errors: u64,
    pub error_rate: f64,
    pub completed: u64,
    pub in_flight: u64,
}

impl From<&Recent> for ProgressLine {
    fn from(r: &Recent) -> Self {
        Self {
            elapsed_seconds: r.elapsed.as_secs_f64(),
            planned_seconds: r.planned.as_secs_f64(),
            phase: r.phase.clone(),
            target_rate: r.target_rate,
            achieved_rate: r.achieved_rate,
            p50_ms: r.p50.as_secs_f64() * 1e3,
            p99_ms: r.p99.as_secs_f64() * 1e3,
            errors: r.errors,
            error_rate: r.error_rate,
            completed: r.completed,
            in_flight: r.in_flight,
        }
    }
}

/// `--progress-json`: a line a second until aborted.
async fn print_progress(live: Live) {
    use std::io::Write as _;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let line = ProgressLine::from(&live.recent(Duration::from_secs(5)));
        let json = serde_json::json!({ "progress": line });
        let mut out = std::io::stdout().lock();
        // A reader that went away is not the run's problem.
        let _ = writeln!(out, "{json}");
        let _ = out.flush();
    }
}

/// The tasks that watch a run while it schedules.
pub(super) struct Watchers {
    progress_json: Option<JoinHandle<()>>,
}

impl Watchers {
    pub(super) fn start(live: &Live, progress_json: bool) -> Self {
        // Left running to the end of the process: once the handler is
        // installed the signal no longer ends the process by itself, so a
        // second one must.
        tokio::spawn({
            let live = live.clone();
            async move {
                mesh::server::shutdown_signal().await;
                eprintln!(
                    "interrupted: stopping the schedule; the run is judged on what ran (again to quit at once)"
                );
                live.stop();
                mesh::server::shutdown_signal().await;
                eprintln!("interrupted again: quitting");
                std::process::exit(130);
            }
        });
        Self {
            progress_json: progress_json.then(|| tokio::spawn(print_progress(live.clone()))),
        }
    }

    /// The run has finished scheduling: no more progress lines.
    pub(super) fn abort(self) {
        if let Some(task) = self.progress_json {
            task.abort();
        }
    }
}
