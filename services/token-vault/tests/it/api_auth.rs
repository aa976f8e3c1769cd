//! Callers: no credential → 401, a caller without the right → 403, both with JSON bodies
//! saying what is missing; every token read audited.

use serde_json::Value;
use token_vault::client::{ClientError, ClientScope};

use crate::helpers::{Backend, TEST_READER_TOKEN, TEST_WRITER_TOKEN, TestVault, http, spawn_vault};

async fn audit_rows(vault: &TestVault, action: &str) -> i64 {
    vault
        .db
        .count(
            "SELECT COUNT(*) FROM token_vault_audit WHERE action = $1",
            vec![action.into()],
        )
        .await
}

async fn callers_and_rights(vault: &TestVault) {
    let user = vault.connect_user().await;
    let url = format!("{}/v1/tokens/{}?purpose=test", vault.base_url, user.orcid);

    // No credential.
    let res = http().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );

    // A token the vault does not know, and a malformed header.
    let res = http()
        .get(&url)
        .bearer_auth("TEST_UNKNOWN_CALLER_TOKEN")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = http()
        .get(&url)
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A known caller without the right.
    let res = http()
        .get(&url)
        .bearer_auth(TEST_READER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert_eq!(body["missing_right"], "token:read");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("vault.callers.reader.rights"),
        "{body}"
    );

    // The typed client reports the same.
    match vault
        .client(TEST_READER_TOKEN)
        .client_token(ClientScope::Webhook, "x")
        .await
    {
        Err(ClientError::Forbidden { missing_right, .. }) => {
            assert_eq!(missing_right.as_deref(), Some("client-token:read"));
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match vault.writer().connections(None, None, None, None).await {
        Err(ClientError::Forbidden { missing_right, .. }) => {
            assert_eq!(missing_right.as_deref(), Some("connections:list"));
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match vault.writer().connection(&user.orcid).await {
        Err(ClientError::Forbidden { missing_right, .. }) => {
            assert_eq!(missing_right.as_deref(), Some("connections:list"));
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match vault.writer().disconnect(&user.orcid, "x").await {
        Err(ClientError::Forbidden { missing_right, .. }) => {
            assert_eq!(missing_right.as_deref(), Some("connections:disconnect"));
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // A purpose that is given but unusable is refused, not replaced.
    match vault.portal().disconnect(&user.orcid, "bell\u{7}").await {
        Err(ClientError::Api { status: 400, .. }) => {}
        other => panic!("expected 400, got {other:?}"),
    }
    // The refused disconnects changed nothing.
    assert_eq!(
        vault.portal().connection(&user.orcid).await.unwrap().state,
        token_vault::client::ConnectionState::Active
    );
    match vault.portal().mark_revoked(&user.orcid, None, "x").await {
        Err(ClientError::Forbidden { missing_right, .. }) => {
            assert_eq!(missing_right.as_deref(), Some("connections:revoke"));
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match vault
        .client("TEST_NOBODY_TOKEN")
        .connections(None, None, None, None)
        .await
    {
        Err(ClientError::Unauthenticated { .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }

    // A read needs a purpose, in the query or in the header.
    let bare = format!("{}/v1/tokens/{}", vault.base_url, user.orcid);
    let res = http()
        .get(&bare)
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "purpose_required");
    let res = http()
        .get(&bare)
        .bearer_auth(TEST_WRITER_TOKEN)
        .header(token_vault::PURPOSE_HEADER, "reader.snapshot")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");

    // Unknown and malformed iDs.
    let res = http()
        .get(format!(
            "{}/v1/tokens/0000-0002-1825-0097?purpose=x",
            vault.base_url
        ))
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_connected");
    let res = http()
        .get(format!(
            "{}/v1/tokens/0000-0002-1825-0098?purpose=x",
            vault.base_url
        ))
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "bad_request");
}

async fn every_read_is_audited(vault: &TestVault) {
    let user = vault.connect_user().await;
    let before = audit_rows(vault, "token.read").await;
    for n in 0..5 {
        vault
            .writer()
            .access_token(&user.orcid, &format!("audit test {n}"))
            .await
            .expect("read");
    }
    // Refused reads hand out nothing and are not token reads.
    let _ = vault
        .client(TEST_READER_TOKEN)
        .access_token(&user.orcid, "nope")
        .await;
    assert_eq!(audit_rows(vault, "token.read").await, before + 5);
    let mine = vault
        .db
        .count(
            "SELECT COUNT(*) FROM token_vault_audit WHERE action = 'token.read' AND caller = 'writer' AND orcid = $1 AND purpose LIKE 'audit test %'",
            vec![user.orcid.to_string().into()],
        )
        .await;
    assert_eq!(mine, 5);

    let client_reads = audit_rows(vault, "client-token.read").await;
    vault
        .writer()
        .client_token(ClientScope::ReadPublic, "reader.public")
        .await
        .unwrap();
    vault
        .writer()
        .client_token(ClientScope::ReadPublic, "reader.public")
        .await
        .unwrap();
    assert_eq!(
        audit_rows(vault, "client-token.read").await,
        client_reads + 2
    );
    assert_eq!(
        vault
            .db
            .count(
                "SELECT COUNT(*) FROM token_vault_audit WHERE action = 'client-token.read' AND scope = '/read-public' AND orcid IS NULL",
                vec![]
            )
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_is_401_and_a_missing_right_is_403_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    callers_and_rights(&vault).await;
    every_read_is_audited(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_is_401_and_a_missing_right_is_403_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    callers_and_rights(&vault).await;
    every_read_is_audited(&vault).await;
    vault.stop().await;
}
