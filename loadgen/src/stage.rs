//! Setting the stage: a scenario's `[system]` (replicas, settings) given
//! to a system the run did not start (`--target`), and taken back after.
//!
//! A run that starts its own system starts it with the scenario's
//! `[system]`. Against `loadgen up`, Compose or Kubernetes the run asks
//! the platform instead: replicas through a scale, settings through
//! [`Platform::configure`] (on the local launcher, a rolling restart
//! with the new environment). What the platform cannot do is said, in the
//! terminal and in `summary.json`, never skipped silently: a story whose
//! settings are missing may fail checks it would otherwise pass. When the
//! run ends, every service is given back the replicas and settings it
//! had, so the run leaves the system as it found it.

use std::collections::BTreeMap;

use futures::future::join_all;

use launcher::services::SERVICES;

use crate::{platform::Platform, scenario::SystemSpec};

/// What was done to the system before the load, to undo after it.
#[derive(Debug, Default)]
pub struct Stage {
    /// One line per step, for people (`courses: 1 → 2 replicas`), and
    /// one per thing that could not be done.
    pub notes: Vec<String>,
    /// Replicas each service had before (the timeline may scale them
    /// too).
    replicas_before: BTreeMap<String, usize>,
    /// Settings each configured service had before.
    settings_before: BTreeMap<String, BTreeMap<String, String>>,
}

/// Gives the platform's system the scenario's `[system]`: first the
/// settings (each service restarted with them, all services at once),
/// then the replica counts (new replicas start with the new settings).
pub async fn set(platform: &dyn Platform, system: &SystemSpec) -> Stage {
    let mut stage = Stage::default();
    if !system.env.is_empty() {
        let mut unsupported = None;
        // In waves, dependencies before their dependents (progress after
        // courses, the gateway last), so no service comes back to find
        // what it calls restarting, and its breakers open.
        for wave in waves() {
            let applied = join_all(wave.iter().map(|s| configure(platform, s, &system.env))).await;
            for (service, outcome) in wave.into_iter().zip(applied) {
                match outcome {
                    Ok((before, done)) => {
                        stage.settings_before.insert(service.to_owned(), before);
                        stage.notes.push(done);
                    }
                    Err(crate::platform::PlatformError::Unsupported(why)) => {
                        unsupported.get_or_insert(why);
                    }
                    Err(e) => stage.notes.push(format!(
                        "{service}: the scenario's settings were not applied: {e}"
                    )),
                }
            }
            if unsupported.is_some() {
                break;
            }
        }
        if let Some(why) = unsupported {
            let settings: Vec<String> =
                system.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            stage.notes.push(format!(
                "not applied: {} ({why}); start the system with them for the story as written",
                settings.join(" ")
            ));
        }
    }
    for service in SERVICES.iter().map(|s| s.name) {
        if let Ok(replicas) = platform.replicas(service).await {
            stage
                .replicas_before
                .insert(service.to_owned(), replicas.len());
        }
    }
    for (service, wanted) in &system.replicas {
        if stage.replicas_before.get(service) == Some(wanted) {
            continue;
        }
        match platform.scale(service, *wanted).await {
            Ok(done) => stage.notes.push(done),
            Err(e) => stage
                .notes
                .push(format!("{service}: replicas not set to {wanted}: {e}")),
        }
    }
    stage
}

/// The services in waves: each after every service it depends on.
fn waves() -> Vec<Vec<&'static str>> {
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    // SERVICES lists dependencies first, so one pass settles every level.
    for spec in &SERVICES {
        let after = spec
            .depends_on
            .iter()
            .filter_map(|d| level.get(d))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level.insert(spec.name, after);
    }
    let mut waves: Vec<Vec<&'static str>> = Vec::new();
    for spec in &SERVICES {
        let l = level[spec.name];
        if waves.len() <= l {
            waves.resize_with(l + 1, Vec::new);
        }
        waves[l].push(spec.name);
    }
    waves
}

async fn configure(
    platform: &dyn Platform,
    service: &str,
    env: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, String), crate::platform::PlatformError> {
    let before = platform.settings(service).await?;
    // The scenario's settings on top of what the service was given
    // before: a run adds to the system, it does not take away.
    let mut wanted = before.clone();
    wanted.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let done = platform.configure(service, &wanted).await?;
    Ok((before, done))
}

impl Stage {
    /// Gives every service back what it had: replicas first (fewer
    /// replicas to restart), then settings. Returns a line per step.
    pub async fn undo(self, platform: &dyn Platform) -> Vec<String> {
        let mut done = Vec::new();
        for (service, replicas) in &self.replicas_before {
            let now = platform.replicas(service).await.map(|r| r.len());
            if now.as_ref().is_ok_and(|n| n == replicas) {
                continue;
            }
            done.push(match platform.scale(service, *replicas).await {
                Ok(line) => line,
                Err(e) => format!("{service}: not scaled back to {replicas}: {e}"),
            });
        }
        for wave in waves() {
            let wave: Vec<(&str, &BTreeMap<String, String>)> = wave
                .into_iter()
                .filter_map(|s| Some((s, self.settings_before.get(s)?)))
                .collect();
            let restored = join_all(
                wave.iter()
                    .map(|(service, env)| platform.configure(service, env)),
            )
            .await;
            for ((service, _), outcome) in wave.iter().zip(restored) {
                done.push(match outcome {
                    Ok(line) => line,
                    Err(e) => format!("{service}: settings not restored: {e}"),
                });
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_restarts_after_what_it_calls() {
        let waves = waves();
        let wave_of = |name: &str| waves.iter().position(|w| w.contains(&name)).unwrap();
        assert_eq!(
            waves.iter().map(Vec::len).sum::<usize>(),
            SERVICES.len(),
            "{waves:?}"
        );
        for spec in &SERVICES {
            for dep in spec.depends_on {
                assert!(wave_of(spec.name) > wave_of(dep), "{waves:?}");
            }
        }
        assert_eq!(waves.last().unwrap(), &vec!["gateway"]);
    }
}
