//! The transactional outbox: an event is a row written in the same
//! database transaction as the state change it reports, and a relay task
//! publishes the rows to JetStream and marks them published once the
//! broker acknowledges. A crash between commit and publish loses nothing:
//! the row is still there when the service (or a sibling replica) starts.
//!
//! Every replica runs a relay over the shared table. Two relays may pick
//! the same row; the event id is the message's `Nats-Msg-Id`, so JetStream
//! stores it once within [`super::DUPLICATE_WINDOW`], and consumers
//! deduplicate on the id beyond that.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::jetstream::message::PublishMessage;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::{Any, AnyConnection, Row as _, Transaction};
use tokio::sync::Notify;
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    Broker, Envelope, headers,
    metrics::{OutboxLabels, PublishLabels, PublishOutcome},
};
use crate::{
    db::{Db, Op},
    metrics::TraceExemplar,
};

/// The mesh's own tables, in every service that publishes or consumes.
/// Created at start (`CREATE ... IF NOT EXISTS`, which SQLite and
/// PostgreSQL both accept) rather than by each service's migrations, so
/// the three services cannot drift apart.
const TABLES: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS outbox (\
        id TEXT PRIMARY KEY, \
        event_type TEXT NOT NULL, \
        payload TEXT NOT NULL, \
        trace_headers TEXT NOT NULL, \
        created_at TEXT NOT NULL, \
        published_at TEXT NULL, \
        attempts BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (created_at) WHERE published_at IS NULL",
    "CREATE TABLE IF NOT EXISTS processed_events (\
        consumer TEXT NOT NULL, \
        event_id TEXT NOT NULL, \
        processed_at TEXT NOT NULL, \
        PRIMARY KEY (consumer, event_id))",
    "CREATE INDEX IF NOT EXISTS processed_events_by_time ON processed_events (processed_at)",
];

/// Creates the outbox and processed-events tables unless they exist.
///
/// Replicas start together: on PostgreSQL two concurrent `CREATE TABLE IF
/// NOT EXISTS` can both miss the table and one then fails on the catalog's
/// unique index, so the statements run in one transaction under an
/// advisory lock. SQLite serialises writers itself.
pub async fn ensure_tables(db: &Db) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    if db.system() == "postgresql" {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext('learnsphere.mesh.events.tables'))::text",
        )
        .execute(&mut *tx)
        .await?;
    }
    for sql in TABLES {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await
}

const INSERT: &str = "INSERT INTO outbox (id, event_type, payload, trace_headers, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
const PENDING: &str = "SELECT id, event_type, payload, trace_headers, created_at FROM outbox \
     WHERE published_at IS NULL ORDER BY created_at LIMIT $1";
const MARK_PUBLISHED: &str = "UPDATE outbox SET published_at = $1 WHERE id = $2";
const MARK_ATTEMPT: &str = "UPDATE outbox SET attempts = attempts + 1 WHERE id = $1";
const BACKLOG: &str =
    "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL";
const PRUNE: &str = "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1";

