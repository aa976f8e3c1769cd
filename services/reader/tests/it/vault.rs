//! The reader with its production token source: the real token vault (in-process, its own
//! database) on RabbitMQ. The researcher connects through the vault, whose "connection
//! ready" makes the first snapshot with the vault's token; then they revoke our access, and
//! the next read tells the vault, which publishes "connection lost" (revoked).

use bus::events::exchanges;
use bus::{ConsumerOptions, Delivery, Outcome, OutgoingMessage, ServiceSpec, Topology, handler_fn};
use chrono::Utc;
use idbridge_platform::config::Sources;
use reader::{Application, Dependencies};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::*;

/// The reader's caller token for the vault (test data).
const TEST_READER_CALLER_TOKEN: &str = "TEST_READER_CALLER_TOKEN_0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_token_vault() {
    let sim = spawn_sim().await;
    let vault_db = TestDb::empty_postgres().await;
    let reader_db = TestDb::postgres().await;
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;

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
                "IDBRIDGE__VAULT__CALLERS__READER__TOKEN_SHA256",
                token_vault::token_sha256_hex(TEST_READER_CALLER_TOKEN),
            ),
            (
                "IDBRIDGE__VAULT__CALLERS__READER__RIGHTS",
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

    // A listener for what the reader and the vault publish.
    let listener_spec = ServiceSpec::new("listener")
        .bind(exchanges::EVENTS, "record.updated")
        .bind(exchanges::EVENTS, "connection.lost");
    bus.declare(
        &Topology::new()
            .exchange(exchanges::EVENTS)
            .service(listener_spec.clone()),
    )
    .await
    .expect("listener topology");
    let (tx, mut events) = mpsc::unbounded_channel();
    let listener = bus
        .consume(
            &listener_spec,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(d.envelope);
                    Outcome::Ack
                }
            }),
        )
        .await
        .expect("listener");

    // The reader with no injected token source nor ORCID client: the vault and the shared
    // rate limit from its configuration.
    let mut config = app_config(&sim, &reader_db.url, &prefix, None);
    config.reader.vault.url = vault_url;
    config.reader.vault.caller_token = Some(TEST_READER_CALLER_TOKEN.into());
    let spec = reader::service_spec(&config);
    let app = Application::build_with(
        config,
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(reader_db.db.clone()),
            ..Dependencies::default()
        },
    )
    .await
    .expect("the reader starts");

    // The researcher connects at the portal: the sealed token goes to the vault.
    let orcid = create_user(&sim, "P-91").await;
    let work = user_adds_work(&sim, &orcid, "Field notes").await;
    let tokens = authorize_tokens(&sim, &orcid, &orcid_client(&sim)).await;
    let connected = bus::events::IdConnected {
        orcid,
        person_id: "P-91".to_owned(),
        name: tokens.name.clone(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        sealed_token: token_vault::handoff::seal_tokens(&handoff_public, &orcid, "P-91", &tokens)
            .expect("seal"),
        key_id: "hk1".to_owned(),
        granted_at: Utc::now(),
    };
    bus.publish(&OutgoingMessage::event(&connected).expect("message"))
        .await
        .expect("publish");
    let mut next = async |message_type: &str| loop {
        let envelope = tokio::time::timeout(DEADLINE, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {message_type} in time"))
            .expect("listener open");
        if envelope.message_type == message_type {
            return envelope.payload;
        }
    };
    let first = next("record-updated").await;
    assert_eq!(first["person_id"], "P-91");
    assert_eq!(first["added"][0]["put_code"], json!(work));

    // The sweep's listing comes from the vault too.
    let page = app
        .reader()
        .tokens()
        .connections(None, 10)
        .await
        .expect("connections");
    assert_eq!(page.connections.len(), 1);
    assert_eq!(page.connections[0].person_id, "P-91");

    // The researcher revokes our access; the next read gets 401 and tells the vault.
    let res = http()
        .post(format!("{}/_sim/users/{orcid}/revoke", sim.base_url()))
        .json(&json!({"client_id": TEST_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    bus.publish(&Harness::record_changed(&orcid))
        .await
        .expect("publish");
    let lost = next("connection-lost").await;
    assert_eq!(lost["reason"], "revoked");
    assert_eq!(lost["person_id"], "P-91");
    assert_eq!(
        app.reader().read_record(&orcid, None, None).await.unwrap(),
        reader::ReadOutcome::Revoked,
        "the vault now says revoked: no ORCID call"
    );

    listener.stop().await;
    app.shutdown_token().cancel();
    app.run_until_stopped().await;
    vault_stop.cancel();
    let _ = vault_task.await;
    let _ = bus
        .delete(
            &reader::topology(&spec)
                .service(listener_spec)
                .service(token_vault::service_spec()),
        )
        .await;
    bus.close().await;
    sim.stop().await;
    vault_db.drop().await;
    reader_db.drop().await;
}
