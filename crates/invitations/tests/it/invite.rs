//! Inviting, idempotency, "connection ready" and the resend action.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use invitations::{InvitationError, InvitationState, InviteOutcome};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{MailDir, PORTAL, TestDb, address, get, service};

#[tokio::test]
async fn invite_sends_one_mail_with_the_portal_link() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(&db.db, &mail, &[]);
    let to = address("josiah");

    let outcome = inv
        .invite("p-1", &to, "Josiah Carberry", Utc::now())
        .await
        .expect("invite");
    assert_eq!(outcome, InviteOutcome::Sent);

    let mails = mail.mails();
    assert_eq!(mails.len(), 1, "one e-mail: {mails:?}");
    let m = &mails[0];
    assert!(m.to.contains(&format!("<{to}>")), "To: {}", m.to);
    assert!(m.to.contains("Josiah Carberry"), "To: {}", m.to);
    assert_eq!(m.subject, "Connect your ORCID iD to Boston University");
    assert!(
        m.headers
            .contains("From: \"ORCID at BU\" <orcid@bu.example>")
            || m.headers.contains("From: ORCID at BU <orcid@bu.example>"),
        "{}",
        m.headers
    );

    let row = get(&inv, "p-1").await;
    let link = format!("{PORTAL}/connect?invitation={}", row.link_id);
    assert_eq!(row.link, link);
    assert!(
        row.link_id.len() >= 22,
        "link id has at least 128 random bits"
    );
    assert!(
        m.body.contains(&link),
        "the body links to the portal: {}",
        m.body
    );
    assert!(m.body.contains("Dear Josiah Carberry,"), "{}", m.body);
    assert!(
        m.headers.contains("Content-Transfer-Encoding: 7bit"),
        "short ASCII lines, readable as is: {}",
        m.headers
    );
    assert!(m.body.lines().all(|l| l.len() <= 78), "{}", m.body);
    assert!(m.body.contains("Boston University"), "{}", m.body);
    assert!(m.body.contains("ORCID"), "{}", m.body);

    assert_eq!(row.state, InvitationState::Sent);
    assert_eq!(row.sent_count, 1);
    assert_eq!(row.reminders_sent, 0);
    assert_eq!(row.email, to);
    assert!(row.last_sent_at.is_some());
    assert!(row.last_error.is_none());
    // The first reminder is due 7 days (the default schedule) after the e-mail.
    let next = row.next_reminder_at.expect("a reminder is scheduled");
    let after = next - row.last_sent_at.expect("sent");
    assert_eq!(after.num_seconds(), 7 * 86_400, "{after:?}");

    // Two people get two different, unguessable link ids.
    inv.invite("p-2", &address("other"), "Other", Utc::now())
        .await
        .expect("invite");
    assert_ne!(get(&inv, "p-2").await.link_id, row.link_id);

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn invite_again_sends_no_second_mail() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(&db.db, &mail, &[]);
    let to = address("josiah");

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
    // A new address is kept for the reminders, still without sending now.
    let new_to = address("josiah-new");
    assert_eq!(
        inv.invite("p-1", &new_to, "Josiah C.", Utc::now())
            .await
            .expect("again"),
        InviteOutcome::AlreadyInvited
    );
    assert_eq!(mail.count(), 1, "no second e-mail");
    let row = get(&inv, "p-1").await;
    assert_eq!(row.sent_count, 1);
    assert_eq!(row.email, new_to);
    assert_eq!(row.display_name, "Josiah C.");

    // Concurrent invites of one new person: one row, one e-mail.
    let to2 = address("race");
    let calls = (0..8).map(|_| {
        let inv = inv.clone();
        let to2 = to2.clone();
        tokio::spawn(async move { inv.invite("p-race", &to2, "Race", Utc::now()).await })
    });
    let mut sent = 0;
    for call in calls {
        if call.await.expect("join").expect("invite") == InviteOutcome::Sent {
            sent += 1;
        }
    }
    assert_eq!(sent, 1);
    assert_eq!(mail.to(&to2).len(), 1);

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn an_older_event_keeps_the_newer_address() {
    let db = TestDb::postgres().await;
    older_event_keeps_the_newer_address(&db).await;
    db.drop().await;
}

