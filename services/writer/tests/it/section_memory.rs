//! Sections known clean: a never-attempted item on an (iD, section) whose listing the writer
//! already read and found to hold no item of ours without our `self` id, or whose first
//! snapshot by the reader showed no item of our client the ledger does not hold, is posted
//! without reading the section (one ORCID call instead of two); a lost answer is still
//! adopted through ORCID's duplicate answer (409, 9021); what is learnt is stored with the
//! ledger; a later snapshot showing an unknown item of ours takes the section off the list.

use std::sync::Arc;

use bus::Outcome;
use bus::events::{ItemRef, OrcidId, RecordStatus, RecordUpdated, Section};
use chrono::Utc;
use orcid::model::{Affiliation, AffiliationType, PutCode};
use sea_orm::ConnectionTrait;
use serde_json::Value;
use writer::ledger::ItemState;
use writer::{WritePolicy, Writer, WriterParts};

use crate::helpers::*;

/// The writer's read of a section listing.
const LISTING: &str = "GET /v3.0/{orcid}/employments";
/// The writer's post of a new item.
const POST: &str = "POST /v3.0/{orcid}/employment";

/// Another writer process on the harness's database, simulator and token source: the same
/// ledger, none of the first writer's memory.
fn another_process(h: &Harness) -> Writer {
    Writer::new(WriterParts {
        db: h.db.db.clone(),
        orcid: h.client.clone(),
        tokens: h.tokens.clone(),
        institution: institution(),
        policy: WritePolicy::default(),
        relay_waker: None,
    })
}

/// A writer on the harness's database that holds no connection at all: events reach the
/// ledger as pending rows, never attempted at ORCID.
fn offline_writer(h: &Harness) -> Writer {
    Writer::new(WriterParts {
        db: h.db.db.clone(),
        orcid: h.client.clone(),
        tokens: Arc::new(SimTokens::default()),
        institution: institution(),
        policy: WritePolicy::default(),
        relay_waker: None,
    })
}

/// Successful reads of the employments listing so far.
async fn listing_reads(h: &Harness) -> u64 {
    calls(&sim_stats(&h.sim).await, LISTING, "200")
}

fn put_codes(items: &[Value]) -> Vec<u64> {
    let mut codes: Vec<u64> = items
        .iter()
        .map(|i| i["put-code"].as_u64().expect("put code"))
        .collect();
    codes.sort_unstable();
    codes
}

#[tokio::test]
async fn a_second_appointment_on_a_section_read_clean_is_posted_without_reading_again() {
    let h = Harness::new().await;
    let orcid = h.connected("P-40").await;

    let a = hire("P-40", "POS-40A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, LISTING, "200"),
        1,
        "the first item reads first: {stats:#}"
    );
    assert_eq!(calls(&stats, POST, "201"), 1, "{stats:#}");
    let calls_after_a = api_calls(&stats);

    let b = hire("P-40", "POS-40B", "2026-03-01").role("Lecturer");
    assert_eq!(h.apply(&b.event).await, Outcome::Ack);
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, LISTING, "200"),
        1,
        "the section was read clean: not read again: {stats:#}"
    );
    assert_eq!(
        calls(&stats, POST, "201"),
        2,
        "exactly one more post: {stats:#}"
    );
    assert_eq!(
        api_calls(&stats) - calls_after_a,
        1,
        "one ORCID call for the second appointment: {stats:#}"
    );

    let first = h.item("P-40", "POS-40A").await;
    let second = h.item("P-40", "POS-40B").await;
    assert_eq!(first.state, ItemState::InOrcid);
    assert_eq!(second.state, ItemState::InOrcid);
    assert!(first.is_current() && second.is_current());
    let (first_code, second_code) = (
        first.put_code.expect("A's put code").get(),
        second.put_code.expect("B's put code").get(),
    );
    assert_ne!(first_code, second_code);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    let mut ours = vec![first_code, second_code];
    ours.sort_unstable();
    assert_eq!(put_codes(&items), ours, "{items:#?}");
    let lecturer = items
        .iter()
        .find(|i| i["put-code"].as_u64() == Some(second_code))
        .expect("B at ORCID");
    assert_eq!(text(lecturer, "/role-title").as_deref(), Some("Lecturer"));
    h.finish().await;
}

