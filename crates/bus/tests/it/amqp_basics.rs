//! Publish with confirms, consume and ack, retry tiers, parking, operator tools.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use bus::{
    ConsumerOptions, Delivery, Outcome, OutgoingMessage, RetryPolicy, ServiceSpec, Topology,
    TraceContext, events::ItemWritten, handler_fn, parking::Selection,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::{amqp_bus, message, prefix, queue_depth, wait_for};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn publish_is_confirmed_then_consumed_and_acked() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let service = ServiceSpec::new("svc").bind("events", "item.*");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();
    // Declaring again is harmless (every start does it).
    bus.declare(&topology).await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    tx.send(d).unwrap();
                    Outcome::Ack
                }
            }),
        )
        .await
        .unwrap();

    let event = ItemWritten {
        orcid: "0000-0002-1825-0097".parse().unwrap(),
        person_id: "P-1".into(),
        section: bus::events::Section::Employment,
        source_id: "POS-1".into(),
        put_code: 42,
        action: bus::events::ItemAction::Created,
        written_at: chrono::Utc::now(),
    };
    let outgoing = OutgoingMessage::event(&event).unwrap().with_envelope(|e| {
        e.with_trace(TraceContext::from_headers(
            Some(TRACEPARENT),
            Some("vendor=1"),
        ))
    });
    bus.publish(&outgoing).await.unwrap();

    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("delivered in time")
        .unwrap();
    assert_eq!(got.envelope.message_id, outgoing.envelope.message_id);
    assert_eq!(got.payload::<ItemWritten>().unwrap(), event);
    assert_eq!(got.envelope.trace.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(got.envelope.trace.tracestate.as_deref(), Some("vendor=1"));
    assert_eq!(got.attempt, 1);
    assert_eq!(got.routing_key, "item.written");
    assert_eq!(got.exchange, format!("{prefix}.events"));
    assert_eq!(got.partition_key.as_deref(), Some("P-1"));
    assert!(got.history.is_empty());

    // Unmatched routing keys are dropped by the exchange, like any AMQP topic exchange.
    bus.publish(&message("events", "nobody.listens", json!({})))
        .await
        .unwrap();
    // An exchange that does not exist is an error, not a silent loss.
    assert!(
        bus.publish(&message("no-such-exchange", "x", json!({})))
            .await
            .is_err()
    );

    consumer.stop().await;
    // Stopping returns unacknowledged messages to the queue: zero means it was acked.
    assert_eq!(queue_depth(&format!("{prefix}.svc")).await, 0);
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

#[tokio::test]
async fn retry_tiers_fire_in_order_then_the_message_is_parked_with_its_reason() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let tiers = [200, 400, 800].map(Duration::from_millis);
    let service = ServiceSpec::new("svc")
        .bind("events", "#")
        .retry(RetryPolicy {
            tiers: tiers.to_vec(),
            max_attempts: 4,
        });
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let seen: Arc<Mutex<Vec<(Instant, Delivery)>>> = Arc::default();
    let log = seen.clone();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let log = log.clone();
                async move {
                    let attempt = d.attempt;
                    log.lock().unwrap().push((Instant::now(), d));
                    Outcome::retry(Duration::ZERO, format!("ORCID 503 on attempt {attempt}"))
                }
            }),
        )
        .await
        .unwrap();

    let outgoing = message("events", "item.written", json!({"n": 1}));
    bus.publish(&outgoing).await.unwrap();

    let parked = wait_for("the message to be parked", || async {
        let parked = bus.parked("svc", 10).await.unwrap();
        (!parked.is_empty()).then_some(parked)
    })
    .await;

    let seen = seen.lock().unwrap().clone();
    let attempts: Vec<u32> = seen.iter().map(|(_, d)| d.attempt).collect();
    assert_eq!(
        attempts,
        [1, 2, 3, 4],
        "one delivery per attempt, counted from x-death"
    );
    // RabbitMQ expires per-queue TTLs on its own timer, which may fire a few milliseconds
    // early (seen: 797.5 ms for 800): a tier counts as respected within that granularity.
    let timer_granularity = Duration::from_millis(15);
    for (i, pair) in seen.windows(2).enumerate() {
        let waited = pair[1].0 - pair[0].0;
        assert!(
            waited + timer_granularity >= tiers[i],
            "attempt {} came {waited:?} after the previous one, before tier {i} ({:?}) expired",
            i + 2,
            tiers[i]
        );
    }
    // The history grows by one entry per retry, with the tier delays in order.
    let last = &seen[3].1;
    let delays: Vec<u64> = last.history.iter().map(|r| r.delay_ms).collect();
    assert_eq!(delays, [200, 400, 800]);
    assert_eq!(last.history[1].reason, "ORCID 503 on attempt 2");
    assert_eq!(
        last.routing_key, "item.written",
        "original routing key kept"
    );

    assert_eq!(parked.len(), 1);
    let p = &parked[0];
    assert_eq!(
        p.message_id.as_deref(),
        Some(outgoing.envelope.message_id.to_string().as_str())
    );
    assert!(
        p.reason.contains("gave up after 4 attempts")
            && p.reason.contains("ORCID 503 on attempt 4"),
        "reason: {}",
        p.reason
    );
    assert_eq!(p.attempts, 4);
    assert_eq!(p.history.len(), 4);
    assert_eq!(p.history[3].outcome, bus::AttemptOutcome::Park);
    assert_eq!(
        p.origin_queue.as_deref(),
        Some(format!("{prefix}.svc").as_str())
    );
    assert_eq!(p.routing_key.as_deref(), Some("item.written"));
    // Listing leaves it parked.
    assert_eq!(bus.parked("svc", 10).await.unwrap().len(), 1);

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

