//! Reading records on "connection ready" and "record changed" through RabbitMQ: the first
//! snapshot lists every item as added; the user's own edits come out as exactly what they
//! changed; our items the user deleted are `deleted_items`; a redelivered message changes
//! nothing; a deprecated record ends the connection; a revoked token is reported.

use bus::Delivery;
use bus::events::{RecordStatus, Section};
use reader::ReadOutcome;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ready_takes_a_first_snapshot_listing_every_item_as_added() {
    let mut h = Harness::start(None).await;
    let (orcid, token) = h.connected("P-first").await;
    let own_work = user_adds_work(&h.sim, &orcid, "My own book").await;
    let ours = we_write_employment(&h.client, &token, &orcid, "Professor").await;

    h.publish_ready(&orcid, "P-first").await;
    let event = h.next("record-updated", &orcid).await;

    assert_eq!(event["person_id"], "P-first");
    assert!(
        event.get("previous_read_at").is_none(),
        "first snapshot: {event}"
    );
    assert_eq!(
        keys(&event, "added"),
        [
            ("employment".to_owned(), ours),
            ("work".to_owned(), own_work)
        ]
    );
    assert!(keys(&event, "changed").is_empty() && keys(&event, "removed").is_empty());
    assert_eq!(event["changed_sections"], json!(["employment", "work"]));
    assert_eq!(event["deleted_items"], json!([]));
    assert_eq!(event["status"], "active");
    let added = event["added"].as_array().unwrap();
    assert_eq!(added[0]["source_client_id"], TEST_CLIENT_ID);
    assert_eq!(added[0]["title"], "Professor, Boston University");
    assert!(
        added[1].get("source_client_id").is_none(),
        "the user's own work"
    );
    assert_eq!(added[1]["title"], "My own book");
    bus::schemas::validate("record-updated", 1, &event).expect("valid against the schema");

    let snapshot = reader::snapshot::Snapshots::new(h.db.db.clone())
        .get(&orcid)
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(snapshot.items.len(), 2);
    assert_eq!(snapshot.read_count, 1);
    assert_eq!(snapshot.person_id.as_deref(), Some("P-first"));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_edits_come_out_as_exactly_what_changed() {
    let mut h = Harness::start(None).await;
    let (orcid, token) = h.connected("P-edit").await;
    let ours = we_write_employment(&h.client, &token, &orcid, "Lecturer").await;
    let untouched = we_write_work(&h.client, &token, &orcid, "Untouched").await;
    h.publish_ready(&orcid, "P-edit").await;
    let first = h.next("record-updated", &orcid).await;
    assert_eq!(keys(&first, "added").len(), 2);

    // The user adds a work and edits our employment on ORCID's site.
    let added = user_adds_work(&h.sim, &orcid, "A new preprint").await;
    sim_hook(
        &h.sim,
        "PUT",
        &format!("{orcid}/employment/{ours}"),
        Some(json!({"end-date": {"year": {"value": "2024"}, "month": {"value": "06"}}})),
    )
    .await;
    h.bus
        .publish(&Harness::record_changed(&orcid))
        .await
        .expect("published");
    let event = h.next("record-updated", &orcid).await;

    assert_eq!(keys(&event, "added"), [("work".to_owned(), added)]);
    assert_eq!(keys(&event, "changed"), [("employment".to_owned(), ours)]);
    assert!(keys(&event, "removed").is_empty(), "{event}");
    assert_eq!(event["changed_sections"], json!(["employment", "work"]));
    assert_eq!(event["deleted_items"], json!([]));
    assert_eq!(event["previous_read_at"], first["read_at"]);
    assert_ne!(untouched, added);
    bus::schemas::validate("record-updated", 1, &event).expect("valid against the schema");

    // Read again with nothing changed: a new snapshot, no event.
    let outcome = h
        .app()
        .reader()
        .read_record(&orcid, None, None)
        .await
        .expect("read");
    assert_eq!(outcome, ReadOutcome::Unchanged);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_item_the_user_deleted_is_in_deleted_items_and_a_redelivery_changes_nothing() {
    let mut h = Harness::start(None).await;
    let (orcid, token) = h.connected("P-delete").await;
    let ours = we_write_work(&h.client, &token, &orcid, "Rivers of the world").await;
    let theirs = user_adds_work(&h.sim, &orcid, "Their own").await;
    h.publish_ready(&orcid, "P-delete").await;
    h.next("record-updated", &orcid).await;

    sim_hook(&h.sim, "DELETE", &format!("{orcid}/work/{ours}"), None).await;
    sim_hook(&h.sim, "DELETE", &format!("{orcid}/work/{theirs}"), None).await;
    let changed = Harness::record_changed(&orcid);
    h.bus.publish(&changed).await.expect("published");
    let event = h.next("record-updated", &orcid).await;
    assert_eq!(
        keys(&event, "removed"),
        [
            ("work".to_owned(), theirs.min(ours)),
            ("work".to_owned(), theirs.max(ours))
        ]
    );
    assert_eq!(
        event["deleted_items"],
        json!([{"section": "work", "put_code": ours}]),
        "only the item whose source is our client"
    );

    // The same "record changed" again, after another change on the record: nothing happens.
    user_adds_work(&h.sim, &orcid, "Added after").await;
    let reads_before = sim_calls(&h.sim, "GET /v3.0/{orcid}/activities").await;
    let delivery = Delivery {
        envelope: changed.envelope.clone(),
        attempt: 1,
        redelivered: true,
        exchange: "events".into(),
        routing_key: "record.changed".into(),
        partition_key: Some(orcid.to_string()),
        queue: "reader.p000".into(),
        history: Vec::new(),
    };
    assert_eq!(h.app().reader().handle(&delivery).await, bus::Outcome::Ack);
    // And through the inbox claim itself (a copy running concurrently).
    let again = h
        .app()
        .reader()
        .read_record(&orcid, None, Some(&changed.envelope))
        .await
        .expect("read");
    assert_eq!(again, ReadOutcome::Duplicate);
    assert_eq!(
        sim_calls(&h.sim, "GET /v3.0/{orcid}/activities").await,
        reads_before + 1,
        "the redelivery read nothing; the concurrent copy read once and stored nothing"
    );
    assert_eq!(
        h.db.outbox_payloads("record-updated").await.len(),
        2,
        "no second event for the same message"
    );
    let snapshot = reader::snapshot::Snapshots::new(h.db.db.clone())
        .get(&orcid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.read_count, 2, "the duplicate stored no snapshot");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprecated_record_ends_the_connection_with_its_primary_id() {
    let mut h = Harness::start(None).await;
    let (orcid, _) = h.connected("P-merged").await;
    let primary = create_user(&h.sim, "primary").await;
    h.publish_ready(&orcid, "P-merged").await;
    h.next("record-updated", &orcid).await;

    let res = http()
        .post(format!(
            "{}/_sim/records/{orcid}/deprecate",
            h.sim.base_url()
        ))
        .json(&json!({"primary": primary.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    h.bus
        .publish(&Harness::record_changed(&orcid))
        .await
        .expect("published");
    let lost = h.next("connection-lost", &orcid).await;
    assert_eq!(lost["reason"], "deprecated");
    assert_eq!(lost["person_id"], "P-merged");
    assert_eq!(lost["primary_orcid"], primary.to_string());
    let updated = h.next("record-updated", &orcid).await;
    assert_eq!(updated["status"], "deprecated");
    assert_eq!(updated["primary_orcid"], primary.to_string());
    assert_eq!(
        updated["deleted_items"],
        json!([]),
        "a merge deletes nothing of ours"
    );

    // Read again: still deprecated, nothing new to say.
    let again = h
        .app()
        .reader()
        .read_record(&orcid, None, None)
        .await
        .unwrap();
    assert_eq!(again, ReadOutcome::Unchanged);
    assert_eq!(h.db.outbox_payloads("connection-lost").await.len(), 1);
    let snapshot = reader::snapshot::Snapshots::new(h.db.db.clone())
        .get(&orcid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.status, RecordStatus::Deprecated);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_record_is_reported_and_a_revoked_token_is_told_to_the_vault() {
    let h = Harness::start(None).await;
    let (orcid, token) = h.connected("P-gone").await;
    we_write_work(&h.client, &token, &orcid, "Kept").await;
    let reader = h.app().reader().clone();
    assert!(matches!(
        reader.read_record(&orcid, None, None).await.unwrap(),
        ReadOutcome::Updated(_)
    ));
    let res = http()
        .post(format!(
            "{}/_sim/records/{orcid}/deactivate",
            h.sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let ReadOutcome::Updated(event) = reader.read_record(&orcid, None, None).await.unwrap() else {
        panic!("a deactivated record is news");
    };
    assert_eq!(event.status, Some(RecordStatus::Deactivated));
    assert!(event.removed.is_empty() && event.deleted_items.is_empty());

    // Another researcher revokes our access: ORCID answers 401, the vault is told.
    let (other, _) = h.connected("P-revoker").await;
    let res = http()
        .post(format!("{}/_sim/users/{other}/revoke", h.sim.base_url()))
        .json(&json!({"client_id": TEST_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        reader.read_record(&other, None, None).await.unwrap(),
        ReadOutcome::Revoked
    );
    assert_eq!(h.tokens.reports().len(), 1, "{:?}", h.tokens.reports());
    assert!(h.tokens.reports()[0].starts_with(&other.to_string()));
    let _ = Section::Work;
    h.finish().await;
}

/// The schema's examples (which the bus's contract test also checks) read as the Rust type
/// with its new optional fields, and write back valid.
#[test]
fn record_updated_schema_examples_round_trip() {
    let schema = bus::schemas::find("record-updated", 1).expect("schema");
    let doc: serde_json::Value = serde_json::from_str(schema.text).expect("json");
    let examples = doc["examples"].as_array().expect("examples");
    assert!(examples.len() >= 2);
    for example in examples {
        let typed: bus::events::RecordUpdated =
            serde_json::from_value(example.clone()).expect("reads as RecordUpdated");
        let written = serde_json::to_value(&typed).unwrap();
        bus::schemas::validate("record-updated", 1, &written).expect("valid");
        assert_eq!(
            serde_json::from_value::<bus::events::RecordUpdated>(written).unwrap(),
            typed
        );
    }
    // An older message without the new fields still reads.
    let old = json!({"orcid": "0000-0002-1825-0097", "changed_sections": [],
                     "read_at": "2026-12-05T14:30:02Z"});
    let typed: bus::events::RecordUpdated = serde_json::from_value(old).unwrap();
    assert!(typed.added.is_empty() && typed.status.is_none());
}
