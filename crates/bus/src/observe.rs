//! Traces and metrics of the bus.
//!
//! **Traces.** An envelope carries the W3C trace context of where it was made
//! ([`TraceContext::current`]: the current `tracing` span's OpenTelemetry context, when a
//! `tracing-opentelemetry` layer is installed). Publishing opens a `bus.publish` span (kind
//! producer) under that context and sends *its* context in the AMQP `traceparent` /
//! `tracestate` headers; consuming (RabbitMQ or in-process) runs the handler in a
//! `bus.handle` span (kind consumer) whose parent is the context from the headers. So a
//! request that records an event in the outbox, the relay that publishes it later and the
//! consumer that handles it are one trace. Without an OpenTelemetry layer the spans are
//! plain `tracing` spans and a `traceparent` that came in is passed on unchanged.
//!
//! **Metrics** (the `metrics` facade; the process installs the recorder):
//!
//! | name | labels |
//! |---|---|
//! | `idbridge_bus_messages_total` | `queue`, `outcome` = `processed` \| `retried` \| `parked` \| `rejected` (not an envelope) |
//! | `idbridge_bus_handle_duration_seconds` | `queue` |
//! | `idbridge_bus_published_total` | `outcome` = `confirmed` \| `failed` |
//! | `idbridge_bus_parked_refresh_failures_total` | (none): listings or replays whose re-publishing of parked messages failed (`amqp/parking.rs`); 0 from the connection on |

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{Delivery, OutgoingMessage, TraceContext, policy::Action};

impl TraceContext {
    /// The context of the current `tracing` span (empty when no OpenTelemetry layer is
    /// installed or nothing is being traced).
    #[must_use]
    pub fn current() -> Self {
        Self::of_span(&Span::current())
    }

    /// The context of `span` (empty as for [`TraceContext::current`]).
    #[must_use]
    pub fn of_span(span: &Span) -> Self {
        let context = span.context();
        let mut carrier: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        Self::from_headers(
            carrier.get("traceparent").map(String::as_str),
            carrier.get("tracestate").map(String::as_str),
        )
    }

    /// No `traceparent`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// This context as an OpenTelemetry parent (an empty context when there is none).
    #[must_use]
    pub fn to_otel(&self) -> opentelemetry::Context {
        TraceContextPropagator::new().extract(self)
    }

    /// Makes this context the OpenTelemetry parent of `span` (nothing when empty).
    pub fn parent(&self, span: &Span) {
        if !self.is_empty() {
            // Fails only when the span is already started or has no OpenTelemetry data
            // (no layer installed): either way there is nothing to link.
            let _ = span.set_parent(self.to_otel());
        }
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent.as_deref(),
            "tracestate" => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        if self.traceparent.is_some() {
            keys.push("traceparent");
        }
        if self.tracestate.is_some() {
            keys.push("tracestate");
        }
        keys
    }
}

/// The `bus.publish` span of `message`, child of the context its envelope carries (else of
/// the current span).
pub(crate) fn publish_span(message: &OutgoingMessage, system: &'static str) -> Span {
    let envelope = &message.envelope;
    let span = tracing::info_span!(
        "bus.publish",
        otel.kind = "producer",
        messaging.system = system,
        messaging.operation.type = "publish",
        messaging.destination.name = %message.exchange,
        messaging.rabbitmq.destination.routing_key = %message.routing_key,
        messaging.message.id = %envelope.message_id,
        message_type = %envelope.message_type,
        otel.status_code = tracing::field::Empty,
    );
    envelope.trace.parent(&span);
    span
}

/// `message` with the trace context of `span` (its publish span), so the consumer's span
/// is that span's child; `None` when the span has none (no OpenTelemetry): the envelope's
/// own context then travels unchanged.
pub(crate) fn with_span_context(message: &OutgoingMessage, span: &Span) -> Option<OutgoingMessage> {
    let trace = TraceContext::of_span(span);
    if trace.is_empty() || trace == message.envelope.trace {
        return None;
    }
    let mut message = message.clone();
    message.envelope.trace = trace;
    Some(message)
}

/// Counts `n` listings or replays whose re-publishing of parked messages failed: each leaves
/// them one delivery closer to RabbitMQ's delivery limit. Called with 0 when a RabbitMQ bus
/// connects, so that the first failure is an increase a rule can see.
pub(crate) fn parked_refresh_failed(n: u64) {
    metrics::counter!("idbridge_bus_parked_refresh_failures_total").increment(n);
}

/// Counts a publish.
pub(crate) fn published(ok: bool) {
    metrics::counter!(
        "idbridge_bus_published_total",
        "outcome" => if ok { "confirmed" } else { "failed" }
    )
    .increment(1);
}

/// The `bus.handle` span of a delivery: child of the publisher's context from the headers.
pub(crate) fn handle_span(delivery: &Delivery, system: &'static str) -> Span {
    let envelope = &delivery.envelope;
    let span = tracing::info_span!(
        "bus.handle",
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.type = "process",
        messaging.destination.name = %delivery.queue,
        messaging.message.id = %envelope.message_id,
        message_type = %envelope.message_type,
        attempt = delivery.attempt,
        outcome = tracing::field::Empty,
    );
    envelope.trace.parent(&span);
    span
}

/// The `bus.handle` span of a delivery that is not an envelope (it is parked as such).
pub(crate) fn rejected_span(queue: &str, system: &'static str) -> Span {
    tracing::info_span!(
        "bus.handle",
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.type = "process",
        messaging.destination.name = %queue,
        outcome = tracing::field::Empty,
    )
}

/// Records what became of a delivery on `queue` (`None` handler time: it was not an
/// envelope), on its span and in the metrics.
pub(crate) fn handled(span: &Span, queue: &str, action: &Action, took: Option<Duration>) {
    let outcome = match (action, took) {
        (_, None) => "rejected",
        (Action::Ack, _) => "processed",
        (Action::Retry { .. }, _) => "retried",
        (Action::Park { .. }, _) => "parked",
    };
    span.record("outcome", outcome);
    metrics::counter!(
        "idbridge_bus_messages_total",
        "queue" => queue.to_owned(),
        "outcome" => outcome
    )
    .increment(1);
    if let Some(took) = took {
        metrics::histogram!("idbridge_bus_handle_duration_seconds", "queue" => queue.to_owned())
            .record(took.as_secs_f64());
    }
}
