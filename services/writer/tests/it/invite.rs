//! Invitations wired into the writer (`writer.invitations.enabled`, file transport): a hire
//! for a person who has not connected waits as `pending` and, with `person.email`, an
//! invitation e-mail is written; "connection ready" marks the invitation connected (no more
//! reminders) and writes the item. An older HR event (a redelivery, a retry overtaken by a
//! newer event) never brings back the address a newer event set.

use std::sync::Arc;
use std::time::Duration;

use bus::Outcome;
use bus::events::ConnectionReady;
use bus::events::HrEventType;
use bus::{Bus, OutgoingMessage};
use chrono::Utc;
use invitations::{InvitationState, Invitations};
use uuid::Uuid;
use writer::ledger::ItemState;
use writer::{Application, Cause, Dependencies, Writer};

use crate::helpers::*;

fn eml_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).expect("readable .eml"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_pending_hire_with_an_email_invites_and_connection_ready_marks_connected() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    let mail_dir = std::env::temp_dir().join(format!("writer-mail-{}", Uuid::new_v4().simple()));
    let mut config = app_config(&sim, &db.url, &prefix);
    config.writer.invitations.enabled = true;
    {
        let invitations = config.invitations.as_mut().expect("[invitations] defaults");
        invitations.file_dir = mail_dir.clone();
        invitations.portal_url = "https://portal.example.org".to_owned();
        invitations.tick = "100ms".to_owned();
    }
    let tokens = Arc::new(SimTokens::default());
    let app = Application::build_with(
        config,
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens: Some(tokens.clone()),
            orcid: Some(orcid_client(&sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    let invitations = app.invitations().expect("invitations enabled").clone();
    let ledger = app.writer().ledger();

    // Not connected, with an e-mail address: pending, and invited.
    let mut hire = hire("P-I1", "POS-I1", "2026-01-01");
    hire.event.person.email = Some("josiah.carberry@example.org".to_owned());
    // Not connected, without an address: pending, nobody to invite.
    let silent = hire_for("P-I2", "POS-I2");
    for event in [&hire.event, &silent.event] {
        bus.publish(&OutgoingMessage::event(event).expect("message"))
            .await
            .expect("publish");
    }
    wait_for("both hires pending", || async {
        let a = ledger.item("P-I1", "POS-I1").await.expect("ledger");
        let b = ledger.item("P-I2", "POS-I2").await.expect("ledger");
        (a.is_some_and(|i| i.state == ItemState::Pending)
            && b.is_some_and(|i| i.state == ItemState::Pending))
        .then_some(())
    })
    .await;
    // The e-mail is written, then the invitation recorded as sent.
    let invitation = wait_for("the invitation sent", || async {
        invitations
            .get("P-I1")
            .await
            .expect("invitations")
            .filter(|i| i.state == InvitationState::Sent)
    })
    .await;
    assert_eq!(invitation.sent_count, 1);
    let mails = eml_files(&mail_dir);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].contains("josiah.carberry@example.org"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("https://portal.example.org/connect?invitation="));
    assert!(
        mails[0].contains("Josiah Carberry"),
        "greeted by name: {}",
        mails[0]
    );
    assert!(
        invitations
            .get("P-I2")
            .await
            .expect("invitations")
            .is_none()
    );

    // The same hire again (a redelivery): no second e-mail.
    let again = hire.then(HrEventType::Change);
    bus.publish(&OutgoingMessage::event(&again.event).expect("message"))
        .await
        .expect("publish");
    wait_for("the repeat processed", || async {
        (db.count("SELECT COUNT(*) AS n FROM writer_inbox").await == 3).then_some(())
    })
    .await;

    // The person connects: the invitation is closed and the item written.
    let orcid = create_user(&sim, "P-I1").await;
    let token = authorize(&sim, &orcid, WRITE_SCOPES, &orcid_client(&sim)).await;
    tokens.connect("P-I1", &orcid, token);
    let ready = ConnectionReady {
        orcid,
        person_id: "P-I1".to_owned(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        connected_at: Utc::now(),
    };
    bus.publish(&OutgoingMessage::event(&ready).expect("message"))
        .await
        .expect("publish");
    wait_for("written after connection ready", || async {
        ledger
            .item("P-I1", "POS-I1")
            .await
            .expect("ledger")
            .filter(|i| i.state == ItemState::InOrcid)
    })
    .await;
    let invitation = invitations
        .get("P-I1")
        .await
        .expect("invitations")
        .expect("P-I1");
    assert_eq!(invitation.state, InvitationState::Connected);
    assert!(invitation.connected_at.is_some());
    assert_eq!(
        invitation.next_reminder_at, None,
        "no reminders after connecting"
    );
    // Some scheduler ticks later, still one e-mail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(eml_files(&mail_dir).len(), 1);

    app.shutdown_token().cancel();
    app.run_until_stopped().await;
    sim.stop().await;
    db.drop().await;
    let _ = std::fs::remove_dir_all(&mail_dir);
}

#[tokio::test]
async fn invitations_are_off_by_default_and_the_section_is_the_crates() {
    let sim = spawn_sim().await;
    let config = app_config(&sim, "postgres://unused/db", "unused");
    assert!(!config.writer.invitations.enabled);
    assert!(config.invitations_config().is_none());
    // The writer's embedded [invitations] defaults are the invitations crate's.
    assert_eq!(
        format!("{:?}", config.invitations.expect("section")),
        format!(
            "{:?}",
            invitations::InvitationsConfig::defaults().expect("crate defaults")
        )
    );
    sim.stop().await;
}

fn hire_for(person_id: &str, position_id: &str) -> Hr {
    hire(person_id, position_id, "2026-01-01")
}

/// A writer (no bus) with invitations through the file transport into a fresh directory.
async fn writer_with_invitations() -> (Harness, Writer, Invitations, std::path::PathBuf) {
    let h = Harness::new().await;
    let mail_dir = std::env::temp_dir().join(format!("writer-mail-{}", Uuid::new_v4().simple()));
    let mut config = invitations::InvitationsConfig::defaults().expect("crate defaults");
    config.file_dir = mail_dir.clone();
    config.portal_url = "https://portal.example.org".to_owned();
    let invitations = Invitations::new(h.db.db.clone(), config).expect("invitations");
    let writer = h.writer.clone().with_invitations(invitations.clone());
    (h, writer, invitations, mail_dir)
}

fn with_email(mut hr: Hr, email: &str) -> Hr {
    hr.event.person.email = Some(email.to_owned());
    hr
}

async fn apply(writer: &Writer, hr: &Hr) {
    assert_eq!(
        writer.apply_hr_event(&hr.event, &Cause::none()).await,
        Outcome::Ack
    );
}

/// The address the invitation holds, after exactly one e-mail (to `first`).
async fn held_after_one_mail(
    invitations: &Invitations,
    person_id: &str,
    mail_dir: &std::path::Path,
    first: &str,
) -> String {
    let invitation = invitations
        .get(person_id)
        .await
        .expect("invitations")
        .unwrap_or_else(|| panic!("{person_id} invited"));
    assert_eq!(invitation.sent_count, 1);
    let mails = eml_files(mail_dir);
    assert_eq!(mails.len(), 1, "one e-mail: {mails:#?}");
    assert!(mails[0].contains(first), "{}", mails[0]);
    invitation.email
}

#[tokio::test]
async fn a_stale_hire_event_does_not_bring_back_an_older_address() {
    let (h, writer, invitations, mail_dir) = writer_with_invitations().await;
    let older = with_email(hire_for("P-S1", "POS-S1"), "old@example.org");
    let newer = with_email(
        older.then(HrEventType::Hire).role("Dean"),
        "new@example.org",
    );

    // The newer event first, then the older one (a retry it overtook): stale.
    apply(&writer, &newer).await;
    apply(&writer, &older).await;
    assert_eq!(h.item("P-S1", "POS-S1").await.state, ItemState::Pending);
    assert_eq!(
        held_after_one_mail(&invitations, "P-S1", &mail_dir, "new@example.org").await,
        "new@example.org"
    );

    // In order, then the older event again in another envelope (merged before, overtaken
    // since).
    let older = with_email(hire_for("P-S2", "POS-S2"), "old@example.org");
    let newer = with_email(
        older.then(HrEventType::Change).role("Dean"),
        "new@example.org",
    );
    apply(&writer, &older).await;
    apply(&writer, &newer).await;
    apply(&writer, &older).await;
    let invitation = invitations
        .get("P-S2")
        .await
        .expect("invitations")
        .expect("P-S2 invited");
    assert_eq!(invitation.email, "new@example.org");
    assert_eq!(invitation.sent_count, 1);
    assert_eq!(eml_files(&mail_dir).len(), 2, "one e-mail per person");

    // The same instant: the lesser event id is the older (as the merge orders them).
    let mut older = with_email(hire_for("P-S4", "POS-S4"), "old@example.org");
    older.event.event_id = format!("hr-a-{}", Uuid::new_v4().simple());
    let mut newer = with_email(
        older.then(HrEventType::Hire).role("Dean"),
        "new@example.org",
    );
    newer.event.event_id = format!("hr-b-{}", Uuid::new_v4().simple());
    newer.event.occurred_at = older.event.occurred_at;
    apply(&writer, &newer).await;
    apply(&writer, &older).await;
    let invitation = invitations
        .get("P-S4")
        .await
        .expect("invitations")
        .expect("P-S4 invited");
    assert_eq!(invitation.email, "new@example.org");
    assert_eq!(eml_files(&mail_dir).len(), 3, "one e-mail per person");

    h.finish().await;
    let _ = std::fs::remove_dir_all(&mail_dir);
}

#[tokio::test]
async fn an_older_event_of_another_position_does_not_bring_back_an_older_address() {
    let (h, writer, invitations, mail_dir) = writer_with_invitations().await;
    // Two positions: the hire into the second happened first but arrives last.
    let second = with_email(hire_for("P-S3", "POS-S3b"), "old@example.org");
    let first = with_email(
        hire_for("P-S3", "POS-S3a").then(HrEventType::Hire),
        "new@example.org",
    );
    assert!(first.event.occurred_at > second.event.occurred_at);

    apply(&writer, &first).await;
    apply(&writer, &second).await;
    assert_eq!(h.item("P-S3", "POS-S3b").await.state, ItemState::Pending);
    assert_eq!(
        held_after_one_mail(&invitations, "P-S3", &mail_dir, "new@example.org").await,
        "new@example.org"
    );

    h.finish().await;
    let _ = std::fs::remove_dir_all(&mail_dir);
}

#[tokio::test]
async fn a_stale_event_still_invites_when_no_invitation_exists() {
    let (h, writer, invitations, mail_dir) = writer_with_invitations().await;
    let older = with_email(hire_for("P-S5", "POS-S5"), "only@example.org");
    // The newer event names no address (or its invite failed): the older one, arriving
    // after it (a retry), is the only address there is.
    let mut newer = older.then(HrEventType::Change).role("Dean");
    newer.event.person.email = None;
    apply(&writer, &newer).await;
    assert!(
        invitations
            .get("P-S5")
            .await
            .expect("invitations")
            .is_none()
    );
    apply(&writer, &older).await;
    assert_eq!(h.item("P-S5", "POS-S5").await.state, ItemState::Pending);
    assert_eq!(
        held_after_one_mail(&invitations, "P-S5", &mail_dir, "only@example.org").await,
        "only@example.org"
    );
}
