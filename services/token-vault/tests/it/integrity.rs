//! Tampering at rest: a blob moved to another row, a flipped bit, a key missing from the
//! ring. The API answers 500 with a safe message; the log says what happened (and names the
//! key id) under the reference the answer gives.

use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::helpers::{
    Backend, TEST_WRITER_TOKEN, TestVault, http, logs, new_key_entry, ring, spawn_vault,
    unique_key_id,
};

async fn fetch_raw(vault: &TestVault, orcid: &orcid::OrcidId) -> (u16, Value) {
    let res = http()
        .get(format!(
            "{}/v1/tokens/{orcid}?purpose=integrity",
            vault.base_url
        ))
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The log line carrying `reference`.
fn logged(reference: &str) -> String {
    logs()
        .lines()
        .find(|l| l.contains(reference))
        .unwrap_or_else(|| panic!("no log line with reference {reference}"))
        .to_owned()
}

fn assert_safe_500(status: u16, body: &Value, tokens: &[&str]) -> String {
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "internal");
    let text = body.to_string();
    for token in tokens {
        assert!(!text.contains(token), "the answer must not carry a token");
    }
    body["reference"].as_str().expect("a reference").to_owned()
}

async fn tampering(vault: &TestVault) {
    let a = vault.connect_user().await;
    let b = vault.connect_user().await;
    let secrets = [
        a.tokens.access_token.expose_secret(),
        b.tokens.access_token.expose_secret(),
    ];

    // B's row gets A's blob: both layers are bound to A's row, so it does not open.
    let moved = vault
        .db
        .execute(
            "UPDATE token_vault_connections SET tokens_sealed = (SELECT tokens_sealed FROM token_vault_connections WHERE orcid = $1) WHERE orcid = $2",
            vec![a.orcid.to_string().into(), b.orcid.to_string().into()],
        )
        .await;
    assert_eq!(moved, 1);
    let (status, body) = fetch_raw(vault, &b.orcid).await;
    let reference = assert_safe_500(status, &body, &secrets);
    let line = logged(&reference);
    assert!(line.contains("authentication failed"), "{line}");
    assert!(
        line.contains(&b.orcid.to_string()),
        "the log names the row: {line}"
    );

    // A single flipped bit in A's blob (last byte: the secret's tag).
    let row = vault
        .db
        .db
        .query_one_raw(vault.db.statement(
            "SELECT tokens_sealed FROM token_vault_connections WHERE orcid = $1",
            vec![a.orcid.to_string().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let mut blob: Vec<u8> = row.try_get_by_index(0).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 0x01;
    vault
        .db
        .execute(
            "UPDATE token_vault_connections SET tokens_sealed = $1 WHERE orcid = $2",
            vec![blob.into(), a.orcid.to_string().into()],
        )
        .await;
    let (status, body) = fetch_raw(vault, &a.orcid).await;
    let reference = assert_safe_500(status, &body, &secrets);
    assert!(logged(&reference).contains("authentication failed"));

    // The key that sealed C is taken out of the ring (removed too early in a rotation).
    let c = vault.connect_user().await;
    let old_key = vault.settings.active_key.clone();
    let other = unique_key_id("k-other");
    vault.keys.replace(ring(&[new_key_entry(&other)], &other));
    let (status, body) = fetch_raw(vault, &c.orcid).await;
    let reference = assert_safe_500(status, &body, &[c.tokens.access_token.expose_secret()]);
    assert!(
        !body.to_string().contains(&old_key),
        "the answer stays generic: {body}"
    );
    let line = logged(&reference);
    assert!(
        line.contains(&format!(
            "row sealed with key '{old_key}' which is not in the key ring"
        )),
        "the log names the key id: {line}"
    );
    // Putting the key back makes the row readable again.
    vault.keys.replace(vault.settings.key_ring());
    let (status, _) = fetch_raw(vault, &c.orcid).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_flipped_and_unknown_key_fail_safely_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    tampering(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_flipped_and_unknown_key_fail_safely_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    tampering(&vault).await;
    vault.stop().await;
}
