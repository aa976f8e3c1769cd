//! Two reads of one record at once (the two inputs are keyed differently, and the sweep
//! reads too): a read that began after the user's edit is never dropped because an older
//! read committed later, and a first snapshot is published once however many reads race.
//!
//! The interleaving is forced: a test transaction holds `reader_snapshots` in EXCLUSIVE
//! mode, so each read (already past its ORCID call) waits to load the stored snapshot; the
//! reads are let go once PostgreSQL shows them waiting. No bus: `Reader` is called directly.

use std::time::Duration;

use reader::ReadOutcome;
use sea_orm::{
    ConnectionTrait, Database, DatabaseTransaction, DbBackend, Statement, TransactionTrait,
};

use crate::helpers::*;

/// Backends of this test's database waiting for a lock.
async fn waiting_for_locks(h: &Direct) -> i64 {
    let row =
        h.db.db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*)::bigint AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity")
            .expect("a row");
    row.try_get("", "n").expect("n")
}

async fn wait_for_waiters(h: &Direct, n: i64) {
    wait_for(&format!("{n} read(s) waiting for the snapshot"), || async {
        (waiting_for_locks(h).await >= n).then_some(())
    })
    .await;
}

/// A transaction holding `reader_snapshots` so that `SELECT … FOR UPDATE` waits.
async fn hold_snapshots(h: &Direct) -> (sea_orm::DatabaseConnection, DatabaseTransaction) {
    let conn = Database::connect(&h.db.url)
        .await
        .expect("second connection");
    let txn = conn.begin().await.expect("begin");
    txn.execute_unprepared("LOCK TABLE reader_snapshots IN EXCLUSIVE MODE")
        .await
        .expect("LOCK TABLE");
    (conn, txn)
}

fn spawn_read(
    h: &Direct,
    orcid: orcid::OrcidId,
) -> tokio::task::JoinHandle<Result<ReadOutcome, reader::ReadError>> {
    let reader = h.reader.clone();
    tokio::spawn(async move { reader.read_record(&orcid, None, None).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_begun_after_an_edit_is_kept_when_an_older_read_commits_later() {
    let h = Direct::start().await;
    let orcid = h.connected("P-race").await;
    let reader = h.reader.clone();
    assert!(matches!(
        reader.read_record(&orcid, None, None).await.unwrap(),
        ReadOutcome::Updated(_)
    ));

    let (conn, blocker) = hold_snapshots(&h).await;
    // Read A: answered by ORCID before the edit, waits to store.
    let a = spawn_read(&h, orcid);
    wait_for_waiters(&h, 1).await;
    // The researcher adds a work; read B starts after that and sees it.
    let work = user_adds_work(&h.sim, &orcid, "Written between two reads").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = spawn_read(&h, orcid);
    wait_for_waiters(&h, 2).await;
    blocker.commit().await.expect("release");
    let a = a.await.unwrap().expect("read A");
    let b = b.await.unwrap().expect("read B");

    // A stored first (it waited first); B began later, so it is not stale.
    assert_eq!(
        a,
        ReadOutcome::Unchanged,
        "A saw the record before the edit"
    );
    let ReadOutcome::Updated(event) = b else {
        panic!("read B (begun after the edit) was dropped: {b:?}");
    };
    assert_eq!(
        event.added.iter().map(|i| i.put_code).collect::<Vec<_>>(),
        [work]
    );
    let stored = reader::snapshot::Snapshots::new(h.db.db.clone())
        .get(&orcid)
        .await
        .unwrap()
        .expect("snapshot");
    assert!(
        stored.items.iter().any(|i| i.put_code == work),
        "the edit is in the stored snapshot"
    );
    assert_eq!(
        stored.read_at, event.read_at,
        "the snapshot time is B's start"
    );
    let _ = conn.close().await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_first_reads_publish_the_first_snapshot_once() {
    let h = Direct::start().await;
    let orcid = h.connected("P-twice").await;

    let (conn, blocker) = hold_snapshots(&h).await;
    let a = spawn_read(&h, orcid);
    wait_for_waiters(&h, 1).await;
    let b = spawn_read(&h, orcid);
    wait_for_waiters(&h, 2).await;
    blocker.commit().await.expect("release");
    let outcomes = [
        a.await.unwrap().expect("read A"),
        b.await.unwrap().expect("read B"),
    ];

    let updated = outcomes
        .iter()
        .filter(|o| matches!(o, ReadOutcome::Updated(_)))
        .count();
    assert_eq!(updated, 1, "one first snapshot: {outcomes:?}");
    assert_eq!(
        h.db.outbox_payloads("record-updated").await.len(),
        1,
        "\"record updated\" recorded once"
    );
    let _ = conn.close().await;
    h.finish().await;
}
