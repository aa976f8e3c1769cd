//! The same ledger on SQLite (embedded defaults): migrations apply (twice, idempotently) and
//! a hire and a leave go through.

use bus::Outcome;
use bus::events::HrEventType;
use writer::WritePolicy;
use writer::ledger::ItemState;

use crate::helpers::*;

#[tokio::test]
async fn hire_and_leave_on_sqlite() {
    let db = TestDb::sqlite().await;
    writer::migrate(&db.db)
        .await
        .expect("migrations are idempotent");
    let h = Harness::with(db, WritePolicy::default()).await;
    let orcid = h.connected("P-70").await;
    let hire = hire("P-70", "POS-70", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let leave = hire.then(HrEventType::Leave).end("2026-12-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1);
    let item = h.item("P-70", "POS-70").await;
    assert_eq!(item.state, ItemState::InOrcid);
    assert_eq!(
        item.put_code.map(|p| p.get()),
        items[0]["put-code"].as_u64()
    );
    assert_eq!(
        text(&items[0], "/end-date/year/value").as_deref(),
        Some("2026")
    );
    assert_eq!(h.db.outbox_types().await, ["item-written", "item-written"]);

    // Sections known clean work on SQLite too: the listing is recorded, a second position is
    // posted without reading, and a newer snapshot's "dirty" replaces the older "clean".
    let clean = "SELECT count(*) AS n FROM writer_clean_sections WHERE section = 'employment' AND basis = 'listing'";
    assert_eq!(h.db.count(clean).await, 1);
    let second = super::helpers::hire("P-70", "POS-71", "2026-02-01");
    assert_eq!(h.apply(&second.event).await, Outcome::Ack);
    assert_eq!(
        calls(
            &sim_stats(&h.sim).await,
            "GET /v3.0/{orcid}/employments",
            "200"
        ),
        1,
        "one listing for both positions"
    );
    let update = bus::events::RecordUpdated {
        orcid,
        person_id: None,
        last_modified: None,
        changed_sections: Vec::new(),
        deleted_items: Vec::new(),
        read_at: chrono::Utc::now(),
        previous_read_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
        added: vec![bus::events::ItemRef {
            section: bus::events::Section::Employment,
            put_code: 999_999,
            source_client_id: Some(h.client.client_id().to_owned()),
            title: None,
        }],
        changed: Vec::new(),
        removed: Vec::new(),
        status: Some(bus::events::RecordStatus::Active),
        primary_orcid: None,
    };
    assert_eq!(
        h.writer
            .apply_record_updated(&update, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    assert_eq!(h.db.count(clean).await, 0);
    assert_eq!(
        h.db.count("SELECT count(*) AS n FROM writer_clean_sections WHERE section = 'employment' AND basis = 'dirty'")
            .await,
        1
    );
    h.finish().await;
}
