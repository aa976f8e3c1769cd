//! RabbitMQ alone: confirmed persistent publish → consume → ack through the bus (the path
//! every service uses), as `crates/bus/benches/throughput.rs` measures it: a durable quorum
//! queue, 256 publishes awaiting their confirm at once, prefetch 256, each delivery acked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bus::{
    AmqpConfig, Bus, ConsumerOptions, Delivery, Envelope, Outcome, OutgoingMessage, ServiceSpec,
    Topology, handler_fn,
};
use futures_util::{StreamExt, stream};
use tokio::sync::Notify;

/// Publishes awaiting confirms at once.
const IN_FLIGHT: usize = 256;
/// Consumer prefetch (and handler concurrency).
const PREFETCH: u16 = 256;

fn payload(i: usize) -> serde_json::Value {
    // About the size of an HR hire event.
    serde_json::json!({
        "event_id": format!("bench-{i}"),
        "event_type": "hire",
        "occurred_at": "2026-12-06T01:00:00Z",
        "person": {"person_id": format!("P-{i:06}"), "names": {"given_names": "Bench", "family_name": "Person"}},
        "position": {"position_id": format!("P-{i:06}-pos"), "section": "employment",
            "department": "Benchmarks", "role_title": "Engineer", "start_date": "2024-01-01"},
    })
}

/// Messages/s for `n` messages, from the first publish until the last ack and the
/// consumer's close.
pub async fn capacity(url: &str, n: usize) -> anyhow::Result<f64> {
    let prefix = format!("pbench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let bus = Bus::amqp(
        AmqpConfig::new(url).connection_name("pipeline-bench"),
        &prefix,
    )
    .await?;
    let service = ServiceSpec::new("raw").bind("events", "bench.#");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await?;
    let handled = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let (h, d) = (handled.clone(), done.clone());
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default().prefetch(PREFETCH),
            handler_fn(move |delivery: Delivery| {
                let (h, d) = (h.clone(), d.clone());
                async move {
                    std::hint::black_box(&delivery.envelope.payload["event_id"]);
                    if h.fetch_add(1, Ordering::SeqCst) + 1 == n {
                        d.notify_one();
                    }
                    Outcome::Ack
                }
            }),
        )
        .await?;
    let start = Instant::now();
    let published: Vec<Result<(), bus::BusError>> = stream::iter(0..n)
        .map(|i| {
            let bus = bus.clone();
            async move {
                let message = OutgoingMessage::new(
                    "events",
                    "bench.x",
                    Envelope::raw("bench", 1, payload(i)),
                );
                bus.publish(&message).await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for result in published {
        result?;
    }
    done.notified().await;
    consumer.stop().await;
    let elapsed = start.elapsed();
    bus.delete(&topology).await?;
    bus.close().await;
    Ok(n as f64 / elapsed.as_secs_f64())
}
