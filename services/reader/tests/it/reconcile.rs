//! The reconciliation sweep with a tiny period: every connection is read, once per period
//! (not more often), with one replica holding the lease — also through a wait between two
//! reads much longer than the lease. The lease itself on PostgreSQL (the database's clock,
//! a huge lease clamped) and on SQLite.

use std::time::Duration;

use reader::reconcile::{
    LEASE_NAME, MAX_LEASE, ReconcileSettings, Reconciler, acquire_lease, release_lease,
};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_read_once_per_period() {
    const PERIOD_SECS: u64 = 3;
    let h = Harness::start(Some(PERIOD_SECS)).await;
    let mut ids = Vec::new();
    for person in ["P-r1", "P-r2", "P-r3"] {
        ids.push(h.connected(person).await.0);
    }
    let snapshots = reader::snapshot::Snapshots::new(h.db.db.clone());
    let counts = || async {
        let mut counts = Vec::new();
        for id in &ids {
            counts.push(snapshots.get(id).await.unwrap().map_or(0, |s| s.read_count));
        }
        counts
    };
    wait_for("every connection read by the sweep", || async {
        counts().await.iter().all(|n| *n >= 1).then_some(())
    })
    .await;
    let before = counts().await;
    // Two periods.
    tokio::time::sleep(Duration::from_secs(2 * PERIOD_SECS)).await;
    let after = counts().await;
    for ((id, b), a) in ids.iter().zip(&before).zip(&after) {
        let reads = a - b;
        assert!(
            (1..=3).contains(&reads),
            "{id} was read {reads} times in two periods (expected about 2): {before:?} → {after:?}"
        );
    }

    // Another replica cannot take the sweep while this one holds it.
    assert!(
        !acquire_lease(
            &h.db.db,
            LEASE_NAME,
            "another-replica",
            Duration::from_secs(5)
        )
        .await
        .unwrap()
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_kept_through_a_wait_between_reads_longer_than_the_lease() {
    // The sweep alone (no bus): one connection and a 60 s period, so the next sweep read is
    // a minute away; the 5 s lease must not lapse meanwhile.
    let h = Direct::start().await;
    let orcid = h.connected("P-lease").await;
    let shutdown = CancellationToken::new();
    let sweep = Reconciler::new(
        h.reader.clone(),
        ReconcileSettings {
            period: Duration::from_secs(60),
            min_spacing: Duration::ZERO,
            lease: Duration::from_secs(5),
            refresh: Duration::from_secs(1),
        },
    )
    .spawn(shutdown.clone());
    let snapshots = reader::snapshot::Snapshots::new(h.db.db.clone());
    wait_for("the sweep's first read", || async {
        snapshots.get(&orcid).await.unwrap().map(|_| ())
    })
    .await;
    // Past two leases: a holder that only renewed per read would have lost it by now.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(
        !acquire_lease(
            &h.db.db,
            LEASE_NAME,
            "another-replica",
            Duration::from_secs(5)
        )
        .await
        .unwrap(),
        "the sweep's lease lapsed while it waited for its next read"
    );
    let snapshot = snapshots.get(&orcid).await.unwrap().expect("snapshot");
    assert_eq!(snapshot.read_count, 1, "not read again within the period");
    shutdown.cancel();
    sweep.await.unwrap();
    assert!(
        acquire_lease(
            &h.db.db,
            LEASE_NAME,
            "another-replica",
            Duration::from_secs(5)
        )
        .await
        .unwrap(),
        "released on a clean stop"
    );
    h.finish().await;
}

/// Seconds from the database's now to the lease's end.
async fn lease_left(db: &sea_orm::DatabaseConnection) -> f64 {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT EXTRACT(EPOCH FROM until - CURRENT_TIMESTAMP)::float8 AS left_secs \
             FROM reader_leases WHERE name = 'reconcile'",
        ))
        .await
        .expect("lease query")
        .expect("a lease row");
    row.try_get("", "left_secs").expect("left_secs")
}

#[tokio::test]
async fn a_lease_runs_on_the_database_clock_and_a_huge_one_is_clamped() {
    let db = TestDb::postgres().await;
    // Duration::MAX used to overflow (panic) when added to the replica's clock.
    assert!(
        acquire_lease(&db.db, LEASE_NAME, "a", Duration::MAX)
            .await
            .unwrap()
    );
    let left = lease_left(&db.db).await;
    let max = MAX_LEASE.as_secs_f64();
    assert!(
        (max - 60.0..=max + 1.0).contains(&left),
        "{left} s left, expected about {max}"
    );
    assert!(
        !acquire_lease(&db.db, LEASE_NAME, "b", Duration::from_secs(5))
            .await
            .unwrap()
    );
    // Renewal by the holder, then expiry (in the database's time) lets another take it.
    assert!(
        acquire_lease(&db.db, LEASE_NAME, "a", Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!((25.0..=31.0).contains(&lease_left(&db.db).await));
    db.db
        .execute_unprepared(
            "UPDATE reader_leases SET until = CURRENT_TIMESTAMP - interval '1 second'",
        )
        .await
        .unwrap();
    assert!(
        acquire_lease(&db.db, LEASE_NAME, "b", Duration::from_secs(5))
            .await
            .unwrap()
    );
    db.drop().await;
}

#[tokio::test]
async fn the_lease_works_on_sqlite() {
    let path = std::env::temp_dir().join(format!("reader-lease-{}.sqlite", uuid::Uuid::new_v4()));
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("sqlite");
    reader::migrate(&db)
        .await
        .expect("migrations apply on SQLite");
    let lease = Duration::from_secs(30);
    assert!(acquire_lease(&db, LEASE_NAME, "a", lease).await.unwrap());
    assert!(!acquire_lease(&db, LEASE_NAME, "b", lease).await.unwrap());
    assert!(
        acquire_lease(&db, LEASE_NAME, "a", Duration::MAX)
            .await
            .unwrap()
    );
    db.execute_unprepared(
        "UPDATE reader_leases SET until = strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 seconds')",
    )
    .await
    .unwrap();
    assert!(
        acquire_lease(&db, LEASE_NAME, "b", lease).await.unwrap(),
        "an expired lease is taken over"
    );
    release_lease(&db, LEASE_NAME, "b").await.unwrap();
    assert!(acquire_lease(&db, LEASE_NAME, "c", lease).await.unwrap());
    let _ = db.close().await;
    let _ = std::fs::remove_file(&path);
}
