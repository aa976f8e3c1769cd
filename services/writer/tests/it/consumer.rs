//! The writer as a service on the bus: topology, partitioned consumer, outbox relay. A person
//! not connected waits as `pending` until "connection ready"; malformed messages are parked
//! with reasons while good ones go through. In-process bus, and once through RabbitMQ.

use std::sync::Arc;

use bus::events::{ConnectionReady, HrEventType, ItemWritten, exchanges};
use bus::{
    AmqpConfig, Bus, ConsumerHandle, ConsumerOptions, Delivery, Envelope, Outcome, OutgoingMessage,
    ServiceSpec, Topology, handler_fn,
};
use chrono::Utc;
use orcid::OrcidId;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use writer::ledger::ItemState;
use writer::{Application, Dependencies};

use crate::helpers::*;

struct Service {
    app: Application,
    bus: Bus,
    listener: ConsumerHandle,
    written: mpsc::UnboundedReceiver<ItemWritten>,
    tokens: Arc<SimTokens>,
}

/// The writer on `bus`, plus a listener of "item written".
async fn start(sim: &orcid_sim::SimHandle, db: &TestDb, bus: Bus, prefix: &str) -> Service {
    let tokens = Arc::new(SimTokens::default());
    let app = Application::build_with(
        app_config(sim, &db.url, prefix),
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens: Some(tokens.clone()),
            orcid: Some(orcid_client(sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    let listener_spec = ServiceSpec::new("listener").bind(exchanges::EVENTS, "item.*");
    bus.declare(&Topology::new().service(listener_spec.clone()))
        .await
        .expect("listener topology");
    let (tx, written) = mpsc::unbounded_channel();
    let listener = bus
        .consume(
            &listener_spec,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    if let Ok(event) = d.payload::<ItemWritten>() {
                        let _ = tx.send(event);
                    }
                    Outcome::Ack
                }
            }),
        )
        .await
        .expect("listener");
    Service {
        app,
        bus,
        listener,
        written,
        tokens,
    }
}

impl Service {
    async fn stop(self) {
        self.listener.stop().await;
        let token = self.app.shutdown_token();
        token.cancel();
        self.app.run_until_stopped().await;
    }
}

