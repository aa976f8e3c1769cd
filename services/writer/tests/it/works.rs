//! Work events from the repository: upsert creates then updates in place, delete removes
//! the item the writer wrote, a crash after ORCID's 201 is adopted, and a DOI another work of
//! ours already carries is ORCID's duplicate (9021), not adopted.

use bus::events::{
    Contributor, ExternalId, PartialDate, Relationship, Work, WorkEvent, WorkEventType,
};
use bus::{Delivery, Envelope, Outcome};
use chrono::Utc;
use orcid::OrcidId;
use serde_json::Value;
use uuid::Uuid;
use writer::Cause;
use writer::ledger::ItemState;

use crate::helpers::*;

fn work_event(person: &str, work_id: &str, doi: &str, title: &str) -> WorkEvent {
    WorkEvent {
        event_id: format!("wk-{}", Uuid::new_v4().simple()),
        event_type: WorkEventType::Upsert,
        occurred_at: Utc::now(),
        person_id: person.to_owned(),
        work: Work {
            work_id: work_id.to_owned(),
            title: title.to_owned(),
            subtitle: None,
            work_type: "journal-article".to_owned(),
            external_ids: vec![ExternalId {
                id_type: "doi".to_owned(),
                value: doi.to_owned(),
                url: Some(format!("https://doi.org/{doi}")),
                relationship: Relationship::SelfId,
            }],
            publication_date: Some(PartialDate::parse("2026-03").expect("date")),
            journal_title: Some("Journal of Psychoceramics".to_owned()),
            contributors: vec![Contributor {
                name: "Josiah Carberry".to_owned(),
                orcid: None,
                role: Some("author".to_owned()),
            }],
            url: None,
        },
    }
}

fn later(event: &WorkEvent, event_type: WorkEventType) -> WorkEvent {
    let mut next = event.clone();
    next.event_id = format!("wk-{}", Uuid::new_v4().simple());
    next.event_type = event_type;
    next.occurred_at = event.occurred_at + chrono::Duration::seconds(1);
    next
}

async fn works_on(h: &Harness, orcid: &OrcidId) -> Vec<Value> {
    sim_items(&h.sim, orcid, "works").await
}

