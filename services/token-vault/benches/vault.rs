//! Token fetches per second through the vault's API (warm: pool and caches filled), and the
//! crypto crate's envelope decrypts per second, in the same run.
//!
//! ```sh
//! cargo bench -p token-vault --bench vault            # PostgreSQL at TEST_DATABASE_URL and SQLite
//! ```
//!
//! Each backend: a fresh database, orcid-sim in-process, the in-process bus, the vault on
//! port 0 with its default 2 HTTP workers; 50 researchers connected through the simulator's
//! OAuth; then CONCURRENCY clients (the typed `VaultClient`) fetch user tokens round-robin for
//! a warm-up second and a measured window, then client-credentials tokens likewise. Every
//! fetch is a real audited read (one INSERT per fetch).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bus::events::IdConnected;
use bus::{Bus, OutgoingMessage};
use idbridge_crypto::{KeyRing, RowBinding};
use idbridge_platform::config::Sources;
use orcid::OrcidId;
use orcid::client::{ClientConfig, OrcidClient, RetryPolicy, Scopes};
use sea_orm::{ConnectionTrait, Database};
use secrecy::{ExposeSecret, SecretString};
use token_vault::client::{ClientScope, VaultClient};
use token_vault::config::{DEFAULTS, VaultConfig};
use token_vault::{Application, Dependencies};
use uuid::Uuid;

const CLIENT_ID: &str = "APP-BENCHVAULT000001";
const CLIENT_SECRET: &str = "bench-client-secret";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CALLER_TOKEN: &str = "BENCH_CALLER_TOKEN";
const USERS: usize = 50;
const CONCURRENCY: usize = 16;
const WARM_UP: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    println!(
        "token-vault bench: {USERS} connections, {CONCURRENCY} concurrent clients, {}s window after {}s warm-up",
        WINDOW.as_secs(),
        WARM_UP.as_secs()
    );
    let decrypts = decrypts_per_second()?;
    println!(
        "crypto: envelope open (unwrap DEK + decrypt, 110-byte secret): {decrypts:.0} decrypts/s (1 thread)"
    );

    let admin_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let admin = Database::connect(&admin_url).await.with_context(|| {
        format!("token-vault bench needs PostgreSQL at {admin_url} (set TEST_DATABASE_URL)")
    })?;
    let name = format!("tv_bench_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let (base, _) = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .context("TEST_DATABASE_URL has no database path")?;
    let pg = format!("{base}/{name}");
    let result = backend("PostgreSQL", &pg).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result?;

    let path = std::env::temp_dir().join(format!("tv-bench-{}.sqlite", Uuid::new_v4().simple()));
    let result = backend("SQLite", &format!("sqlite://{}?mode=rwc", path.display())).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result?;
    println!(
        "crypto (again, after the API runs): {:.0} decrypts/s",
        decrypts_per_second()?
    );
    Ok(())
}

