//! Traces across the bus: a message published inside a span is handled in a span of the
//! same trace whose parent is the `bus.publish` span (itself the publisher's child), on
//! RabbitMQ directly, through the outbox relay, and in process. Spans are collected with
//! OpenTelemetry's in-memory exporter under a subscriber scoped to the test's thread (the
//! tests run on a current-thread runtime, so the consumer's tasks are on that thread too).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bus::{
    Bus, ConsumerHandle, ConsumerOptions, Delivery, Outcome, ServiceSpec, Topology, handler_fn,
    outbox::{Outbox, OutboxRelay, RelayConfig},
};
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sea_orm::TransactionTrait;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{amqp_bus, message, postgres, prefix, tables, wait_for};

/// Spans go to the returned exporter while the guard lives.
fn capture() -> (
    InMemorySpanExporter,
    SdkTracerProvider,
    tracing::subscriber::DefaultGuard,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-tests")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, provider, guard)
}

type Received = Arc<Mutex<Vec<Delivery>>>;

/// A consumer that records deliveries and does its "work" in a span of its own.
async fn collect(bus: &Bus, service: &ServiceSpec) -> (ConsumerHandle, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let consumer = bus
        .consume(
            service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let sink = sink.clone();
                async move {
                    tracing::info_span!("handler.work").in_scope(|| {
                        sink.lock().unwrap().push(d);
                    });
                    Outcome::Ack
                }
            }),
        )
        .await
        .unwrap();
    (consumer, received)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one `{name}` span expected among {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// Waits until a `bus.handle` span has been exported (it ends after the ack).
async fn spans_once_handled(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    wait_for("the bus.handle span to end", || async {
        let spans = exporter.get_finished_spans().unwrap();
        spans
            .iter()
            .any(|s| s.name == "bus.handle")
            .then_some(spans)
    })
    .await
}

/// request → bus.publish → bus.handle → handler.work, one trace; the AMQP header carries
/// the publish span.
fn assert_chain(spans: &[SpanData], root_name: &str, delivery: &Delivery) {
    let root = named(spans, root_name);
    let publish = named(spans, "bus.publish");
    let handle = named(spans, "bus.handle");
    let work = named(spans, "handler.work");
    let trace: TraceId = root.span_context.trace_id();
    assert_eq!(
        root.parent_span_id,
        SpanId::INVALID,
        "the request is the root"
    );
    for span in [publish, handle, work] {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "`{}` is in the request's trace",
            span.name
        );
    }
    assert_eq!(publish.parent_span_id, root.span_context.span_id());
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(
        handle.parent_span_id,
        publish.span_context.span_id(),
        "the consumer's span is the publish span's child"
    );
    assert!(
        handle.parent_span_is_remote,
        "its parent came from the headers"
    );
    assert_eq!(handle.span_kind, SpanKind::Consumer);
    assert_eq!(work.parent_span_id, handle.span_context.span_id());
    let outcome = handle
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "outcome")
        .map(|kv| kv.value.to_string());
    assert_eq!(outcome.as_deref(), Some("processed"));
    let traceparent = delivery
        .envelope
        .trace
        .traceparent
        .as_deref()
        .expect("the delivery carries a traceparent");
    assert_eq!(
        traceparent,
        format!("00-{trace}-{}-01", publish.span_context.span_id()),
        "the header is the publish span's context"
    );
}

#[tokio::test]
async fn a_message_published_in_a_span_is_handled_in_a_child_of_its_publish_span() {
    let (exporter, _provider, _guard) = capture();
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let spec = ServiceSpec::new("traced").bind("events", "traced.#");
    let topology = Topology::new().exchange("events").service(spec.clone());
    bus.declare(&topology).await.unwrap();
    let (consumer, received) = collect(&bus, &spec).await;

    let request = tracing::info_span!("test.request");
    async {
        bus.publish(&message("events", "traced.one", json!({"n": 1})))
            .await
            .unwrap();
    }
    .instrument(request.clone())
    .await;
    drop(request);

    let spans = spans_once_handled(&exporter).await;
    let delivery = received.lock().unwrap()[0].clone();
    assert_chain(&spans, "test.request", &delivery);

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

#[tokio::test]
async fn the_outbox_keeps_the_context_of_the_request_that_recorded_the_row() {
    let (exporter, _provider, _guard) = capture();
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    let spec = ServiceSpec::new("traced").bind("events", "traced.#");
    let topology = Topology::new().exchange("events").service(spec.clone());
    bus.declare(&topology).await.unwrap();
    let (consumer, received) = collect(&bus, &spec).await;
    let outbox = Outbox::new(&tables());

    // The request records the event in its transaction and ends; the relay publishes it
    // later, from a task of its own that is in no span.
    let request = tracing::info_span!("test.outbox-request");
    async {
        let txn = db.begin().await.unwrap();
        outbox
            .record(&txn, &message("events", "traced.later", json!({"n": 2})))
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    .instrument(request.clone())
    .await;
    drop(request);
    let recorded = exporter.get_finished_spans().unwrap();
    assert!(
        !recorded.iter().any(|s| s.name == "bus.publish"),
        "nothing is published while recording"
    );

    let shutdown = CancellationToken::new();
    let relay = OutboxRelay::new(
        db.clone(),
        bus.clone(),
        outbox.clone(),
        RelayConfig {
            poll_interval: Duration::from_millis(20),
            ..RelayConfig::default()
        },
    )
    .spawn(shutdown.clone());

    let spans = spans_once_handled(&exporter).await;
    let delivery = received.lock().unwrap()[0].clone();
    assert_chain(&spans, "test.outbox-request", &delivery);

    shutdown.cancel();
    relay.await.unwrap();
    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
    test_db.drop().await;
}

#[tokio::test]
async fn in_process_consumers_join_the_trace_too() {
    let (exporter, _provider, _guard) = capture();
    let bus = Bus::in_memory(&prefix()).unwrap();
    let spec = ServiceSpec::new("traced").bind("events", "traced.#");
    bus.declare(&Topology::new().exchange("events").service(spec.clone()))
        .await
        .unwrap();
    let (consumer, received) = collect(&bus, &spec).await;

    let request = tracing::info_span!("test.request");
    async {
        bus.publish(&message("events", "traced.one", json!({"n": 3})))
            .await
            .unwrap();
    }
    .instrument(request.clone())
    .await;
    drop(request);

    let spans = spans_once_handled(&exporter).await;
    let delivery = received.lock().unwrap()[0].clone();
    assert_chain(&spans, "test.request", &delivery);
    consumer.stop().await;
}

#[tokio::test]
async fn without_an_opentelemetry_layer_a_traceparent_travels_unchanged() {
    // No subscriber with OpenTelemetry here: the bus passes on what it was given.
    let bus = Bus::in_memory(&prefix()).unwrap();
    let spec = ServiceSpec::new("plain").bind("events", "plain.#");
    bus.declare(&Topology::new().exchange("events").service(spec.clone()))
        .await
        .unwrap();
    let (consumer, received) = collect(&bus, &spec).await;
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let sent = message("events", "plain.one", json!({}))
        .with_envelope(|e| e.with_trace(bus::TraceContext::from_headers(Some(given), None)));
    bus.publish(&sent).await.unwrap();
    wait_for("the delivery", || async {
        (!received.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        received.lock().unwrap()[0]
            .envelope
            .trace
            .traceparent
            .as_deref(),
        Some(given)
    );
    consumer.stop().await;
}