/// The events carrying a person's address arrive out of order (a redelivery, a retry
/// overtaken by a newer event): the invitation keeps the newest event's address and name,
/// the reminders and resends go there, and no second invitation goes out. Also on SQLite
/// (`sqlite.rs`).
pub async fn older_event_keeps_the_newer_address(db: &TestDb) {
    let mail = MailDir::new();
    let inv = service(&db.db, &mail, &[]);
    // Sub-microsecond parts on purpose: PostgreSQL keeps microseconds.
    let t0 = Utc::now() - chrono::Duration::hours(1);
    let at = |millis: i64| t0 + chrono::Duration::milliseconds(millis);
    let (old, new, newest) = (address("old"), address("new"), address("newest"));

    assert_eq!(
        inv.invite("p-1", &old, "Old Name", at(0))
            .await
            .expect("first"),
        InviteOutcome::Sent
    );
    assert_eq!(
        inv.invite("p-1", &new, "New Name", at(2000))
            .await
            .expect("newer"),
        InviteOutcome::AlreadyInvited
    );
    // The older event again: nothing changes.
    assert_eq!(
        inv.invite("p-1", &old, "Old Name", at(0))
            .await
            .expect("older"),
        InviteOutcome::AlreadyInvited
    );
    let row = get(&inv, "p-1").await;
    assert_eq!(row.email, new, "the older event's address came back");
    assert_eq!(row.display_name, "New Name");
    assert_eq!(row.contact_as_of, Some(at(2000).trunc_subsecs(6)));
    // One in between the two, also older than the one held.
    inv.invite("p-1", &old, "Old Name", at(1000))
        .await
        .expect("in between");
    assert_eq!(get(&inv, "p-1").await.email, new);

    // A newer event with the same address moves the instant on, so an event older than it
    // (but newer than the first) cannot replace the address either.
    inv.invite("p-1", &new, "New Name", at(4000))
        .await
        .expect("same address, newer");
    assert_eq!(
        get(&inv, "p-1").await.contact_as_of,
        Some(at(4000).trunc_subsecs(6))
    );
    inv.invite("p-1", &old, "Old Name", at(3000))
        .await
        .expect("older than the last");
    assert_eq!(get(&inv, "p-1").await.email, new);

    // At the same instant, the later call wins (as before).
    inv.invite("p-1", &newest, "Newest Name", at(4000))
        .await
        .expect("same instant");
    let row = get(&inv, "p-1").await;
    assert_eq!(row.email, newest);
    assert_eq!(row.display_name, "Newest Name");

    // A row from before the instant was recorded takes any event's address.
    db.db
        .execute_unprepared("UPDATE invitations SET contact_as_of = NULL WHERE person_id = 'p-1'")
        .await
        .expect("forget the instant");
    inv.invite("p-1", &new, "New Name", at(0))
        .await
        .expect("unknown instant");
    let row = get(&inv, "p-1").await;
    assert_eq!(row.email, new);
    assert_eq!(row.contact_as_of, Some(at(0).trunc_subsecs(6)));

    assert_eq!(mail.count(), 1, "no second e-mail: {:?}", mail.mails());
    assert_eq!(get(&inv, "p-1").await.sent_count, 1);
    // A resend goes to the address held.
    inv.resend("p-1").await.expect("resend");
    assert_eq!(mail.to(&new).len(), 1);
    assert_eq!(mail.to(&old).len(), 1, "only the first invitation");

    mail.remove();
}