#[tokio::test]
async fn parked_messages_are_listed_replayed_and_purged() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let service = ServiceSpec::new("svc").bind("events", "#");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let accept = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let (accept_in, acked_in) = (accept.clone(), acked.clone());
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let (accept, acked) = (accept_in.clone(), acked_in.clone());
                async move {
                    if accept.load(Ordering::SeqCst) {
                        acked.lock().unwrap().push(d);
                        Outcome::Ack
                    } else {
                        Outcome::park(format!("no such person {}", d.envelope.payload["person"]))
                    }
                }
            }),
        )
        .await
        .unwrap();

    let messages: Vec<OutgoingMessage> = (0..3)
        .map(|i| message("events", "hr.hire", json!({"person": i})))
        .collect();
    for m in &messages {
        bus.publish(m).await.unwrap();
    }
    let parked = wait_for("three parked messages", || async {
        let parked = bus.parked("svc", 10).await.unwrap();
        (parked.len() == 3).then_some(parked)
    })
    .await;
    let mut reasons: Vec<&str> = parked.iter().map(|p| p.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        ["no such person 0", "no such person 1", "no such person 2"]
    );
    assert!(
        parked
            .iter()
            .all(|p| p.attempts == 1 && p.history.len() == 1)
    );

    // Fix the cause, replay one message: it is handled again, from attempt 1.
    accept.store(true, Ordering::SeqCst);
    let chosen = messages[1].envelope.message_id.to_string();
    let replayed = bus
        .replay_parked("svc", &Selection::Ids(vec![chosen.clone()]))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    let handled = wait_for("the replayed message", || async {
        acked.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(handled.envelope.message_id.to_string(), chosen);
    assert_eq!(
        handled.attempt, 1,
        "a replay starts the attempt count afresh"
    );
    assert!(handled.history.is_empty());

    let left = bus.parked("svc", 10).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|p| p.message_id.as_deref() != Some(chosen.as_str()))
    );
    assert_eq!(bus.purge_parked("svc").await.unwrap(), 2);
    assert!(bus.parked("svc", 10).await.unwrap().is_empty());

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

#[tokio::test]
async fn a_body_that_is_not_an_envelope_is_parked_and_the_consumer_goes_on() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let service = ServiceSpec::new("svc").bind("hr", "hr.*");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |_d: Delivery| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Outcome::Ack
                }
            }),
        )
        .await
        .unwrap();

    bus.publish_bytes("hr", "hr.hire", None, b"not json at all".to_vec())
        .await
        .unwrap();
    bus.publish_bytes("hr", "hr.hire", None, br#"{"event_id":"x"}"#.to_vec())
        .await
        .unwrap();
    bus.publish(&message("hr", "hr.hire", json!({"ok": true})))
        .await
        .unwrap();

    let parked = wait_for("two parked garbage messages", || async {
        let parked = bus.parked("svc", 10).await.unwrap();
        (parked.len() == 2).then_some(parked)
    })
    .await;
    wait_for("the valid message", || async {
        (calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let mut bodies: Vec<&str> = parked.iter().map(|p| p.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["not json at all", r#"{"event_id":"x"}"#]);
    for p in &parked {
        assert!(p.reason.starts_with("invalid envelope: "), "{}", p.reason);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler never saw the garbage"
    );

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

#[tokio::test]
async fn a_panicking_handler_is_retried_not_fatal() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let service = ServiceSpec::new("svc")
        .bind("events", "#")
        .retry(RetryPolicy {
            tiers: vec![Duration::from_millis(100)],
            max_attempts: 3,
        });
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    assert!(d.attempt > 1, "boom on the first attempt");
                    tx.send(d).unwrap();
                    Outcome::Ack
                }
            }),
        )
        .await
        .unwrap();
    bus.publish(&message("events", "x", json!({})))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("retried after the panic")
        .unwrap();
    assert_eq!(got.attempt, 2);
    assert!(
        got.history[0].reason.contains("handler panicked"),
        "{:?}",
        got.history
    );
    assert!(!consumer.is_finished());

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

/// A replay of everything while the cause is not fixed: each replayed message is parked
/// again at once, and must not be replayed a second time by the same call.
#[tokio::test]
async fn a_replay_does_not_loop_over_messages_parked_again_meanwhile() {
    const PARKED: usize = 30;
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let service = ServiceSpec::new("svc").bind("events", "#");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();
    let handled = Arc::new(AtomicU32::new(0));
    let counter = handled.clone();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |_d: Delivery| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Outcome::park("still broken")
                }
            }),
        )
        .await
        .unwrap();
    for i in 0..PARKED {
        bus.publish(&message("events", "x", json!({"i": i})))
            .await
            .unwrap();
    }
    wait_for("every message parked", || async {
        (bus.parked("svc", PARKED + 1).await.unwrap().len() == PARKED).then_some(())
    })
    .await;

    // A looping replay would go on until its scan limit (100 000 messages).
    let replayed = tokio::time::timeout(
        crate::helpers::DEADLINE,
        bus.replay_parked("svc", &Selection::All),
    )
    .await
    .expect("the replay ends")
    .unwrap();
    assert_eq!(replayed, PARKED, "each parked message replayed once");
    wait_for(
        "every replayed message handled and parked again",
        || async {
            let parked = bus.parked("svc", PARKED + 1).await.unwrap().len();
            (handled.load(Ordering::SeqCst) == 2 * u32::try_from(PARKED).unwrap()
                && parked == PARKED)
                .then_some(())
        },
    )
    .await;

    consumer.stop().await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}
