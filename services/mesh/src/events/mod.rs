//! Events over NATS JetStream: a versioned envelope, a transactional
//! outbox with its relay, idempotent consumers with bounded redelivery and
//! a dead-letter subject, and the trace context carried in message
//! headers across the queue. `docs/events.md` is the contract.
//!
//! Names: every subject and stream starts with the deployment's prefix
//! (`EVENTS_PREFIX`, default `learnsphere`), so several systems (tests run
//! side by side) share one NATS server without seeing each other's events.
//!
//! - events: subject `<prefix>.events.<type>` (`learnsphere.events.payment.captured`),
//!   stream `<PREFIX>_EVENTS`, kept 7 days (limits retention, file storage,
//!   2-minute duplicate window on the event id);
//! - dead letters: subject `<prefix>.dead-letter.<type>`, stream
//!   `<PREFIX>_DEAD_LETTERS`, kept 30 days.
//!
//! The streams are created by whichever service gets there first, and
//! again by any that finds them missing: creating is idempotent.

mod consumer;
mod headers;
mod metrics;
mod outbox;

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::{
    consumer::{ConsumerSpec, HandleError, Handler, spawn_consumer},
    metrics::EventMetrics,
    outbox::{Outbox, ensure_tables},
};
use crate::{config::ServeConfig, identity::ServiceIdentity, metrics::Metrics};

/// Where the broker is, for the services that publish or consume.
#[derive(clap::Args, Debug, Clone)]
pub struct EventsConfig {
    /// The NATS server (JetStream enabled).
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// The service's user on the NATS server, whose permissions say which
    /// subjects it may publish (docs/events.md). Unset: connect without
    /// credentials (a server that requires none).
    #[arg(long = "nats-user", env = "NATS_USER")]
    pub nats_user: Option<String>,

    /// That user's password.
    #[arg(long = "nats-password", env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<NatsPassword>,

    /// First token of every subject and stream name: one per deployment.
    /// Letters, digits, `-` and `_`.
    #[arg(
        long = "events-prefix",
        env = "EVENTS_PREFIX",
        default_value = "learnsphere"
    )]
    pub prefix: String,

    /// Crash testing only: the chance that the outbox relay aborts the
    /// process after reading pending events and before publishing them,
    /// i.e. between the state change's commit and the publish. 0 outside
    /// crash tests.
    #[arg(long, env = "EVENTS_CRASH_BEFORE_PUBLISH", default_value_t = 0.0, value_parser = probability)]
    pub crash_before_publish: f64,

    /// Crash testing only: the chance that a consumer aborts the process
    /// after committing an event's effects and before acknowledging it.
    #[arg(long, env = "EVENTS_CRASH_BEFORE_ACK", default_value_t = 0.0, value_parser = probability)]
    pub crash_before_ack: f64,
}

/// A NATS password. Never printed: `Debug` says only that one is set.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsPassword(String);

impl NatsPassword {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NatsPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NatsPassword(<redacted>)")
    }
}

impl std::str::FromStr for NatsPassword {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("the NATS password must not be empty");
        }
        Ok(Self(s.to_owned()))
    }
}

impl EventsConfig {
    /// The password's bytes (empty without one), for the production check
    /// of placeholders.
    pub fn password_bytes(&self) -> &[u8] {
        self.nats_password
            .as_ref()
            .map_or(&[], |p| p.expose().as_bytes())
    }

    /// With `LEARNSPHERE_ENV=production` a service connects to the bus as
    /// its own user: a bus that takes anyone lets anyone forge a payment.
    pub fn refuse_anonymous(&self, serve: &ServeConfig) -> anyhow::Result<()> {
        if serve.environment == crate::config::Environment::Production && self.nats_user.is_none() {
            anyhow::bail!(
                "LEARNSPHERE_ENV=production needs NATS_USER and NATS_PASSWORD: the service's own user on the event bus (docs/events.md)"
            );
        }
        Ok(())
    }
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}