/// ORCID created the second appointment's item, and the answer never reached the ledger (the
/// process died between ORCID's 201 and the commit, so the row is still never attempted). On
/// a section this process read clean, the redelivery posts at once; ORCID refuses the
/// duplicate (409, 9021) naming the item, and the writer adopts it: one item, no double.
#[tokio::test]
async fn a_lost_answer_on_a_clean_section_is_adopted_through_orcids_duplicate_answer() {
    let h = Harness::new().await;
    let orcid = h.connected("P-41").await;
    let token = h.tokens_token("P-41").await;

    let a = hire("P-41", "POS-41A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    assert_eq!(listing_reads(&h).await, 1, "A read the section clean");

    // B reaches the ledger without an attempt at ORCID (a process that had no token yet).
    let b = hire("P-41", "POS-41B", "2026-03-01").role("Lecturer");
    assert_eq!(
        offline_writer(&h)
            .apply_hr_event(&b.event, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    let pending = h.item("P-41", "POS-41B").await;
    assert_eq!(pending.state, ItemState::Pending);
    assert_eq!(pending.attempts, 0);
    assert_eq!(pending.put_code, None);
    // The writer's post of exactly this body reached ORCID; its answer was lost.
    let body: Affiliation = serde_json::from_value(pending.desired.clone()).expect("body");
    let orphan = h
        .client
        .create_affiliation(&token, &orcid, AffiliationType::Employment, &body)
        .await
        .expect("created at ORCID");
    let before = sim_stats(&h.sim).await;

    // Redelivery of B's hire to the writer that read the section clean.
    assert_eq!(h.drive(&b.event, 5).await, Outcome::Ack);
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, POST, "409"),
        1,
        "posted at once, without reading first: ORCID answered the duplicate: {stats:#}"
    );
    assert_eq!(
        calls(&stats, POST, "201"),
        calls(&before, POST, "201"),
        "nothing created again: {stats:#}"
    );

    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 2, "A and B, no duplicate: {items:#?}");
    let lecturers: Vec<&Value> = items
        .iter()
        .filter(|i| text(i, "/role-title").as_deref() == Some("Lecturer"))
        .collect();
    assert_eq!(lecturers.len(), 1, "exactly one item for B: {items:#?}");
    assert_eq!(lecturers[0]["put-code"].as_u64(), Some(orphan.get()));

    let adopted = h.item("P-41", "POS-41B").await;
    assert_eq!(adopted.put_code, Some(orphan));
    assert_eq!(adopted.state, ItemState::InOrcid);
    assert!(adopted.is_current());
    let first = h.item("P-41", "POS-41A").await;
    assert_ne!(first.put_code, Some(orphan));
    let history = h
        .writer
        .ledger()
        .history(adopted.id)
        .await
        .expect("history");
    assert!(
        history.iter().any(|a| a.action == "create"
            && a.outcome == "duplicate"
            && a.orcid_error_code == Some(9021)
            && a.put_code == Some(orphan)),
        "{history:#?}"
    );
    assert!(
        history
            .iter()
            .any(|a| a.action == "adopt" && a.put_code == Some(orphan)),
        "{history:#?}"
    );
    h.finish().await;
}

/// What one process learnt is stored with the ledger: another writer process on the same
/// database posts a first item in that section without reading it.
#[tokio::test]
async fn another_writer_on_the_same_ledger_knows_the_section_clean() {
    let h = Harness::new().await;
    let orcid = h.connected("P-42").await;

    let a = hire("P-42", "POS-42A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    assert_eq!(listing_reads(&h).await, 1);
    assert_eq!(
        h.db.count("SELECT count(*) AS n FROM writer_clean_sections WHERE section = 'employment' AND basis = 'listing'")
            .await,
        1,
        "the listing is stored"
    );

    let fresh = another_process(&h);
    let b = hire("P-42", "POS-42B", "2026-02-01").role("Lecturer");
    assert_eq!(
        fresh.apply_hr_event(&b.event, &writer::Cause::none()).await,
        Outcome::Ack
    );
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, LISTING, "200"),
        1,
        "the other process does not read the section again: {stats:#}"
    );
    assert_eq!(calls(&stats, POST, "201"), 2, "{stats:#}");

    let mut ledger = Vec::new();
    for position in ["POS-42A", "POS-42B"] {
        let item = h.item("P-42", position).await;
        assert_eq!(item.state, ItemState::InOrcid, "{position}");
        ledger.push(item.put_code.expect("put code").get());
    }
    ledger.sort_unstable();
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(put_codes(&items), ledger, "{items:#?}");
    h.finish().await;
}

