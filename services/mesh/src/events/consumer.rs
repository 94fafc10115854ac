//! Idempotent consumers: a durable JetStream pull consumer per (service,
//! event type), each delivery handled in one database transaction that
//! also records the event id in `processed_events`, acknowledged only
//! after that transaction commits.
//!
//! - A redelivery (the process died after commit, before the ack), or the
//!   same event published twice, finds its id recorded: it is acknowledged
//!   and not applied again.
//! - A failed delivery is negatively acknowledged with a growing delay and
//!   comes back, up to [`ConsumerSpec::max_deliver`] deliveries; then, or
//!   at once for a message that cannot be read or that the handler
//!   rejects, it is copied to the dead-letter subject and terminated.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    message::PublishMessage,
};
use chrono::Utc;
use futures::StreamExt as _;
use sqlx::{Any, Transaction};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    Broker, Envelope, headers,
    metrics::{ConsumeLabels, ConsumeOutcome, ConsumerLabels},
    outbox::timestamp,
};
use crate::{
    db::{Db, Op},
    metrics::TraceExemplar,
};

/// What a consumer is called and what it reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The durable consumer's name, shared by the service's replicas (they
    /// split the deliveries): `progress-payment-captured`.
    pub name: &'static str,
    /// The event type it reads: `payment.captured`.
    pub event_type: &'static str,
    /// The service that publishes that type (`payments`): the `source` of
    /// the consumer's metrics, a fixed value rather than whatever a
    /// message claims, so the label stays bounded.
    pub producer: &'static str,
    /// Deliveries before an event that keeps failing is dead-lettered.
    pub max_deliver: i64,
}

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth another try (a dependency down, a deadlock): delivered again
    /// after a delay, up to `max_deliver` times.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Will never work (an unknown schema version, data that breaks an
    /// invariant): dead-lettered at once.
    #[error("{0:#}")]
    Reject(anyhow::Error),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        Self::Retry(e.into())
    }
}

/// Applies one event inside the consumer's transaction and hands the
/// transaction back for the consumer to commit.
pub type Handler = Arc<
    dyn Fn(
            Envelope,
            Transaction<'static, Any>,
        )
            -> Pin<Box<dyn Future<Output = Result<Transaction<'static, Any>, HandleError>> + Send>>
        + Send
        + Sync,
>;

const RECORD: &str = "INSERT INTO processed_events (consumer, event_id, processed_at) \
     VALUES ($1, $2, $3) ON CONFLICT (consumer, event_id) DO NOTHING";
const PRUNE: &str = "DELETE FROM processed_events WHERE processed_at < $1";

/// Processed event ids are kept a day longer than the stream keeps the
/// events, so any redelivery still finds its id.
const KEEP_PROCESSED: Duration = Duration::from_secs(8 * 24 * 3600);
/// How long JetStream waits for an ack before delivering again.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often consumer lag is read from JetStream.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Starts the consumer task: it creates the streams and the durable
/// consumer if needed, and keeps consuming, reconnecting after errors.
pub fn spawn_consumer(
    broker: Broker,
    db: Db,
    spec: ConsumerSpec,
    handler: Handler,
) -> tokio::task::JoinHandle<()> {
    let consumer = Consumer {
        broker,
        db,
        spec,
        handler,
    };
    tokio::spawn(async move { consumer.run().await })
}

struct Consumer {
    broker: Broker,
    db: Db,
    spec: ConsumerSpec,
    handler: Handler,
}

impl Consumer {
    fn labels(&self, outcome: ConsumeOutcome) -> ConsumeLabels {
        ConsumeLabels {
            service: self.broker.service().clone(),
            source: self.spec.producer,
            destination: self.spec.event_type.into(),
            consumer: self.spec.name.into(),
            outcome,
        }
    }

    fn consumer_labels(&self) -> ConsumerLabels {
        ConsumerLabels {
            service: self.broker.service().clone(),
            source: self.spec.producer,
            destination: self.spec.event_type.into(),
            consumer: self.spec.name.into(),
        }
    }

