//! Outbox and inbox on PostgreSQL and SQLite: migrations, atomicity with the caller's
//! transaction, relay publishing and marking sent.

use std::time::Duration;

use bus::{
    Bus, ConsumerOptions, Delivery, Envelope, Outcome, ServiceSpec, Topology, handler_fn,
    inbox::Inbox,
    migration::{self, TableNames},
    outbox::{Outbox, OutboxRelay, RelayConfig},
};
use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigratorTrait, SchemaManager};
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::{Migrator, message, postgres, sqlite, tables};

async fn outbox_round_trip(db: &DatabaseConnection) {
    let outbox = Outbox::new(&tables());
    let bus = Bus::in_memory("idbridge").unwrap();
    let service = ServiceSpec::new("svc").bind("events", "#");
    bus.declare(&Topology::new().service(service.clone()))
        .await
        .unwrap();
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

    // Rolled back with the state change: never published.
    let txn = db.begin().await.unwrap();
    outbox
        .record(&txn, &message("events", "item.written", json!({"n": 0})))
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(outbox.pending(db).await.unwrap(), 0);

    // Committed: published once by the relay, then marked sent.
    let kept = message("events", "item.written", json!({"n": 1})).partition_key("P-1");
    let txn = db.begin().await.unwrap();
    outbox.record(&txn, &kept).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(outbox.pending(db).await.unwrap(), 1);

    let relay = OutboxRelay::new(
        db.clone(),
        bus.clone(),
        outbox.clone(),
        RelayConfig::default(),
    );
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    assert_eq!(relay.relay_once().await.unwrap(), 0, "marked sent");
    assert_eq!(outbox.pending(db).await.unwrap(), 0);
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.envelope, kept.envelope);
    assert_eq!(got.partition_key.as_deref(), Some("P-1"));

    // A relay that cannot publish leaves the row pending and says why.
    let txn = db.begin().await.unwrap();
    outbox
        .record(&txn, &message("not-declared", "x", json!({})))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert!(relay.relay_once().await.is_err());
    assert_eq!(outbox.pending(db).await.unwrap(), 1);

    assert_eq!(
        outbox
            .prune_sent(db, chrono::Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    consumer.stop().await;
}

async fn inbox_claims_once(db: &DatabaseConnection) {
    let inbox = Inbox::new(&tables());
    let envelope = Envelope::raw("test-event", 1, json!({}));
    let txn = db.begin().await.unwrap();
    assert!(inbox.claim(&txn, &envelope).await.unwrap());
    txn.rollback().await.unwrap();
    assert!(
        !inbox.contains(db, envelope.message_id).await.unwrap(),
        "rolled back with the effects"
    );
    let txn = db.begin().await.unwrap();
    assert!(inbox.claim(&txn, &envelope).await.unwrap());
    assert!(
        !inbox.claim(&txn, &envelope).await.unwrap(),
        "second claim sees the first"
    );
    txn.commit().await.unwrap();
    assert!(inbox.contains(db, envelope.message_id).await.unwrap());
    assert_eq!(
        inbox
            .prune(db, chrono::Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn outbox_and_inbox_on_postgres() {
    let test_db = postgres().await;
    outbox_round_trip(&test_db.db).await;
    inbox_claims_once(&test_db.db).await;
    // Migrating again is a no-op.
    Migrator::up(&test_db.db, None).await.unwrap();
    test_db.drop().await;
}

#[tokio::test]
async fn outbox_and_inbox_on_sqlite() {
    let test_db = sqlite().await;
    outbox_round_trip(&test_db.db).await;
    inbox_claims_once(&test_db.db).await;

    // Two services in one SQLite file (monolithic mode) keep their own tables.
    let other = TableNames::for_service("token-vault").unwrap();
    assert_eq!(other.outbox, "token_vault_outbox");
    let manager = SchemaManager::new(&test_db.db);
    for m in migration::migrations(&other) {
        m.up(&manager).await.unwrap();
    }
    assert!(manager.has_table("token_vault_outbox").await.unwrap());
    assert!(manager.has_table("svc_outbox").await.unwrap());
    assert!(TableNames::new("Robert'); DROP TABLE x;--", "inbox").is_err());
    test_db.drop().await;
}