#[tokio::test]
async fn invite_refuses_bad_input() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(&db.db, &mail, &[]);

    let err = inv
        .invite("p-1", "not an address", "X", Utc::now())
        .await
        .expect_err("bad address");
    assert!(matches!(err, InvitationError::InvalidInput(_)), "{err}");
    let err = inv
        .invite("  ", &address("x"), "X", Utc::now())
        .await
        .expect_err("empty id");
    assert!(matches!(err, InvitationError::InvalidInput(_)), "{err}");
    assert!(inv.get("p-1").await.expect("get").is_none());
    assert_eq!(mail.count(), 0);

    // A name cannot smuggle a header in.
    let to = address("evil");
    inv.invite("p-2", &to, "Evil\r\nBcc: victim@example.org", Utc::now())
        .await
        .expect("invite");
    assert_eq!(
        get(&inv, "p-2").await.display_name,
        "EvilBcc: victim@example.org"
    );
    let m = &mail.to(&to)[0];
    assert!(
        !m.headers.lines().any(|l| l.starts_with("Bcc:")),
        "{}",
        m.headers
    );

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn mark_connected_stops_reminders() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(
        &db.db,
        &mail,
        &[("reminder_after", json!(["150ms", "300ms"]))],
    );
    let to = address("josiah");

    inv.invite("p-1", &to, "Josiah", Utc::now())
        .await
        .expect("invite");
    assert!(inv.mark_connected("p-1").await.expect("connected"));
    assert!(!inv.mark_connected("p-1").await.expect("again: no change"));
    let row = get(&inv, "p-1").await;
    assert_eq!(row.state, InvitationState::Connected);
    assert!(row.next_reminder_at.is_none());
    assert!(row.connected_at.is_some());

    // Past both reminder times, nothing is due.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(inv.run_due_once().await.expect("round"), 0);
    assert_eq!(mail.count(), 1, "only the invitation");
    assert_eq!(
        inv.invite("p-1", &to, "Josiah", Utc::now())
            .await
            .expect("invite"),
        InviteOutcome::AlreadyConnected
    );

    // "Connection ready" before any invitation: a later invite sends nothing.
    assert!(inv.mark_connected("p-2").await.expect("connected"));
    assert_eq!(
        inv.invite("p-2", &address("early"), "Early", Utc::now())
            .await
            .expect("invite"),
        InviteOutcome::AlreadyConnected
    );
    assert_eq!(mail.count(), 1);

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn resend_sends_a_new_mail_and_restarts_the_schedule() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let inv = service(&db.db, &mail, &[("reminder_after", json!(["1h", "2h"]))]);
    let to = address("josiah");

    inv.invite("p-1", &to, "Josiah", Utc::now())
        .await
        .expect("invite");
    let first = get(&inv, "p-1").await;
    let again = inv.resend("p-1").await.expect("resend");
    assert_eq!(mail.to(&to).len(), 2, "a new e-mail");
    assert_eq!(again.sent_count, 2);
    assert_eq!(again.reminders_sent, 0);
    assert_eq!(again.state, InvitationState::Sent);
    assert_eq!(again.link_id, first.link_id, "the link stays the same");
    let next = again.next_reminder_at.expect("scheduled");
    assert!(
        next > first.next_reminder_at.expect("scheduled"),
        "the schedule restarted"
    );
    for m in mail.to(&to) {
        assert!(
            !m.subject.starts_with("Reminder"),
            "a resend is an invitation: {}",
            m.subject
        );
        assert!(m.body.contains(&again.link));
    }

    let err = inv.resend("nobody").await.expect_err("unknown");
    assert!(
        matches!(err, InvitationError::UnknownPerson { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("invite them first"), "{err}");

    inv.mark_connected("p-1").await.expect("connected");
    let err = inv.resend("p-1").await.expect_err("connected");
    assert!(
        matches!(err, InvitationError::AlreadyConnected { .. }),
        "{err}"
    );
    assert_eq!(mail.to(&to).len(), 2);

    mail.remove();
    db.drop().await;
}
