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
    h.finish().await;
}
