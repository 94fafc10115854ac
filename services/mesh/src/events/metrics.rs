//! The messaging metrics (docs/metrics.md, "Messaging"). `destination` is
//! the event type (`payment.captured`), not the subject: the same label
//! values in every deployment whatever its prefix.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Unit,
};

use crate::metrics::{LatencyFamily, Metrics, TraceExemplar, latency_family};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PublishLabels {
    pub service: Arc<str>,
    pub destination: Arc<str>,
    pub outcome: PublishOutcome,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum PublishOutcome {
    /// JetStream acknowledged (stored) the message.
    success,
    /// No acknowledgment: the broker is down or refused it; the event
    /// stays in the outbox and is published again.
    error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConsumeLabels {
    pub service: Arc<str>,
    /// The service that publishes this event type: with `service` (the
    /// consumer), the asynchronous edge of the service graph.
    pub source: &'static str,
    pub destination: Arc<str>,
    pub consumer: Arc<str>,
    pub outcome: ConsumeOutcome,
}

/// What became of one delivery.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum ConsumeOutcome {
    /// Applied and acknowledged.
    processed,
    /// Already applied (a redelivery, or the same event published twice):
    /// acknowledged without applying it again.
    duplicate,
    /// Failed; negatively acknowledged, to be delivered again.
    retry,
    /// Failed for the last time (or could not be read): moved to the
    /// dead-letter subject.
    dead_lettered,
}

impl ConsumeOutcome {
    pub(crate) const ALL: [Self; 4] = [
        Self::processed,
        Self::duplicate,
        Self::retry,
        Self::dead_lettered,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConsumerLabels {
    pub service: Arc<str>,
    pub source: &'static str,
    pub destination: Arc<str>,
    pub consumer: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutboxLabels {
    pub service: Arc<str>,
}

/// The messaging families, registered once per process.
#[derive(Clone, Debug)]
pub struct EventMetrics {
    pub(crate) published: Family<PublishLabels, Counter>,
    pub(crate) consumed: Family<ConsumeLabels, Counter>,
    pub(crate) redelivered: Family<ConsumerLabels, Counter>,
    pub(crate) process_duration: LatencyFamily<ConsumeLabels>,
    pub(crate) relay_delay: LatencyFamily<OutboxLabels>,
    pub(crate) lag: Family<ConsumerLabels, Gauge>,
    pub(crate) ack_pending: Family<ConsumerLabels, Gauge>,
    pub(crate) outbox_pending: Family<OutboxLabels, Gauge>,
    pub(crate) outbox_oldest_age: Family<OutboxLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl EventMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let m = Self {
            published: Family::default(),
            consumed: Family::default(),
            redelivered: Family::default(),
            process_duration: latency_family(),
            relay_delay: latency_family(),
            lag: Family::default(),
            ack_pending: Family::default(),
            outbox_pending: Family::default(),
            outbox_oldest_age: Family::default(),
        };
        metrics.register(
            "messaging_client_sent_messages",
            "Events published to JetStream by the outbox relay, by event type and outcome (success = acknowledged by the broker)",
            m.published.clone(),
        );
        metrics.register(
            "messaging_client_consumed_messages",
            "Event deliveries handled by a consumer, by outcome: processed, duplicate (already applied), retry, dead_lettered",
            m.consumed.clone(),
        );
        metrics.register(
            "messaging_redelivered_messages",
            "Deliveries of an event that had been delivered before (JetStream's delivery count above 1)",
            m.redelivered.clone(),
        );
        metrics.register_with_unit(
            "messaging_process_duration",
            "Time to handle one delivery, database transaction included, by outcome",
            Unit::Seconds,
            m.process_duration.clone(),
        );
        metrics.register_with_unit(
            "outbox_relay_delay",
            "From an event's commit to the broker's acknowledgment of its publish: how far the relay runs behind",
            Unit::Seconds,
            m.relay_delay.clone(),
        );
        metrics.register(
            "messaging_consumer_lag_messages",
            "Events in the stream this consumer has not been delivered yet (JetStream consumer info, num_pending)",
            m.lag.clone(),
        );
        metrics.register(
            "messaging_consumer_ack_pending_messages",
            "Events delivered to this consumer and not yet acknowledged (num_ack_pending)",
            m.ack_pending.clone(),
        );
        metrics.register(
            "outbox_pending_events",
            "Events committed to this service's outbox and not yet acknowledged by the broker",
            m.outbox_pending.clone(),
        );
        metrics.register_with_unit(
            "outbox_oldest_pending_age",
            "Age of the oldest unpublished event in the outbox (0 when none is pending)",
            Unit::Seconds,
            m.outbox_oldest_age.clone(),
        );
        m
    }

    pub(crate) fn observe_process(
        &self,
        labels: ConsumeLabels,
        seconds: f64,
        exemplar: Option<TraceExemplar>,
    ) {
        self.consumed.get_or_create(&labels).inc();
        self.process_duration
            .get_or_create(&labels)
            .observe(seconds, exemplar, None);
    }
}
