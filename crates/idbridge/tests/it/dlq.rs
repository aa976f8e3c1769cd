//! `idbridge dlq list|replay` against a real parking queue: a consumer under the service
//! name `writer` (unique prefix) parks what it gets; the CLI lists it with its reason and
//! puts it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bus::events::exchanges;
use bus::{
    ConsumerOptions, Delivery, Envelope, Outcome, OutgoingMessage, ServiceSpec, Topology,
    handler_fn,
};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn dlq_lists_and_replays_parked_messages() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let spec = ServiceSpec::new("writer").bind(exchanges::HR, "hr.hire");
    let topology = Topology::new()
        .exchange(exchanges::HR)
        .service(spec.clone());
    bus.declare(&topology).await.expect("declare");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let consumer = bus
        .consume(
            &spec,
            ConsumerOptions::default(),
            handler_fn(move |_d: Delivery| {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Outcome::park("test: refused on purpose") }
            }),
        )
        .await
        .expect("consume");
    let envelope = Envelope::raw("hr-event", 1, json!({"not": "an event"}));
    let message_id = envelope.message_id.to_string();
    bus.publish(&OutgoingMessage::new(exchanges::HR, "hr.hire", envelope))
        .await
        .expect("publish");

    let env = |mut c: std::process::Command| {
        c.env("IDBRIDGE__BUS__AMQP_URL", amqp_url())
            .env("IDBRIDGE__BUS__PREFIX", &prefix);
        c
    };
    // Parked once consumed.
    let end = Instant::now() + DEADLINE;
    let listed = loop {
        let c = env(idbridge(&["dlq", "list", "writer"]));
        let listed = tokio::task::spawn_blocking(move || run(c, DEADLINE))
            .await
            .expect("join");
        assert_eq!(listed.code(), Some(0), "{}", listed.stderr);
        if listed.stdout.contains("1 parked messages of writer") {
            break listed;
        }
        assert!(Instant::now() < end, "never parked: {}", listed.stdout);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(listed.stdout.contains(&message_id), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("test: refused on purpose"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("hr.hire"), "{}", listed.stdout);

    let c = env(idbridge(&["dlq", "replay", "writer", "--id", &message_id]));
    let replayed = tokio::task::spawn_blocking(move || run(c, DEADLINE))
        .await
        .expect("join");
    assert_eq!(replayed.code(), Some(0), "{}", replayed.stderr);
    assert!(
        replayed.stdout.contains("1 messages replayed to writer"),
        "{}",
        replayed.stdout
    );
    // The consumer sees it again.
    let end = Instant::now() + DEADLINE;
    while seen.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < end, "the replayed message never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.stop().await;
    let _ = bus.delete(&topology).await;
    bus.close().await;
}
