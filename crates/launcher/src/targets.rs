//! The discovery targets file: Prometheus `file_sd` JSON, read by a local
//! Prometheus (what to scrape) and by the mesh (`file_sd:PATH`: where a
//! destination's replicas are).
//!
//! One target group per replica, so each carries its `replica` label:
//!
//! ```json
//! [{"targets":["127.0.0.1:8083"],"labels":{"job":"payments","replica":"0","service":"payments"}},
//!  {"targets":["127.0.0.1:8070"],"labels":{"job":"launcher","service":"launcher"}}]
//! ```
//!
//! The mesh keeps the groups whose `service` (or `job`) label is the
//! destination's name. Only ready replicas are listed.

use std::{collections::BTreeMap, io, path::Path};

use serde::{Deserialize, Serialize};

/// One `file_sd` target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// `host:port`, no scheme (Prometheus adds it).
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

// === impl TargetGroup ===

impl TargetGroup {
    pub(super) fn replica(service: &str, replica: usize, address: &str) -> Self {
        Self {
            targets: vec![address.to_owned()],
            labels: BTreeMap::from([
                ("job".to_owned(), service.to_owned()),
                ("service".to_owned(), service.to_owned()),
                ("replica".to_owned(), replica.to_string()),
            ]),
        }
    }

    /// The launcher's control API, so Prometheus scrapes its restart
    /// counter beside the services.
    pub(super) fn launcher(address: &str) -> Self {
        Self {
            targets: vec![address.to_owned()],
            labels: BTreeMap::from([
                ("job".to_owned(), "launcher".to_owned()),
                ("service".to_owned(), "launcher".to_owned()),
            ]),
        }
    }

    /// The group's label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

pub(super) fn render(groups: &[TargetGroup]) -> Vec<u8> {
    // A Vec of plain structs always serializes.
    serde_json::to_vec_pretty(groups).unwrap_or_default()
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: a reader (Prometheus, the mesh) sees the old file or the new
/// one, never half of one. The temporary name does not end in `.json`, so
/// a Prometheus globbing `*.json` never reads it either.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Reads a targets file the launcher wrote.
pub fn read_targets(path: &Path) -> anyhow::Result<Vec<TargetGroup>> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_replica_in_prometheus_file_sd_shape() {
        let groups = [
            TargetGroup::replica("payments", 0, "127.0.0.1:8083"),
            TargetGroup::replica("payments", 1, "127.0.0.1:41234"),
            TargetGroup::launcher("127.0.0.1:8070"),
        ];
        let json: serde_json::Value = serde_json::from_slice(&render(&groups)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"targets": ["127.0.0.1:8083"], "labels": {"job": "payments", "service": "payments", "replica": "0"}},
                {"targets": ["127.0.0.1:41234"], "labels": {"job": "payments", "service": "payments", "replica": "1"}},
                {"targets": ["127.0.0.1:8070"], "labels": {"job": "launcher", "service": "launcher"}},
            ])
        );
    }

    #[test]
    fn written_files_read_back_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sd").join("targets.json");
        let groups = vec![TargetGroup::replica("users", 2, "127.0.0.1:1")];
        write_atomically(&path, &render(&groups)).unwrap();
        write_atomically(&path, &render(&groups[..0])).unwrap();
        assert_eq!(read_targets(&path).unwrap(), vec![]);
        write_atomically(&path, &render(&groups)).unwrap();
        assert_eq!(read_targets(&path).unwrap(), groups);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["targets.json"]);
    }
}
