//! The writer killed mid-batch and restarted, against RabbitMQ, PostgreSQL and orcid-sim:
//! every event applied, none twice — one ORCID item per (person, position), leaves carry
//! their end dates, the ledger's put codes are the simulator's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bus::OutgoingMessage;
use bus::events::HrEventType;
use orcid::OrcidId;
use serde_json::json;
use writer::ledger::ItemState;
use writer::{Application, Dependencies};

use crate::helpers::*;

const PEOPLE: usize = 10;
const POSITIONS: usize = 4;
/// People 0..LEAVERS also leave their first position.
const LEAVERS: usize = 5;

async fn start(
    sim: &orcid_sim::SimHandle,
    db: &TestDb,
    prefix: &str,
    tokens: Arc<SimTokens>,
) -> (Application, bus::Bus) {
    let bus = amqp_bus(prefix).await;
    let app = Application::build_with(
        app_config(sim, &db.url, prefix),
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens: Some(tokens),
            orcid: Some(orcid_client(sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    (app, bus)
}

#[tokio::test]
async fn killed_mid_batch_and_restarted_every_event_applied_none_twice() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let tokens = Arc::new(SimTokens::default());
    let client = orcid_client(&sim);
    let mut orcids: Vec<(String, OrcidId)> = Vec::new();
    for p in 0..PEOPLE {
        let person_id = format!("P-K{p}");
        let orcid = create_user(&sim, &person_id).await;
        let token = authorize(&sim, &orcid, WRITE_SCOPES, &client).await;
        tokens.connect(&person_id, &orcid, token);
        orcids.push((person_id, orcid));
    }
    // Slow ORCID down so the kill lands while writes are in flight.
    add_fault(
        &sim,
        json!({"endpoint": "POST /v3.0/*/employment", "latency_ms": 150}),
    )
    .await;
    add_fault(&sim, json!({"endpoint": "GET /v3.0/**", "latency_ms": 50})).await;

    let (app, bus) = start(&sim, &db, &prefix, tokens.clone()).await;

    // 40 hires, then 5 leaves, published as an HR system would.
    let mut hires = Vec::new();
    for (person_id, _) in &orcids {
        for n in 0..POSITIONS {
            hires.push(hire(
                person_id,
                &format!("POS-{n}"),
                &format!("202{n}-0{}-01", n + 1),
            ));
        }
    }
    let leaves: Vec<Hr> = hires
        .iter()
        .filter(|h| h.event.position.position_id == "POS-0")
        .take(LEAVERS)
        .map(|h| h.then(HrEventType::Leave).end("2027-06-30"))
        .collect();
    let events: Vec<&Hr> = hires.iter().chain(leaves.iter()).collect();
    for hr in &events {
        bus.publish(&OutgoingMessage::event(&hr.event).expect("message"))
            .await
            .expect("published with confirm");
    }
    let total = events.len() as i64;

    // Kill once some, but not all, are in the ledger.
    let at_kill = wait_for("some items written", || async {
        let n = db
            .count("SELECT COUNT(*) AS n FROM writer_items WHERE state = 'in_orcid'")
            .await;
        (n >= 6).then_some(n)
    })
    .await;
    app.kill().await;
    bus.close().await;
    let merged_at_kill = db.count("SELECT COUNT(*) AS n FROM writer_events").await;
    assert!(
        merged_at_kill < total,
        "the kill came too late to test anything: {merged_at_kill} of {total} events already merged ({at_kill} items written)"
    );

    eprintln!("killed with {at_kill} items written and {merged_at_kill} of {total} events merged");

    // A new writer on the same database and queues finishes the batch.
    let (app, bus) = start(&sim, &db, &prefix, tokens.clone()).await;
    wait_for_long("every event merged and every item written", || async {
        let merged = db.count("SELECT COUNT(*) AS n FROM writer_events").await;
        let current = app
            .writer()
            .ledger()
            .all()
            .await
            .expect("ledger")
            .iter()
            .filter(|i| i.state == ItemState::InOrcid && i.is_current())
            .count();
        (merged == total && current == PEOPLE * POSITIONS).then_some(())
    })
    .await;

    // Exactly one ORCID item per (person, position); the ledger's put codes are ORCID's.
    let ledger = app.writer().ledger();
    let leavers: BTreeSet<(String, String)> = leaves
        .iter()
        .map(|l| {
            (
                l.event.person.person_id.clone(),
                l.event.position.position_id.clone(),
            )
        })
        .collect();
    for (person_id, orcid) in &orcids {
        let on_orcid = sim_items(&sim, orcid, "employments").await;
        assert_eq!(
            on_orcid.len(),
            POSITIONS,
            "{person_id}: one employment per position: {on_orcid:#?}"
        );
        let by_put_code: BTreeMap<u64, &serde_json::Value> = on_orcid
            .iter()
            .map(|i| (i["put-code"].as_u64().expect("put-code"), i))
            .collect();
        let items = ledger.items_of(person_id).await.expect("ledger");
        assert_eq!(items.len(), POSITIONS, "{person_id}: {items:#?}");
        let ledger_codes: BTreeSet<u64> = items
            .iter()
            .map(|i| i.put_code.expect("put code").get())
            .collect();
        assert_eq!(
            ledger_codes,
            by_put_code.keys().copied().collect::<BTreeSet<u64>>(),
            "{person_id}: the ledger holds ORCID's put codes"
        );
        for item in &items {
            assert_eq!(item.generation, 1, "{person_id}/{}", item.item_key);
            let on = by_put_code[&item.put_code.expect("put code").get()];
            let n: usize = item.item_key["POS-".len()..]
                .parse()
                .expect("position number");
            assert_eq!(
                text(on, "/start-date/year/value"),
                Some(format!("202{n}")),
                "{person_id}/{}: {on:#}",
                item.item_key
            );
            let left = leavers.contains(&(person_id.clone(), item.item_key.clone()));
            assert_eq!(
                text(on, "/end-date/year/value"),
                left.then(|| "2027".to_owned()),
                "{person_id}/{}: end date only after a leave: {on:#}",
                item.item_key
            );
        }
    }
    // Each event merged once; nothing parked.
    assert_eq!(
        db.count(
            "SELECT COUNT(*) AS n FROM (SELECT event_id FROM writer_events GROUP BY event_id) e"
        )
        .await,
        total
    );
    let parked = bus.parked(writer::SERVICE_NAME, 10).await.expect("parked");
    assert!(parked.is_empty(), "nothing parked: {parked:#?}");

    let config = app_config(&sim, &db.url, &prefix);
    app.kill().await;
    let _ = bus
        .delete(&writer::topology(&writer::service_spec(&config)))
        .await;
    bus.close().await;
    sim.stop().await;
    db.drop().await;
}

/// [`wait_for`] with a deadline for a whole batch on a busy machine.
async fn wait_for_long<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<()>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if check().await.is_some() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 120 s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
