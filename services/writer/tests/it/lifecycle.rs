//! Hire, leave, change and rehire against orcid-sim: the item on the record, the put code in
//! the ledger, the history and the events in the outbox.

use bus::Outcome;
use bus::events::{
    AffiliationSection, ExternalId as EventExternalId, HrEventType,
    Organization as EventOrganization, Relationship,
};
use serde_json::Value;
use writer::ledger::ItemState;

use crate::helpers::*;

fn put_code(item: &Value) -> u64 {
    item["put-code"].as_u64().expect("put-code")
}

#[tokio::test]
async fn hire_leave_change_rehire_keep_one_item_per_appointment() {
    let h = Harness::new().await;
    let orcid = h.connected("P-1").await;

    // Hire: one employment with our organization, department, role and start.
    let hire = hire("P-1", "POS-1", "2026-12-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "one employment: {items:#?}");
    let item = &items[0];
    assert_eq!(
        text(item, "/department-name").as_deref(),
        Some("Psychoceramics")
    );
    assert_eq!(text(item, "/role-title").as_deref(), Some("Professor"));
    assert_eq!(
        text(item, "/start-date/year/value").as_deref(),
        Some("2026")
    );
    assert_eq!(text(item, "/start-date/month/value").as_deref(), Some("12"));
    assert_eq!(text(item, "/start-date/day/value").as_deref(), Some("01"));
    assert!(item["end-date"].is_null(), "no end date yet: {item}");
    assert_eq!(
        text(item, "/organization/name").as_deref(),
        Some("Boston University")
    );
    assert_eq!(
        text(item, "/organization/address/city").as_deref(),
        Some("Boston")
    );
    assert_eq!(
        text(item, "/organization/address/country").as_deref(),
        Some("US")
    );
    assert_eq!(
        text(
            item,
            "/organization/disambiguated-organization/disambiguated-organization-identifier"
        )
        .as_deref(),
        Some(ROR_ID)
    );
    assert_eq!(
        text(item, "/source/source-client-id/path").as_deref(),
        Some(TEST_CLIENT_ID)
    );
    let ids = item["external-ids"]["external-id"]
        .as_array()
        .expect("external ids");
    assert_eq!(ids.len(), 1, "our self id only: {ids:?}");
    assert_eq!(ids[0]["external-id-relationship"], "self");
    let first_put_code = put_code(item);

    let ledger = h.item("P-1", "POS-1").await;
    assert_eq!(ledger.state, ItemState::InOrcid);
    assert_eq!(ledger.put_code.map(|p| p.get()), Some(first_put_code));
    assert_eq!(ledger.orcid.as_deref(), Some(orcid.to_string().as_str()));
    assert_eq!(ledger.section, "employment");
    assert!(ledger.is_current());
    let history = h.writer.ledger().history(ledger.id).await.expect("history");
    let steps: Vec<(&str, &str)> = history
        .iter()
        .map(|a| (a.action.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(steps, [("merge", "created"), ("create", "written")]);
    assert_eq!(history[1].put_code.map(|p| p.get()), Some(first_put_code));

    // Leave: the same put code gets the end date.
    let leave = hire.then(HrEventType::Leave).end("2027-06-30");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "still one employment: {items:#?}");
    assert_eq!(put_code(&items[0]), first_put_code);
    assert_eq!(
        text(&items[0], "/end-date/year/value").as_deref(),
        Some("2027")
    );
    assert_eq!(
        text(&items[0], "/end-date/month/value").as_deref(),
        Some("06")
    );
    assert_eq!(
        text(&items[0], "/end-date/day/value").as_deref(),
        Some("30")
    );
    assert_eq!(text(&items[0], "/role-title").as_deref(), Some("Professor"));

    // Change: updated in place.
    let change = leave.then(HrEventType::Change).role("Professor Emeritus");
    assert_eq!(h.apply(&change.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1);
    assert_eq!(put_code(&items[0]), first_put_code);
    assert_eq!(
        text(&items[0], "/role-title").as_deref(),
        Some("Professor Emeritus")
    );
    assert_eq!(
        text(&items[0], "/end-date/year/value").as_deref(),
        Some("2027"),
        "the end date stays"
    );
    let ledger = h.item("P-1", "POS-1").await;
    assert_eq!(ledger.put_code.map(|p| p.get()), Some(first_put_code));
    assert_eq!(ledger.generation, 1);

    // Rehire into the same position after it ended: a new item; the old one is kept.
    // (The builder copies the previous event; a rehire carries no end date.)
    let mut rehire = change.then(HrEventType::Hire).start("2028-01-15");
    rehire.event.position.end_date = None;
    assert_eq!(h.apply(&rehire.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 2, "a second employment: {items:#?}");
    let second = items
        .iter()
        .find(|i| put_code(i) != first_put_code)
        .expect("a new put code");
    assert_eq!(
        text(second, "/start-date/year/value").as_deref(),
        Some("2028")
    );
    assert!(second["end-date"].is_null());
    let first = items
        .iter()
        .find(|i| put_code(i) == first_put_code)
        .expect("the first");
    assert_eq!(text(first, "/end-date/year/value").as_deref(), Some("2027"));
    let rows = h.writer.ledger().items_of("P-1").await.expect("ledger");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].generation, 1);
    assert_eq!(rows[0].put_code.map(|p| p.get()), Some(first_put_code));
    assert_eq!(rows[1].generation, 2);
    assert_eq!(rows[1].put_code.map(|p| p.get()), Some(put_code(second)));

    // Every terminal result went to the outbox: created, updated, updated, created.
    let written = h.db.outbox_payloads("item-written").await;
    let actions: Vec<&str> = written
        .iter()
        .filter_map(|p| p["action"].as_str())
        .collect();
    assert_eq!(actions, ["created", "updated", "updated", "created"]);
    assert_eq!(written[0]["put_code"].as_u64(), Some(first_put_code));
    assert_eq!(written[0]["source_id"], "POS-1");
    assert_eq!(written[0]["section"], "employment");
    for payload in &written {
        bus::schemas::validate("item-written", 1, payload).expect("valid item-written");
    }
    h.finish().await;
}

#[tokio::test]
async fn sections_and_organization_overrides() {
    let h = Harness::new().await;
    let orcid = h.connected("P-2").await;
    let visit = hire("P-2", "VIS-17", "2027-01")
        .section(AffiliationSection::InvitedPosition)
        .role("Visiting Fellow")
        .organization(EventOrganization {
            name: "Example Institute".to_owned(),
            city: "Cambridge".to_owned(),
            region: Some("MA".to_owned()),
            country: "US".to_owned(),
            disambiguated_id: Some("https://ror.org/042nb2s44".to_owned()),
            disambiguation_source: Some("ROR".to_owned()),
        });
    let mut visit = visit;
    visit.event.position.url = Some("https://example.org/fellows".to_owned());
    visit.event.position.external_ids = vec![EventExternalId {
        id_type: "grant_number".to_owned(),
        value: "GN-2027-17".to_owned(),
        url: None,
        relationship: Relationship::SelfId,
    }];
    assert_eq!(h.apply(&visit.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "invited-positions").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(
        text(&items[0], "/organization/name").as_deref(),
        Some("Example Institute")
    );
    assert_eq!(
        text(&items[0], "/start-date/month/value").as_deref(),
        Some("01")
    );
    assert_eq!(
        text(&items[0], "/url/value").as_deref(),
        Some("https://example.org/fellows")
    );
    let ids = |item: &Value| -> Vec<String> {
        item["external-ids"]["external-id"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id["external-id-type"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        ids(&items[0]),
        ["other-id", "grant_number"],
        "ours and the position's"
    );
    assert!(sim_items(&h.sim, &orcid, "employments").await.is_empty());

    // A change that names no section (it defaults to employment) keeps the item's section.
    let mut change = visit
        .then(HrEventType::Change)
        .role("Senior Visiting Fellow");
    change.event.position.section = AffiliationSection::Employment;
    assert_eq!(h.apply(&change.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "invited-positions").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(&items[0], "/role-title").as_deref(),
        Some("Senior Visiting Fellow")
    );
    assert_eq!(
        ids(&items[0]),
        ["other-id", "grant_number"],
        "kept when the event gives none"
    );
    assert!(sim_items(&h.sim, &orcid, "employments").await.is_empty());
    assert_eq!(h.item("P-2", "VIS-17").await.section, "invited-position");

    // A hire naming another section for the open position cannot move it: parked. (After
    // the change: an event of the change's instant with a lesser id would be stale.)
    let moved = change
        .then(HrEventType::Hire)
        .section(AffiliationSection::Service);
    match h.apply(&moved.event).await {
        Outcome::Park { reason } => assert!(
            reason.contains("cannot move between ORCID sections"),
            "{reason}"
        ),
        other => panic!("expected park, got {other:?}"),
    }
    h.finish().await;
}

#[tokio::test]
async fn an_older_event_arriving_late_changes_nothing() {
    let h = Harness::new().await;
    let orcid = h.connected("P-3").await;
    let hire = hire("P-3", "POS-3", "2026-01-01");
    let leave = hire.then(HrEventType::Leave).end("2026-12-31");
    // The leave is applied first (the hire was, say, waiting in a retry tier).
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(&items[0], "/end-date/year/value").as_deref(),
        Some("2026"),
        "the later leave wins"
    );
    let ledger = h.item("P-3", "POS-3").await;
    assert_eq!(
        ledger.source_event_id.as_deref(),
        Some(leave.event.event_id.as_str())
    );
    let history = h.writer.ledger().history(ledger.id).await.expect("history");
    assert!(
        history
            .iter()
            .any(|a| a.outcome == "stale"
                && a.event_id.as_deref() == Some(hire.event.event_id.as_str())),
        "{history:#?}"
    );
    h.finish().await;
}

/// Two events of the same instant: the greater event id wins, whichever arrives first.
#[tokio::test]
async fn events_of_the_same_instant_are_ordered_by_event_id() {
    let h = Harness::new().await;
    let orcid = h.connected("P-4").await;
    let hire = hire("P-4", "POS-4", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let mut greater = hire.then(HrEventType::Change).role("Zeta Professor");
    greater.event.event_id = "hr-tie-b".to_owned();
    let mut lesser = hire.then(HrEventType::Change).role("Alpha Professor");
    lesser.event.event_id = "hr-tie-a".to_owned();
    assert_eq!(lesser.event.occurred_at, greater.event.occurred_at);

    assert_eq!(h.apply(&greater.event).await, Outcome::Ack);
    assert_eq!(h.apply(&lesser.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(&items[0], "/role-title").as_deref(),
        Some("Zeta Professor"),
        "the lesser id of the same instant is stale"
    );
    let ledger = h.item("P-4", "POS-4").await;
    assert_eq!(ledger.source_event_id.as_deref(), Some("hr-tie-b"));
    let history = h.writer.ledger().history(ledger.id).await.expect("history");
    assert!(
        history
            .iter()
            .any(|a| a.outcome == "stale" && a.event_id.as_deref() == Some("hr-tie-a")),
        "{history:#?}"
    );
    h.finish().await;
}