    async fn run(self) {
        // Every outcome exists from the start, at zero.
        for outcome in ConsumeOutcome::ALL {
            let _ = self
                .broker
                .metrics()
                .consumed
                .get_or_create(&self.labels(outcome));
        }
        let _ = self
            .broker
            .metrics()
            .redelivered
            .get_or_create(&self.consumer_labels());
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.consume().await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(error) => {
                    tracing::warn!(
                        consumer = self.spec.name,
                        error = %error,
                        retry_in = ?backoff,
                        "consumer stopped; starting again"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn consumer(&self) -> anyhow::Result<PullConsumer> {
        let stream = self.broker.ensure_streams().await?;
        let config = pull::Config {
            durable_name: Some(self.spec.name.to_owned()),
            description: Some(format!(
                "{} reads {}",
                self.broker.service(),
                self.spec.event_type
            )),
            filter_subject: self.broker.subject(self.spec.event_type),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            // Unbounded on the server: this consumer counts deliveries and
            // dead-letters itself, so an event never silently stops coming.
            max_deliver: -1,
            ..Default::default()
        };
        Ok(stream
            .get_or_create_consumer(self.spec.name, config)
            .await?)
    }

    /// Consumes until the message stream ends or fails.
    async fn consume(&self) -> anyhow::Result<()> {
        let mut consumer = self.consumer().await?;
        let mut messages = consumer.messages().await?;
        let mut last_lag = Instant::now() - LAG_EVERY;
        let mut last_prune = Instant::now();
        loop {
            if last_lag.elapsed() >= LAG_EVERY {
                last_lag = Instant::now();
                if let Ok(info) = consumer.info().await {
                    let labels = self.consumer_labels();
                    let metrics = self.broker.metrics();
                    metrics
                        .lag
                        .get_or_create(&labels)
                        .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                    metrics
                        .ack_pending
                        .get_or_create(&labels)
                        .set(i64::try_from(info.num_ack_pending).unwrap_or(i64::MAX));
                }
            }
            if last_prune.elapsed() >= Duration::from_secs(3600) {
                last_prune = Instant::now();
                let _ = sqlx::query(PRUNE)
                    .bind(timestamp(Utc::now() - KEEP_PROCESSED))
                    .execute(self.db.pool())
                    .await;
            }
            let next = tokio::time::timeout(LAG_EVERY, messages.next()).await;
            match next {
                Err(_) => continue, // idle: go round to refresh the lag
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(Some(Ok(message))) => self.handle(message).await,
            }
        }
    }

    /// Handles one delivery, start to ack; never fails (every way out is
    /// an ack, a nak or a dead letter, counted).
    async fn handle(&self, message: jetstream::Message) {
        let start = Instant::now();
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let subject = message.subject.to_string();
        let parent = headers::extract(message.headers.as_ref());
        // Messaging semantic conventions: a consumer span per delivery, in
        // the producer's trace.
        let span = tracing::info_span!(
            "process",
            otel.name = format!("process {}", self.spec.event_type),
            otel.kind = "consumer",
            otel.status_code = Empty,
            messaging.system = "nats",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = subject.as_str(),
            messaging.consumer.group.name = self.spec.name,
            messaging.message.id = Empty,
            messaging.message.body.size = message.payload.len() as i64,
            messaging.nats.delivery_count = delivered,
            error.type = Empty,
        );
        let _ = span.set_parent(parent);
        if delivered > 1 {
            self.broker
                .metrics()
                .redelivered
                .get_or_create(&self.consumer_labels())
                .inc();
        }
        let outcome = self
            .apply(&message, delivered, &span)
            .instrument(span.clone())
            .await;
        let ack = match outcome {
            ConsumeOutcome::processed | ConsumeOutcome::duplicate => message.ack().await,
            ConsumeOutcome::retry => {
                let delay = retry_delay(delivered);
                message.ack_with(AckKind::Nak(Some(delay))).await
            }
            ConsumeOutcome::dead_lettered => message.ack_with(AckKind::Term).await,
        };
        if let Err(error) = ack {
            // The event comes back after ACK_WAIT and is deduplicated then.
            tracing::warn!(parent: &span, error = %error, "acknowledging a delivery failed");
        }
        self.broker.metrics().observe_process(
            self.labels(outcome),
            start.elapsed().as_secs_f64(),
            TraceExemplar::of(&span.context()),
        );
    }

    async fn apply(
        &self,
        message: &jetstream::Message,
        delivered: i64,
        span: &tracing::Span,
    ) -> ConsumeOutcome {
        let envelope: Envelope = match serde_json::from_slice(&message.payload) {
            Ok(e) => e,
            Err(e) => {
                return self
                    .dead_letter(
                        message,
                        delivered,
                        span,
                        &format!("not an event envelope: {e}"),
                    )
                    .await;
            }
        };
        span.record("messaging.message.id", envelope.id.as_str());
        // Only the service that owns an event type publishes it (the
        // broker's permissions say so too, docs/events.md): an event
        // claiming another source, or of another type than the subject
        // carries, is never applied.
        if envelope.source != self.spec.producer || envelope.event_type != self.spec.event_type {
            let reason = format!(
                "a {} event from {:?} on the {} consumer: only {} publishes {}",
                envelope.event_type,
                envelope.source,
                self.spec.name,
                self.spec.producer,
                self.spec.event_type
            );
            return self.dead_letter(message, delivered, span, &reason).await;
        }
        let event_id = envelope.id.clone();
        match self.transaction(envelope).await {
            Ok(true) => ConsumeOutcome::processed,
            Ok(false) => ConsumeOutcome::duplicate,
            Err(HandleError::Reject(e)) => {
                self.dead_letter(message, delivered, span, &format!("{e:#}"))
                    .await
            }
            Err(HandleError::Retry(e)) if delivered >= self.spec.max_deliver => {
                let reason = format!("failed {delivered} times, last: {e:#}");
                self.dead_letter(message, delivered, span, &reason).await
            }
            Err(HandleError::Retry(e)) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", "retry");
                tracing::warn!(
                    event_id,
                    delivered,
                    error = %e,
                    "handling an event failed; it will be delivered again"
                );
                ConsumeOutcome::retry
            }
        }
    }

    /// Records the event id and applies the event in one transaction.
    /// `Ok(false)`: already processed, nothing applied.
    async fn transaction(&self, envelope: Envelope) -> Result<bool, HandleError> {
        let mut tx = self.db.pool().begin().await?;
        let recorded = self
            .db
            .run(
                Op::new("INSERT", "processed_events", RECORD),
                sqlx::query(RECORD)
                    .bind(self.spec.name)
                    .bind(&envelope.id)
                    .bind(timestamp(Utc::now()))
                    .execute(&mut *tx),
            )
            .await?;
        if recorded.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let tx = (self.handler)(envelope, tx).await?;
        tx.commit().await?;
        self.broker
            .crash_points()
            .maybe_crash(super::CrashPoint::BeforeAck);
        Ok(true)
    }

    /// Copies the message, with why, to the dead-letter subject, then
    /// terminates it. If the copy cannot be stored, the message is retried
    /// instead: it is never dropped.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        delivered: i64,
        span: &tracing::Span,
        reason: &str,
    ) -> ConsumeOutcome {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", "dead_lettered");
        let mut dead_headers = message.headers.clone().unwrap_or_default();
        dead_headers.insert("LearnSphere-Dead-Letter-Reason", truncate(reason, 512));
        dead_headers.insert("LearnSphere-Dead-Letter-Consumer", self.spec.name);
        dead_headers.insert("LearnSphere-Dead-Letter-Deliveries", delivered.to_string());
        dead_headers.insert("LearnSphere-Dead-Letter-Subject", message.subject.as_str());
        let publish = PublishMessage::build()
            .payload(message.payload.clone())
            .headers(dead_headers);
        let stored = async {
            self.broker
                .jetstream()
                .send_publish(
                    self.broker.dead_letter_subject(self.spec.event_type),
                    publish,
                )
                .await?
                .await?;
            anyhow::Ok(())
        }
        .await;
        match stored {
            Ok(()) => {
                tracing::error!(
                    consumer = self.spec.name,
                    delivered,
                    reason,
                    "event dead-lettered"
                );
                ConsumeOutcome::dead_lettered
            }
            Err(error) => {
                tracing::warn!(error = %error, "dead-lettering failed; the event will be delivered again");
                ConsumeOutcome::retry
            }
        }
    }
}

/// Delay before delivery `n + 1`: 0.5 s doubling, at most 30 s.
fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(6);
    (Duration::from_millis(500) * 2u32.pow(exponent)).min(Duration::from_secs(30))
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // Header values cannot hold line breaks.
    s[..end].replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_thirty_seconds() {
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(2), Duration::from_secs(1));
        assert_eq!(retry_delay(4), Duration::from_secs(4));
        assert_eq!(retry_delay(50), Duration::from_secs(30));
    }

    #[test]
    fn dead_letter_reasons_fit_in_a_header() {
        assert_eq!(truncate("a\nb", 10), "a b");
        assert_eq!(truncate("ééé", 3), "é");
    }
}
