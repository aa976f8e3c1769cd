//! "iD connected" → stored → "connection ready" → token through the API.

use bus::OutgoingMessage;
use chrono::Utc;
use token_vault::client::{ClientError, ConnectionState};

use crate::helpers::{Backend, SCOPES, TestVault, spawn_vault};

async fn round_trip(vault: &TestVault) {
    let user = vault.connect_user().await;
    let ready = vault
        .seen
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("an event");
    assert_eq!(ready.envelope.message_type, "connection-ready");
    assert_eq!(ready.envelope.payload["person_id"], user.person_id.as_str());
    let scopes: Vec<String> =
        serde_json::from_value(ready.envelope.payload["scopes"].clone()).unwrap();
    assert_eq!(scopes.join(" "), SCOPES);

    let token = vault
        .writer()
        .access_token(&user.orcid, "hr.hire P-1")
        .await
        .expect("token");
    assert_eq!(
        token.access_token.expose_secret(),
        user.tokens.access_token.expose_secret()
    );
    assert_eq!(token.orcid, user.orcid.to_string());
    assert_eq!(token.generation, 1);
    assert_eq!(
        vault
            .sim_status_with(&user.orcid, token.access_token.expose_secret())
            .await,
        200,
        "the token from the vault works at ORCID"
    );

    let listed = vault
        .portal()
        .connection(&user.orcid)
        .await
        .expect("listing");
    assert_eq!(listed.person_id, user.person_id);
    assert_eq!(listed.state, ConnectionState::Active);
    assert_eq!(listed.name, user.tokens.name);
    assert_eq!(listed.scopes.join(" "), SCOPES);
    let page = vault
        .portal()
        .connections(Some(&user.person_id), None, None, None)
        .await
        .expect("page");
    assert_eq!(page.connections, vec![listed]);
    assert_eq!(page.next_after, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_then_fetch_round_trip_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    round_trip(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_then_fetch_round_trip_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    round_trip(&vault).await;
    vault.stop().await;
}

async fn redelivery_and_latest_grant(vault: &TestVault) {
    let (orcid, first) = vault.authorize_user().await;
    let person_id = "P-REDELIVERY";
    let granted = Utc::now() - chrono::Duration::minutes(10);
    let message =
        OutgoingMessage::event(&vault.connect_event(&orcid, person_id, &first, granted)).unwrap();
    vault.publish(&message).await;
    vault.next_event("connection-ready").await;

    // The same message again (a redelivery): the inbox absorbs it. Its inbox row already
    // exists, so a second message for the same grant (new id, same `granted_at`) is what the
    // test waits for: once it is processed, the redelivery before it was offered too.
    vault.publish(&message).await;
    let same_grant =
        OutgoingMessage::event(&vault.connect_event(&orcid, person_id, &first, granted)).unwrap();
    vault.publish_and_wait(&same_grant).await;
    let token = vault.writer().access_token(&orcid, "check").await.unwrap();
    assert_eq!(token.generation, 1);
    assert_eq!(vault.outbox_count("connection-ready", &orcid).await, 1);

    // A new grant for the same iD replaces the tokens: the latest grant wins.
    let second = vault.authorize(&orcid).await;
    assert_ne!(
        first.access_token.expose_secret(),
        second.access_token.expose_secret()
    );
    let newer =
        OutgoingMessage::event(&vault.connect_event(&orcid, person_id, &second, Utc::now()))
            .unwrap();
    vault.publish(&newer).await;
    vault.next_event("connection-ready").await;
    let token = vault.writer().access_token(&orcid, "check").await.unwrap();
    assert_eq!(
        token.access_token.expose_secret(),
        second.access_token.expose_secret()
    );
    assert_eq!(token.generation, 2);
    // The pair the new grant replaced is revoked at ORCID (after the commit, best effort).
    let old_access = first.access_token.expose_secret().to_owned();
    crate::helpers::wait_for("the replaced token to be revoked", || async {
        (vault.sim_status_with(&orcid, &old_access).await == 401).then_some(())
    })
    .await;

    // An older grant arriving late changes nothing.
    let late = OutgoingMessage::event(&vault.connect_event(
        &orcid,
        person_id,
        &first,
        granted - chrono::Duration::minutes(1),
    ))
    .unwrap();
    vault.publish_and_wait(&late).await;
    assert_eq!(vault.outbox_count("connection-ready", &orcid).await, 2);
    let token = vault.writer().access_token(&orcid, "check").await.unwrap();
    assert_eq!(
        token.access_token.expose_secret(),
        second.access_token.expose_secret()
    );
    assert_eq!(token.generation, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_is_idempotent_and_the_latest_grant_wins_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    redelivery_and_latest_grant(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_is_idempotent_and_the_latest_grant_wins_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    redelivery_and_latest_grant(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_replayed_for_another_person_is_parked() {
    let vault = spawn_vault(Backend::Postgres).await;
    let (orcid, tokens) = vault.authorize_user().await;
    let mut event = vault.connect_event(&orcid, "P-RIGHTFUL", &tokens, Utc::now());
    event.person_id = "P-ATTACKER".to_owned();
    vault
        .publish(&OutgoingMessage::event(&event).unwrap())
        .await;
    let parked = crate::helpers::wait_for("the message to be parked", || async {
        let parked = vault
            .bus
            .parked(token_vault::SERVICE_NAME, 10)
            .await
            .unwrap();
        (!parked.is_empty()).then_some(parked)
    })
    .await;
    let reason = parked[0].reason.clone();
    assert!(reason.contains("authentication failed"), "{reason}");
    match vault.writer().access_token(&orcid, "check").await {
        Err(ClientError::NotConnected) => {}
        other => panic!("expected NotConnected, got {other:?}"),
    }
    vault.stop().await;
}

/// A disconnected connection stays ended when its grant arrives again (a redelivery with a
/// fresh inbox, or a second message with the same `granted_at`).
async fn an_ended_connection_is_not_revived(vault: &TestVault) {
    let (orcid, tokens) = vault.authorize_user().await;
    let person_id = "P-REVIVE";
    let granted = Utc::now() - chrono::Duration::minutes(1);
    let message =
        OutgoingMessage::event(&vault.connect_event(&orcid, person_id, &tokens, granted)).unwrap();
    vault.publish_and_wait(&message).await;
    vault.next_event("connection-ready").await;
    vault
        .portal()
        .disconnect(&orcid, "researcher left")
        .await
        .expect("disconnect");

    // The same message with a fresh inbox (the inbox row pruned or lost).
    vault
        .db
        .execute("DELETE FROM token_vault_inbox", vec![])
        .await;
    vault.publish_and_wait(&message).await;
    // A second message for the same grant.
    let again =
        OutgoingMessage::event(&vault.connect_event(&orcid, person_id, &tokens, granted)).unwrap();
    vault.publish_and_wait(&again).await;

    assert_eq!(vault.outbox_count("connection-ready", &orcid).await, 1);
    let listed = vault.portal().connection(&orcid).await.expect("listing");
    assert_eq!(listed.state, ConnectionState::Disconnected);
    match vault.writer().access_token(&orcid, "check").await {
        Err(ClientError::ConnectionEnded {
            state: ConnectionState::Disconnected,
        }) => {}
        other => panic!("expected the connection to stay disconnected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_connection_is_not_revived_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    an_ended_connection_is_not_revived(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_connection_is_not_revived_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    an_ended_connection_is_not_revived(&vault).await;
    vault.stop().await;
}
