//! Group commit of the token reads' audit rows: concurrent reads each get their own row (and
//! share commits), sequential reads commit one by one, a read waits for its row's commit, and
//! a read whose row cannot be committed fails without handing out its token.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::Value;
use token_vault::client::ClientScope;

use crate::helpers::{Backend, TEST_WRITER_TOKEN, TestVault, http, logs, spawn_vault, wait_for};

/// (caller, action, orcid, scope, purpose) of every audit row whose purpose starts with
/// `prefix`.
async fn audit_rows(
    vault: &TestVault,
    prefix: &str,
) -> Vec<(String, String, Option<String>, Option<String>, String)> {
    let rows = vault
        .db
        .db
        .query_all_raw(vault.db.statement(
            "SELECT caller, action, orcid, scope, purpose FROM token_vault_audit WHERE purpose LIKE $1 ORDER BY id",
            vec![format!("{prefix}%").into()],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                row.try_get_by_index(2).unwrap(),
                row.try_get_by_index(3).unwrap(),
                row.try_get_by_index(4).unwrap(),
            )
        })
        .collect()
}

/// A user token read over plain HTTP: the status and the body.
async fn read_raw(vault: &TestVault, orcid: &orcid::OrcidId, purpose: &str) -> (u16, Value) {
    let res = http()
        .get(format!("{}/v1/tokens/{orcid}", vault.base_url))
        .query(&[("purpose", purpose)])
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn concurrent_reads_each_get_their_row(vault: &TestVault) {
    let a = vault.connect_user().await;
    let b = vault.connect_user().await;
    let batches_before = vault.audit.batches();
    let rows_before = vault.audit.rows();

    // 56 user token reads (two users) and 8 client-token reads, all at once.
    const READS: usize = 64;
    // One client for all (building one takes a while): the requests really are concurrent.
    let writer = vault.writer();
    let mut reads = Vec::new();
    for n in 0..READS {
        let client = writer.clone();
        let orcid = if n % 2 == 0 { a.orcid } else { b.orcid };
        reads.push(tokio::spawn(async move {
            let purpose = format!("burst {n}");
            if n % 8 == 7 {
                client
                    .client_token(ClientScope::Webhook, &purpose)
                    .await
                    .map(|t| t.access_token.expose_secret().to_owned())
            } else {
                client
                    .access_token(&orcid, &purpose)
                    .await
                    .map(|t| t.access_token.expose_secret().to_owned())
            }
        }));
    }
    for (n, read) in reads.into_iter().enumerate() {
        let token = read
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("read {n}: {e}"));
        if n % 8 != 7 {
            let user = if n % 2 == 0 { &a } else { &b };
            assert_eq!(token, user.tokens.access_token.expose_secret(), "read {n}");
        }
    }

    let expected: BTreeSet<_> = (0..READS)
        .map(|n| {
            let purpose = format!("burst {n}");
            if n % 8 == 7 {
                (
                    "writer".to_owned(),
                    "client-token.read".to_owned(),
                    None,
                    Some("/webhook".to_owned()),
                    purpose,
                )
            } else {
                let orcid = if n % 2 == 0 { a.orcid } else { b.orcid };
                (
                    "writer".to_owned(),
                    "token.read".to_owned(),
                    Some(orcid.to_string()),
                    None,
                    purpose,
                )
            }
        })
        .collect();
    let rows = audit_rows(vault, "burst ").await;
    assert_eq!(rows.len(), READS, "exactly one audit row per read");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), expected);

    let batches = vault.audit.batches() - batches_before;
    let rows = vault.audit.rows() - rows_before;
    assert_eq!(rows, READS as u64);
    assert!(
        batches < rows,
        "concurrent reads share commits: {batches} inserts for {rows} rows"
    );

    // One at a time: every read is alone in its insert (no waiting for company).
    let batches_before = vault.audit.batches();
    let rows_before = vault.audit.rows();
    for n in 0..5 {
        vault
            .writer()
            .access_token(&a.orcid, &format!("sequential {n}"))
            .await
            .unwrap();
    }
    assert_eq!(vault.audit.rows() - rows_before, 5);
    assert_eq!(vault.audit.batches() - batches_before, 5);
    assert_eq!(audit_rows(vault, "sequential ").await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_each_get_their_row_in_fewer_commits_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    concurrent_reads_each_get_their_row(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_each_get_their_row_in_fewer_commits_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    concurrent_reads_each_get_their_row(&vault).await;
    vault.stop().await;
}

/// While the audit table is locked no token leaves the vault; the reads that queued behind
/// the blocked insert then commit in one more insert.
async fn reads_wait_for_their_commit(vault: &TestVault) {
    let user = vault.connect_user().await;
    let submitted_before = vault.audit.submitted();
    let batches_before = vault.audit.batches();
    let rows_before = vault.audit.rows();

    let lock = vault.db.db.begin().await.unwrap();
    match vault.db.backend {
        Backend::Postgres => {
            lock.execute_unprepared("LOCK TABLE token_vault_audit IN EXCLUSIVE MODE")
                .await
                .unwrap();
        }
        // SQLite has one writer at a time: this transaction is it until it ends (the
        // vault's inserts wait, within its 30 s busy timeout).
        Backend::Sqlite => {
            lock.execute_unprepared(
                "INSERT INTO token_vault_audit (at, caller, action, purpose) VALUES ('2026-01-01T00:00:00Z', 'test', 'test', 'lock holder')",
            )
            .await
            .unwrap();
        }
    }
    const READS: u64 = 32;
    let writer = vault.writer();
    let reads: Vec<_> = (0..READS)
        .map(|n| {
            let client = writer.clone();
            let orcid = user.orcid;
            tokio::spawn(async move { client.access_token(&orcid, &format!("locked {n}")).await })
        })
        .collect();
    // Every read has handed its row to the writer, whose first insert waits for the lock.
    wait_for("every read to queue its audit row", || async {
        (vault.audit.submitted() - submitted_before == READS).then_some(())
    })
    .await;
    if vault.db.backend == Backend::Postgres {
        wait_for("the audit insert to wait for the lock", || async {
        (vault
            .db
            .count(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"token_vault_audit\"%'",
                vec![],
            )
            .await
            == 1)
            .then_some(())
        })
        .await;
    }
    assert!(
        reads.iter().all(|r| !r.is_finished()),
        "no read answers before its audit row is committed"
    );
    assert_eq!(vault.audit.batches(), batches_before);

    lock.rollback().await.unwrap();
    for read in reads {
        let token = read.await.unwrap().unwrap();
        assert_eq!(
            token.access_token.expose_secret(),
            user.tokens.access_token.expose_secret()
        );
    }
    assert_eq!(vault.audit.rows() - rows_before, READS);
    let batches = vault.audit.batches() - batches_before;
    // The blocked insert (the first row, or the few that came with it), then the rest.
    assert!(
        (1..=2).contains(&batches),
        "{READS} queued rows took {batches} inserts"
    );
    assert_eq!(audit_rows(vault, "locked ").await.len(), READS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_wait_for_their_commit_and_queued_rows_commit_together_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    reads_wait_for_their_commit(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_wait_for_their_commit_and_queued_rows_commit_together_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    reads_wait_for_their_commit(&vault).await;
    vault.stop().await;
}

async fn failed_audit_fails_the_read(vault: &TestVault) {
    let user = vault.connect_user().await;
    let secret = user.tokens.access_token.expose_secret().to_owned();
    // The client token is obtained (and stored) while the audit still works.
    let client_token = vault
        .writer()
        .client_token(ClientScope::Webhook, "warm up")
        .await
        .unwrap();
    let client_secret = client_token.access_token.expose_secret().to_owned();

    vault
        .db
        .execute(
            "ALTER TABLE token_vault_audit RENAME TO token_vault_audit_away",
            vec![],
        )
        .await;
    // Concurrent reads: the rows share the failing insert, and every read fails.
    let shared = http();
    let reads: Vec<_> = (0..8)
        .map(|n| {
            let url = vault.base_url.clone();
            let orcid = user.orcid;
            let http = shared.clone();
            tokio::spawn(async move {
                let res = http
                    .get(format!("{url}/v1/tokens/{orcid}"))
                    .query(&[("purpose", format!("unaudited {n}"))])
                    .bearer_auth(TEST_WRITER_TOKEN)
                    .send()
                    .await
                    .unwrap();
                (res.status().as_u16(), res.text().await.unwrap())
            })
        })
        .collect();
    for read in reads {
        let (status, body) = read.await.unwrap();
        assert_eq!(status, 500, "{body}");
        assert!(!body.contains(&secret), "no token without its audit row");
        assert!(!body.contains("access_token"), "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "internal");
        let reference = body["reference"].as_str().unwrap().to_owned();
        let line = logs()
            .lines()
            .find(|l| l.contains(&reference))
            .unwrap_or_else(|| panic!("no log line with reference {reference}"))
            .to_owned();
        assert!(
            line.contains("the token read could not be audited"),
            "{line}"
        );
    }
    let res = http()
        .get(format!("{}/v1/client-tokens/webhook", vault.base_url))
        .query(&[("purpose", "unaudited client")])
        .bearer_auth(TEST_WRITER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert!(!res.text().await.unwrap().contains(&client_secret));

    // The audit back: reads work again, and none of the failed ones left a row.
    vault
        .db
        .execute(
            "ALTER TABLE token_vault_audit_away RENAME TO token_vault_audit",
            vec![],
        )
        .await;
    let (status, body) = read_raw(vault, &user.orcid, "audited again").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], secret.as_str());
    assert!(audit_rows(vault, "unaudited").await.is_empty());
    assert_eq!(audit_rows(vault, "audited again").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_audit_row_fails_fails_without_its_token_postgres() {
    let vault = spawn_vault(Backend::Postgres).await;
    failed_audit_fails_the_read(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_audit_row_fails_fails_without_its_token_sqlite() {
    let vault = spawn_vault(Backend::Sqlite).await;
    failed_audit_fails_the_read(&vault).await;
    vault.stop().await;
}
