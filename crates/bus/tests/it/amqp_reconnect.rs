//! The broker closes our connections (and refuses them for a while): publishers and
//! consumers come back by themselves, and the outbox drains afterwards.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bus::{
    ConsumerOptions, Delivery, Outcome, ServiceSpec, Topology, handler_fn,
    inbox::{Inbox, Transactional, TxHandler},
    outbox::{Outbox, OutboxRelay, RelayConfig},
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    TempUser, amqp_bus_at, message, postgres, prefix, queue_depth, tables, total_effects, wait_for,
};

struct Apply;

impl TxHandler for Apply {
    async fn handle(&self, txn: &DatabaseTransaction, delivery: &Delivery) -> Outcome {
        let insert = Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO effects (message_id, note) VALUES ($1, 'applied')",
            [delivery.envelope.message_id.to_string().into()],
        );
        match txn.execute_raw(insert).await {
            Ok(_) => Outcome::Ack,
            Err(e) => Outcome::retry(Duration::ZERO, e.to_string()),
        }
    }
}

/// Records `n` events in the outbox, each in a transaction with a state change.
async fn emit(db: &DatabaseConnection, outbox: &Outbox, n: usize) {
    for i in 0..n {
        let txn = db.begin().await.unwrap();
        outbox
            .record(&txn, &message("events", "item.written", json!({"i": i})))
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
}

async fn duplicates(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM (SELECT message_id FROM effects GROUP BY message_id HAVING COUNT(*) > 1) d",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn server_closed_connections_recover_and_the_outbox_drains_after_an_outage() {
    let user = TempUser::create().await;
    let prefix = prefix();
    let bus = amqp_bus_at(&user.url(), &prefix).await;
    let test_db = postgres().await;
    let db = test_db.db.clone();
    let service = ServiceSpec::new("svc").bind("events", "item.#");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let outbox = Outbox::new(&tables());
    let relay = OutboxRelay::new(
        db.clone(),
        bus.clone(),
        outbox.clone(),
        RelayConfig {
            batch_size: 50,
            poll_interval: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..RelayConfig::default()
        },
    );
    let shutdown = CancellationToken::new();
    let relay_task = relay.spawn(shutdown.clone());
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default().shutdown(shutdown.clone()),
            Transactional::new(db.clone(), Inbox::new(&tables()), Apply),
        )
        .await
        .unwrap();

    emit(&db, &outbox, 5).await;
    wait_for("5 effects", || async {
        (total_effects(&db).await == 5).then_some(())
    })
    .await;

    // 1. The broker closes every connection of this user (publisher and consumer).
    user.close_connections().await;
    emit(&db, &outbox, 5).await;
    wait_for("10 effects after reconnecting", || async {
        (total_effects(&db).await == 10).then_some(())
    })
    .await;
    // A direct publish reconnects too.
    bus.publish(&message("events", "item.direct", json!({})))
        .await
        .unwrap();
    wait_for("the direct message", || async {
        (total_effects(&db).await == 11).then_some(())
    })
    .await;

    // 2. An outage: connections closed and refused for a while.
    user.revoke().await;
    user.close_connections().await;
    emit(&db, &outbox, 5).await;
    // A negative check cannot be polled for: give the relay (polling every 50 ms, backing
    // off to 500 ms) a second's worth of rounds in which it would have published if it
    // could, then check it did not.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        outbox.pending(&db).await.unwrap(),
        5,
        "nothing can be published during the outage"
    );
    assert_eq!(total_effects(&db).await, 11);
    user.grant().await;
    wait_for("the outbox to drain and 16 effects", || async {
        (outbox.pending(&db).await.unwrap() == 0 && total_effects(&db).await == 16).then_some(())
    })
    .await;
    assert_eq!(duplicates(&db).await, 0, "no message applied twice");

    shutdown.cancel();
    relay_task.await.unwrap();
    consumer.stop().await;
    assert_eq!(queue_depth(&format!("{prefix}.svc")).await, 0);
    bus.delete(&topology).await.unwrap();
    bus.close().await;
    user.delete().await;
    test_db.drop().await;
}

/// Sets its flag when dropped: tells whether the consumer abandoned a handler.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The broker closes the consumer's connection while a handler runs: the broker requeues
/// the message at once, so the consumer abandons the handler (it would otherwise run on
/// beside the redelivered copy) and re-routes nothing; after reconnecting it gets the
/// message again, flagged as redelivered.
#[tokio::test]
async fn a_handler_whose_connection_died_is_abandoned_and_its_message_redelivered() {
    let user = TempUser::create().await;
    let prefix = prefix();
    let bus = amqp_bus_at(&user.url(), &prefix).await;
    let service = ServiceSpec::new("svc").bind("events", "#");
    let topology = Topology::new().service(service.clone());
    bus.declare(&topology).await.unwrap();

    let dropped = Arc::new(AtomicBool::new(false));
    let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
    let (done_tx, mut done) = mpsc::unbounded_channel::<Delivery>();
    let flag = dropped.clone();
    let consumer = bus
        .consume(
            &service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let (flag, entered_tx, done_tx) =
                    (flag.clone(), entered_tx.clone(), done_tx.clone());
                async move {
                    if d.redelivered {
                        done_tx.send(d).unwrap();
                        return Outcome::Ack;
                    }
                    let _guard = DropFlag(flag);
                    entered_tx.send(()).unwrap();
                    // Stands for a handler still busy when the connection goes; were it
                    // to finish, it would ask for a retry.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Outcome::retry(Duration::ZERO, "too late")
                }
            }),
        )
        .await
        .unwrap();
    let sent = message("events", "item.written", json!({}));
    bus.publish(&sent).await.unwrap();
    tokio::time::timeout(crate::helpers::DEADLINE, entered.recv())
        .await
        .expect("the handler started")
        .unwrap();

    user.close_connections().await;
    let again = tokio::time::timeout(crate::helpers::DEADLINE, done.recv())
        .await
        .expect("redelivered after the reconnect")
        .unwrap();
    assert_eq!(again.envelope.message_id, sent.envelope.message_id);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the first handler was abandoned"
    );
    consumer.stop().await;
    for queue in [
        format!("{prefix}.svc"),
        format!("{prefix}.svc.parked"),
        format!("{prefix}.svc.retry.5s"),
    ] {
        assert_eq!(queue_depth(&queue).await, 0, "{queue}");
    }
    bus.delete(&topology).await.unwrap();
    bus.close().await;
    user.delete().await;
}
