//! The outbox relay on RabbitMQ and PostgreSQL: mandatory publishing, refused rows held back
//! and finally skipped without blocking the rows behind them, leases shared by replicas.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bus::{
    Bus, BusError, ConsumerHandle, ConsumerOptions, Delivery, Outcome, OutgoingMessage,
    ServiceSpec, Topology, handler_fn,
    outbox::{Outbox, OutboxRelay, RelayConfig},
};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{amqp_bus, message, postgres, prefix, tables, wait_for};

fn quick() -> RelayConfig {
    RelayConfig {
        batch_size: 10,
        poll_interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_attempts: 3,
        max_row_delay: Duration::from_millis(100),
        lease: Duration::from_secs(30),
    }
}

async fn record(db: &DatabaseConnection, outbox: &Outbox, messages: &[&OutgoingMessage]) {
    let txn = db.begin().await.unwrap();
    for m in messages {
        outbox.record(&txn, m).await.unwrap();
    }
    txn.commit().await.unwrap();
}

/// What a [`collect`] consumer received, in order.
pub(crate) type Received = Arc<Mutex<Vec<Delivery>>>;

/// A consumer of `service` that acks and keeps every delivery.
pub(crate) async fn collect(bus: &Bus, service: &ServiceSpec) -> (ConsumerHandle, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let consumer = bus
        .consume(
            service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(d);
                    Outcome::Ack
                }
            }),
        )
        .await
        .unwrap();
    (consumer, received)
}

/// A notification ("item written") with nobody subscribed is dropped by the broker and
/// marked sent, while a command-like event in the same batch with no queue is held back.
#[tokio::test]
async fn a_notification_nobody_consumes_is_not_held_back() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    bus.declare(&Topology::new().exchange("events"))
        .await
        .unwrap();
    let outbox = Outbox::new(&tables());
    let relay = OutboxRelay::new(db.clone(), bus.clone(), outbox.clone(), quick());
    let written = OutgoingMessage::new(
        "events",
        "item.written",
        bus::Envelope::raw("item-written", 1, json!({"put_code": 1})),
    );
    let ready = OutgoingMessage::new(
        "events",
        "connection.ready",
        bus::Envelope::raw("connection-ready", 1, json!({"person_id": "P-1"})),
    );
    record(&db, &outbox, &[&written, &ready]).await;

    let err = relay.relay_once().await.unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err:?}");
    assert_eq!(
        outbox.pending(&db).await.unwrap(),
        1,
        "only the command waits"
    );
    let held = outbox.stuck(&db, 1).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].message_id, ready.envelope.message_id.to_string());
    assert!(bus::events::is_notification("item-written"));
    assert!(!bus::events::is_notification("connection-ready"));
}