fn decrypts_per_second() -> anyhow::Result<f64> {
    let key = format!("kbench:{}", KeyRing::generate_key()?.expose_secret());
    let ring = KeyRing::from_config(&SecretString::from(key), "kbench")?;
    let secret = SecretString::from(format!(
        "{{\"access_token\":\"{}\",\"refresh_token\":\"{}\"}}",
        Uuid::new_v4(),
        Uuid::new_v4()
    ));
    let id = Uuid::new_v4();
    let binding = RowBinding::new(id, "0000-0002-1825-0097");
    let sealed = ring.seal(&secret, &binding)?;
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        ring.open(&sealed, &binding)?;
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..1000 {
            ring.open(&sealed, &binding)?;
        }
        n += 1000;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn backend(label: &str, db_url: &str) -> anyhow::Result<()> {
    let sim = orcid_sim::spawn(orcid_sim::SimConfig::for_tests().with_client(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT,
    ))
    .await?;
    let (handoff_private, handoff_public) = token_vault::handoff::generate_handoff_key()?;
    let env = vec![
        ("IDBRIDGE__VAULT__PORT", "0".to_owned()),
        (
            "IDBRIDGE__VAULT__KEYS",
            format!("kbench:{}", KeyRing::generate_key()?.expose_secret()),
        ),
        ("IDBRIDGE__VAULT__ACTIVE_KEY", "kbench".to_owned()),
        (
            "IDBRIDGE__VAULT__HANDOFF_KEYS",
            format!("hkbench:{}", handoff_private.expose_secret()),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__BENCH__TOKEN_SHA256",
            token_vault::token_sha256_hex(CALLER_TOKEN),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__BENCH__RIGHTS",
            r#"["token:read","client-token:read"]"#.to_owned(),
        ),
        ("IDBRIDGE__DATABASE__URL", db_url.to_owned()),
        ("IDBRIDGE__ORCID__REGISTRY", sim.base_url().to_owned()),
        ("IDBRIDGE__ORCID__CLIENT_ID", CLIENT_ID.to_owned()),
        ("IDBRIDGE__ORCID__CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ];
    let config = VaultConfig::from_sources(&Sources::new(DEFAULTS).env(env))?;
    let bus = Bus::in_memory("bench")?;
    let app = Application::build_with(
        config,
        Dependencies {
            bus: Some(bus.clone()),
            ..Dependencies::default()
        },
    )
    .await?;
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    let orcid = OrcidClient::new(
        ClientConfig::custom(sim.base_url(), CLIENT_ID, CLIENT_SECRET.into())?
            .with_retry(RetryPolicy::none()),
    )?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let vault = VaultClient::new(&base_url, CALLER_TOKEN.into())?;
    let mut ids: Vec<OrcidId> = Vec::new();
    for n in 0..USERS {
        let id = connect(&sim, &http, &orcid, &bus, &handoff_public, n).await?;
        ids.push(id);
    }
    // The connections are stored asynchronously (bus → vault): wait until all are readable.
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        while vault.access_token(id, "bench setup").await.is_err() {
            if Instant::now() > deadline {
                bail!("connection {id} was not stored within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let ids = Arc::new(ids);
    let user_rate = measure(&vault, {
        let ids = ids.clone();
        move |vault: VaultClient, i: usize| {
            let ids = ids.clone();
            async move {
                vault
                    .access_token(&ids[i % ids.len()], "bench")
                    .await
                    .map(|_| ())
            }
        }
    })
    .await?;
    println!("{label}: user token fetches through the API: {user_rate:.0}/s");
    let client_rate = measure(&vault, |vault: VaultClient, i: usize| async move {
        let scope = if i.is_multiple_of(2) {
            ClientScope::Webhook
        } else {
            ClientScope::ReadPublic
        };
        vault.client_token(scope, "bench").await.map(|_| ())
    })
    .await?;
    println!(
        "{label}: client-credentials token fetches through the API (memory cache): {client_rate:.0}/s"
    );

    shutdown.cancel();
    server.await??;
    sim.stop().await;
    Ok(())
}

/// Runs `fetch` from CONCURRENCY tasks: WARM_UP, then WINDOW counted; fetches per second.
async fn measure<F, Fut>(vault: &VaultClient, fetch: F) -> anyhow::Result<f64>
where
    F: Fn(VaultClient, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), token_vault::client::ClientError>> + Send,
{
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let (vault, fetch) = (vault.clone(), fetch.clone());
        let (counting, stop, done) = (counting.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                fetch(vault.clone(), i).await?;
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += CONCURRENCY;
            }
            Ok::<(), token_vault::client::ClientError>(())
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// A user at the simulator authorizes the client; the token response goes to the vault as
/// the portal would send it.
async fn connect(
    sim: &orcid_sim::SimHandle,
    http: &reqwest::Client,
    orcid: &OrcidClient,
    bus: &Bus,
    handoff_public: &idbridge_crypto::VaultPublicKey,
    n: usize,
) -> anyhow::Result<OrcidId> {
    let created: serde_json::Value = http
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&serde_json::json!({
            "given-names": "Bench", "family-name": format!("User {n}"),
            "email": format!("bench{n}-{}@mailinator.com", Uuid::new_v4().simple()), "password": "bench-password",
        }))
        .send()
        .await?
        .json()
        .await?;
    let id = OrcidId::parse(created["orcid"].as_str().context("no orcid")?)?;
    let url = format!(
        "{}&sim_user={id}&sim_decision=authorize",
        orcid
            .authorize_url(REDIRECT, Scopes::parse("/read-limited /activities/update"))
            .to_url()
    );
    let redirect = http.get(url).send().await?;
    let location = redirect
        .headers()
        .get("location")
        .context("no redirect")?
        .to_str()?
        .to_owned();
    let code = url::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let tokens = orcid.exchange_code(&code, REDIRECT).await?;
    let person_id = format!("P-BENCH-{n}");
    let event = IdConnected {
        orcid: id,
        person_id: person_id.clone(),
        name: tokens.name.clone(),
        scopes: tokens
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        sealed_token: token_vault::handoff::seal_tokens(handoff_public, &id, &person_id, &tokens)?,
        key_id: "hkbench".to_owned(),
        granted_at: chrono::Utc::now(),
    };
    bus.publish(&OutgoingMessage::event(&event)?).await?;
    Ok(id)
}
