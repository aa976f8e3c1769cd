//! The contracts in `proto/`: examples valid, Rust types and schemas agreeing both ways.

use std::collections::BTreeSet;

use bus::{
    Envelope, OutgoingMessage,
    events::{
        AffiliationSection, ConnectionLost, ConnectionReady, Contributor, DeletedItem, Event,
        ExternalId, HrEvent, HrEventType, IdConnected, ItemAction, ItemError, ItemFailed,
        ItemWritten, LostReason, OrcidId, Organization, PartialDate, Person, PersonNames, Position,
        RecordChanged, RecordUpdated, Relationship, SealedToken, Section, Work, WorkEvent,
        WorkEventType, exchanges,
    },
    schemas::{self, ENVELOPE, PAYLOADS},
};
use chrono::Utc;
use serde_json::{Value, json};

fn examples(text: &str) -> Vec<Value> {
    let schema: Value = serde_json::from_str(text).unwrap();
    schema["examples"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_example_is_valid_against_its_schema() {
    for schema in PAYLOADS.iter().chain([&ENVELOPE]) {
        let examples = examples(schema.text);
        assert!(!examples.is_empty(), "{} has no examples", schema.file);
        for example in &examples {
            schemas::validate(schema.name, schema.version, example)
                .unwrap_or_else(|e| panic!("{} example invalid: {e}", schema.file));
        }
    }
    for example in examples(ENVELOPE.text) {
        schemas::validate_message(&example).unwrap();
    }
}

/// Each example reads into the Rust type, and what the type writes back is valid and reads
/// back to the same value (defaults such as `section: employment` get written out).
fn round_trips<E: Event + PartialEq + std::fmt::Debug>() {
    let schema = schemas::find(E::TYPE, E::VERSION).unwrap();
    for example in examples(schema.text) {
        let typed: E = serde_json::from_value(example)
            .unwrap_or_else(|e| panic!("{} example does not read as Rust: {e}", schema.file));
        let written = serde_json::to_value(&typed).unwrap();
        schemas::validate(E::TYPE, E::VERSION, &written)
            .unwrap_or_else(|e| panic!("{} written back: {e}", schema.file));
        assert_eq!(
            serde_json::from_value::<E>(written).unwrap(),
            typed,
            "{}",
            schema.file
        );
    }
}

#[test]
fn examples_round_trip_through_the_rust_types() {
    round_trips::<IdConnected>();
    round_trips::<ConnectionReady>();
    round_trips::<ConnectionLost>();
    round_trips::<HrEvent>();
    round_trips::<WorkEvent>();
    round_trips::<ItemWritten>();
    round_trips::<ItemFailed>();
    round_trips::<RecordChanged>();
    round_trips::<RecordUpdated>();
}

fn orcid() -> OrcidId {
    OrcidId::parse("0000-0002-1825-0097").unwrap()
}

fn date(s: &str) -> PartialDate {
    PartialDate::parse(s).unwrap()
}

/// Produces the message the code would send and checks envelope and payload.
fn produced<E: Event>(event: &E) -> OutgoingMessage {
    let message = OutgoingMessage::event(event).unwrap();
    let body: Value = serde_json::from_slice(&message.envelope.to_json().unwrap()).unwrap();
    schemas::validate_message(&body).unwrap_or_else(|e| panic!("{}: {e}", E::TYPE));
    assert_eq!(message.exchange, E::EXCHANGE);
    message
}

#[test]
fn every_message_the_code_produces_is_valid() {
    let now = Utc::now();
    let m = produced(&IdConnected {
        orcid: orcid(),
        person_id: "P-1".into(),
        name: None,
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        sealed_token: SealedToken::from_sealed_bytes(&[7u8; 48]),
        key_id: "vault-1".into(),
        granted_at: now,
    });
    assert_eq!(
        (m.routing_key.as_str(), m.partition_key.as_deref()),
        ("id.connected", Some("P-1"))
    );
    produced(&ConnectionReady {
        orcid: orcid(),
        person_id: "P-1".into(),
        scopes: vec!["/read-limited".into()],
        connected_at: now,
    });
    produced(&ConnectionLost {
        orcid: orcid(),
        person_id: "P-1".into(),
        reason: LostReason::Deprecated,
        detected_at: now,
        primary_orcid: Some(OrcidId::parse("0000-0001-5109-3700").unwrap()),
    });
    for event_type in [HrEventType::Hire, HrEventType::Leave, HrEventType::Change] {
        let m = produced(&HrEvent {
            event_id: "e-1".into(),
            event_type,
            occurred_at: now,
            person: Person {
                person_id: "P-1".into(),
                names: Some(PersonNames {
                    given_names: Some("Josiah".into()),
                    family_name: None,
                }),
                email: Some("j@example.edu".into()),
            },
            position: Position {
                position_id: "POS-1".into(),
                section: AffiliationSection::InvitedPosition,
                department: Some("Psychoceramics".into()),
                role_title: None,
                start_date: Some(date("2026")),
                end_date: Some(date("2027-06-30")),
                organization: Some(Organization {
                    name: "Example".into(),
                    city: "Paris".into(),
                    region: None,
                    country: "FR".into(),
                    disambiguated_id: Some("https://ror.org/02feahw73".into()),
                    disambiguation_source: Some("ROR".into()),
                }),
                url: Some("https://example.edu/positions/1".into()),
                external_ids: vec![ExternalId {
                    id_type: "grant_number".into(),
                    value: "G-1".into(),
                    url: None,
                    relationship: Relationship::SelfId,
                }],
            },
        });
        assert_eq!(m.exchange, exchanges::HR);
        assert_eq!(m.routing_key, format!("hr.{}", event_type.as_str()));
    }
    let m = produced(&WorkEvent {
        event_id: "w-1".into(),
        event_type: WorkEventType::Delete,
        occurred_at: now,
        person_id: "P-1".into(),
        work: Work {
            work_id: "W-1".into(),
            title: "T".into(),
            subtitle: None,
            work_type: "dataset".into(),
            external_ids: vec![ExternalId {
                id_type: "doi".into(),
                value: "10.1/x".into(),
                url: None,
                relationship: Relationship::VersionOf,
            }],
            publication_date: Some(date("2026-02")),
            journal_title: None,
            contributors: vec![Contributor {
                name: "A".into(),
                orcid: Some(orcid()),
                role: None,
            }],
            url: Some("https://example.edu/w/1".into()),
        },
    });
    assert_eq!(m.routing_key, "work.delete");
    produced(&ItemWritten {
        orcid: orcid(),
        person_id: "P-1".into(),
        section: Section::Work,
        source_id: "W-1".into(),
        put_code: 1,
        action: ItemAction::Deleted,
        written_at: now,
    });
    produced(&ItemFailed {
        orcid: None,
        person_id: "P-1".into(),
        section: Section::Funding,
        source_id: "F-1".into(),
        error: ItemError {
            kind: "not-connected".into(),
            orcid_error_code: None,
            message: "no iD".into(),
        },
        attempts: 3,
        failed_at: now,
    });
    produced(&RecordChanged {
        orcid: orcid(),
        received_at: now,
    });
    let m = produced(&RecordUpdated {
        orcid: orcid(),
        person_id: None,
        last_modified: None,
        changed_sections: vec![],
        deleted_items: vec![DeletedItem {
            section: Section::Employment,
            put_code: 9,
            source_id: None,
        }],
        read_at: now,
        previous_read_at: None,
        added: vec![],
        changed: vec![],
        removed: vec![],
        status: None,
        primary_orcid: None,
    });
    assert_eq!(
        m.partition_key.as_deref(),
        Some("0000-0002-1825-0097"),
        "record events are keyed by the iD"
    );
    // What the CSV import produces: no names at all.
    let from_csv = produced(&HrEvent {
        event_id: "csv-1".into(),
        event_type: HrEventType::Hire,
        occurred_at: now,
        person: Person {
            person_id: "P-2".into(),
            names: None,
            email: None,
        },
        position: Position {
            position_id: "POS-2".into(),
            section: AffiliationSection::Employment,
            department: None,
            role_title: None,
            start_date: None,
            end_date: None,
            organization: None,
            url: None,
            external_ids: Vec::new(),
        },
    });
    assert!(from_csv.envelope.payload["person"].get("names").is_none());
    // Causation links a reaction to its cause.
    let reaction = Envelope::raw("item-written", 1, json!({})).caused_by(&m.envelope);
    assert_eq!(reaction.causation_id, Some(m.envelope.message_id));
    assert_eq!(reaction.correlation_id, m.envelope.correlation_id);
}

#[test]
fn schemas_reject_what_they_should() {
    let mut connected = examples(schemas::find("id-connected", 1).unwrap().text).remove(0);
    connected["access_token"] = json!("f5af9f51-07e6-4332-8f1a-c0c11c1e3728");
    let err = schemas::validate("id-connected", 1, &connected)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("access_token"),
        "a plaintext token field is refused: {err}"
    );

    let mut hr = examples(schemas::find("hr-event", 1).unwrap().text).remove(0);
    hr["position"]["start_date"] = json!("2026-13-01");
    hr["event_type"] = json!("promote");
    let err = schemas::validate("hr-event", 1, &hr)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/position/start_date") && err.contains("/event_type"),
        "{err}"
    );

    // An iD with a wrong check digit passes the schema's pattern but not the Rust type.
    let mut written = examples(schemas::find("item-written", 1).unwrap().text).remove(0);
    written["orcid"] = json!("0000-0002-1825-0098");
    assert!(serde_json::from_value::<ItemWritten>(written).is_err());

    let envelope = json!({"message_id": "nope", "type": "hr-event", "schema_version": 1,
        "occurred_at": "2026-12-01T08:00:00Z", "correlation_id": "nope", "payload": {}});
    assert!(schemas::validate_message(&envelope).is_err());
    assert!(
        schemas::validate("hr-event", 2, &hr).is_err(),
        "unknown version"
    );
}