/// The scenario of a sealed token relayed before the vault declared its queue: with
/// mandatory publishing the broker returns it, and the row waits for the queue.
#[tokio::test]
async fn an_event_no_queue_receives_yet_stays_in_the_outbox_until_its_consumer_exists() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    // Only the exchange exists: the consumer has not started yet.
    bus.declare(&Topology::new().exchange("events"))
        .await
        .unwrap();
    let outbox = Outbox::new(&tables());
    let relay = OutboxRelay::new(db.clone(), bus.clone(), outbox.clone(), quick());
    let connected = message("events", "id.connected", json!({"sealed": "TEST_SEALED"}));
    record(&db, &outbox, &[&connected]).await;

    let err = relay.relay_once().await.unwrap_err();
    assert!(matches!(err, BusError::Unroutable { .. }), "{err:?}");
    assert_eq!(outbox.pending(&db).await.unwrap(), 1, "not marked sent");
    let refused = outbox.stuck(&db, 1).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].attempts, 1, "a refusal counts an attempt");
    assert!(
        refused[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("matched no queue")),
        "{:?}",
        refused[0].last_error
    );

    // The vault starts: its queue exists, and the held row goes out.
    let vault = ServiceSpec::new("vault").bind("events", "id.connected");
    let topology = Topology::new().service(vault.clone());
    bus.declare(&topology).await.unwrap();
    let (consumer, received) = collect(&bus, &vault).await;
    let shutdown = CancellationToken::new();
    let relay_task = relay.spawn(shutdown.clone());
    wait_for("the held event to reach the vault", || async {
        (received.lock().unwrap().len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        received.lock().unwrap()[0].envelope.message_id,
        connected.envelope.message_id
    );
    wait_for("the row to be marked sent", || async {
        (outbox.pending(&db).await.unwrap() == 0).then_some(())
    })
    .await;

    shutdown.cancel();
    relay_task.await.unwrap();
    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
    test_db.drop().await;
}

/// A row addressed to an exchange that does not exist makes the broker close the relay's
/// channel; it is held back, the rows behind it go out, and after `max_attempts` refusals
/// it is left for an operator.
#[tokio::test]
async fn a_poisoned_row_does_not_prevent_later_rows_from_being_published() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    let listener = ServiceSpec::new("listener").bind("events", "#");
    let topology = Topology::new().service(listener.clone());
    bus.declare(&topology).await.unwrap();
    let (consumer, received) = collect(&bus, &listener).await;

    let outbox = Outbox::new(&tables());
    let first = message("events", "item.written", json!({"n": 1}));
    let poisoned = message("no-such-exchange", "item.written", json!({"n": 2}));
    let later: Vec<OutgoingMessage> = (3..=5)
        .map(|n| message("events", "item.written", json!({"n": n})))
        .collect();
    record(&db, &outbox, &[&first, &poisoned]).await;
    record(&db, &outbox, &later.iter().collect::<Vec<_>>()).await;

    let config = quick();
    let max_attempts = config.max_attempts;
    let shutdown = CancellationToken::new();
    let relay_task =
        OutboxRelay::new(db.clone(), bus.clone(), outbox.clone(), config).spawn(shutdown.clone());
    wait_for("the rows around the poisoned one", || async {
        (received.lock().unwrap().len() == 4).then_some(())
    })
    .await;
    let order: Vec<u64> = received
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.envelope.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        order,
        [1, 3, 4, 5],
        "published in order, around the poisoned row"
    );

    let stuck = wait_for("the poisoned row to be given up", || async {
        let stuck = outbox.stuck(&db, max_attempts).await.unwrap();
        (!stuck.is_empty()).then_some(stuck)
    })
    .await;
    assert_eq!(stuck.len(), 1);
    assert_eq!(
        stuck[0].message_id,
        poisoned.envelope.message_id.to_string()
    );
    assert_eq!(stuck[0].attempts, max_attempts);
    assert!(
        stuck[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("NOT_FOUND") || e.contains("no exchange")),
        "{:?}",
        stuck[0].last_error
    );
    assert_eq!(
        outbox.pending(&db).await.unwrap(),
        1,
        "only the poisoned row"
    );

    // Rows recorded afterwards still go out, and the same bus still publishes.
    let after = message("events", "item.written", json!({"n": 6}));
    record(&db, &outbox, &[&after]).await;
    bus.publish(&message("events", "item.direct", json!({"n": 7})))
        .await
        .unwrap();
    wait_for("the later row and the direct publish", || async {
        (received.lock().unwrap().len() == 6).then_some(())
    })
    .await;
    // The skipped row stays skipped: its attempts do not grow any more.
    assert_eq!(
        outbox.stuck(&db, max_attempts).await.unwrap()[0].attempts,
        max_attempts
    );
    // An operator can put it back. The relay is stopped first: running, it would try the
    // row again at once and, the row still being unroutable, could give it up again before
    // the check below.
    shutdown.cancel();
    relay_task.await.unwrap();
    assert_eq!(outbox.retry_stuck(&db, max_attempts).await.unwrap(), 1);
    assert!(outbox.stuck(&db, max_attempts).await.unwrap().is_empty());
    assert_eq!(
        outbox.pending(&db).await.unwrap(),
        1,
        "back in line for the relay"
    );

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
    test_db.drop().await;
}

/// Two relays (replicas) on one database lease different rows: every row is published
/// exactly once.
#[tokio::test]
async fn two_relays_share_the_outbox_without_publishing_a_row_twice() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    let listener = ServiceSpec::new("listener").bind("events", "#");
    let topology = Topology::new().service(listener.clone());
    bus.declare(&topology).await.unwrap();
    let (consumer, received) = collect(&bus, &listener).await;

    let outbox = Outbox::new(&tables());
    let messages: Vec<OutgoingMessage> = (0..200)
        .map(|n| message("events", "item.written", json!({"n": n})))
        .collect();
    record(&db, &outbox, &messages.iter().collect::<Vec<_>>()).await;

    let relays: Vec<OutboxRelay> = (0..2)
        .map(|_| OutboxRelay::new(db.clone(), bus.clone(), outbox.clone(), quick()))
        .collect();
    let published = futures_util::future::join_all(relays.iter().map(|relay| async {
        let mut mine = 0;
        while outbox.pending(&db).await.unwrap() > 0 {
            mine += relay.relay_once().await.unwrap();
        }
        mine
    }))
    .await;
    assert_eq!(published.iter().sum::<usize>(), 200, "{published:?}");
    assert!(
        published.iter().all(|n| *n > 0),
        "both relays took part: {published:?}"
    );
    wait_for("every message", || async {
        (received.lock().unwrap().len() >= 200).then_some(())
    })
    .await;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for d in received.lock().unwrap().iter() {
        *copies.entry(d.envelope.message_id.to_string()).or_default() += 1;
    }
    assert_eq!(copies.len(), 200);
    assert!(
        copies.values().all(|n| *n == 1),
        "a row was published twice"
    );

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
    test_db.drop().await;
}
