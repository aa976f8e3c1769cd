//! Against orcid-sim: refresh near expiry (the new token works, the old one is revoked),
//! ORCID refusing a refresh, worker "revoked" reports, disconnects, client-credentials tokens
//! obtained once.

use std::time::Duration;

use chrono::Utc;
use orcid::client::{Refresh, UserTokens};
use serde_json::Value;
use token_vault::client::{ClientError, ClientScope, ConnectionState};

use crate::helpers::{Backend, TEST_CLIENT_ID, TestVault, http, spawn_vault};

/// `POST /oauth/token` answers counted by the simulator.
async fn token_endpoint_calls(vault: &TestVault) -> u64 {
    let stats: Value = http()
        .get(format!("{}/_sim/stats", vault.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["POST /oauth/token"]
        .as_object()
        .map(|statuses| statuses.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

async fn tokens_sealed_is_null(vault: &TestVault, orcid: &orcid::OrcidId) -> bool {
    vault
        .db
        .count(
            "SELECT COUNT(*) FROM token_vault_connections WHERE orcid = $1 AND tokens_sealed IS NULL AND key_id IS NULL",
            vec![orcid.to_string().into()],
        )
        .await
        == 1
}

/// A pair that really expires in `lifetime` at the simulator: a refresh asking for a short
/// `expires_in` (ORCID never lengthens a token, only shortens it).
async fn short_lived_user(vault: &TestVault, lifetime: Duration) -> (orcid::OrcidId, UserTokens) {
    let (orcid, issued) = vault.authorize_user().await;
    let short = vault
        .orcid
        .refresh(
            issued.refresh_token.as_ref().expect("a refresh token"),
            &Refresh::revoking_old().with_expires_in(lifetime),
        )
        .await
        .expect("short-lived refresh");
    (orcid, short)
}

async fn refresh_near_expiry(vault: &TestVault) {
    // Expires in two minutes: within the refresh threshold (a day).
    let (orcid, short) = short_lived_user(vault, Duration::from_secs(120)).await;
    let user = vault.connect_with(orcid, short).await;
    let stored_expiry = vault.portal().connection(&orcid).await.unwrap().expires_at;
    let old = user.tokens.access_token.expose_secret().to_owned();
    let calls_before = token_endpoint_calls(vault).await;

    // Concurrent reads: one refresh, everyone gets the new token.
    let mut reads = Vec::new();
    for n in 0..5 {
        let client = vault.writer();
        reads.push(tokio::spawn(async move {
            client
                .access_token(&orcid, &format!("concurrent {n}"))
                .await
        }));
    }
    let mut fresh = Vec::new();
    for read in reads {
        fresh.push(read.await.unwrap().expect("read"));
    }
    let new = fresh[0].access_token.expose_secret().to_owned();
    assert_ne!(new, old, "the token was refreshed");
    assert!(
        fresh
            .iter()
            .all(|t| t.access_token.expose_secret() == new && t.generation == 2)
    );
    // ORCID gives the refreshed token the old one's expiry: refreshing did not extend it.
    assert!(
        (fresh[0].expires_at - stored_expiry).num_seconds().abs() <= 2,
        "the refreshed token keeps the old expiry: {} vs {stored_expiry}",
        fresh[0].expires_at
    );
    assert!(fresh[0].expires_at < Utc::now() + chrono::Duration::minutes(3));
    assert_eq!(
        token_endpoint_calls(vault).await,
        calls_before + 1,
        "one refresh for five reads"
    );

    // At ORCID: the new token works, the old one was revoked.
    assert_eq!(vault.sim_status_with(&orcid, &new).await, 200);
    assert_eq!(vault.sim_status_with(&orcid, &old).await, 401);

    let connection = vault.portal().connection(&orcid).await.unwrap();
    assert!(connection.refreshed_at.is_some());
    // Still inside the refresh window, but a refresh cannot extend it: the vault uses the
    // token until it expires instead of refreshing at every read.
    for n in 0..3 {
        let again = vault
            .writer()
            .access_token(&orcid, &format!("again {n}"))
            .await
            .unwrap();
        assert_eq!(again.access_token.expose_secret(), new);
        assert_eq!(again.generation, 2);
    }
    assert_eq!(token_endpoint_calls(vault).await, calls_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_near_expiry_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    refresh_near_expiry(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_near_expiry_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    refresh_near_expiry(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_orcid_refuses_ends_the_connection_as_revoked() {
    let vault = spawn_vault(Backend::Postgres).await;
    let (orcid, mut tokens) = vault.authorize_user().await;
    tokens.expires_in = Some(Duration::from_secs(60));
    let user = vault.connect_with(orcid, tokens).await;
    // The researcher removes the institution from their trusted organisations.
    let res = http()
        .post(format!(
            "{}/_sim/users/{orcid}/revoke",
            vault.sim.base_url()
        ))
        .json(&serde_json::json!({"client_id": TEST_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    match vault.writer().access_token(&orcid, "refresh refused").await {
        Err(ClientError::ConnectionEnded { state }) => assert_eq!(state, ConnectionState::Revoked),
        other => panic!("expected 410, got {other:?}"),
    }
    let lost = vault.next_event("connection-lost").await;
    assert_eq!(lost.envelope.payload["reason"], "revoked");
    assert_eq!(lost.envelope.payload["person_id"], user.person_id.as_str());
    assert!(
        tokens_sealed_is_null(&vault, &orcid).await,
        "tokens deleted"
    );
    vault.stop().await;
}

async fn revoked_reports(vault: &TestVault) {
    let user = vault.connect_user().await;
    let token = vault
        .writer()
        .access_token(&user.orcid, "write")
        .await
        .unwrap();

    // A report about a token the vault no longer hands out is refused.
    match vault
        .writer()
        .mark_revoked(&user.orcid, Some(token.generation - 1), "401")
        .await
    {
        Err(ClientError::StaleGeneration { .. }) => {}
        other => panic!("expected 409, got {other:?}"),
    }
    assert_eq!(
        vault.portal().connection(&user.orcid).await.unwrap().state,
        ConnectionState::Active
    );

    let revoked = vault
        .writer()
        .mark_revoked(
            &user.orcid,
            Some(token.generation),
            "401 on POST /employment",
        )
        .await
        .unwrap();
    assert_eq!(revoked.state, ConnectionState::Revoked);
    assert!(revoked.ended_at.is_some());
    let lost = vault.next_event("connection-lost").await;
    assert_eq!(lost.envelope.payload["reason"], "revoked");
    assert_eq!(lost.envelope.payload["orcid"], user.orcid.to_string());
    assert!(tokens_sealed_is_null(vault, &user.orcid).await);

    // Idempotent: a second report changes nothing and publishes nothing.
    let again = vault
        .writer()
        .mark_revoked(&user.orcid, None, "401 again")
        .await
        .unwrap();
    assert_eq!(again.state, ConnectionState::Revoked);
    // The outbox is written in the request's transaction: one "connection lost" only.
    assert_eq!(vault.outbox_count("connection-lost", &user.orcid).await, 1);
    match vault.writer().access_token(&user.orcid, "after").await {
        Err(ClientError::ConnectionEnded { state }) => assert_eq!(state, ConnectionState::Revoked),
        other => panic!("expected 410, got {other:?}"),
    }
    assert_eq!(
        vault
            .db
            .count(
                "SELECT COUNT(*) FROM token_vault_audit WHERE action = 'connection.revoke' AND orcid = $1 AND purpose = $2",
                vec![user.orcid.to_string().into(), "401 on POST /employment".into()],
            )
            .await,
        1
    );
    // The repeated report is audited too.
    assert_eq!(
        vault
            .db
            .count(
                "SELECT COUNT(*) FROM token_vault_audit WHERE action = 'connection.revoke' AND orcid = $1 AND purpose = $2",
                vec![user.orcid.to_string().into(), "401 again".into()],
            )
            .await,
        1
    );
}

async fn disconnects(vault: &TestVault) {
    let user = vault.connect_user().await;
    let token = user.tokens.access_token.expose_secret().to_owned();
    assert_eq!(vault.sim_status_with(&user.orcid, &token).await, 200);

    let gone = vault
        .portal()
        .disconnect(&user.orcid, "researcher clicked disconnect")
        .await
        .unwrap();
    assert_eq!(gone.state, ConnectionState::Disconnected);
    assert_eq!(
        vault.sim_status_with(&user.orcid, &token).await,
        401,
        "revoked at ORCID"
    );
    assert!(
        tokens_sealed_is_null(vault, &user.orcid).await,
        "deleted here"
    );
    let lost = vault.next_event("connection-lost").await;
    assert_eq!(lost.envelope.payload["reason"], "disconnected");
    assert_eq!(lost.envelope.payload["person_id"], user.person_id.as_str());

    match vault.writer().access_token(&user.orcid, "after").await {
        Err(ClientError::ConnectionEnded { state }) => {
            assert_eq!(state, ConnectionState::Disconnected)
        }
        other => panic!("expected 410, got {other:?}"),
    }
    let again = vault
        .portal()
        .disconnect(&user.orcid, "twice")
        .await
        .unwrap();
    assert_eq!(again.state, ConnectionState::Disconnected);
    assert_eq!(vault.outbox_count("connection-lost", &user.orcid).await, 1);
    // The row stays for reports, without tokens.
    let page = vault
        .portal()
        .connections(
            Some(&user.person_id),
            Some(ConnectionState::Disconnected),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.connections.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_reports_and_disconnects_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    revoked_reports(&vault).await;
    disconnects(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_reports_and_disconnects_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    revoked_reports(&vault).await;
    disconnects(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_are_obtained_once() {
    let mut vault = spawn_vault(Backend::Postgres).await;
    let user = vault.connect_user().await;
    let before = token_endpoint_calls(&vault).await;
    let first = vault
        .writer()
        .client_token(ClientScope::Webhook, "register webhook")
        .await
        .unwrap();
    let second = vault
        .writer()
        .client_token(ClientScope::Webhook, "register webhook")
        .await
        .unwrap();
    assert_eq!(
        first.access_token.expose_secret(),
        second.access_token.expose_secret()
    );
    assert_eq!(first.scope, "/webhook");
    assert_eq!(token_endpoint_calls(&vault).await, before + 1);

    // It works at ORCID: register a webhook.
    let callback = "http%3A%2F%2F127.0.0.1%3A9%2Fhook";
    let res = http()
        .put(format!(
            "{}/{}/webhook/{callback}",
            vault.sim.base_url(),
            user.orcid
        ))
        .bearer_auth(first.access_token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // A restarted vault finds it sealed in the database.
    vault.restart().await;
    let after_restart = vault
        .writer()
        .client_token(ClientScope::Webhook, "register webhook")
        .await
        .unwrap();
    assert_eq!(
        after_restart.access_token.expose_secret(),
        first.access_token.expose_secret()
    );
    assert_eq!(token_endpoint_calls(&vault).await, before + 1);

    // Another scope is another token.
    let public = vault
        .writer()
        .client_token(ClientScope::ReadPublic, "read public")
        .await
        .unwrap();
    assert_ne!(
        public.access_token.expose_secret(),
        first.access_token.expose_secret()
    );
    assert_eq!(token_endpoint_calls(&vault).await, before + 2);
    vault.stop().await;
}

/// A token that cannot be extended expires: the connection ends as expired (not revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_extended_ends_as_expired() {
    let vault = spawn_vault(Backend::Sqlite).await;
    let (orcid, short) = short_lived_user(&vault, Duration::from_secs(8)).await;
    let user = vault.connect_with(orcid, short).await;
    // The first read refreshes (ORCID keeps the expiry); later reads serve that token.
    let first = vault.writer().access_token(&orcid, "first").await.unwrap();
    assert_eq!(first.generation, 2);
    let state = crate::helpers::wait_for("the token to expire", || async {
        match vault.writer().access_token(&orcid, "poll").await {
            Ok(token) => {
                assert_eq!(token.generation, 2, "no refresh inside the window");
                None
            }
            Err(ClientError::ConnectionEnded { state }) => Some(state),
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
    assert_eq!(state, ConnectionState::Expired);
    let lost = vault.next_event("connection-lost").await;
    assert_eq!(lost.envelope.payload["reason"], "expired");
    assert_eq!(lost.envelope.payload["person_id"], user.person_id.as_str());
    assert!(tokens_sealed_is_null(&vault, &orcid).await);
    vault.stop().await;
}

/// While ORCID fails, a connection's refresh is tried once, then the still-valid token is
/// served without asking ORCID again until the back-off has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_backs_off_and_serves_the_current_token() {
    let vault = spawn_vault(Backend::Sqlite).await;
    let (orcid, mut tokens) = vault.authorize_user().await;
    // The vault is told the token expires in an hour: inside the refresh window (a day).
    tokens.expires_in = Some(Duration::from_secs(3600));
    let user = vault.connect_with(orcid, tokens).await;
    let res = http()
        .post(format!("{}/_sim/faults", vault.sim.base_url()))
        .json(&serde_json::json!({"endpoint": "POST /oauth/token", "status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let calls_before = token_endpoint_calls(&vault).await;
    let mut calls_after_first = 0;
    for n in 0..4 {
        let token = vault
            .writer()
            .access_token(&orcid, &format!("while ORCID is down {n}"))
            .await
            .expect("the current token is served");
        assert_eq!(
            token.access_token.expose_secret(),
            user.tokens.access_token.expose_secret()
        );
        assert_eq!(token.generation, 1);
        if n == 0 {
            // The ORCID client may retry a 503 itself: count whatever one attempt cost.
            calls_after_first = token_endpoint_calls(&vault).await;
            assert!(
                calls_after_first > calls_before,
                "the first read tried a refresh"
            );
        }
    }
    assert_eq!(
        token_endpoint_calls(&vault).await,
        calls_after_first,
        "after the failed attempt the back-off holds: no more refreshes"
    );
    vault.stop().await;
}
