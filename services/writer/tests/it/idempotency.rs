//! Exactly-once effect: redelivered and repeated events, racing events, and a crash between
//! ORCID's 201 and the ledger commit.

use std::sync::Arc;

use bus::events::HrEventType;
use bus::{Delivery, Outcome};
use orcid::model::{Affiliation, AffiliationType};
use writer::Cause;
use writer::ledger::ItemState;

use crate::helpers::*;

fn delivery(envelope: bus::Envelope, routing_key: &str) -> Delivery {
    Delivery {
        envelope,
        attempt: 1,
        redelivered: false,
        exchange: "t.hr".to_owned(),
        routing_key: routing_key.to_owned(),
        partition_key: None,
        queue: "t.writer.p0".to_owned(),
        history: Vec::new(),
    }
}

#[tokio::test]
async fn the_same_event_twice_is_one_item_and_no_second_call() {
    let h = Harness::new().await;
    let orcid = h.connected("P-10").await;
    let hire = hire("P-10", "POS-10", "2026-02-01");

    // The same message delivered twice (a redelivery after a lost ack).
    let first = delivery(hire.envelope(), "hr.hire");
    assert_eq!(h.writer.handle(&first).await, Outcome::Ack);
    let after_first = api_calls(&sim_stats(&h.sim).await);
    assert_eq!(h.writer.handle(&first).await, Outcome::Ack);
    // The same event in another envelope (the HR system sent it again, or over HTTPS too).
    let again = delivery(hire.envelope(), "hr.hire");
    assert_ne!(again.envelope.message_id, first.envelope.message_id);
    assert_eq!(h.writer.handle(&again).await, Outcome::Ack);
    // A new event id with the same content (a re-upload): ORCID already has it.
    let repeated = hire.then(HrEventType::Hire);
    assert_eq!(h.apply(&repeated.event).await, Outcome::Ack);

    assert_eq!(sim_items(&h.sim, &orcid, "employments").await.len(), 1);
    assert_eq!(
        api_calls(&sim_stats(&h.sim).await),
        after_first,
        "nothing to do: no ORCID call after the first delivery"
    );
    assert_eq!(h.db.outbox_types().await, ["item-written"]);
    assert_eq!(
        h.db.count("SELECT COUNT(*) AS n FROM writer_events").await,
        2,
        "two distinct event ids"
    );
    let ledger = h.item("P-10", "POS-10").await;
    let history = h.writer.ledger().history(ledger.id).await.expect("history");
    assert!(
        history.iter().filter(|a| a.outcome == "unchanged").count() >= 2,
        "repeats are recorded as nothing to do: {history:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn racing_events_for_one_person_make_one_item() {
    let h = Harness::new().await;
    let orcid = h.connected("P-11").await;
    let hire = hire("P-11", "POS-11", "2026-03-01");
    let change = hire
        .then(HrEventType::Change)
        .department("Applied Psychoceramics");
    let duplicate = hire.then(HrEventType::Hire);
    let writer = h.writer.clone();
    let none = Cause::none();
    let (a, b, c) = tokio::join!(
        writer.apply_hr_event(&hire.event, &none),
        writer.apply_hr_event(&change.event, &none),
        writer.apply_hr_event(&duplicate.event, &none),
    );
    assert_eq!((a, b, c), (Outcome::Ack, Outcome::Ack, Outcome::Ack));
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    let ledger = h.item("P-11", "POS-11").await;
    assert_eq!(
        ledger.put_code.map(|p| p.get()),
        items[0]["put-code"].as_u64()
    );
    assert!(ledger.is_current());
    assert_eq!(
        calls(
            &sim_stats(&h.sim).await,
            "POST /v3.0/{orcid}/employment",
            "201"
        ),
        1
    );
    h.finish().await;
}

/// Two writers that do not share a ledger row for the appointment (the worst case: a
/// replica that lost its commit while another retries) post the same appointment at the same
/// moment. ORCID refuses the second (409, 9021: same source, same `self` id) and names the
/// first; the writer adopts it.
#[tokio::test]
async fn orcids_duplicate_answer_names_the_item_to_adopt() {
    let h = Harness::new().await;
    let orcid = h.connected("P-14").await;
    let other_db = TestDb::postgres().await;
    let other = writer::Writer::new(writer::WriterParts {
        db: other_db.db.clone(),
        orcid: h.client.clone(),
        tokens: h.tokens.clone(),
        institution: institution(),
        policy: writer::WritePolicy::default(),
        relay_waker: None,
    });
    // Both read the (empty) section before either post is processed.
    add_fault(
        &h.sim,
        serde_json::json!({"endpoint": "POST /v3.0/*/employment", "latency_ms": 500}),
    )
    .await;
    let hire = hire("P-14", "POS-14", "2026-06-01");
    let none = Cause::none();
    let (a, b) = tokio::join!(
        h.writer.apply_hr_event(&hire.event, &none),
        other.apply_hr_event(&hire.event, &none),
    );
    assert_eq!((a, b), (Outcome::Ack, Outcome::Ack));
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, "POST /v3.0/{orcid}/employment", "201"),
        1,
        "{stats:#}"
    );
    assert_eq!(
        calls(&stats, "POST /v3.0/{orcid}/employment", "409"),
        1,
        "{stats:#}"
    );
    let put_code = items[0]["put-code"].as_u64();
    let mine = h.item("P-14", "POS-14").await;
    let theirs = other
        .ledger()
        .item("P-14", "POS-14")
        .await
        .expect("ledger")
        .expect("item");
    assert_eq!(mine.put_code.map(|p| p.get()), put_code);
    assert_eq!(theirs.put_code.map(|p| p.get()), put_code);
    assert!(mine.is_current() && theirs.is_current());
    // One of the two got ORCID's 9021 and adopted the item it named.
    let mut history = h.writer.ledger().history(mine.id).await.expect("history");
    history.extend(other.ledger().history(theirs.id).await.expect("history"));
    assert!(
        history.iter().any(|a| a.action == "create"
            && a.outcome == "duplicate"
            && a.orcid_error_code == Some(9021)),
        "{history:#?}"
    );
    assert!(history.iter().any(|a| a.action == "adopt"), "{history:#?}");
    other_db.drop().await;
    h.finish().await;
}

