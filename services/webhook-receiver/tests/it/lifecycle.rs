//! A connection's whole life: "connection ready" registers the webhook in the simulator with
//! a callback URL that does not carry the iD; the user edits their record → the simulator's
//! callback reaches the receiver → one "record changed"; "connection lost" → the webhook is
//! gone in the simulator and callbacks of the old URL have no effect.

use std::time::Duration;

use secrecy::ExposeSecret;
use webhook_receiver::registry::RegistrationState;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_edit_callback_changed_then_lost_removes_the_webhook() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let mut receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Life").await;

    receiver.publish_ready(&orcid, "P-1").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    assert_eq!(registration.person_id, "P-1");
    assert!(registration.registered_at.is_some());
    let url = receiver.app.registry().callback_url(registration.hook_id);
    let url = url.expose_secret().to_owned();
    assert!(!url.contains(&orcid.to_string()), "the iD leaks into {url}");
    assert!(url.starts_with(&format!("{}/orcid/webhook/", receiver.base)));

    // Nothing changed yet: the simulator has nothing to deliver.
    assert!(attempts_for(&flush_webhooks(&sim).await, &orcid).is_empty());

    // The user edits their record; ORCID calls back.
    user_edits_record(&sim, &orcid).await;
    let attempts = flush_webhooks(&sim).await;
    let mine = attempts_for(&attempts, &orcid);
    assert_eq!(mine.len(), 1, "{attempts:#?}");
    assert_eq!(mine[0]["callback"], url.as_str(), "the registered callback");
    assert_eq!(mine[0]["outcome"], "delivered");
    assert_eq!(mine[0]["status"], 204);

    let changed = receiver.next_changed().await;
    assert_eq!(changed.orcid, orcid);
    let registration = receiver
        .app
        .registry()
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert!(registration.last_callback_at.is_some());
    assert_eq!(registration.pending_since, None);
    // One callback, one event.
    assert!(
        receiver
            .changed_within(Duration::from_millis(1500))
            .await
            .is_empty()
    );

    // The researcher disconnects.
    receiver.publish_lost(&orcid, "P-1").await;
    let gone = receiver
        .wait_state(&orcid, RegistrationState::Unregistered)
        .await;
    assert!(gone.unregistered_at.is_some());
    // ORCID no longer has it: deleting it again is 404 (9028) …
    let token = orcid_client(&sim)
        .client_credentials(orcid::client::Scope::Webhook)
        .await
        .expect("token");
    let again = orcid_client(&sim)
        .unregister_webhook(&token.access_token, &orcid, &url)
        .await;
    assert!(
        matches!(
            again,
            Err(orcid::Error::NotFound {
                code: Some(9028),
                ..
            })
        ),
        "{again:?}"
    );
    // … and a later edit calls nobody.
    user_edits_record(&sim, &orcid).await;
    assert!(attempts_for(&flush_webhooks(&sim).await, &orcid).is_empty());

    // The old URL still verifies (same key) but has no effect.
    let res = http().post(&url).send().await.expect("post");
    assert_eq!(res.status(), 204);
    assert!(
        receiver
            .changed_within(Duration::from_millis(1500))
            .await
            .is_empty()
    );

    // Connecting again registers a new, different callback URL.
    receiver.publish_ready(&orcid, "P-1").await;
    let again = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    assert_ne!(again.hook_id, registration.hook_id);
    user_edits_record(&sim, &orcid).await;
    let attempts = flush_webhooks(&sim).await;
    let mine = attempts_for(&attempts, &orcid);
    assert_eq!(mine.len(), 1, "{attempts:#?}");
    assert_ne!(mine[0]["callback"], url.as_str());
    assert_eq!(receiver.next_changed().await.orcid, orcid);

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// A "connection ready" older than the "connection lost" already applied (a retry that
/// overtook nothing) changes nothing: the webhook stays removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_ready_does_not_undo_a_lost() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Stale").await;
    let registry = receiver.app.registry();

    let connected_at = chrono::Utc::now() - chrono::Duration::seconds(60);
    let ready = bus::events::ConnectionReady {
        orcid,
        person_id: "P-2".into(),
        scopes: vec![],
        connected_at,
    };
    assert_eq!(
        registry.apply_ready(&ready).await.expect("ready"),
        webhook_receiver::registry::ReadyOutcome::Created
    );
    // Redelivered: ORCID answers 204, still one webhook.
    assert_eq!(
        registry.apply_ready(&ready).await.expect("ready again"),
        webhook_receiver::registry::ReadyOutcome::AlreadyRegistered
    );
    let lost = bus::events::ConnectionLost {
        orcid,
        person_id: "P-2".into(),
        reason: bus::events::LostReason::Revoked,
        detected_at: chrono::Utc::now(),
        primary_orcid: None,
    };
    assert!(registry.apply_lost(&lost).await.expect("lost"));
    // The same "lost" again: nothing registered any more.
    assert!(!registry.apply_lost(&lost).await.expect("lost again"));
    assert_eq!(
        registry.apply_ready(&ready).await.expect("stale ready"),
        webhook_receiver::registry::ReadyOutcome::Stale
    );
    let row = registry
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert_eq!(row.state, RegistrationState::Unregistered);
    user_edits_record(&sim, &orcid).await;
    assert!(attempts_for(&flush_webhooks(&sim).await, &orcid).is_empty());

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// A "connection lost" for an iD the receiver never saw (its "ready" failed to be stored and
/// is retried later) leaves a tombstone, so the older "ready" registers nothing; a newer one
/// does, under a new hook id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_before_its_ready_makes_the_ready_stale() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Early").await;
    let registry = receiver.app.registry();

    let detected_at = chrono::Utc::now();
    let lost = bus::events::ConnectionLost {
        orcid,
        person_id: "P-3".into(),
        reason: bus::events::LostReason::Disconnected,
        detected_at,
        primary_orcid: None,
    };
    assert!(!registry.apply_lost(&lost).await.expect("lost"));
    let tombstone = registry
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("a tombstone row");
    assert_eq!(tombstone.state, RegistrationState::Unregistered);
    assert_eq!(
        tombstone.last_event_at.timestamp_micros(),
        detected_at.timestamp_micros()
    );
    // Redelivered: still fine.
    assert!(!registry.apply_lost(&lost).await.expect("lost again"));

    let ready = bus::events::ConnectionReady {
        orcid,
        person_id: "P-3".into(),
        scopes: vec![],
        connected_at: detected_at - chrono::Duration::seconds(30),
    };
    assert_eq!(
        registry.apply_ready(&ready).await.expect("older ready"),
        webhook_receiver::registry::ReadyOutcome::Stale
    );
    user_edits_record(&sim, &orcid).await;
    assert!(attempts_for(&flush_webhooks(&sim).await, &orcid).is_empty());

    // Connecting again later works, with a hook id of its own.
    let newer = bus::events::ConnectionReady {
        connected_at: detected_at + chrono::Duration::seconds(1),
        ..ready
    };
    assert_eq!(
        registry.apply_ready(&newer).await.expect("newer ready"),
        webhook_receiver::registry::ReadyOutcome::Created
    );
    let row = registry
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert_eq!(row.state, RegistrationState::Registered);
    assert_ne!(row.hook_id, tombstone.hook_id);

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}