fn ready(orcid: &OrcidId, person_id: &str) -> ConnectionReady {
    ConnectionReady {
        orcid: *orcid,
        person_id: person_id.to_owned(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        connected_at: Utc::now(),
    }
}

async fn pending_then_ready(bus: Bus, prefix: &str) {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let mut service = start(&sim, &db, bus, prefix).await;
    let ledger = service.app.writer().ledger();

    let hire = hire("P-50", "POS-50", "2026-09-01");
    let message = OutgoingMessage::event(&hire.event).expect("message");
    service.bus.publish(&message).await.expect("publish");
    // The same message again (an HR system that resent it before the confirm).
    service.bus.publish(&message).await.expect("publish");
    let item = wait_for("the hire is pending", || async {
        ledger
            .item("P-50", "POS-50")
            .await
            .expect("ledger")
            .filter(|i| i.state == ItemState::Pending)
    })
    .await;
    assert_eq!(item.put_code, None);

    // The researcher connects; the vault would publish "connection ready".
    let orcid = create_user(&sim, "P-50").await;
    let token = authorize(&sim, &orcid, WRITE_SCOPES, &orcid_client(&sim)).await;
    service.tokens.connect("P-50", &orcid, token);
    let ready = OutgoingMessage::event(&ready(&orcid, "P-50")).expect("message");
    service.bus.publish(&ready).await.expect("publish");

    let item = wait_for("the item is written", || async {
        ledger
            .item("P-50", "POS-50")
            .await
            .expect("ledger")
            .filter(writer::ledger::LedgerItem::is_current)
    })
    .await;
    let items = sim_items(&sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(
        items[0]["put-code"].as_u64(),
        item.put_code.map(|p| p.get())
    );
    let written = tokio::time::timeout(DEADLINE, service.written.recv())
        .await
        .expect("item written in time")
        .expect("an event");
    assert_eq!(written.person_id, "P-50");
    assert_eq!(written.source_id, "POS-50");
    assert_eq!(Some(written.put_code), item.put_code.map(|p| p.get()));

    // A leave then updates it through the bus too.
    let leave = hire.then(HrEventType::Leave).end("2027-08-31");
    service
        .bus
        .publish(&OutgoingMessage::event(&leave.event).expect("message"))
        .await
        .expect("publish");
    wait_for("the end date", || async {
        let items = sim_items(&sim, &orcid, "employments").await;
        (items.len() == 1 && text(&items[0], "/end-date/year/value").as_deref() == Some("2027"))
            .then_some(())
    })
    .await;
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM writer_items").await, 1);
    assert!(
        service
            .bus
            .parked("writer", 10)
            .await
            .expect("parked")
            .is_empty()
    );
    let bus = service.bus.clone();
    service.stop().await;
    // Leave nothing behind on the broker.
    let spec = writer::service_spec(&app_config(&sim, &db.url, prefix));
    let listener = ServiceSpec::new("listener").bind(exchanges::EVENTS, "item.*");
    bus.delete(&writer::topology(&spec).service(listener))
        .await
        .expect("topology deleted");
    bus.close().await;
    sim.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_person_not_connected_waits_for_connection_ready() {
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    pending_then_ready(bus, &prefix).await;
}

#[tokio::test]
async fn through_rabbitmq() {
    let url = std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let prefix = prefix();
    let bus = Bus::amqp(AmqpConfig::new(&url), &prefix).await.unwrap_or_else(|e| {
        panic!(
            "this test needs RabbitMQ at {} (set TEST_AMQP_URL; ./scripts/test.sh starts it): {e}",
            bus::redact_url(&url)
        )
    });
    pending_then_ready(bus, &prefix).await;
}

fn raw(message_type: &str, payload: Value) -> Vec<u8> {
    Envelope::raw(message_type, 1, payload)
        .to_json()
        .expect("json")
}

fn hire_json(event_id: &str, position: Value) -> Value {
    json!({
        "event_id": event_id,
        "event_type": "hire",
        "occurred_at": "2026-12-01T08:00:00Z",
        "person": {"person_id": "P-60", "names": {"given_names": "Ada"}},
        "position": position,
    })
}

#[tokio::test]
async fn malformed_events_are_parked_with_reasons_and_nothing_else_is_disturbed() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    let service = start(&sim, &db, bus, &prefix).await;
    let orcid = create_user(&sim, "P-60").await;
    let token = authorize(&sim, &orcid, WRITE_SCOPES, &orcid_client(&sim)).await;
    service.tokens.connect("P-60", &orcid, token);

    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"{not json".to_vec(), "invalid envelope"),
        (
            "no position",
            raw(
                "hr-event",
                json!({"event_id": "e1", "event_type": "hire", "occurred_at": "2026-12-01T08:00:00Z",
                "person": {"person_id": "P-60", "names": {"given_names": "Ada"}}}),
            ),
            "missing field `position`",
        ),
        (
            "unknown section",
            raw(
                "hr-event",
                hire_json(
                    "e2",
                    json!({"position_id": "X-1", "section": "sabbatical", "start_date": "2026-01-01"}),
                ),
            ),
            "sabbatical",
        ),
        (
            "end before start",
            raw(
                "hr-event",
                hire_json(
                    "e3",
                    json!({"position_id": "X-2", "start_date": "2026-05-01", "end_date": "2026-04-30"}),
                ),
            ),
            "is before position.start_date",
        ),
        (
            "no such day",
            raw(
                "hr-event",
                hire_json(
                    "e4",
                    json!({"position_id": "X-3", "start_date": "2026-02-30"}),
                ),
            ),
            "position.start_date",
        ),
        (
            "leave without end",
            raw(
                "hr-event",
                json!({"event_id": "e5", "event_type": "leave", "occurred_at": "2026-12-01T08:00:00Z",
                "person": {"person_id": "P-60", "names": {"given_names": "Ada"}},
                "position": {"position_id": "X-4", "start_date": "2026-01-01"}}),
            ),
            "needs position.end_date",
        ),
        (
            "bad date-time",
            raw(
                "hr-event",
                json!({"event_id": "e6", "event_type": "hire", "occurred_at": "yesterday",
                "person": {"person_id": "P-60", "names": {"given_names": "Ada"}},
                "position": {"position_id": "X-5"}}),
            ),
            "occurred_at",
        ),
        (
            "wrong type",
            raw("record-changed", json!({"orcid": "0000-0002-1825-0097"})),
            "does not take \"record-changed\"",
        ),
    ];
    for (name, body, _) in &bad {
        service
            .bus
            .publish_bytes(exchanges::HR, "hr.hire", Some("P-60"), body.clone())
            .await
            .unwrap_or_else(|e| panic!("publish {name}: {e}"));
    }
    // A work event through the works exchange, with a type ORCID does not know.
    let bad_work = raw(
        "work-event",
        json!({"event_id": "w1", "event_type": "upsert", "occurred_at": "2026-12-01T08:00:00Z",
            "person_id": "P-60", "work": {"work_id": "W-1", "title": "Kiln Notes", "type": "pamphlet-of-doom",
            "external_ids": [{"type": "doi", "value": "10.1/x", "relationship": "self"}]}}),
    );
    service
        .bus
        .publish_bytes(exchanges::WORKS, "work.upsert", Some("P-60"), bad_work)
        .await
        .expect("publish");
    // A good event for the same person after all of them.
    let good = hire("P-60", "GOOD-1", "2026-01-01");
    service
        .bus
        .publish(&OutgoingMessage::event(&good.event).expect("message"))
        .await
        .expect("publish");

    let ledger = service.app.writer().ledger();
    wait_for("the good event is written", || async {
        ledger
            .item("P-60", "GOOD-1")
            .await
            .expect("ledger")
            .filter(writer::ledger::LedgerItem::is_current)
    })
    .await;
    let parked = wait_for("every bad message parked", || async {
        let parked = service.bus.parked("writer", 50).await.expect("parked");
        (parked.len() == bad.len() + 1).then_some(parked)
    })
    .await;
    for (name, _, expected) in &bad {
        assert!(
            parked.iter().any(|p| p.reason.contains(expected)),
            "{name}: no parked reason contains {expected:?}: {:#?}",
            parked.iter().map(|p| &p.reason).collect::<Vec<_>>()
        );
    }
    assert!(
        parked
            .iter()
            .any(|p| p.reason.contains("work.type \"pamphlet-of-doom\"")),
        "{parked:#?}"
    );
    assert_eq!(sim_items(&sim, &orcid, "employments").await.len(), 1);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM writer_items").await,
        1,
        "no ledger rows for malformed events"
    );
    service.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// Two writer replicas on one bus and one ledger: the partition (one message in flight per