/// Where the Rust side says each event goes: (exchange, routing key, type, version), with
/// the routing keys taken from every example of the event's schema (the examples cover
/// every `event_type`).
fn routes_of<E: Event>(routes: &mut BTreeSet<(String, String, String, u32)>) {
    let schema = schemas::find(E::TYPE, E::VERSION).unwrap();
    for example in examples(schema.text) {
        let event: E = serde_json::from_value(example).unwrap();
        routes.insert((
            format!("idbridge.{}", E::EXCHANGE),
            event.routing_key(),
            E::TYPE.to_owned(),
            E::VERSION,
        ));
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

/// Follows a local `$ref` (`#/components/messages/hrEvent`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let path = reference
        .strip_prefix("#/")
        .unwrap_or_else(|| panic!("not a local $ref: {reference}"));
    let found = at(doc, &path.split('/').collect::<Vec<_>>());
    assert!(!found.is_null(), "dangling $ref {reference}");
    found
}

#[test]
fn the_asyncapi_document_agrees_with_the_rust_types_and_the_schemas() {
    let doc: Value = serde_norway::from_str(include_str!("../../../../proto/asyncapi.yaml"))
        .expect("asyncapi.yaml is YAML");
    assert_eq!(doc["asyncapi"], "3.0.0");

    let mut expected = BTreeSet::new();
    routes_of::<IdConnected>(&mut expected);
    routes_of::<ConnectionReady>(&mut expected);
    routes_of::<ConnectionLost>(&mut expected);
    routes_of::<HrEvent>(&mut expected);
    routes_of::<WorkEvent>(&mut expected);
    routes_of::<ItemWritten>(&mut expected);
    routes_of::<ItemFailed>(&mut expected);
    routes_of::<RecordChanged>(&mut expected);
    routes_of::<RecordUpdated>(&mut expected);
    assert_eq!(expected.len(), 12, "{expected:#?}");

    let mut documented = BTreeSet::new();
    let channels = doc["channels"].as_object().expect("channels");
    for (id, channel) in channels {
        let amqp = &channel["bindings"]["amqp"];
        let messages = channel["messages"].as_object().into_iter().flatten();
        for (_, message) in messages {
            let message = resolve(&doc, message["$ref"].as_str().expect("$ref"));
            // The payload schema: the envelope, with type, version and payload pinned.
            let all_of = message["payload"]["schema"]["allOf"]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: payload.schema.allOf"));
            assert_eq!(
                all_of[0]["$ref"], "./schemas/envelope.v1.schema.json",
                "{id}"
            );
            let pinned = &all_of[1]["properties"];
            let message_type = pinned["type"]["const"].as_str().expect("type const");
            let version =
                u32::try_from(pinned["schema_version"]["const"].as_u64().unwrap()).unwrap();
            let schema = schemas::find(message_type, version)
                .unwrap_or_else(|| panic!("{id}: no schema for {message_type}@{version}"));
            assert_eq!(
                pinned["payload"]["$ref"],
                format!("./schemas/{}", schema.file),
                "{id}"
            );
            assert_eq!(message["name"], message_type, "{id}");
            if amqp["is"] == "routingKey" {
                assert_eq!(amqp["exchange"]["type"], "topic", "{id}");
                assert_eq!(amqp["exchange"]["durable"], true, "{id}");
                documented.insert((
                    amqp["exchange"]["name"]
                        .as_str()
                        .expect("exchange")
                        .to_owned(),
                    channel["address"].as_str().expect("address").to_owned(),
                    message_type.to_owned(),
                    version,
                ));
            }
        }
    }
    assert_eq!(
        documented, expected,
        "asyncapi.yaml routes (left) differ from the Rust types' (right)"
    );

    // Every operation names a channel that exists.
    for (id, operation) in doc["operations"].as_object().expect("operations") {
        resolve(
            &doc,
            operation["channel"]["$ref"].as_str().expect("channel $ref"),
        );
        let action = operation["action"].as_str().unwrap_or_default();
        assert!(action == "send" || action == "receive", "{id}: {action}");
    }
    // The partition queues as the bus names them, and the partition key header.
    let partitions = &channels["writerPartitions"];
    assert_eq!(partitions["address"], "idbridge.writer.p{partition}");
    let headers = &doc["components"]["messageTraits"]["envelope"]["headers"]["properties"];
    for header in [
        "traceparent",
        "tracestate",
        "x-partition-key",
        "x-schema-version",
    ] {
        assert!(headers[header].is_object(), "header {header} not described");
    }
    let description = doc["info"]["description"].as_str().unwrap_or_default();
    for needle in ["x-consistent-hash", "x-single-active-consumer", "p000"] {
        assert!(
            description.contains(needle),
            "info.description lacks {needle}"
        );
    }
}