/// Two person ids connected to one iD, two appointments carrying the same `self` grant
/// number: ORCID refuses the second item (409, 9021) naming the first, which belongs to the
/// other appointment (it carries another `self` id of ours, and another row holds it). It
/// is not adopted: the second row ends in `error` with 9021 and is parked, the first item
/// keeps its content.
#[tokio::test]
async fn a_duplicate_answer_naming_another_appointments_item_is_not_adopted() {
    let h = Harness::new().await;
    let orcid = h.connected("P-15").await;
    let token = authorize(&h.sim, &orcid, WRITE_SCOPES, &h.client).await;
    h.tokens.connect("P-16", &orcid, token);
    let grant = bus::events::ExternalId {
        id_type: "grant_number".to_owned(),
        value: "GRANT-4711".to_owned(),
        url: None,
        relationship: bus::events::Relationship::SelfId,
    };
    let mut first = hire("P-15", "POS-15", "2026-01-01");
    first.event.position.external_ids = vec![grant.clone()];
    let mut second = hire("P-16", "POS-16", "2026-03-01").role("Lecturer");
    second.event.position.external_ids = vec![grant];

    assert_eq!(h.apply(&first.event).await, Outcome::Ack);
    let written = h.item("P-15", "POS-15").await;
    let put_code = written.put_code.expect("first written");
    match h.apply(&second.event).await {
        Outcome::Park { reason } => assert!(reason.starts_with("duplicate"), "{reason}"),
        other => panic!("expected the second appointment parked, got {other:?}"),
    }

    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0]["put-code"].as_u64(), Some(put_code.get()));
    assert_eq!(
        text(&items[0], "/role-title").as_deref(),
        Some("Professor"),
        "the other appointment's item is not overwritten: {:#}",
        items[0]
    );
    let stats = sim_stats(&h.sim).await;
    let puts = stats
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(route, _)| route.starts_with("PUT /v3.0/"))
        .count();
    assert_eq!(puts, 0, "no update of any item: {stats:#}");
    let twin = h.item("P-16", "POS-16").await;
    assert_eq!(twin.state, ItemState::Error);
    assert_eq!(twin.put_code, None);
    assert_eq!(twin.last_error_code, Some(9021));
    assert!(h.item("P-15", "POS-15").await.is_current());
    let history = h.writer.ledger().history(twin.id).await.expect("history");
    assert!(!history.iter().any(|a| a.action == "adopt"), "{history:#?}");
    h.finish().await;
}

