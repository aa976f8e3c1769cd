//! Items the researcher deleted on ORCID, as the reader reports them ("record updated",
//! `deleted_items`): the ledger row becomes `deleted_by_user` with no ORCID call, once, and a
//! later event for the position does not write it again (`recreate_deleted = false`).

use std::sync::Arc;

use bus::events::{DeletedItem, HrEventType, RecordUpdated, Section};
use bus::{Bus, OutgoingMessage};
use chrono::Utc;
use orcid::OrcidId;
use writer::ledger::ItemState;
use writer::{Application, Dependencies};

use crate::helpers::*;

fn record_updated(orcid: OrcidId, person_id: &str, deleted: Vec<DeletedItem>) -> RecordUpdated {
    RecordUpdated {
        orcid,
        person_id: Some(person_id.to_owned()),
        last_modified: None,
        changed_sections: vec![Section::Employment],
        deleted_items: deleted,
        read_at: Utc::now(),
        previous_read_at: None,
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        status: None,
        primary_orcid: None,
    }
}

async fn publish<E: bus::events::Event>(bus: &Bus, event: &E) {
    bus.publish(&OutgoingMessage::event(event).expect("message"))
        .await
        .expect("publish");
}

#[tokio::test]
async fn an_item_the_reader_finds_deleted_becomes_deleted_by_user_and_stays_deleted() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    let tokens = Arc::new(SimTokens::default());
    let app = Application::build_with(
        app_config(&sim, &db.url, &prefix),
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens: Some(tokens.clone()),
            orcid: Some(orcid_client(&sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    let orcid = create_user(&sim, "P-D1").await;
    let token = authorize(&sim, &orcid, WRITE_SCOPES, &orcid_client(&sim)).await;
    tokens.connect("P-D1", &orcid, token);
    let ledger = app.writer().ledger();

    let hire = hire("P-D1", "POS-D1", "2026-01-01");
    publish(&bus, &hire.event).await;
    let written = wait_for("the hire written", || async {
        ledger
            .item("P-D1", "POS-D1")
            .await
            .expect("ledger")
            .filter(|i| i.state == ItemState::InOrcid && i.put_code.is_some())
    })
    .await;
    let put_code = written.put_code.expect("put code");

    // The researcher deletes it on ORCID; the reader notices and says so.
    let res = http()
        .delete(format!(
            "{}/_sim/records/{orcid}/employment/{put_code}",
            sim.base_url()
        ))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let calls_before = api_calls(&sim_stats(&sim).await);
    let update = record_updated(
        orcid,
        "P-D1",
        vec![
            DeletedItem {
                section: Section::Employment,
                put_code: put_code.get(),
                source_id: Some("POS-D1".to_owned()),
            },
            // Same put code, another section: not this item.
            DeletedItem {
                section: Section::Work,
                put_code: put_code.get(),
                source_id: None,
            },
            // A put code the ledger does not hold.
            DeletedItem {
                section: Section::Employment,
                put_code: put_code.get() + 1000,
                source_id: None,
            },
        ],
    );
    publish(&bus, &update).await;
    // Delivered again (another envelope, the same content).
    publish(&bus, &update).await;
    let inbox = || async { db.count("SELECT COUNT(*) AS n FROM writer_inbox").await };
    wait_for("the hire and both updates processed", || async {
        (inbox().await == 3).then_some(())
    })
    .await;
    let item = ledger
        .item("P-D1", "POS-D1")
        .await
        .expect("ledger")
        .expect("item");
    assert_eq!(item.state, ItemState::DeletedByUser);
    assert_eq!(
        item.put_code,
        Some(put_code),
        "the deleted put code is kept"
    );
    assert!(
        item.last_error_message
            .as_deref()
            .is_some_and(|m| m.contains("researcher deleted")),
        "{item:?}"
    );
    let history = ledger.history(item.id).await.expect("history");
    let notes: Vec<_> = history
        .iter()
        .filter(|a| a.action == "record-updated")
        .collect();
    assert_eq!(
        notes.len(),
        1,
        "once, however often delivered: {history:#?}"
    );
    assert_eq!(notes[0].outcome, "deleted-by-user");
    assert_eq!(notes[0].put_code, Some(put_code));
    let failed = db.outbox_payloads("item-failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["error"]["kind"], "deleted-by-user");
    assert_eq!(failed[0]["source_id"], "POS-D1");
    assert_eq!(
        api_calls(&sim_stats(&sim).await),
        calls_before,
        "nothing sent to ORCID"
    );

    // A later change for the position: recorded, not written again.
    let change = hire.then(HrEventType::Change).role("Lecturer");
    publish(&bus, &change.event).await;
    wait_for("the change processed", || async {
        (inbox().await == 4).then_some(())
    })
    .await;
    let item = ledger
        .item("P-D1", "POS-D1")
        .await
        .expect("ledger")
        .expect("item");
    assert_eq!(item.state, ItemState::DeletedByUser);
    let last = ledger
        .history(item.id)
        .await
        .expect("history")
        .pop()
        .expect("a note");
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("check", "skipped")
    );
    assert!(sim_items(&sim, &orcid, "employments").await.is_empty());
    assert_eq!(api_calls(&sim_stats(&sim).await), calls_before);

    app.shutdown_token().cancel();
    app.run_until_stopped().await;
    sim.stop().await;
    db.drop().await;
}

/// With `recreate_deleted = true` the row forgets the deleted put code, and the next event
/// for the position writes a new item.
#[tokio::test]
async fn with_recreate_deleted_the_next_event_writes_it_again() {
    let h = Harness::with(
        TestDb::postgres().await,
        writer::WritePolicy {
            recreate_deleted: true,
            ..writer::WritePolicy::default()
        },
    )
    .await;
    let orcid = h.connected("P-D2").await;
    let hire = hire("P-D2", "POS-D2", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, bus::Outcome::Ack);
    let old = h.item("P-D2", "POS-D2").await.put_code.expect("put code");
    let res = http()
        .delete(format!(
            "{}/_sim/records/{orcid}/employment/{old}",
            h.sim.base_url()
        ))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let update = record_updated(
        orcid,
        "P-D2",
        vec![DeletedItem {
            section: Section::Employment,
            put_code: old.get(),
            source_id: None,
        }],
    );
    assert_eq!(
        h.writer
            .apply_record_updated(&update, &writer::Cause::none())
            .await,
        bus::Outcome::Ack
    );
    let item = h.item("P-D2", "POS-D2").await;
    assert_eq!(item.state, ItemState::DeletedByUser);
    assert_eq!(item.put_code, None);

    let change = hire.then(HrEventType::Change).role("Lecturer");
    assert_eq!(h.apply(&change.event).await, bus::Outcome::Ack);
    let item = h.item("P-D2", "POS-D2").await;
    assert_eq!(item.state, ItemState::InOrcid);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_ne!(item.put_code, Some(old));
    assert_eq!(
        item.put_code.map(|p| p.get()),
        items[0]["put-code"].as_u64()
    );
    assert_eq!(text(&items[0], "/role-title").as_deref(), Some("Lecturer"));
    h.finish().await;
}
