//! Parked messages on the bus: listed for administrators and replayed (CSRF-protected).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bus::events::{IdConnected, SealedToken, exchanges};
use bus::{ConsumerOptions, Delivery, Outcome, OutgoingMessage, ServiceSpec, Topology, handler_fn};
use chrono::Utc;

use crate::helpers::{Options, spawn_with, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_and_replay_parked_messages() {
    let portal = spawn_with(Options {
        portal_env: vec![(
            "IDBRIDGE__PORTAL__PARKED_SERVICES".to_owned(),
            "[\"tfail\"]".to_owned(),
        )],
        ..Options::default()
    })
    .await;
    // A service that refuses (parks) its first delivery and accepts the next.
    let spec = ServiceSpec::new("tfail").bind(exchanges::EVENTS, "id.connected");
    portal
        .bus
        .declare(&Topology::new().service(spec.clone()))
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let consumer = portal
        .bus
        .consume(
            &spec,
            ConsumerOptions::default(),
            handler_fn(move |_delivery: Delivery| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Outcome::Park {
                            reason: "test: refused on purpose".to_owned(),
                        }
                    } else {
                        Outcome::Ack
                    }
                }
            }),
        )
        .await
        .unwrap();
    let event = IdConnected {
        orcid: orcid::OrcidId::parse("0000-0002-1825-0097").unwrap(),
        person_id: "P-PARKED".to_owned(),
        name: None,
        scopes: vec!["/read-limited".to_owned()],
        sealed_token: SealedToken::from_sealed_bytes(&[1, 2, 3]),
        key_id: "none".to_owned(),
        granted_at: Utc::now(),
    };
    let message = OutgoingMessage::event(&event).unwrap();
    let id = message.envelope.message_id.to_string();
    portal.bus.publish(&message).await.unwrap();
    wait_for("the message to be parked", || async {
        let parked = portal.bus.parked("tfail", 10).await.ok()?;
        (!parked.is_empty()).then_some(())
    })
    .await;

    let mut researcher = portal.browser();
    researcher
        .dev_sign_in("P-NOT-ADMIN", "Pat", "", false)
        .await;
    assert_eq!(researcher.get("/admin/failures").await.status, 403);

    let mut admin = portal.browser();
    admin.dev_sign_in("P-FAIL-ADMIN", "Quinn", "", true).await;
    let page = admin.get("/admin/failures").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data-service=\"tfail\""));
    assert!(page.body.contains(&format!("data-message-id=\"{id}\"")));
    assert!(page.body.contains("test: refused on purpose"));
    assert!(
        page.body.contains("id=\"failed-items-note\""),
        "no writer configured"
    );
    let page = admin.get("/admin/reports/failures.json").await;
    let rows: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(rows[0]["id"], id);
    assert_eq!(rows[0]["service"], "tfail");

    let csrf = admin.csrf().await;
    // Without CSRF, or for a service not configured: refused.
    let page = admin
        .post(
            "/admin/failures/replay",
            &[("service", "tfail"), ("message_id", &id)],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = admin
        .post(
            "/admin/failures/replay",
            &[("csrf", &csrf), ("service", "token-vault")],
        )
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("unknown_service"));
    // Replay it: it goes back to its queue and is handled.
    let page = admin
        .post(
            "/admin/failures/replay",
            &[("csrf", &csrf), ("service", "tfail"), ("message_id", &id)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/admin/failures?replayed=1");
    wait_for("the replayed message to be handled", || async {
        (calls.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    assert!(portal.bus.parked("tfail", 10).await.unwrap().is_empty());
    let page = admin.get("/admin/failures?replayed=1").await;
    assert!(page.body.contains("id=\"replayed-notice\""));
    assert!(!page.body.contains(&format!("data-message-id=\"{id}\"")));
    consumer.stop().await;
    portal.stop().await;
}
