//! `GET /v1/tokens?person_id=…`: the token of a person's active connection in one
//! request (what the writer uses for HR and work events).

use chrono::{Duration as ChronoDuration, Utc};
use orcid::OrcidId;
use serde_json::Value;
use token_vault::client::{ClientError, ConnectionState};
use uuid::Uuid;

use crate::helpers::{Backend, TEST_WRITER_TOKEN, TestSettings, TestVault, http, spawn_vault_with};

/// A caller with the two rights the route needs (the deployed writer has both).
const TEST_PERSON_CALLER_TOKEN: &str = "TEST_PERSON_CALLER_TOKEN_0004";

fn settings() -> TestSettings {
    let mut settings = TestSettings::new();
    settings.extra_env.extend([
        (
            "IDBRIDGE__VAULT__CALLERS__PERSONS__TOKEN_SHA256".to_owned(),
            token_vault::token_sha256_hex(TEST_PERSON_CALLER_TOKEN),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__PERSONS__RIGHTS".to_owned(),
            r#"["token:read", "connections:list", "connections:revoke"]"#.to_owned(),
        ),
    ]);
    settings
}

/// A new simulator user connects as `person_id`, granted at `granted_at`.
async fn connect_as(
    vault: &TestVault,
    person_id: &str,
    granted_at: chrono::DateTime<Utc>,
) -> OrcidId {
    let (orcid, tokens) = vault.authorize_user().await;
    let event = vault.connect_event(&orcid, person_id, &tokens, granted_at);
    vault
        .publish(&bus::OutgoingMessage::event(&event).expect("event"))
        .await;
    let ready = vault.next_event("connection-ready").await;
    assert_eq!(ready.envelope.payload["orcid"], orcid.to_string());
    orcid
}

async fn reads_audited(vault: &TestVault, orcid: &OrcidId) -> i64 {
    vault
        .db
        .count(
            "SELECT COUNT(*) FROM token_vault_audit WHERE action = 'token.read' AND orcid = $1",
            vec![orcid.to_string().into()],
        )
        .await
}

async fn person_tokens(vault: &TestVault) {
    let client = vault.client(TEST_PERSON_CALLER_TOKEN);
    // HR's ids are text: a slash, a space and a non-ASCII letter travel percent-encoded.
    let person = format!("HR/{} Zoë", &Uuid::new_v4().simple().to_string()[..8]);
    let first = connect_as(vault, &person, Utc::now() - ChronoDuration::hours(1)).await;

    let token = client.person_token(&person, "write").await.unwrap();
    assert_eq!(token.orcid, first.to_string());
    assert_eq!(
        reads_audited(vault, &first).await,
        1,
        "the read is audited under the iD"
    );
    // The same token the iD route gives.
    let by_orcid = vault
        .writer()
        .access_token(&first, "compare")
        .await
        .unwrap();
    assert_eq!(token.generation, by_orcid.generation);
    assert_eq!(
        token.access_token.expose_secret(),
        by_orcid.access_token.expose_secret(),
        "same token"
    );

    // The person connects a second iD later: its token is the one served.
    let second = connect_as(vault, &person, Utc::now()).await;
    let token = client.person_token(&person, "write").await.unwrap();
    assert_eq!(token.orcid, second.to_string());
    assert_eq!(reads_audited(vault, &second).await, 1);

    // Both revoked: 410 revoked, not "not connected".
    for orcid in [&first, &second] {
        client.mark_revoked(orcid, None, "401").await.unwrap();
    }
    match client.person_token(&person, "write").await {
        Err(ClientError::ConnectionEnded { state }) => {
            assert_eq!(state, ConnectionState::Revoked);
        }
        other => panic!("expected 410 revoked, got {other:?}"),
    }

    // Nobody by that id: 404 not_connected, naming the person.
    let unknown = format!("P-nobody-{}", Uuid::new_v4().simple());
    match client.person_token(&unknown, "write").await {
        Err(ClientError::NotConnected) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    let res = http()
        .get(format!(
            "{}/v1/tokens?person_id={unknown}&purpose=test",
            vault.base_url
        ))
        .bearer_auth(TEST_PERSON_CALLER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_connected");
    assert!(
        body["message"].as_str().unwrap().contains(&unknown),
        "{body}"
    );
}

async fn rights_and_bad_input(vault: &TestVault) {
    let person = format!("P-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let orcid = connect_as(vault, &person, Utc::now()).await;
    let url = format!(
        "{}/v1/tokens?person_id={person}&purpose=test",
        vault.base_url
    );

    // token:read alone is not enough: the answer also says which iD the person connected.
    let res = http()
        .get(&url)
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["missing_right"], "connections:list", "{body}");
    assert_eq!(reads_audited(vault, &orcid).await, 0, "nothing served");

    // No purpose.
    let res = http()
        .get(format!("{}/v1/tokens?person_id={person}", vault.base_url))
        .bearer_auth(TEST_PERSON_CALLER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "purpose_required");

    // A person id the vault could never have stored (longer than 255 bytes) has no
    // connection: 404 not_connected, so the writer keeps the item pending, as before.
    let long = "x".repeat(256);
    match vault
        .client(TEST_PERSON_CALLER_TOKEN)
        .person_token(&long, "write")
        .await
    {
        Err(ClientError::NotConnected) => {}
        other => panic!("expected 404 not_connected, got {other:?}"),
    }
    assert_eq!(reads_audited(vault, &orcid).await, 0);

    // `..` is a person id like any other (it would not survive as a path segment).
    let dots = connect_as(vault, "..", Utc::now()).await;
    let token = vault
        .client(TEST_PERSON_CALLER_TOKEN)
        .person_token("..", "write")
        .await
        .unwrap();
    assert_eq!(token.orcid, dots.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_token_is_the_latest_active_connection_postgres() {
    let vault = spawn_vault_with(Backend::Postgres, settings()).await;
    person_tokens(&vault).await;
    rights_and_bad_input(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_token_is_the_latest_active_connection_sqlite() {
    let vault = spawn_vault_with(Backend::Sqlite, settings()).await;
    person_tokens(&vault).await;
    rights_and_bad_input(&vault).await;
    vault.stop().await;
}
