//! Confirmed persistent publish → consume → ack, through the bus and through a minimal lapin
//! loop doing the same against the same broker in the same run; prints messages/s and the
//! ratio. Run: `cargo bench -p bus --bench throughput` (env: `TEST_AMQP_URL`,
//! `BENCH_MESSAGES`, default 20000; `BENCH_ROUNDS`, default 3; `BENCH_RAW_QUEUE=bus` gives
//! the raw loop's queue the bus's queue arguments).
//!
//! Both sides do the same work with the same concurrency: `IN_FLIGHT` publishes awaiting
//! their confirm, a consumer with prefetch `PREFETCH` handling up to that many deliveries at
//! once and acking each; both clocks run from the first publish until the last message is
//! acked and the consumer's channel and connection are closed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use bus::{
    AmqpConfig, Bus, ConsumerOptions, Delivery, Envelope, Outcome, OutgoingMessage, ServiceSpec,
    Topology, handler_fn,
};
use futures_util::{StreamExt, stream};
use lapin::{
    BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use tokio::sync::Notify;

/// Publishes awaiting confirms with this many in flight, on both sides.
const IN_FLIGHT: usize = 256;
/// Consumer prefetch, on both sides.
const PREFETCH: u16 = 256;

fn payload(i: usize) -> serde_json::Value {
    serde_json::json!({
        "event_id": format!("bench-{i}"),
        "person_id": format!("P-{:06}", i % 1000),
        "section": "employment",
        "note": "a payload about the size of a real HR event, give or take some padding here",
    })
}

async fn through_the_bus(url: &str, n: usize) -> f64 {
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let bus = Bus::amqp(AmqpConfig::new(url).connection_name("bench"), &prefix)
        .await
        .expect("RabbitMQ at TEST_AMQP_URL");
    let service = ServiceSpec::new("bench").bind("events", "bench.#");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.expect("declare");

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
                    // Touch the payload as a handler would.
                    std::hint::black_box(&delivery.envelope.payload["event_id"]);
                    if h.fetch_add(1, Ordering::SeqCst) + 1 == n {
                        d.notify_one();
                    }
                    Outcome::Ack
                }
            }),
        )
        .await
        .expect("consume");

    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let bus = bus.clone();
            async move {
                let message = OutgoingMessage::new(
                    "events",
                    "bench.x",
                    Envelope::raw("bench", 1, payload(i)),
                );
                bus.publish(&message).await.expect("publish");
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
    done.notified().await;
    // Returns once the last handled message is acked and the consumer's connection closed.
    consumer.stop().await;
    let elapsed = start.elapsed();
    bus.delete(&topology).await.expect("delete");
    bus.close().await;
    n as f64 / elapsed.as_secs_f64()
}

async fn raw_lapin(url: &str, n: usize) -> f64 {
    let name = format!(
        "bench-raw-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let publisher = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ at TEST_AMQP_URL");
    let consumer_conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ at TEST_AMQP_URL");
    let pub_channel = publisher.create_channel().await.expect("channel");
    pub_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    pub_channel
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    // BENCH_RAW_QUEUE=bus: the arguments the bus gives a service queue (delivery limit,
    // at-least-once dead-lettering to a parking queue), to tell their cost from the bus's.
    if std::env::var("BENCH_RAW_QUEUE").as_deref() == Ok("bus") {
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(20));
        for (key, value) in [
            ("x-dead-letter-exchange", ""),
            ("x-dead-letter-routing-key", "nowhere"),
            ("x-dead-letter-strategy", "at-least-once"),
            ("x-overflow", "reject-publish"),
        ] {
            args.insert(key.into(), AMQPValue::LongString(value.into()));
        }
    }
    pub_channel
        .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
        .await
        .expect("queue");
    pub_channel
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            "bench.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    let channel = consumer_conn.create_channel().await.expect("channel");
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .expect("qos");
    let consumer = channel
        .basic_consume(
            name.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    // As the bus's consumer does: up to PREFETCH deliveries handled (acked) concurrently.
    let consuming = tokio::spawn(async move {
        consumer
            .take(n)
            .for_each_concurrent(usize::from(PREFETCH), |delivery| async move {
                let delivery = delivery.expect("delivery");
                std::hint::black_box(&delivery.data);
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            })
            .await;
        let _ = channel.close(200, "bye".into()).await;
        let _ = consumer_conn.close(200, "bye".into()).await;
    });

    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let channel = pub_channel.clone();
            let exchange = name.clone();
            async move {
                let body = serde_json::to_vec(&payload(i)).expect("json");
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        "bench.x".into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(matches!(confirm, Confirmation::Ack(None)));
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
    consuming.await.expect("consumer");
    let elapsed = start.elapsed();
    let _ = pub_channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = pub_channel
        .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = publisher.close(200, "bye".into()).await;
    n as f64 / elapsed.as_secs_f64()
}

async fn in_process(n: usize) -> f64 {
    let bus = Bus::in_memory("bench").expect("bus");
    let service = ServiceSpec::new("bench").bind("events", "bench.#");
    bus.declare(&Topology::new().service(service.clone()))
        .await
        .expect("declare");
    let handled = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let (h, d) = (handled.clone(), done.clone());
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default().prefetch(16),
            handler_fn(move |_delivery: Delivery| {
                let (h, d) = (h.clone(), d.clone());
                async move {
                    if h.fetch_add(1, Ordering::SeqCst) + 1 == n {
                        d.notify_one();
                    }
                    Outcome::Ack
                }
            }),
        )
        .await
        .expect("consume");
    let start = Instant::now();
    for i in 0..n {
        let message =
            OutgoingMessage::new("events", "bench.x", Envelope::raw("bench", 1, payload(i)));
        bus.publish(&message).await.expect("publish");
    }
    done.notified().await;
    let elapsed = start.elapsed();
    consumer.stop().await;
    n as f64 / elapsed.as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let url = std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!(
        "confirmed persistent publish -> consume -> ack, {n} messages, quorum queue, {IN_FLIGHT} publishes in flight, prefetch {PREFETCH}"
    );
    // Warm-up both paths so neither pays connection set-up and queue creation alone.
    raw_lapin(&url, 1000).await;
    through_the_bus(&url, 1000).await;
    // Alternate the two so background load on the machine hits both alike; report medians.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (mut raw, mut bus) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        raw.push(raw_lapin(&url, n).await);
        bus.push(through_the_bus(&url, n).await);
    }
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (raw_median, bus_median) = (median(&mut raw), median(&mut bus));
    println!(
        "raw lapin loop : median {raw_median:>7.0} msg/s  (rounds: {})",
        show(&raw)
    );
    println!(
        "bus (RabbitMQ) : median {bus_median:>7.0} msg/s  (rounds: {})",
        show(&bus)
    );
    println!("ratio bus/raw  : {:.2}", bus_median / raw_median);
    let memory = in_process(n).await;
    println!("bus (in-process): {memory:.0} msg/s (no broker, no persistence)");
}