/// Where a crash test may abort the process (see [`EventsConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CrashPoint {
    BeforePublish,
    BeforeAck,
}

/// The configured crash chances.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CrashPoints {
    before_publish: f64,
    before_ack: f64,
}

impl CrashPoints {
    /// Aborts the process, as a `kill -9` would, with the chance set for
    /// `point`: no destructor runs, nothing is flushed or acknowledged.
    pub(crate) fn maybe_crash(&self, point: CrashPoint) {
        let chance = match point {
            CrashPoint::BeforePublish => self.before_publish,
            CrashPoint::BeforeAck => self.before_ack,
        };
        if chance > 0.0 && rand::random::<f64>() < chance {
            tracing::error!(?point, "crash test: aborting the process");
            std::process::abort();
        }
    }
}

/// How long the events stream keeps a message.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the dead-letter stream keeps a message.
pub const DEAD_LETTERS_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// JetStream drops a second publish with the same event id (`Nats-Msg-Id`)
/// within this window: a relay that publishes again after a crash, or two
/// replicas' relays racing for one row, store the event once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Every event on the wire: JSON, this envelope around the event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = serde_json::Value> {
    /// Unique per event (uuid v7); consumers deduplicate on it, and it is
    /// the message's `Nats-Msg-Id`.
    pub id: String,
    /// `payment.captured`, `user.registered`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    /// The service that produced it.
    pub source: String,
    /// When the state change happened (committed with the event).
    pub occurred_at: DateTime<Utc>,
    /// The version of `data`'s schema for this type; a consumer refuses a
    /// version it does not know rather than misreading it.
    pub schema_version: u32,
    pub data: T,
}

impl Envelope {
    /// `data` as the `T` of schema version `version`. Any other version,
    /// or data that does not fit `T`, is a [`HandleError::Reject`]: the
    /// consumer dead-letters it rather than guess.
    pub fn data_as<T: serde::de::DeserializeOwned>(self, version: u32) -> Result<T, HandleError> {
        if self.schema_version != version {
            return Err(HandleError::Reject(anyhow::anyhow!(
                "{} schema version {} is not {version}",
                self.event_type,
                self.schema_version
            )));
        }
        serde_json::from_value(self.data)
            .map_err(|e| HandleError::Reject(anyhow::anyhow!("{} data: {e}", self.event_type)))
    }
}

/// A connection to NATS and the names of this deployment's streams.
#[derive(Clone, Debug)]
pub struct Broker {
    jetstream: jetstream::Context,
    prefix: Arc<str>,
    service: Arc<str>,
    metrics: EventMetrics,
    crash: CrashPoints,
}

/// `EVENTS_PREFIX` was not a valid subject token.
#[derive(Debug, thiserror::Error)]
#[error("EVENTS_PREFIX {0:?} must be 1 to 64 letters, digits, '-' or '_'")]
pub struct InvalidPrefix(String);

