//! The writer with its production token source: the real token vault (in-process, its own
//! database) on the same bus. Connect through the vault, write, then a revoked token: the
//! writer tells the vault, the vault publishes "connection lost", and nothing more goes to
//! ORCID for that iD.

use std::time::Duration;

use bus::events::{ConnectionLost, HrEventType, IdConnected, LostReason, exchanges};
use bus::{
    Bus, ConsumerOptions, Delivery, Outcome, OutgoingMessage, ServiceSpec, Topology, handler_fn,
};
use chrono::Utc;
use idbridge_platform::config::Sources;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::mpsc;
use writer::ledger::ItemState;
use writer::{Application, Dependencies};

use crate::helpers::*;

/// The writer's caller token for the vault (test data).
const TEST_WRITER_CALLER_TOKEN: &str = "TEST_WRITER_CALLER_TOKEN_0001";

#[tokio::test]
async fn with_the_token_vault() {
    let sim = spawn_sim().await;
    let vault_db = TestDb::empty_postgres().await;
    let writer_db = TestDb::postgres().await;
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");

    // The vault, configured through its own loader.
    let (handoff_private, handoff_public) =
        token_vault::handoff::generate_handoff_key().expect("hand-off key");
    let kek = idbridge_crypto::KeyRing::generate_key().expect("key");
    let vault_config = token_vault::config::VaultConfig::from_sources(
        &Sources::new(token_vault::config::DEFAULTS).env([
            ("IDBRIDGE__VAULT__PORT", "0".to_owned()),
            (
                "IDBRIDGE__VAULT__KEYS",
                format!("k1:{}", kek.expose_secret()),
            ),
            ("IDBRIDGE__VAULT__ACTIVE_KEY", "k1".to_owned()),
            (
                "IDBRIDGE__VAULT__HANDOFF_KEYS",
                format!("hk1:{}", handoff_private.expose_secret()),
            ),
            ("IDBRIDGE__DATABASE__URL", vault_db.url.clone()),
            ("IDBRIDGE__BUS__PREFIX", prefix.clone()),
            ("IDBRIDGE__ORCID__REGISTRY", sim.base_url().to_owned()),
            ("IDBRIDGE__ORCID__CLIENT_ID", TEST_CLIENT_ID.to_owned()),
            (
                "IDBRIDGE__ORCID__CLIENT_SECRET",
                TEST_CLIENT_SECRET.to_owned(),
            ),
            (
                "IDBRIDGE__VAULT__CALLERS__WRITER__TOKEN_SHA256",
                token_vault::token_sha256_hex(TEST_WRITER_CALLER_TOKEN),
            ),
            (
                "IDBRIDGE__VAULT__CALLERS__WRITER__RIGHTS",
                r#"["token:read", "connections:list", "connections:revoke"]"#.to_owned(),
            ),
        ]),
    )
    .expect("vault configuration");
    let vault = token_vault::Application::build_with(
        vault_config,
        token_vault::Dependencies {
            bus: Some(bus.clone()),
            ..token_vault::Dependencies::default()
        },
    )
    .await
    .expect("the vault starts");
    let vault_url = format!("http://127.0.0.1:{}", vault.port());
    let vault_stop = vault.shutdown_token();
    let vault_task = tokio::spawn(vault.run_until_stopped());

    // The writer, with no injected token source: it uses the vault from its configuration.
    let mut config = app_config(&sim, &writer_db.url, &prefix);
    config.writer.vault.url = vault_url;
    config.writer.vault.caller_token = Some(TEST_WRITER_CALLER_TOKEN.into());
    let app = Application::build_with(
        config,
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(writer_db.db.clone()),
            orcid: Some(orcid_client(&sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("the writer starts");
    let ledger = app.writer().ledger();

    // A listener for "connection lost".
    let spec = ServiceSpec::new("listener").bind(exchanges::EVENTS, "connection.lost");
    bus.declare(&Topology::new().service(spec.clone()))
        .await
        .expect("declare");
    let (tx, mut lost) = mpsc::unbounded_channel();
    let listener = bus
        .consume(
            &spec,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    if let Ok(event) = d.payload::<ConnectionLost>() {
                        let _ = tx.send(event);
                    }
                    Outcome::Ack
                }
            }),
        )
        .await
        .expect("listener");

    // HR hires someone who has not connected: pending (the vault knows no connection).
    let hire = hire("P-90", "POS-90", "2026-03-01");
    bus.publish(&OutgoingMessage::event(&hire.event).expect("message"))
        .await
        .expect("publish");
    wait_for("pending", || async {
        ledger
            .item("P-90", "POS-90")
            .await
            .expect("ledger")
            .filter(|i| i.state == ItemState::Pending)
    })
    .await;

    // They connect at the portal: the sealed token goes to the vault, which publishes
    // "connection ready"; the writer writes what waited.
    let orcid = create_user(&sim, "P-90").await;
    let tokens = authorize_tokens(&sim, &orcid, WRITE_SCOPES, &orcid_client(&sim)).await;
    let connected = IdConnected {
        orcid,
        person_id: "P-90".to_owned(),
        name: tokens.name.clone(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        sealed_token: token_vault::handoff::seal_tokens(&handoff_public, &orcid, "P-90", &tokens)
            .expect("seal"),
        key_id: "hk1".to_owned(),
        granted_at: Utc::now(),
    };
    bus.publish(&OutgoingMessage::event(&connected).expect("message"))
        .await
        .expect("publish");
    let item = wait_for("written with the vault's token", || async {
        ledger
            .item("P-90", "POS-90")
            .await
            .expect("ledger")
            .filter(writer::ledger::LedgerItem::is_current)
    })
    .await;
    let items = sim_items(&sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["put-code"].as_u64(),
        item.put_code.map(|p| p.get())
    );

    // The researcher revokes access at ORCID; the next write gets 401.
    let res = sim_post(
        &sim,
        &format!("/_sim/users/{orcid}/revoke"),
        json!({"client_id": TEST_CLIENT_ID}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let leave = hire.then(HrEventType::Leave).end("2026-09-30");
    bus.publish(&OutgoingMessage::event(&leave.event).expect("message"))
        .await
        .expect("publish");
    let event = tokio::time::timeout(Duration::from_secs(30), lost.recv())
        .await
        .expect("connection lost in time")
        .expect("an event");
    assert_eq!(event.reason, LostReason::Revoked);
    assert_eq!(event.person_id, "P-90");
    wait_for("revoked in the ledger", || async {
        ledger
            .item("P-90", "POS-90")
            .await
            .expect("ledger")
            .filter(|i| i.state == ItemState::Revoked)
    })
    .await;

    // Nothing more reaches ORCID for this iD: the vault says the connection is revoked.
    let before = api_calls(&sim_stats(&sim).await);
    let change = leave.then(HrEventType::Change).role("Honorary Professor");
    bus.publish(&OutgoingMessage::event(&change.event).expect("message"))
        .await
        .expect("publish");
    wait_for("the change merged", || async {
        ledger
            .item("P-90", "POS-90")
            .await
            .expect("ledger")
            .filter(|i| i.source_event_id.as_deref() == Some(change.event.event_id.as_str()))
    })
    .await;
    let item = wait_for("the change handled", || async {
        let item = ledger.item("P-90", "POS-90").await.expect("ledger")?;
        let history = ledger.history(item.id).await.expect("history");
        history
            .iter()
            .any(|a| {
                a.event_id.as_deref() == Some(change.event.event_id.as_str()) && a.action == "token"
            })
            .then_some(item)
    })
    .await;
    assert_eq!(item.state, ItemState::Revoked);
    assert_eq!(
        api_calls(&sim_stats(&sim).await),
        before,
        "no ORCID call after the revocation"
    );

    listener.stop().await;
    app.shutdown_token().cancel();
    app.run_until_stopped().await;
    vault_stop.cancel();
    let _ = vault_task.await;
    sim.stop().await;
    vault_db.drop().await;
    writer_db.drop().await;
}