/// Rows the relay publishes per round (pipelined, then acknowledged).
const BATCH: i64 = 100;
/// The relay looks for rows this often even when nobody wakes it (rows a
/// crashed sibling left, or a wake-up lost to a restart).
const POLL: Duration = Duration::from_secs(1);
/// Published rows are kept this long (for inspection), then deleted.
const KEEP_PUBLISHED: Duration = Duration::from_secs(3600);

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Writes events into the outbox and wakes the relay.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Db,
    broker: Broker,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(db: Db, broker: Broker) -> Self {
        Self {
            db,
            broker,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds an event to the outbox inside `tx`, with the current span's
    /// trace context, and returns its envelope. Nothing is published until
    /// the caller commits and calls [`Outbox::committed`].
    pub async fn enqueue<T: Serialize>(
        &self,
        tx: &mut Transaction<'static, Any>,
        event_type: &'static str,
        schema_version: u32,
        data: T,
    ) -> Result<Envelope<T>, sqlx::Error> {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_owned(),
            source: self.broker.service().to_string(),
            occurred_at: Utc::now(),
            schema_version,
            data,
        };
        let payload =
            serde_json::to_string(&envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let trace = headers::capture(&tracing::Span::current().context());
        let trace = serde_json::to_string(&trace).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let conn: &mut AnyConnection = tx;
        self.db
            .run(
                Op::new("INSERT", "outbox", INSERT),
                sqlx::query(INSERT)
                    .bind(&envelope.id)
                    .bind(event_type)
                    .bind(payload)
                    .bind(trace)
                    .bind(timestamp(envelope.occurred_at))
                    .execute(conn),
            )
            .await?;
        Ok(envelope)
    }

    /// Wakes the relay: call after committing a transaction that enqueued.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// Starts this replica's relay task, and the task that measures the
    /// backlog every second (on its own, so the gauges stay current while
    /// the relay waits on a broker that does not answer).
    pub fn spawn_relay(&self) -> tokio::task::JoinHandle<()> {
        let gauges = self.clone();
        tokio::spawn(async move {
            let labels = OutboxLabels {
                service: gauges.broker.service().clone(),
            };
            let mut every = tokio::time::interval(POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(error) = gauges.measure_backlog(&labels).await {
                    tracing::warn!(error = %error, "outbox: reading the backlog failed");
                }
            }
        });
        let relay = self.clone();
        tokio::spawn(async move { relay.relay().await })
    }

    async fn relay(self) {
        let mut streams_ready = false;
        let mut backoff = Duration::from_millis(100);
        let mut last_prune = Instant::now();
        loop {
            let round = async {
                if !streams_ready {
                    self.broker.ensure_streams().await?;
                    streams_ready = true;
                }
                self.publish_round().await
            };
            let (published, more) = match round.await {
                Ok(done) => {
                    backoff = Duration::from_millis(100);
                    done
                }
                Err(error) => {
                    tracing::warn!(error = %error, retry_in = ?backoff, "outbox relay: publishing failed; the events stay in the outbox");
                    streams_ready = false;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    (0, false)
                }
            };
            if last_prune.elapsed() > KEEP_PUBLISHED / 4 {
                last_prune = Instant::now();
                let before = Utc::now() - KEEP_PUBLISHED;
                let _ = sqlx::query(PRUNE)
                    .bind(timestamp(before))
                    .execute(self.db.pool())
                    .await;
            }
            if published == 0 || !more {
                let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
            }
        }
    }

    /// Publishes up to one batch of pending rows. Returns how many were
    /// acknowledged and whether the batch was full (more may wait).
    async fn publish_round(&self) -> anyhow::Result<(usize, bool)> {
        // Not through `Db::run`: a poll every second is not a request, and
        // its span would be a one-span trace every second per replica.
        let rows = sqlx::query(PENDING)
            .bind(BATCH)
            .fetch_all(self.db.pool())
            .await?;
        let full = rows.len() as i64 == BATCH;
        if !rows.is_empty() {
            self.broker
                .crash_points()
                .maybe_crash(super::CrashPoint::BeforePublish);
        }
        let mut acks = Vec::with_capacity(rows.len());
        // Send the batch, then wait for the acknowledgments: one round
        // trip's latency for the batch, not one per event.
        for row in &rows {
            let id: String = row.try_get("id")?;
            let event_type: String = row.try_get("event_type")?;
            let payload: String = row.try_get("payload")?;
            let trace: String = row.try_get("trace_headers")?;
            let created_at: String = row.try_get("created_at")?;
            let trace: HashMap<String, String> = serde_json::from_str(&trace).unwrap_or_default();
            let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&trace));
            let subject = self.broker.subject(&event_type);
            // Messaging semantic conventions: a producer span per message,
            // a child of the request that committed the event. The time
            // between that request's span and this one is the relay's delay.
            let span = tracing::info_span!(
                "publish",
                otel.name = format!("PUBLISH {event_type}"),
                otel.kind = "producer",
                otel.status_code = Empty,
                messaging.system = "nats",
                messaging.operation.type = "send",
                messaging.operation.name = "publish",
                messaging.destination.name = subject.as_str(),
                messaging.message.id = id.as_str(),
                messaging.message.body.size = payload.len() as i64,
                error.type = Empty,
            );
            let _ = span.set_parent(parent);
            let mut message_headers = async_nats::HeaderMap::new();
            headers::inject(&span.context(), &mut message_headers);
            let message = PublishMessage::build()
                .payload(payload.into())
                .headers(message_headers)
                .message_id(&id);
            let sent = self
                .broker
                .jetstream()
                .send_publish(subject, message)
                .instrument(span.clone())
                .await;
            acks.push((id, event_type, created_at, span, sent));
        }
        let mut published = 0;
        let mut first_error = None;
        for (id, event_type, created_at, span, sent) in acks {
            let acked = match sent {
                Ok(ack) => ack.await.map(|_| ()).map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            let labels = PublishLabels {
                service: self.broker.service().clone(),
                destination: event_type.as_str().into(),
                outcome: if acked.is_ok() {
                    PublishOutcome::success
                } else {
                    PublishOutcome::error
                },
            };
            self.broker.metrics().published.get_or_create(&labels).inc();
            match acked {
                Ok(()) => {
                    let now = Utc::now();
                    sqlx::query(MARK_PUBLISHED)
                        .bind(timestamp(now))
                        .bind(&id)
                        .execute(self.db.pool())
                        .instrument(span.clone())
                        .await?;
                    if let Ok(created) = DateTime::parse_from_rfc3339(&created_at) {
                        let delay = (now - created.with_timezone(&Utc)).as_seconds_f64();
                        self.broker
                            .metrics()
                            .relay_delay
                            .get_or_create(&OutboxLabels {
                                service: self.broker.service().clone(),
                            })
                            .observe(delay.max(0.0), TraceExemplar::of(&span.context()), None);
                    }
                    published += 1;
                }
                Err(error) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", "publish_failed");
                    let _ = sqlx::query(MARK_ATTEMPT)
                        .bind(&id)
                        .execute(self.db.pool())
                        .await;
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok((published, full)),
        }
    }

    async fn measure_backlog(&self, labels: &OutboxLabels) -> Result<(), sqlx::Error> {
        let row = sqlx::query(BACKLOG).fetch_one(self.db.pool()).await?;
        let pending: i64 = row.try_get("n")?;
        let oldest: Option<String> = row.try_get("oldest")?;
        let age = oldest
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| {
                (Utc::now() - t.with_timezone(&Utc))
                    .as_seconds_f64()
                    .max(0.0)
            })
            .unwrap_or(0.0);
        let metrics = self.broker.metrics();
        metrics.outbox_pending.get_or_create(labels).set(pending);
        metrics.outbox_oldest_age.get_or_create(labels).set(age);
        Ok(())
    }
}
