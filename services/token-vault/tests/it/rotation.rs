//! Online rotation: readers keep fetching through the API while `rotate` re-wraps in small
//! batches; every read succeeds; afterwards no row names the retired key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use token_vault::client::ClientScope;
use token_vault::{rotate, rotate_paced};

use crate::helpers::{
    Backend, TestVault, new_key_entry, ring, spawn_vault, unique_key_id, wait_for,
};

const USERS: usize = 24;
const READERS: usize = 4;

async fn rotation_under_load(vault: &TestVault) {
    let mut users = Vec::new();
    for _ in 0..USERS {
        users.push(vault.connect_user().await);
    }
    // A client-credentials token is sealed too.
    let webhook = vault
        .writer()
        .client_token(ClientScope::Webhook, "rotation")
        .await
        .unwrap();

    // Step 1: add a key and make it active, in the running vault.
    let old_key = vault.settings.active_key.clone();
    let new_key = unique_key_id("k-new");
    let mut entries = vault.settings.key_entries.clone();
    entries.push(new_key_entry(&new_key));
    let rotated_ring = ring(&entries, &new_key);
    vault.keys.replace(ring(&entries, &new_key));

    // Readers hammer the API for the whole rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let expected: Arc<Vec<(orcid::OrcidId, String)>> = Arc::new(
        users
            .iter()
            .map(|u| (u.orcid, u.tokens.access_token.expose_secret().to_owned()))
            .collect(),
    );
    let mut readers = Vec::new();
    for r in 0..READERS {
        let client = vault.writer();
        let (stop, reads, expected) = (stop.clone(), reads.clone(), expected.clone());
        readers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                let (orcid, token) = &expected[i % expected.len()];
                match client.access_token(orcid, "rotation load").await {
                    Ok(got) if got.access_token.expose_secret() == token => {
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => failures.push(format!("{orcid}: wrong token")),
                    Err(e) => failures.push(format!("{orcid}: {e}")),
                }
                i += 1;
            }
            failures
        }));
    }
    wait_for("readers to start", || {
        let reads = reads.clone();
        async move { (reads.load(Ordering::Relaxed) >= 20).then_some(()) }
    })
    .await;

    // Step 2: re-wrap one row per transaction, pausing between batches, while they read.
    let before = reads.load(Ordering::Relaxed);
    let report = rotate_paced(&vault.db.db, &rotated_ring, 1, Duration::from_millis(10))
        .await
        .expect("rotation");
    let during = reads.load(Ordering::Relaxed) - before;
    assert_eq!(report.rewrapped, USERS as u64 + 1, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.remaining, 0, "{report:?}");
    assert!(during > 0, "no read completed while rotate() ran");
    // And a little longer, on the re-wrapped rows.
    let after_rotation = reads.load(Ordering::Relaxed);
    wait_for("reads after the rotation", || {
        let reads = reads.clone();
        async move { (reads.load(Ordering::Relaxed) >= after_rotation + 20).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let failures = reader.await.unwrap();
        assert!(
            failures.is_empty(),
            "reads failed during rotation: {failures:?}"
        );
    }

    // No row names the retired key.
    for table in ["token_vault_connections", "token_vault_client_tokens"] {
        let old = vault
            .db
            .count(
                &format!("SELECT COUNT(*) FROM {table} WHERE key_id = $1"),
                vec![old_key.clone().into()],
            )
            .await;
        assert_eq!(old, 0, "{table} still uses the retired key");
    }
    let on_new = vault
        .db
        .count(
            "SELECT COUNT(*) FROM token_vault_connections WHERE key_id = $1",
            vec![new_key.clone().into()],
        )
        .await;
    assert_eq!(on_new, USERS as i64);

    // Idempotent: nothing left to do.
    let again = rotate(&vault.db.db, &rotated_ring, 3).await.unwrap();
    assert_eq!(again.rewrapped, 0);

    // Step 3: the old key can go.
    let only_new: Vec<String> = entries
        .iter()
        .filter(|e| e.starts_with(&format!("{new_key}:")))
        .cloned()
        .collect();
    vault.keys.replace(ring(&only_new, &new_key));
    for user in &users {
        let token = vault
            .writer()
            .access_token(&user.orcid, "after rotation")
            .await
            .unwrap();
        assert_eq!(
            token.access_token.expose_secret(),
            user.tokens.access_token.expose_secret()
        );
    }
    // The client token kept in memory is unaffected.
    let again = vault
        .writer()
        .client_token(ClientScope::Webhook, "rotation")
        .await
        .unwrap();
    assert_eq!(
        again.access_token.expose_secret(),
        webhook.access_token.expose_secret()
    );

    // A ring that lacks the rows' key: rows are reported, not lost, and nothing panics.
    let stray = unique_key_id("k-stray");
    let report = rotate(&vault.db.db, &ring(&[new_key_entry(&stray)], &stray), 10)
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 0);
    assert_eq!(report.failed.len(), USERS + 1, "{report:?}");
    assert_eq!(report.remaining, USERS as u64 + 1, "{report:?}");
    assert!(report.failed.iter().all(|f| f.key_id == new_key));
    assert!(
        report.failed[0].reason.contains("not in the key ring"),
        "{:?}",
        report.failed[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    rotation_under_load(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    rotation_under_load(&vault).await;
    vault.stop().await;
}
