//! Several replicas on one database: every e-mail goes out once.

use std::collections::HashMap;

use chrono::Utc;
use invitations::InvitationState;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{MailDir, TestDb, address, service, wait_for};

#[tokio::test]
async fn two_replicas_send_each_reminder_once() {
    let db = TestDb::postgres().await;
    let mail = MailDir::new();
    let overrides = [
        ("reminder_after", json!(["300ms", "600ms"])),
        ("tick", json!("10ms")),
        ("batch_size", json!(3)),
    ];
    let a = service(&db.db, &mail, &overrides);
    let other_pool = db.connect_again().await;
    let b = service(&other_pool, &mail, &overrides);

    let people: Vec<(String, String)> = (0..12)
        .map(|i| (format!("p-{i}"), address(&format!("r{i}"))))
        .collect();
    for (i, (person, to)) in people.iter().enumerate() {
        // Invitations come in through both replicas.
        let inv = if i % 2 == 0 { &a } else { &b };
        inv.invite(person, to, "Replica Test", Utc::now())
            .await
            .expect("invite");
    }

    let shutdown = CancellationToken::new();
    let schedulers: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|inv| {
            let shutdown = shutdown.clone();
            tokio::spawn(async move { inv.run_scheduler(shutdown).await })
        })
        .collect();

    wait_for("every schedule to run out", || async {
        let rows = a.list(&Default::default()).await.expect("list");
        rows.iter()
            .all(|r| r.state == InvitationState::Stopped)
            .then_some(())
    })
    .await;
    shutdown.cancel();
    for s in schedulers {
        s.await.expect("scheduler ends");
    }

    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for m in mail.mails() {
        *per_recipient.entry(m.to).or_default() += 1;
    }
    for (_, to) in &people {
        let n = per_recipient
            .iter()
            .filter(|(k, _)| k.contains(to.as_str()))
            .map(|(_, n)| *n)
            .sum::<usize>();
        assert_eq!(n, 3, "{to}: one invitation and two reminders, each once");
    }
    assert_eq!(mail.count(), 36);
    for row in a.list(&Default::default()).await.expect("list") {
        assert_eq!(row.sent_count, 3, "{}", row.person_id);
    }

    let _ = other_pool.close().await;
    mail.remove();
    db.drop().await;
}
