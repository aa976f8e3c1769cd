//! A consumer that dies mid-message loses nothing, and with the inbox applies nothing twice.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bus::{
    ConsumerOptions, Delivery, Handler, Outcome, ServiceSpec, Topology,
    inbox::{Inbox, Transactional, TxHandler},
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement};
use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::{amqp_bus, effects, message, postgres, prefix, queue_depth, tables, wait_for};

/// Writes one effect row per message, on the transaction the inbox gave it.
#[derive(Clone, Default)]
struct RecordEffect {
    calls: Arc<Mutex<HashMap<String, Vec<bool>>>>,
}

impl TxHandler for RecordEffect {
    async fn handle(&self, txn: &DatabaseTransaction, delivery: &Delivery) -> Outcome {
        let id = delivery.envelope.message_id.to_string();
        self.calls
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_default()
            .push(delivery.redelivered);
        let insert = Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO effects (message_id, note) VALUES ($1, 'applied')",
            [id.into()],
        );
        match txn.execute_raw(insert).await {
            Ok(_) => Outcome::Ack,
            Err(e) => Outcome::retry(std::time::Duration::ZERO, e.to_string()),
        }
    }
}

/// The first replica: commits message "a" and then hangs before the ack; hangs on "b"
/// before doing anything. Both are in flight when it is killed.
struct DiesMidway<H> {
    inner: H,
    committed_a: Arc<Notify>,
    entered_b: Arc<Notify>,
}

impl<H: Handler> Handler for DiesMidway<H> {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        if delivery.envelope.payload["name"] == "a" {
            let outcome = self.inner.handle(delivery).await;
            assert_eq!(outcome, Outcome::Ack);
            self.committed_a.notify_one();
        } else {
            self.entered_b.notify_one();
        }
        std::future::pending::<Outcome>().await
    }
}

#[tokio::test]
async fn a_consumer_dying_mid_message_loses_nothing_and_applies_nothing_twice() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    let service = ServiceSpec::new("svc").bind("works", "work.*");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let first_replica = RecordEffect::default();
    let (committed_a, entered_b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let dying = bus
        .consume(
            &service,
            ConsumerOptions::default().prefetch(2),
            DiesMidway {
                inner: Transactional::new(db.clone(), Inbox::new(&tables()), first_replica.clone()),
                committed_a: committed_a.clone(),
                entered_b: entered_b.clone(),
            },
        )
        .await
        .unwrap();

    let a = message("works", "work.upsert", json!({"name": "a"}));
    let b = message("works", "work.upsert", json!({"name": "b"}));
    bus.publish(&a).await.unwrap();
    bus.publish(&b).await.unwrap();
    tokio::time::timeout(crate::helpers::DEADLINE, async {
        tokio::join!(committed_a.notified(), entered_b.notified())
    })
    .await
    .expect("both messages in flight");
    let a_id = a.envelope.message_id.to_string();
    let b_id = b.envelope.message_id.to_string();
    assert_eq!(effects(&db, &a_id).await, 1, "a's effects are committed");
    assert_eq!(effects(&db, &b_id).await, 0);

    // Dies: channel and connection gone, neither message acknowledged.
    dying.kill().await;

    let second_replica = RecordEffect::default();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            Transactional::new(db.clone(), Inbox::new(&tables()), second_replica.clone()),
        )
        .await
        .unwrap();
    wait_for("b to be applied by the second replica", || async {
        (effects(&db, &b_id).await == 1).then_some(())
    })
    .await;
    consumer.stop().await;

    // Nothing lost, nothing applied twice.
    assert_eq!(effects(&db, &a_id).await, 1);
    assert_eq!(effects(&db, &b_id).await, 1);
    let calls = second_replica.calls.lock().unwrap().clone();
    assert_eq!(
        calls.get(&b_id).map(Vec::as_slice),
        Some([true].as_slice()),
        "b was redelivered (flagged) and handled once"
    );
    assert!(
        !calls.contains_key(&a_id),
        "a was redelivered but the inbox acknowledged it without running the handler"
    );
    assert!(
        Inbox::new(&tables())
            .contains(&db, a.envelope.message_id)
            .await
            .unwrap()
    );
    assert_eq!(
        queue_depth(&format!("{prefix}.svc")).await,
        0,
        "both acknowledged"
    );

    bus.delete(&topology).await.unwrap();
    bus.close().await;
    test_db.drop().await;
}
