//! What a run leaves behind: `summary.json` and `report.html`.

pub mod summary;

pub use summary::Summary;
