//! The same on SQLite (embedded mode): invite, reminders by the scheduler, stop.

use chrono::Utc;
use invitations::{InvitationState, InviteOutcome};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{MailDir, TestDb, address, get, service, wait_for};

#[tokio::test]
async fn sqlite_invite_and_scheduler() {
    let db = TestDb::sqlite().await;
    let mail = MailDir::new();
    let inv = service(
        &db.db,
        &mail,
        &[("reminder_after", json!(["1s", "1500ms"]))],
    );
    let to = address("josiah");
    let invited_at = std::time::Instant::now();

    assert_eq!(
        inv.invite("p-1", &to, "Josiah", Utc::now())
            .await
            .expect("invite"),
        InviteOutcome::Sent
    );
    assert_eq!(
        inv.invite("p-1", &to, "Josiah", Utc::now())
            .await
            .expect("again"),
        InviteOutcome::AlreadyInvited
    );
    inv.invite("p-2", &address("connects"), "Connects", Utc::now())
        .await
        .expect("invite");
    inv.mark_connected("p-2").await.expect("connected");
    assert_eq!(mail.count(), 2);
    // Nothing is due before the first reminder time (the only one that may have come, on
    // a very loaded machine, is p-1's first reminder, and only after its time).
    let sent = inv.run_due_once().await.expect("round");
    assert!(
        sent == 0 || (sent == 1 && invited_at.elapsed() >= std::time::Duration::from_secs(1)),
        "{sent} sent after {:?}",
        invited_at.elapsed()
    );

    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn({
        let inv = inv.clone();
        let shutdown = shutdown.clone();
        async move { inv.run_scheduler(shutdown).await }
    });
    let stopped = wait_for("the schedule to run out on SQLite", || async {
        let row = get(&inv, "p-1").await;
        (row.state == InvitationState::Stopped).then_some(row)
    })
    .await;
    shutdown.cancel();
    scheduler.await.expect("scheduler ends");

    assert_eq!(stopped.sent_count, 3);
    assert_eq!(mail.to(&to).len(), 3);
    assert_eq!(
        mail.count(),
        4,
        "the connected person got only the invitation"
    );
    assert_eq!(get(&inv, "p-2").await.state, InvitationState::Connected);
    let counts = inv.counts().await.expect("counts");
    assert_eq!(
        counts,
        vec![
            (InvitationState::Connected, 1),
            (InvitationState::Stopped, 1)
        ]
    );

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn sqlite_an_older_event_keeps_the_newer_address() {
    let db = TestDb::sqlite().await;
    crate::invite::older_event_keeps_the_newer_address(&db).await;
    db.drop().await;
}