fn id_types(work: &Value) -> Vec<String> {
    work["external-ids"]["external-id"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id["external-id-type"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn upsert_update_delete_and_upsert_again() {
    let h = Harness::new().await;
    let orcid = h.connected("P-100").await;
    let upsert = work_event("P-100", "REPO-1", "10.1234/abc.1", "On Ceramic Minds");
    let none = Cause::none();
    assert_eq!(
        h.writer.apply_work_event(&upsert, &none).await,
        Outcome::Ack
    );
    let works = works_on(&h, &orcid).await;
    assert_eq!(works.len(), 1, "{works:#?}");
    let work = &works[0];
    assert_eq!(
        text(work, "/title/title/value").as_deref(),
        Some("On Ceramic Minds")
    );
    assert_eq!(text(work, "/type").as_deref(), Some("journal-article"));
    assert_eq!(
        text(work, "/journal-title/value").as_deref(),
        Some("Journal of Psychoceramics")
    );
    assert_eq!(
        text(work, "/publication-date/year/value").as_deref(),
        Some("2026")
    );
    assert_eq!(
        text(work, "/contributors/contributor/0/credit-name/value").as_deref(),
        Some("Josiah Carberry")
    );
    assert_eq!(id_types(work), ["source-work-id", "doi"]);
    let put_code = work["put-code"].as_u64();
    let ledger = h
        .writer
        .ledger()
        .work("P-100", "REPO-1")
        .await
        .expect("ledger")
        .expect("row");
    assert_eq!(ledger.section, "work");
    assert_eq!(ledger.put_code.map(|p| p.get()), put_code);
    assert!(ledger.is_current());

    // The same work id again, retitled: updated in place.
    let mut retitled = later(&upsert, WorkEventType::Upsert);
    retitled.work.title = "On Ceramic Minds, Revisited".to_owned();
    assert_eq!(
        h.writer.apply_work_event(&retitled, &none).await,
        Outcome::Ack
    );
    let works = works_on(&h, &orcid).await;
    assert_eq!(works.len(), 1);
    assert_eq!(works[0]["put-code"].as_u64(), put_code);
    assert_eq!(
        text(&works[0], "/title/title/value").as_deref(),
        Some("On Ceramic Minds, Revisited")
    );

    // Deleted in the repository: removed from the record.
    let delete = later(&retitled, WorkEventType::Delete);
    assert_eq!(
        h.writer.apply_work_event(&delete, &none).await,
        Outcome::Ack
    );
    assert!(works_on(&h, &orcid).await.is_empty());
    let ledger = h
        .writer
        .ledger()
        .work("P-100", "REPO-1")
        .await
        .expect("ledger")
        .expect("row");
    assert_eq!(ledger.state, ItemState::Deleted);
    assert!(ledger.is_current());
    assert_eq!(ledger.put_code, None);
    // The delete again (redelivered): nothing more to do.
    assert_eq!(
        h.writer.apply_work_event(&delete, &none).await,
        Outcome::Ack
    );
    let written = h.db.outbox_payloads("item-written").await;
    let actions: Vec<&str> = written
        .iter()
        .filter_map(|p| p["action"].as_str())
        .collect();
    assert_eq!(actions, ["created", "updated", "deleted"]);
    assert_eq!(written[2]["put_code"].as_u64(), put_code);
    assert_eq!(written[2]["section"], "work");

    // Published again: a new item.
    let again = later(&delete, WorkEventType::Upsert);
    assert_eq!(h.writer.apply_work_event(&again, &none).await, Outcome::Ack);
    let works = works_on(&h, &orcid).await;
    assert_eq!(works.len(), 1);
    assert_ne!(works[0]["put-code"].as_u64(), put_code);
    h.finish().await;
}

#[tokio::test]
async fn a_lost_answer_is_adopted_and_a_shared_doi_is_a_duplicate() {
    let h = Harness::new().await;
    let upsert = work_event("P-101", "REPO-2", "10.1234/abc.2", "Glazed Thoughts");
    let none = Cause::none();
    // Not connected yet: pending, with its desired body.
    assert_eq!(
        h.writer.apply_work_event(&upsert, &none).await,
        Outcome::Ack
    );
    let pending = h
        .writer
        .ledger()
        .work("P-101", "REPO-2")
        .await
        .expect("ledger")
        .expect("row");
    assert_eq!(pending.state, ItemState::Pending);

    // The writer's post reached ORCID, then the process died.
    let orcid = h.connected("P-101").await;
    let token = h.tokens_token("P-101").await;
    let body: orcid::model::Work = serde_json::from_value(pending.desired.clone()).expect("body");
    let orphan = h
        .client
        .create_work(&token, &orcid, &body)
        .await
        .expect("created");

    // Redelivered through the consumer's entry point.
    let delivery = Delivery {
        envelope: Envelope::new(&upsert).expect("envelope"),
        attempt: 1,
        redelivered: true,
        exchange: "t.works".to_owned(),
        routing_key: "work.upsert".to_owned(),
        partition_key: Some("P-101".to_owned()),
        queue: "t.writer.p0".to_owned(),
        history: Vec::new(),
    };
    assert_eq!(h.writer.handle(&delivery).await, Outcome::Ack);
    let works = works_on(&h, &orcid).await;
    assert_eq!(works.len(), 1, "adopted, not doubled: {works:#?}");
    let ledger = h
        .writer
        .ledger()
        .work("P-101", "REPO-2")
        .await
        .expect("ledger")
        .expect("row");
    assert_eq!(ledger.put_code, Some(orphan));
    assert!(ledger.is_current());

    // Another work id of the repository with the same DOI: ORCID answers 9021 naming the
    // first item, which belongs to another ledger row — parked, not adopted.
    let twin = work_event("P-101", "REPO-3", "10.1234/abc.2", "Glazed Thoughts (copy)");
    match h.writer.apply_work_event(&twin, &none).await {
        Outcome::Park { reason } => assert!(reason.starts_with("duplicate"), "{reason}"),
        other => panic!("expected park, got {other:?}"),
    }
    let twin_row = h
        .writer
        .ledger()
        .work("P-101", "REPO-3")
        .await
        .expect("ledger")
        .expect("row");
    assert_eq!(twin_row.state, ItemState::Error);
    assert_eq!(twin_row.last_error_code, Some(9021));
    assert_eq!(works_on(&h, &orcid).await.len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn invalid_work_events_are_parked() {
    let h = Harness::new().await;
    h.connected("P-102").await;
    let none = Cause::none();
    let mut bad_type = work_event("P-102", "REPO-4", "10.1234/abc.4", "Kiln Notes");
    bad_type.work.work_type = "pamphlet-of-doom".to_owned();
    match h.writer.apply_work_event(&bad_type, &none).await {
        Outcome::Park { reason } => assert!(reason.contains("work.type"), "{reason}"),
        other => panic!("expected park, got {other:?}"),
    }
    let mut no_title = work_event("P-102", "REPO-5", "10.1234/abc.5", "  ");
    no_title.work.title = " ".to_owned();
    match h.writer.apply_work_event(&no_title, &none).await {
        Outcome::Park { reason } => assert!(reason.contains("work.title is empty"), "{reason}"),
        other => panic!("expected park, got {other:?}"),
    }
    // A delete of a work never written: nothing to do, nothing in the ledger.
    let delete = later(
        &work_event("P-102", "REPO-6", "10.1234/abc.6", "Never"),
        WorkEventType::Delete,
    );
    assert_eq!(
        h.writer.apply_work_event(&delete, &none).await,
        Outcome::Ack
    );
    assert_eq!(
        h.db.count("SELECT COUNT(*) AS n FROM writer_items").await,
        0
    );
    h.finish().await;
}
