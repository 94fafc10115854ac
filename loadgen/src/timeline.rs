//! Placeholder until the timeline runner lands.
use std::time::Duration;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Event {
    at: String,
    #[serde(flatten)]
    rest: toml::Table,
}

impl Event {
    pub fn at(&self) -> Duration {
        humantime::parse_duration(&self.at).unwrap_or_default()
    }
    pub fn scaled(self, _k: f64) -> Self {
        let _ = &self.rest;
        self
    }
}
