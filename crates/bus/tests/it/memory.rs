//! The in-process backend keeps the semantics that matter: ack, retry tiers, parking,
//! garbage parked, a killed consumer's message redelivered.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bus::{
    Bus, ConsumerOptions, Delivery, Outcome, RetryPolicy, ServiceSpec, Topology, handler_fn,
    parking::Selection,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::{message, wait_for};

fn service() -> ServiceSpec {
    ServiceSpec::new("svc")
        .bind("events", "item.*")
        .retry(RetryPolicy {
            tiers: [50, 100, 200].map(Duration::from_millis).to_vec(),
            max_attempts: 4,
        })
}

async fn bus() -> Bus {
    let bus = Bus::in_memory("idbridge").unwrap();
    bus.declare(&Topology::new().service(service()))
        .await
        .unwrap();
    bus
}

#[tokio::test]
async fn retries_escalate_then_park_and_replay_restarts() {
    let bus = bus().await;
    let seen: Arc<Mutex<Vec<(Instant, u32)>>> = Arc::default();
    let log = seen.clone();
    let consumer = bus
        .consume(
            &service(),
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push((Instant::now(), d.attempt));
                    if d.envelope.payload["fixed"] == true {
                        Outcome::Ack
                    } else {
                        Outcome::retry(Duration::ZERO, "busy")
                    }
                }
            }),
        )
        .await
        .unwrap();
    let m = message("events", "item.written", json!({"fixed": false}));
    bus.publish(&m).await.unwrap();
    let parked = wait_for("parking", || async {
        let p = bus.parked("svc", 10).await.unwrap();
        (!p.is_empty()).then_some(p)
    })
    .await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), [1, 2, 3, 4]);
        for (i, pair) in seen.windows(2).enumerate() {
            assert!(pair[1].0 - pair[0].0 >= Duration::from_millis([50, 100, 200][i]));
        }
    }
    assert!(
        parked[0]
            .reason
            .contains("gave up after 4 attempts; last: busy")
    );
    assert_eq!(parked[0].history.len(), 4);
    assert_eq!(parked[0].origin_queue.as_deref(), Some("idbridge.svc"));

    assert_eq!(bus.replay_parked("svc", &Selection::All).await.unwrap(), 1);
    wait_for("the replayed first attempt", || async {
        (seen.lock().unwrap().len() == 5).then_some(())
    })
    .await;
    assert_eq!(seen.lock().unwrap()[4].1, 1);
    consumer.stop().await;
}

#[tokio::test]
async fn garbage_is_parked_and_unmatched_keys_are_dropped() {
    let bus = bus().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let consumer = bus
        .consume(
            &service(),
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
    bus.publish_bytes("events", "item.x", None, b"{".to_vec())
        .await
        .unwrap();
    bus.publish(&message("events", "other.key", json!({})))
        .await
        .unwrap();
    let good = message("events", "item.y", json!({"ok": 1}));
    bus.publish(&good).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.envelope.message_id, good.envelope.message_id);
    let parked = bus.parked("svc", 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].reason.starts_with("invalid envelope"));
    assert_eq!(bus.purge_parked("svc").await.unwrap(), 1);
    assert!(
        bus.publish(&message("missing", "x", json!({})))
            .await
            .is_err()
    );
    consumer.stop().await;
    assert!(rx.try_recv().is_err(), "the unmatched key reached no one");
}

#[tokio::test]
async fn a_killed_consumer_s_message_is_redelivered() {
    let bus = bus().await;
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let hanging = bus
        .consume(
            &service(),
            ConsumerOptions::default(),
            handler_fn(move |_d: Delivery| {
                let started_tx = started_tx.clone();
                async move {
                    started_tx.send(()).unwrap();
                    std::future::pending::<Outcome>().await
                }
            }),
        )
        .await
        .unwrap();
    bus.publish(&message("events", "item.z", json!({})))
        .await
        .unwrap();
    started.recv().await.unwrap();
    hanging.kill().await;

    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let consumer = bus
        .consume(
            &service(),
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
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(got.redelivered);
    assert_eq!(got.attempt, 1, "a crash is not an attempt");
    consumer.stop().await;
}
