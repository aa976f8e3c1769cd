//! Writes per UTC day are counted by the database (`Ledger::activity_since`), on PostgreSQL
//! and on SQLite.

use bus::Outcome;
use bus::events::HrEventType;
use chrono::{Duration, Utc};
use writer::WritePolicy;

use crate::helpers::*;

async fn writes_today_are_counted(db: TestDb) {
    let h = Harness::with(db, WritePolicy::default()).await;
    h.connected("P-D1").await;
    let hire = hire("P-D1", "POS-D1", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let leave = hire.then(HrEventType::Leave).end("2026-12-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    // Not connected: pending, neither written nor failed.
    assert_eq!(
        h.apply(&crate::helpers::hire("P-D2", "POS-D2", "2026-01-01").event)
            .await,
        Outcome::Ack
    );
    let today = Utc::now().date_naive();
    let midnight = today.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let ledger = h.writer.ledger();
    let days = ledger
        .activity_since(midnight - Duration::days(3))
        .await
        .expect("activity");
    // A test running across midnight UTC may see yesterday too; the sum is exact.
    let written: u64 = days.values().map(|d| d.written).sum();
    let failed: u64 = days.values().map(|d| d.failed).sum();
    assert_eq!((written, failed), (2, 0), "{days:?}");
    assert!(
        days.keys()
            .all(|d| *d >= today - Duration::days(1) && *d <= today)
    );
    let later = ledger
        .activity_since(Utc::now() + Duration::hours(1))
        .await
        .expect("activity");
    assert!(later.is_empty(), "{later:?}");
    h.finish().await;
}

#[tokio::test]
async fn writes_per_day_on_postgres() {
    writes_today_are_counted(TestDb::postgres().await).await;
}

#[tokio::test]
async fn writes_per_day_on_sqlite() {
    writes_today_are_counted(TestDb::sqlite().await).await;
}
