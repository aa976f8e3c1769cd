//! Shared test helpers: a simulator on port 0 with one member client, users, and tokens.
//!
//! Signatures here are relied on by every test file (platform and records side); extend, don't
//! change them.

use orcid::OrcidId;
use orcid_sim::{SimConfig, SimHandle};
use serde::Deserialize;

/// The member client every test simulator registers.
pub const TEST_CLIENT_ID: &str = "APP-TEST000000000001";
/// Its secret (test data, not a real credential).
pub const TEST_CLIENT_SECRET: &str = "test-client-secret-0001";
/// Its one registered redirect URI (nothing listens there; tests read the 302 instead).
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// A second member client, for "another client" cases.
pub const OTHER_CLIENT_ID: &str = "APP-TEST000000000002";
/// Its secret (test data).
pub const OTHER_CLIENT_SECRET: &str = "test-client-secret-0002";
/// Password given to every user made by [`create_user`] (test data).
pub const TEST_USER_PASSWORD: &str = "test-user-password";

/// The token endpoint's JSON answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenJson {
    /// UUIDv4 access token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// UUIDv4 refresh token.
    pub refresh_token: String,
    /// Seconds; 631138518 for a fresh token.
    pub expires_in: i64,
    /// Space-separated scopes.
    pub scope: String,
    /// The record's display name (user tokens).
    #[serde(default)]
    pub name: Option<String>,
    /// The record's iD (`None` for client credentials).
    #[serde(default)]
    pub orcid: Option<String>,
    /// Present when `openid` was asked.
    #[serde(default)]
    pub id_token: Option<String>,
}

/// The config [`spawn_sim`] uses: [`SimConfig::for_tests`] with the two test clients.
pub fn test_config() -> SimConfig {
    SimConfig::for_tests()
        .with_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI)
        .with_client(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, TEST_REDIRECT_URI)
}

/// Starts a simulator on 127.0.0.1:0 with [`test_config`].
pub async fn spawn_sim() -> SimHandle {
    spawn_sim_with(test_config()).await
}

/// Starts a simulator with a custom config (add the test clients yourself, or start from
/// [`test_config`]).
pub async fn spawn_sim_with(config: SimConfig) -> SimHandle {
    orcid_sim::spawn(config).await.expect("simulator starts")
}

/// A reqwest client that does not follow redirects (tests read the 302s).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// Creates a user (and their record) through `POST /_sim/users`; returns the new iD.
pub async fn create_user(sim: &SimHandle) -> OrcidId {
    create_named_user(sim, "Sofia", "Garcia").await
}

/// Like [`create_user`] with a chosen name; the e-mail is unique per call.
pub async fn create_named_user(sim: &SimHandle, given: &str, family: &str) -> OrcidId {
    let n = NEXT_EMAIL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let email = format!("user{n}-{}@mailinator.com", std::process::id());
    let res = http()
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&serde_json::json!({
            "given-names": given,
            "family-name": family,
            "email": email,
            "password": TEST_USER_PASSWORD,
        }))
        .send()
        .await
        .expect("POST /_sim/users");
    assert_eq!(res.status(), 201, "POST /_sim/users");
    let body: serde_json::Value = res.json().await.expect("json");
    OrcidId::parse(body["orcid"].as_str().expect("orcid")).expect("valid iD")
}

static NEXT_EMAIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Headless approval by `orcid` of [`TEST_CLIENT_ID`] for `scopes` (space-separated, e.g.
/// `"/read-limited /activities/update"`), then the code exchange. Panics on any failure.
pub async fn connect(sim: &SimHandle, orcid: &OrcidId, scopes: &str) -> TokenJson {
    connect_client(sim, orcid, scopes, TEST_CLIENT_ID, TEST_CLIENT_SECRET).await
}

/// [`connect`] for any registered client (redirect [`TEST_REDIRECT_URI`]).
pub async fn connect_client(
    sim: &SimHandle,
    orcid: &OrcidId,
    scopes: &str,
    client_id: &str,
    client_secret: &str,
) -> TokenJson {
    let code = authorize_code(sim, orcid, scopes, client_id).await;
    let res = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Accept", "application/json")
        .form(&[
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", TEST_REDIRECT_URI),
        ])
        .send()
        .await
        .expect("POST /oauth/token");
    assert_eq!(res.status(), 200, "code exchange");
    res.json().await.expect("token json")
}

/// Headless approval only: returns the authorization code from the 302.
pub async fn authorize_code(
    sim: &SimHandle,
    orcid: &OrcidId,
    scopes: &str,
    client_id: &str,
) -> String {
    let res = http()
        .get(format!("{}/oauth/authorize", sim.base_url()))
        .query(&[
            ("client_id", client_id),
            ("response_type", "code"),
            ("scope", scopes),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("sim_user", &orcid.to_string()),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await
        .expect("GET /oauth/authorize");
    assert_eq!(res.status(), 302, "headless authorize");
    let location = res.headers()["location"].to_str().expect("ascii location");
    let url = url::Url::parse(location).expect("absolute location");
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect")
}

/// A client-credentials token of [`TEST_CLIENT_ID`] for `scope` (`/read-public`, `/webhook`).
pub async fn client_credentials(sim: &SimHandle, scope: &str) -> TokenJson {
    let res = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Accept", "application/json")
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ])
        .send()
        .await
        .expect("POST /oauth/token");
    assert_eq!(res.status(), 200, "client credentials");
    res.json().await.expect("token json")
}
