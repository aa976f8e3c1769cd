//! SMTP: a server that is down (closed port) makes the invitation `failed` with the reason,
//! retried on the next ticks without panicking; once a server answers, the retry delivers.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use invitations::{InvitationError, InvitationState, Invitations, InviteOutcome};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::helpers::{MailDir, TestDb, address, config, get, wait_for};

const PASSWORD: &str = "smtp-test-password-0000";

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// A minimal SMTP server: accepts everything, keeps each message's DATA.
/// With `reject_rcpt`, every recipient is refused with 550 (a permanent failure).
async fn smtp_server(listener: TcpListener, received: Arc<Mutex<Vec<String>>>, reject_rcpt: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let received = received.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 test ESMTP\r\n").await.ok();
            let mut data: Option<String> = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(body) = data.as_mut() {
                    if line == "." {
                        received
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(std::mem::take(body));
                        data = None;
                        write.write_all(b"250 queued\r\n").await.ok();
                    } else {
                        body.push_str(&line);
                        body.push('\n');
                    }
                    continue;
                }
                let verb = line
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 test\r\n",
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    }
                    "RCPT" if reject_rcpt => b"550 5.1.1 no such mailbox\r\n",
                    "QUIT" => {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    }
                    _ => b"250 ok\r\n",
                };
                write.write_all(reply).await.ok();
            }
        });
    }
}

#[tokio::test]
async fn failing_smtp_records_failed_and_retries_until_delivered() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let port = closed_port().await;
    let cfg = config(
        &mail.path,
        &[
            ("transport", json!("smtp")),
            ("smtp_url", json!(format!("smtp://127.0.0.1:{port}"))),
            ("smtp_timeout_secs", json!(5)),
            ("retry_after", json!("100ms")),
        ],
    );
    let inv = Invitations::new(db.db.clone(), cfg).expect("invitations");
    let to = address("josiah");

    let outcome = inv
        .invite("p-1", &to, "Josiah", Utc::now())
        .await
        .expect("invite does not fail");
    let InviteOutcome::SendFailed { reason } = outcome else {
        panic!("expected a failed send, got {outcome:?}");
    };
    assert!(!reason.is_empty());
    let row = get(&inv, "p-1").await;
    assert_eq!(row.state, InvitationState::Failed);
    assert_eq!(row.sent_count, 0);
    assert_eq!(row.last_error.as_deref(), Some(reason.as_str()));
    assert!(row.next_reminder_at.is_some(), "a retry is scheduled");

    // The resend action reports the failure clearly and records it too.
    let err = inv.resend("p-1").await.expect_err("the server is down");
    assert!(matches!(err, InvitationError::SendFailed { .. }), "{err}");
    assert!(err.to_string().contains("will be retried"), "{err}");

    // The scheduler retries (and fails again) on its ticks without panicking.
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn({
        let inv = inv.clone();
        let shutdown = shutdown.clone();
        async move { inv.run_scheduler(shutdown).await }
    });
    let failed_at = row.updated_at;
    wait_for("a retry that fails again", || async {
        let row = get(&inv, "p-1").await;
        (row.updated_at > failed_at && row.state == InvitationState::Failed).then_some(())
    })
    .await;

    // The server comes up: the next retry delivers the invitation.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind the port");
    let received = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(smtp_server(listener, received.clone(), false));
    let delivered = wait_for("the retry to be delivered", || async {
        let row = get(&inv, "p-1").await;
        (row.state == InvitationState::Sent).then_some(row)
    })
    .await;
    shutdown.cancel();
    scheduler.await.expect("scheduler ends");
    server.abort();

    assert_eq!(delivered.sent_count, 1);
    assert!(
        delivered.last_error.is_none(),
        "cleared by the successful send"
    );
    let messages = received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(messages.len(), 1, "sent once");
    assert!(messages[0].contains(&to));
    assert!(messages[0].contains(&delivered.link), "{}", messages[0]);
    assert!(
        !messages[0].contains("Subject: Reminder"),
        "still the invitation, not a reminder"
    );
    assert_eq!(mail.count(), 0, "nothing written by the file transport");

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn smtp_credentials_stay_out_of_errors_and_debug() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let port = closed_port().await;
    let cfg = config(
        &mail.path,
        &[
            ("transport", json!("smtp")),
            (
                "smtp_url",
                json!(format!(
                    "smtp://mailer:{PASSWORD}@127.0.0.1:{port}?tls=required"
                )),
            ),
        ],
    );
    assert!(!format!("{cfg:?}").contains(PASSWORD), "config Debug");
    let inv = Invitations::new(db.db.clone(), cfg).expect("invitations");
    assert!(!format!("{inv:?}").contains(PASSWORD), "service Debug");

    let outcome = inv
        .invite("p-1", &address("x"), "X", Utc::now())
        .await
        .expect("invite");
    assert!(
        matches!(outcome, InviteOutcome::SendFailed { .. }),
        "{outcome:?}"
    );
    assert!(!format!("{outcome:?}").contains(PASSWORD));
    let row = get(&inv, "p-1").await;
    assert!(
        !row.last_error
            .clone()
            .unwrap_or_default()
            .contains(PASSWORD)
    );
    let err = inv.resend("p-1").await.expect_err("down");
    assert!(!err.to_string().contains(PASSWORD));
    assert!(!format!("{err:?}").contains(PASSWORD));

    mail.remove();
    db.drop().await;
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried_automatically() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(smtp_server(listener, received.clone(), true));
    let cfg = config(
        &mail.path,
        &[
            ("transport", json!("smtp")),
            ("smtp_url", json!(format!("smtp://127.0.0.1:{port}"))),
            ("retry_after", json!("10ms")),
        ],
    );
    let inv = Invitations::new(db.db.clone(), cfg).expect("invitations");

    let outcome = inv
        .invite("p-1", &address("gone"), "Gone", Utc::now())
        .await
        .expect("invite");
    let InviteOutcome::SendFailed { reason } = outcome else {
        panic!("expected a refused send, got {outcome:?}");
    };
    assert!(
        reason.contains("550") || reason.contains("no such mailbox"),
        "{reason}"
    );
    let row = get(&inv, "p-1").await;
    assert_eq!(row.state, InvitationState::Failed);
    assert!(row.next_reminder_at.is_none(), "not retried by itself");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(inv.run_due_once().await.expect("round"), 0, "nothing due");
    assert!(
        received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    );

    // Resend is how an administrator tries again (after correcting the address).
    let err = inv.resend("p-1").await.expect_err("still refused");
    assert!(matches!(err, InvitationError::SendFailed { .. }), "{err}");
    server.abort();

    mail.remove();
    db.drop().await;
}
