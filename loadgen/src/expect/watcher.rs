//! The watcher: scrapes every replica of the services the expectations
//! name, once a round, while a run lasts.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::{Instant, MissedTickBehavior};

use super::{Expectation, Observations};
use crate::{human::error_chain, platform::Platform};

/// Scrapes the services the expectations name while a run lasts.
pub struct Watcher {
    platform: Arc<dyn Platform>,
    observations: Observations,
    interval: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("platform", &self.platform.name())
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    pub fn new(platform: Arc<dyn Platform>, expectations: Vec<Expectation>) -> Self {
        Self {
            platform,
            observations: Observations::new(expectations),
            interval: Duration::from_secs(1),
            http: reqwest::Client::new(),
        }
    }

    /// Scrape every `interval` instead of every second.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Scrapes a round at once, then every interval until `stop`
    /// completes, then one last round (what happened in the last second
    /// counts too); returns what it saw. Rounds are `t0`-relative.
    pub async fn run(mut self, t0: Instant, stop: impl Future<Output = ()>) -> Observations {
        if self.observations.services().is_empty() {
            return self.observations;
        }
        let mut tick = tokio::time::interval(self.interval);
        // A slow round (a hung replica) delays the next instead of
        // bunching scrapes up afterwards.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = tick.tick() => self.round(t0).await,
            }
        }
        self.round(t0).await;
        self.observations
    }

    async fn round(&mut self, t0: Instant) {
        self.observations.begin_round(t0.elapsed().as_secs_f64());
        for service in self.observations.services() {
            let replicas = match self.platform.replicas(&service).await {
                Ok(replicas) => replicas,
                Err(error) => {
                    self.observations
                        .record_discovery_failure(&service, error.to_string());
                    continue;
                }
            };
            let scrapes = futures::future::join_all(
                replicas
                    .iter()
                    .map(|r| scrape(&self.http, &r.base_url, self.interval)),
            )
            .await;
            for (replica, text) in replicas.iter().zip(scrapes) {
                self.observations.record(
                    &service,
                    &replica.name,
                    text.as_deref().map_err(Clone::clone),
                );
            }
        }
    }
}

/// `GET <base_url>/metrics` as OpenMetrics, within `budget` (at least 2 s:
/// a loaded replica is slow, not gone).
async fn scrape(
    http: &reqwest::Client,
    base_url: &str,
    budget: Duration,
) -> Result<String, String> {
    let res = http
        .get(format!("{base_url}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .timeout(budget.max(Duration::from_secs(2)))
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    if !res.status().is_success() {
        return Err(format!("/metrics answered {}", res.status()));
    }
    res.text().await.map_err(|e| error_chain(&e))
}