/// Rows of `writer_clean_sections` for `section` (any iD) whose basis is `basis`.
async fn recorded(h: &Harness, section: &str, basis: &str) -> i64 {
    h.db.count(&format!(
        "SELECT count(*) AS n FROM writer_clean_sections WHERE section = '{section}' AND basis = '{basis}'"
    ))
    .await
}

/// "Record updated" as the reader sends it for its first snapshot of `orcid` (every item
/// listed as added) or for a later one (`previous_read_at` set).
fn snapshot(orcid: OrcidId, first: bool, added: Vec<ItemRef>) -> RecordUpdated {
    let now = Utc::now();
    RecordUpdated {
        orcid,
        person_id: None,
        last_modified: None,
        changed_sections: Vec::new(),
        deleted_items: Vec::new(),
        read_at: now,
        previous_read_at: (!first).then(|| now - chrono::Duration::minutes(5)),
        added,
        changed: Vec::new(),
        removed: Vec::new(),
        status: Some(RecordStatus::Active),
        primary_orcid: None,
    }
}

fn employment(put_code: PutCode, source_client_id: Option<&str>) -> ItemRef {
    ItemRef {
        section: Section::Employment,
        put_code: put_code.get(),
        source_client_id: source_client_id.map(str::to_owned),
        title: None,
    }
}

