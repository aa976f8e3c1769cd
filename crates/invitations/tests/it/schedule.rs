//! The reminder schedule run by the scheduler, and the admin listing.

use chrono::Utc;
use invitations::{InvitationState, ListFilter};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{MailDir, TestDb, address, get, service, wait_for};

#[tokio::test]
async fn reminders_go_out_on_schedule_then_stop() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(
        &db.db,
        &mail,
        &[("reminder_after", json!(["300ms", "1200ms"]))],
    );
    let to = address("josiah");
    inv.invite("p-1", &to, "Josiah", Utc::now())
        .await
        .expect("invite");
    let invited = get(&inv, "p-1").await;

    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn({
        let inv = inv.clone();
        let shutdown = shutdown.clone();
        async move { inv.run_scheduler(shutdown).await }
    });

    let first = wait_for("the first reminder", || async {
        let row = get(&inv, "p-1").await;
        (row.reminders_sent >= 1).then_some(row)
    })
    .await;
    let anchor = invited.last_sent_at.expect("sent");
    assert!(
        first.last_sent_at.expect("sent") - anchor >= chrono::Duration::milliseconds(300),
        "not before its time"
    );
    // (On a very loaded machine the poll may only see the row after the second reminder.)
    if first.reminders_sent == 1 {
        assert_eq!(first.state, InvitationState::Sent, "one reminder left");
        assert_eq!(
            first.next_reminder_at.expect("second reminder scheduled") - anchor,
            chrono::Duration::milliseconds(1200),
            "measured from the first e-mail"
        );
    }

    let stopped = wait_for("the schedule to run out", || async {
        let row = get(&inv, "p-1").await;
        (row.state == InvitationState::Stopped).then_some(row)
    })
    .await;
    assert_eq!(stopped.sent_count, 3);
    assert!(
        stopped.last_sent_at.expect("sent") - anchor >= chrono::Duration::milliseconds(1200),
        "the second reminder not before its time"
    );
    assert_eq!(stopped.reminders_sent, 2);
    assert!(stopped.next_reminder_at.is_none());

    shutdown.cancel();
    scheduler.await.expect("scheduler ends on shutdown");

    let mails = mail.to(&to);
    assert_eq!(mails.len(), 3, "invitation and two reminders: {mails:?}");
    let reminders = mails
        .iter()
        .filter(|m| m.subject.starts_with("Reminder: "))
        .count();
    assert_eq!(reminders, 2);
    assert!(mails.iter().all(|m| m.body.contains(&stopped.link)));
    assert!(mails.iter().any(|m| m.body.contains("This is a reminder")));

    // Stopped means stopped: nothing more is due, and invite does not restart it.
    assert_eq!(inv.run_due_once().await.expect("round"), 0);
    assert_eq!(
        inv.invite("p-1", &to, "Josiah", Utc::now())
            .await
            .expect("invite"),
        invitations::InviteOutcome::RemindersStopped
    );
    assert_eq!(mail.to(&to).len(), 3);

    // An administrator's resend reopens it.
    let resent = inv.resend("p-1").await.expect("resend");
    assert_eq!(resent.state, InvitationState::Sent);
    assert_eq!(resent.sent_count, 4);
    assert!(resent.next_reminder_at.is_some());

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn list_and_counts_show_the_states() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(&db.db, &mail, &[]);
    for i in 0..4 {
        inv.invite(
            &format!("p-{i}"),
            &address("x"),
            &format!("Person {i}"),
            Utc::now(),
        )
        .await
        .expect("invite");
    }
    inv.mark_connected("p-0").await.expect("connected");
    inv.resend("p-1").await.expect("resend");

    let all = inv.list(&ListFilter::default()).await.expect("list");
    assert_eq!(all.len(), 4);
    let sent = inv
        .list(&ListFilter {
            state: Some(InvitationState::Sent),
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|i| i.state == InvitationState::Sent && i.last_sent_at.is_some())
    );
    let p1 = inv
        .list(&ListFilter {
            person_id: Some("p-1".to_owned()),
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(p1.len(), 1);
    assert_eq!(p1[0].sent_count, 2);
    let page = inv
        .list(&ListFilter {
            limit: Some(2),
            offset: 3,
            ..ListFilter::default()
        })
        .await
        .expect("page");
    assert_eq!(page.len(), 1);

    let counts = inv.counts().await.expect("counts");
    assert_eq!(
        counts,
        vec![(InvitationState::Sent, 3), (InvitationState::Connected, 1)]
    );

    mail.remove();
    db.drop().await;
}