impl Broker {
    /// Connects in the background: returns at once, and the client keeps
    /// (re)connecting for as long as the service runs. A service whose
    /// broker is down still starts and serves; the outbox holds its events
    /// and consumers wait.
    pub async fn connect(
        config: &EventsConfig,
        identity: &ServiceIdentity,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let prefix = &config.prefix;
        let valid = (1..=64).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(InvalidPrefix(prefix.clone()).into());
        }
        let options = match (&config.nats_user, &config.nats_password) {
            (Some(user), Some(password)) => async_nats::ConnectOptions::with_user_and_password(
                user.clone(),
                password.expose().to_owned(),
            ),
            (None, None) => async_nats::ConnectOptions::new(),
            _ => anyhow::bail!("NATS_USER and NATS_PASSWORD go together: set both, or neither"),
        };
        let client = options
            .name(format!("{}/{}", identity.name, identity.instance_id))
            .retry_on_initial_connect()
            .connect(config.nats_url.as_str())
            .await?;
        Ok(Self {
            jetstream: jetstream::new(client),
            prefix: prefix.as_str().into(),
            service: identity.name.clone(),
            metrics: EventMetrics::register(metrics),
            crash: CrashPoints {
                before_publish: config.crash_before_publish,
                before_ack: config.crash_before_ack,
            },
        })
    }

    pub(crate) fn crash_points(&self) -> CrashPoints {
        self.crash
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn metrics(&self) -> &EventMetrics {
        &self.metrics
    }

    /// The service name events from here carry as `source`.
    pub fn service(&self) -> &Arc<str> {
        &self.service
    }

    /// `<prefix>.events.<type>`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.events.{event_type}", self.prefix)
    }

    /// `<prefix>.dead-letter.<type>`.
    pub fn dead_letter_subject(&self, event_type: &str) -> String {
        format!("{}.dead-letter.{event_type}", self.prefix)
    }

    /// `<PREFIX>_EVENTS`.
    pub fn events_stream(&self) -> String {
        stream_names(&self.prefix)[0].clone()
    }

    /// `<PREFIX>_DEAD_LETTERS`.
    pub fn dead_letters_stream(&self) -> String {
        stream_names(&self.prefix)[1].clone()
    }

    /// Creates both streams unless they exist; returns the events stream.
    pub async fn ensure_streams(&self) -> anyhow::Result<stream::Stream> {
        let events = self
            .jetstream
            .get_or_create_stream(stream::Config {
                name: self.events_stream(),
                description: Some("LearnSphere domain events (docs/events.md)".into()),
                subjects: vec![format!("{}.events.>", self.prefix)],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: EVENTS_MAX_AGE,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await?;
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: self.dead_letters_stream(),
                description: Some(
                    "LearnSphere events no consumer could process (docs/events.md)".into(),
                ),
                subjects: vec![format!("{}.dead-letter.>", self.prefix)],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: DEAD_LETTERS_MAX_AGE,
                ..Default::default()
            })
            .await?;
        Ok(events)
    }
}

/// The events stream and the dead-letter stream of a deployment.
pub fn stream_names(prefix: &str) -> [String; 2] {
    let upper = prefix.to_ascii_uppercase();
    [format!("{upper}_EVENTS"), format!("{upper}_DEAD_LETTERS")]
}

/// Deletes a deployment's streams, events and dead letters with them (a
/// test system's, when it stops). Missing streams are not an error.
pub async fn delete_streams(nats_url: &str, prefix: &str) -> anyhow::Result<()> {
    delete_streams_of(&async_nats::connect(nats_url).await?, prefix).await
}

/// [`delete_streams`] through a client already connected (with the
/// credentials deleting needs).
pub async fn delete_streams_of(client: &async_nats::Client, prefix: &str) -> anyhow::Result<()> {
    let jetstream = jetstream::new(client.clone());
    for name in stream_names(prefix) {
        if let Err(e) = jetstream.delete_stream(&name).await
            && !e.to_string().contains("not found")
        {
            return Err(e.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::EventsConfig;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        events: EventsConfig,
        #[command(flatten)]
        serve: crate::config::ServeConfig,
    }

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["svc"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn production_refuses_an_anonymous_bus_and_development_allows_it() {
        let dev = parse(&[]);
        dev.events.refuse_anonymous(&dev.serve).unwrap();
        let prod = parse(&["--environment", "production"]);
        let err = prod.events.refuse_anonymous(&prod.serve).unwrap_err();
        assert!(err.to_string().contains("NATS_USER"), "{err}");
        let prod = parse(&[
            "--environment",
            "production",
            "--nats-user",
            "payments",
            "--nats-password",
            "3e2a",
        ]);
        prod.events.refuse_anonymous(&prod.serve).unwrap();
        assert_eq!(prod.events.password_bytes(), b"3e2a");
        assert!(
            !format!("{:?}", prod.events).contains("3e2a"),
            "the password is never printed"
        );
    }
}
