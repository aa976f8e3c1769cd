//! End to end with the real token vault on the same RabbitMQ: the researcher connects (the
//! vault stores the sealed token and publishes "connection ready"), the receiver registers
//! the webhook with the vault's client-credentials `/webhook` token; an edit of the record
//! becomes "record changed"; the researcher disconnects at the vault ("connection lost") →
//! the webhook is gone in the simulator.

use bus::events::IdConnected;
use bus::{OutgoingMessage, Topology};
use chrono::Utc;
use idbridge_platform::config::Sources;
use orcid::client::UserTokens;
use secrecy::ExposeSecret;
use token_vault::client::VaultClient;
use webhook_receiver::registry::RegistrationState;

use crate::helpers::*;

/// The receiver's caller token for the vault (test data).
const TEST_RECEIVER_CALLER_TOKEN: &str = "TEST_WEBHOOK_RECEIVER_CALLER_TOKEN_1";
/// The portal's caller token (disconnects), test data.
const TEST_PORTAL_CALLER_TOKEN: &str = "TEST_PORTAL_CALLER_TOKEN_0001";

async fn authorize_tokens(sim: &orcid_sim::SimHandle, orcid: &orcid::OrcidId) -> UserTokens {
    let client = orcid_client(sim);
    let res = http()
        .get(format!("{}/oauth/authorize", sim.base_url()))
        .query(&[
            ("client_id", client.client_id()),
            ("response_type", "code"),
            ("scope", "/read-limited /activities/update"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("sim_user", &orcid.to_string()),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await
        .expect("GET /oauth/authorize");
    assert_eq!(res.status(), 302, "headless authorize");
    let location = res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let code = url::Url::parse(&location)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect");
    client
        .exchange_code(&code, TEST_REDIRECT_URI)
        .await
        .expect("code exchange")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_edit_disconnect_through_the_token_vault() {
    let sim = spawn_sim().await;
    let vault_db = TestDb::postgres().await;
    let db = TestDb::postgres().await;
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
                "IDBRIDGE__VAULT__CALLERS__WEBHOOKS__TOKEN_SHA256",
                token_vault::token_sha256_hex(TEST_RECEIVER_CALLER_TOKEN),
            ),
            (
                "IDBRIDGE__VAULT__CALLERS__WEBHOOKS__RIGHTS",
                r#"["client-token:read"]"#.to_owned(),
            ),
            (
                "IDBRIDGE__VAULT__CALLERS__PORTAL__TOKEN_SHA256",
                token_vault::token_sha256_hex(TEST_PORTAL_CALLER_TOKEN),
            ),
            (
                "IDBRIDGE__VAULT__CALLERS__PORTAL__RIGHTS",
                r#"["connections:disconnect"]"#.to_owned(),
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

    // No token source injected: the receiver asks the vault.
    let mut receiver = Receiver::start_on(
        &sim,
        &db,
        bus.clone(),
        &prefix,
        None,
        Some((vault_url.clone(), TEST_RECEIVER_CALLER_TOKEN.to_owned())),
        700,
    )
    .await;

    // The researcher connects at the portal; the vault publishes "connection ready".
    let orcid = create_user(&sim, "Vaulted").await;
    let tokens = authorize_tokens(&sim, &orcid).await;
    let connected = IdConnected {
        orcid,
        person_id: "P-40".to_owned(),
        name: tokens.name.clone(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        sealed_token: token_vault::handoff::seal_tokens(&handoff_public, &orcid, "P-40", &tokens)
            .expect("seal"),
        key_id: "hk1".to_owned(),
        granted_at: Utc::now(),
    };
    bus.publish(&OutgoingMessage::event(&connected).expect("message"))
        .await
        .expect("publish");
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    assert_eq!(registration.person_id, "P-40");

    user_edits_record(&sim, &orcid).await;
    let attempts = flush_webhooks(&sim).await;
    let mine = attempts_for(&attempts, &orcid);
    assert_eq!(mine.len(), 1, "{attempts:#?}");
    assert_eq!(mine[0]["status"], 204);
    assert_eq!(receiver.next_changed().await.orcid, orcid);

    // The researcher disconnects: the vault publishes "connection lost".
    let portal = VaultClient::new(&vault_url, TEST_PORTAL_CALLER_TOKEN.into()).expect("client");
    portal
        .disconnect(&orcid, "test disconnect")
        .await
        .expect("disconnect");
    receiver
        .wait_state(&orcid, RegistrationState::Unregistered)
        .await;
    user_edits_record(&sim, &orcid).await;
    assert!(attempts_for(&flush_webhooks(&sim).await, &orcid).is_empty());

    receiver.stop().await;
    vault_stop.cancel();
    let _ = vault_task.await;
    let _ = bus
        .delete(&Topology::new().service(token_vault::service_spec()))
        .await;
    sim.stop().await;
    db.drop().await;
    vault_db.drop().await;
}
