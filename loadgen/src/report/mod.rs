//! What a run leaves behind: `summary.json` for machines (its schema is
//! `docs/summary.schema.json`), `report.html` for people, and the table
//! printed at the end of the run.

mod chart;
// `attr_text` is also how `loadgen receive` prints a field.
pub(crate) mod format;
pub mod html;
mod logs;
pub mod table;
mod waterfall;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;

use otlp_sink::CapturedTrace;

use crate::summary::Summary;

/// The file names [`write`] uses inside the output directory.
pub const SUMMARY_FILE: &str = "summary.json";
pub const HTML_FILE: &str = "report.html";

/// Writes `summary.json` and `report.html` into `dir`, creating it (and its
/// parents) if needed. Each file is written beside its final name and
/// renamed into place, so a reader never sees half a file and an earlier
/// report is only replaced by a complete one.
pub fn write(
    dir: &Path,
    summary: &Summary,
    traces: &BTreeMap<String, CapturedTrace>,
) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| with_path(e, "create", dir))?;

    let json = serde_json::to_vec_pretty(summary).map_err(io::Error::other)?;
    replace(&dir.join(SUMMARY_FILE), &json)?;
    replace(
        &dir.join(HTML_FILE),
        html::render(summary, traces).as_bytes(),
    )
}

/// The trace ids of the report's sample journeys, slowest first then
/// failed, each once: what to ask the capture for at the end of a run
/// (`receiver.traces(report::sample_trace_ids(&summary))`).
pub fn sample_trace_ids(summary: &Summary) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for id in summary
        .slowest
        .iter()
        .chain(&summary.failed)
        .filter_map(|s| s.trace_id.as_deref())
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let partial = path.with_extension("partial");
    let written = fs::File::create(&partial).and_then(|file| {
        let mut file = BufWriter::new(file);
        file.write_all(contents)?;
        file.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    });
    written
        .and_then(|()| fs::rename(&partial, path))
        .map_err(|e| {
            let _ = fs::remove_file(&partial);
            with_path(e, "write", path)
        })
}

/// io errors do not name the file; the person running loadgen needs it.
fn with_path(error: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot {action} {}: {error}", path.display()),
    )
}