/// The writer posted, ORCID created the item (201), and the process died before the ledger
/// stored the put code: the next attempt finds the item on the record and adopts it.
#[tokio::test]
async fn a_crash_after_orcids_201_is_repaired_by_reading_first() {
    let h = Harness::new().await;
    let hire = hire("P-12", "POS-12", "2026-04-01");
    // Not connected yet: the desired content is in the ledger, nothing written.
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let pending = h.item("P-12", "POS-12").await;
    assert_eq!(pending.state, ItemState::Pending);
    assert_eq!(pending.put_code, None);

    // The researcher connects; the writer's POST of exactly this body reached ORCID, and
    // then the process died (the answer never made it to the ledger).
    let orcid = h.connected("P-12").await;
    let token = h.tokens_token("P-12").await;
    let body: Affiliation = serde_json::from_value(pending.desired.clone()).expect("body");
    let orphan = h
        .client
        .create_affiliation(&token, &orcid, AffiliationType::Employment, &body)
        .await
        .expect("created at ORCID");
    let posts_before = calls(
        &sim_stats(&h.sim).await,
        "POST /v3.0/{orcid}/employment",
        "201",
    );

    // Redelivery of the hire.
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "adopted, not duplicated: {items:#?}");
    let ledger = h.item("P-12", "POS-12").await;
    assert_eq!(ledger.put_code, Some(orphan));
    assert_eq!(ledger.state, ItemState::InOrcid);
    assert!(ledger.is_current());
    let stats = sim_stats(&h.sim).await;
    assert_eq!(
        calls(&stats, "POST /v3.0/{orcid}/employment", "201"),
        posts_before,
        "nothing posted again"
    );
    assert!(
        calls(&stats, "GET /v3.0/{orcid}/employments", "200") >= 1,
        "read first"
    );
    let history = h.writer.ledger().history(ledger.id).await.expect("history");
    assert!(history.iter().any(|a| a.action == "adopt"), "{history:#?}");

    // The leave then updates the adopted item.
    let leave = hire.then(HrEventType::Leave).end("2026-10-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["put-code"].as_u64(), Some(orphan.get()));
    assert_eq!(
        text(&items[0], "/end-date/year/value").as_deref(),
        Some("2026")
    );
    h.finish().await;
}

/// An item of ours without our `self` id (written before, by hand through the API) but for
/// the same appointment — organization, role, department, start — is adopted, not doubled;
/// one of another client is never touched.
#[tokio::test]
async fn an_item_of_ours_for_the_same_appointment_is_adopted_by_content() {
    let h = Harness::new().await;
    let orcid = h.connected("P-13").await;
    let token = h.tokens_token("P-13").await;
    let hire = hire("P-13", "POS-13", "2026-05-01");
    let mut body: Affiliation = Affiliation::new(institution())
        .with_department("Psychoceramics")
        .with_role("Professor")
        .with_start("2026-05-01".parse().expect("date"));
    let ours = h
        .client
        .create_affiliation(&token, &orcid, AffiliationType::Employment, &body)
        .await
        .expect("ours");
    // The same content from another member client.
    let other_client = client_of(&h.sim, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET);
    let other_token = authorize(&h.sim, &orcid, WRITE_SCOPES, &other_client).await;
    body.put_code = None;
    let theirs = other_client
        .create_affiliation(&other_token, &orcid, AffiliationType::Employment, &body)
        .await
        .expect("theirs");

    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 2, "ours adopted, theirs untouched: {items:#?}");
    let ledger = h.item("P-13", "POS-13").await;
    assert_eq!(ledger.put_code, Some(ours));
    let adopted = items
        .iter()
        .find(|i| i["put-code"].as_u64() == Some(ours.get()))
        .expect("ours");
    assert_eq!(
        adopted["external-ids"]["external-id"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "our self id was added by the update: {adopted}"
    );
    let untouched = items
        .iter()
        .find(|i| i["put-code"].as_u64() == Some(theirs.get()))
        .expect("theirs");
    assert!(
        untouched["external-ids"].is_null()
            || untouched["external-ids"]["external-id"]
                .as_array()
                .is_none_or(Vec::is_empty)
    );
    h.finish().await;
}

impl Harness {
    /// The token the test's token source holds for `person_id`.
    pub async fn tokens_token(&self, person_id: &str) -> orcid::client::AccessToken {
        use writer::tokens::TokenSource;
        let tokens: Arc<SimTokens> = self.tokens.clone();
        tokens
            .token(person_id)
            .await
            .expect("connected")
            .access_token
    }
}