/// An item of our client on the record that no ledger row holds, as an earlier integration
/// with the same client id left it: the content of `position`'s row, without our `self` id.
async fn earlier_integrations_item(
    h: &Harness,
    person_id: &str,
    orcid: &OrcidId,
    hr: &Hr,
) -> PutCode {
    let token = h.tokens_token(person_id).await;
    assert_eq!(
        offline_writer(h)
            .apply_hr_event(&hr.event, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    let pending = h.item(person_id, &hr.event.position.position_id).await;
    let mut body = pending.desired.clone();
    body.as_object_mut()
        .expect("an affiliation body")
        .remove("external-ids");
    let body: Affiliation = serde_json::from_value(body).expect("body");
    h.client
        .create_affiliation(&token, orcid, AffiliationType::Employment, &body)
        .await
        .expect("created at ORCID")
}

/// The reader's first snapshot (taken when the researcher connected) shows no item of our
/// client: the first item is posted at once, one ORCID call.
#[tokio::test]
async fn after_a_first_snapshot_without_items_of_ours_the_first_item_is_posted_at_once() {
    let h = Harness::new().await;
    let orcid = h.connected("P-44").await;
    let someone_else = employment(PutCode(7), Some("APP-SOMEONEELSE0001"));
    let by_hand = employment(PutCode(8), None);
    assert_eq!(
        h.writer
            .apply_record_updated(
                &snapshot(orcid, true, vec![someone_else, by_hand]),
                &writer::Cause::none()
            )
            .await,
        Outcome::Ack
    );
    assert_eq!(
        h.db.count("SELECT count(*) AS n FROM writer_clean_sections WHERE basis = 'snapshot'")
            .await,
        8,
        "the seven affiliation sections and works"
    );

    let before = api_calls(&sim_stats(&h.sim).await);
    let a = hire("P-44", "POS-44A", "2026-01-01");
    assert_eq!(
        another_process(&h)
            .apply_hr_event(&a.event, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, LISTING, "200"),
        0,
        "not read first: {stats:#}"
    );
    assert_eq!(calls(&stats, POST, "201"), 1, "{stats:#}");
    assert_eq!(api_calls(&stats) - before, 1, "one ORCID call: {stats:#}");
    let item = h.item("P-44", "POS-44A").await;
    assert_eq!(item.state, ItemState::InOrcid);
    assert_eq!(
        put_codes(&sim_items(&h.sim, &orcid, "employments").await),
        vec![item.put_code.expect("put code").get()]
    );
    h.finish().await;
}

/// A first snapshot showing an item of our client that the ledger does not hold (an earlier
/// integration's, without our `self` id): the section is not clean, the first item reads
/// first and adopts it by content — one item, no duplicate.
#[tokio::test]
async fn a_first_snapshot_with_an_unknown_item_of_ours_keeps_the_section_read_first() {
    let h = Harness::new().await;
    let orcid = h.connected("P-45").await;
    let a = hire("P-45", "POS-45A", "2026-01-01").role("Lecturer");
    let earlier = earlier_integrations_item(&h, "P-45", &orcid, &a).await;
    let ours = employment(earlier, Some(h.client.client_id()));
    assert_eq!(
        h.writer
            .apply_record_updated(&snapshot(orcid, true, vec![ours]), &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    assert_eq!(recorded(&h, "employment", "dirty").await, 1);
    assert_eq!(
        recorded(&h, "education", "snapshot").await,
        1,
        "the other sections are clean"
    );

    assert_eq!(h.drive(&a.event, 5).await, Outcome::Ack);
    let stats = sim_stats(&h.sim).await;
    assert_eq!(calls(&stats, LISTING, "200"), 1, "read first: {stats:#}");
    let item = h.item("P-45", "POS-45A").await;
    assert_eq!(item.state, ItemState::InOrcid);
    assert_eq!(item.put_code, Some(earlier), "adopted, not posted again");
    assert_eq!(
        put_codes(&sim_items(&h.sim, &orcid, "employments").await),
        vec![earlier.get()],
        "one item"
    );
    h.finish().await;
}

/// A section known clean, then a later snapshot shows an item of our client that the ledger
/// does not hold (an earlier integration still posting with our client id): the section is
/// taken off the list, and the next first item there reads first and adopts that item
/// instead of posting a duplicate.
#[tokio::test]
async fn a_later_snapshot_with_an_unknown_item_of_ours_takes_the_section_off_the_list() {
    let h = Harness::new().await;
    let orcid = h.connected("P-46").await;
    let a = hire("P-46", "POS-46A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    assert_eq!(listing_reads(&h).await, 1, "A read the section clean");
    let held = h
        .item("P-46", "POS-46A")
        .await
        .put_code
        .expect("A's put code");

    let b = hire("P-46", "POS-46B", "2026-03-01").role("Lecturer");
    let earlier = earlier_integrations_item(&h, "P-46", &orcid, &b).await;
    let client_id = h.client.client_id().to_owned();
    // A's item is the ledger's and changes nothing; the earlier integration's does.
    assert_eq!(
        h.writer
            .apply_record_updated(
                &snapshot(orcid, false, vec![employment(held, Some(&client_id))]),
                &writer::Cause::none()
            )
            .await,
        Outcome::Ack
    );
    assert_eq!(
        recorded(&h, "employment", "listing").await,
        1,
        "an item the ledger holds keeps the section clean"
    );
    let dirtied = snapshot(orcid, false, vec![employment(earlier, Some(&client_id))]);
    assert_eq!(
        h.writer
            .apply_record_updated(&dirtied, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    assert_eq!(recorded(&h, "employment", "dirty").await, 1);
    // An older first snapshot arriving late (a retried or replayed message) does not make
    // it clean again.
    let mut late = snapshot(orcid, true, Vec::new());
    late.read_at = dirtied.read_at - chrono::Duration::minutes(1);
    assert_eq!(
        h.writer
            .apply_record_updated(&late, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    assert_eq!(
        recorded(&h, "employment", "dirty").await,
        1,
        "the newer wins"
    );
    assert_eq!(recorded(&h, "education", "snapshot").await, 1);

    // Another replica, which never saw the snapshot, reads first too.
    assert_eq!(
        another_process(&h)
            .apply_hr_event(&b.event, &writer::Cause::none())
            .await,
        Outcome::Ack
    );
    assert_eq!(listing_reads(&h).await, 2, "B reads first");
    let item = h.item("P-46", "POS-46B").await;
    assert_eq!(item.state, ItemState::InOrcid);
    assert_eq!(item.put_code, Some(earlier), "adopted, not posted again");
    let mut expected = vec![held.get(), earlier.get()];
    expected.sort_unstable();
    assert_eq!(
        put_codes(&sim_items(&h.sim, &orcid, "employments").await),
        expected,
        "A and B, no duplicate"
    );
    h.finish().await;
}

/// A row already attempted (here: ORCID answered 503 to every try of its post) reads the
/// section first on its retry even though this process read that section clean: an earlier
/// post of it may have reached ORCID.
#[tokio::test]
async fn a_retried_item_reads_the_section_first_even_when_it_was_read_clean() {
    let h = Harness::new().await;
    let orcid = h.connected("P-43").await;

    let a = hire("P-43", "POS-43A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    assert_eq!(listing_reads(&h).await, 1);

    add_fault(
        &h.sim,
        serde_json::json!({"endpoint": "POST /v3.0/*/employment", "status": 503, "count": 3}),
    )
    .await;
    let b = hire("P-43", "POS-43B", "2026-03-01").role("Lecturer");
    let outcome = h.apply(&b.event).await;
    assert!(
        matches!(outcome, Outcome::Retry { .. }),
        "the refused post is retried later: {outcome:?}"
    );
    let failed = h.item("P-43", "POS-43B").await;
    assert!(failed.attempts > 0, "{failed:#?}");
    assert_eq!(failed.put_code, None);
    let reads_before_retry = listing_reads(&h).await;
    clear_faults(&h.sim).await;

    assert_eq!(h.drive(&b.event, 5).await, Outcome::Ack);
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, LISTING, "200"),
        reads_before_retry + 1,
        "the retry reads the section first: {stats:#}"
    );
    assert_eq!(calls(&stats, POST, "201"), 2, "{stats:#}");
    let written = h.item("P-43", "POS-43B").await;
    assert_eq!(written.state, ItemState::InOrcid);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 2, "{items:#?}");
    assert!(
        items
            .iter()
            .any(|i| i["put-code"].as_u64() == written.put_code.map(|p| p.get())),
        "{items:#?}"
    );
    h.finish().await;
}

/// A first snapshot whose item of our client is one the ledger holds (an item we wrote
/// before the reader's first read) counts the section as clean.
#[tokio::test]
async fn a_first_snapshot_with_only_items_the_ledger_holds_is_clean() {
    let h = Harness::new().await;
    let orcid = h.connected("P-47").await;
    let a = hire("P-47", "POS-47A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    let held = h.item("P-47", "POS-47A").await.put_code.expect("put code");
    // Forget the listing, so only the snapshot can say clean.
    h.db.db
        .execute_unprepared("DELETE FROM writer_clean_sections")
        .await
        .expect("delete");
    let client_id = h.client.client_id().to_owned();
    assert_eq!(
        h.writer
            .apply_record_updated(
                &snapshot(orcid, true, vec![employment(held, Some(&client_id))]),
                &writer::Cause::none()
            )
            .await,
        Outcome::Ack
    );
    assert_eq!(recorded(&h, "employment", "snapshot").await, 1);

    let b = hire("P-47", "POS-47B", "2026-02-01").role("Lecturer");
    assert_eq!(h.apply(&b.event).await, Outcome::Ack);
    assert_eq!(
        listing_reads(&h).await,
        1,
        "only A's listing: B posted at once"
    );
    h.finish().await;
}

/// Nothing is learnt from a message without `status` (an older producer's, whose item lists
/// may be missing) or from a record that is not active.
#[tokio::test]
async fn snapshots_without_status_or_of_inactive_records_teach_nothing() {
    let h = Harness::new().await;
    let orcid = h.connected("P-48").await;
    let mut old_producer = snapshot(orcid, true, Vec::new());
    old_producer.status = None;
    let mut deactivated = snapshot(orcid, true, Vec::new());
    deactivated.status = Some(RecordStatus::Deactivated);
    for update in [old_producer, deactivated] {
        assert_eq!(
            h.writer
                .apply_record_updated(&update, &writer::Cause::none())
                .await,
            Outcome::Ack
        );
    }
    assert_eq!(
        h.db.count("SELECT count(*) AS n FROM writer_clean_sections")
            .await,
        0
    );
    let a = hire("P-48", "POS-48A", "2026-01-01");
    assert_eq!(h.apply(&a.event).await, Outcome::Ack);
    assert_eq!(listing_reads(&h).await, 1, "read first");
    h.finish().await;
}