/// person) serialises a burst of events for one person; one item per appointment.
#[tokio::test]
async fn two_replicas_and_a_burst_for_one_person() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    let first = start(&sim, &db, bus.clone(), &prefix).await;
    let second = start(&sim, &db, bus.clone(), &prefix).await;
    let orcid = create_user(&sim, "P-80").await;
    let token = authorize(&sim, &orcid, WRITE_SCOPES, &orcid_client(&sim)).await;
    first.tokens.connect("P-80", &orcid, token.clone());
    second.tokens.connect("P-80", &orcid, token);

    let hire_a = hire("P-80", "POS-80", "2026-01-01");
    let change_a = hire_a.then(HrEventType::Change).department("Ceramics");
    let leave_a = change_a.then(HrEventType::Leave).end("2026-12-31");
    let hire_b = hire("P-80", "POS-81", "2026-02-01");
    let events = [&hire_a, &hire_a, &change_a, &hire_b, &leave_a, &hire_b];
    for hr in events {
        // A fresh envelope each time: the repeats are the same event ids sent again.
        bus.publish(&OutgoingMessage::event(&hr.event).expect("message"))
            .await
            .expect("publish");
    }
    let ledger = first.app.writer().ledger();
    wait_for("both appointments written in their final state", || async {
        let items = ledger.items_of("P-80").await.expect("ledger");
        let done = items.len() == 2
            && items.iter().all(writer::ledger::LedgerItem::is_current)
            && items
                .iter()
                .any(|i| i.desired["end-date"]["year"]["value"] == "2026");
        done.then_some(())
    })
    .await;
    let items = sim_items(&sim, &orcid, "employments").await;
    assert_eq!(items.len(), 2, "{items:#?}");
    let ended = items
        .iter()
        .find(|i| text(i, "/department-name").as_deref() == Some("Ceramics"))
        .expect("the changed one");
    assert_eq!(text(ended, "/end-date/year/value").as_deref(), Some("2026"));
    assert_eq!(
        calls(
            &sim_stats(&sim).await,
            "POST /v3.0/{orcid}/employment",
            "201"
        ),
        2
    );
    first.stop().await;
    second.stop().await;
    sim.stop().await;
    db.drop().await;
}
