//! A researcher connects through the portal over HTTP (sign-in, connect, ORCID's authorize
//! page, callback) and the vault holds the connection, encrypted; disconnecting through the
//! portal revokes the token at ORCID and deletes it from the vault.

use idbridge_e2e::{Service, Stack, StackOptions};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use token_vault::client::{ClientError, ConnectionState};

const SERVICES: [Service; 2] = [Service::TokenVault, Service::Portal];

/// `(state, tokens_sealed)` of the vault's row for `orcid`.
async fn vault_row(stack: &Stack, orcid: &str) -> (String, Option<Vec<u8>>) {
    let db = stack.db().await.expect("database");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT state, tokens_sealed FROM token_vault_connections WHERE orcid = $1",
            vec![orcid.into()],
        ))
        .await
        .expect("query")
        .expect("the vault has a row for the iD");
    let state: String = row.try_get("", "state").expect("state");
    let sealed: Option<Vec<u8>> = row.try_get("", "tokens_sealed").expect("tokens_sealed");
    let _ = db.close().await;
    (state, sealed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_researcher_connects_through_the_portal() {
    let stack = Stack::start(
        StackOptions::new("a_researcher_connects_through_the_portal").services(&SERVICES),
    )
    .await
    .expect("the stack starts");
    let mut user = stack
        .sign_in("p-connect-1", "Ada", "Lovelace")
        .await
        .expect("dev sign-in");
    let orcid = user.researcher.orcid.clone();

    // Not connected yet: the page offers to connect.
    let me = user.me().await.expect("/me");
    assert!(!me.body.contains(&orcid), "not connected yet: {}", me.body);

    let callback = user.connect().await.expect("connect through ORCID");
    assert!(callback.contains("/orcid/callback?code="), "{callback}");
    let connection = stack
        .wait_connected("p-connect-1")
        .await
        .expect("the vault holds the connection");
    assert_eq!(connection.orcid, orcid);
    assert_eq!(connection.person_id, "p-connect-1");
    assert!(
        connection.scopes.iter().any(|s| s == "/activities/update"),
        "{:?}",
        connection.scopes
    );
    assert_eq!(connection.name.as_deref(), Some("Ada Lovelace"));

    // The researcher's page shows the iD as connected.
    let me = user.me().await.expect("/me");
    assert!(me.body.contains(&orcid), "{}", me.body);
    assert!(me.body.contains("Connected"), "{}", me.body);

    // The token works at ORCID, and the vault stores it sealed, never in clear.
    let token = stack
        .vault()
        .expect("vault client")
        .access_token(&orcid.parse().expect("iD"), "e2e: check the stored token")
        .await
        .expect("the vault hands out the token");
    let access = token.access_token.expose_secret().to_owned();
    let sim = stack.sim().expect("sim");
    assert_eq!(
        sim.api_status_with(&orcid, &access).await.expect("call"),
        200
    );
    let (state, sealed) = vault_row(&stack, &orcid).await;
    assert_eq!(state, "active");
    let sealed = sealed.expect("tokens stored");
    assert!(
        !sealed.windows(access.len()).any(|w| w == access.as_bytes()),
        "the access token is stored in clear"
    );

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_revokes_the_token_at_orcid_and_deletes_it() {
    let stack = Stack::start(
        StackOptions::new("disconnect_revokes_the_token_at_orcid_and_deletes_it")
            .services(&SERVICES),
    )
    .await
    .expect("the stack starts");
    let mut user = stack
        .connect_researcher("p-disconnect-1", "Grace", "Hopper")
        .await
        .expect("the researcher connects");
    let orcid = user.researcher.orcid.clone();
    let id: orcid::OrcidId = orcid.parse().expect("iD");
    let vault = stack.vault().expect("vault client");
    let token = vault
        .access_token(&id, "e2e: before disconnect")
        .await
        .expect("token");
    let access = token.access_token.expose_secret().to_owned();
    let sim = stack.sim().expect("sim");
    assert_eq!(
        sim.api_status_with(&orcid, &access).await.expect("call"),
        200
    );

    let after = user
        .disconnect()
        .await
        .expect("disconnect through the portal");
    assert_eq!(after, "/me?disconnected=1");

    // Revoked at ORCID: the same token is refused.
    assert_eq!(
        sim.api_status_with(&orcid, &access).await.expect("call"),
        401,
        "the token still works at ORCID after disconnect"
    );
    // Deleted in the vault: the row is ended and holds no token; the API refuses to hand one out.
    let (state, sealed) = vault_row(&stack, &orcid).await;
    assert_eq!(state, "disconnected");
    assert!(sealed.is_none(), "the sealed tokens are still stored");
    match vault.access_token(&id, "e2e: after disconnect").await {
        Err(ClientError::ConnectionEnded { state }) => {
            assert_eq!(state, ConnectionState::Disconnected);
        }
        other => panic!("expected the connection to have ended, got {other:?}"),
    }
    let me = user.me().await.expect("/me");
    assert!(me.body.contains("Disconnected"), "{}", me.body);

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}
