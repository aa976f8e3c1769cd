//! Simulator configuration: clients, rate limit, webhook timing, listen address.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

/// A registered API client (an ORCID "member" client: every member scope, webhooks included).
///
/// `Debug` redacts the secret.
#[derive(Clone)]
pub struct SimClient {
    /// `client_id`, e.g. `APP-674MCQQR985VZZQ2`.
    pub id: String,
    /// `client_secret`; exposed only to check client authentication.
    pub secret: SecretString,
    /// Registered redirect URIs, matched as ORCID matches them (full URI, or scheme + host).
    pub redirect_uris: Vec<String>,
    /// Shown in `source-name` and on the consent page.
    pub name: String,
}

impl fmt::Debug for SimClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimClient")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("name", &self.name)
            .finish()
    }
}

impl SimClient {
    /// A member client with one registered redirect URI and the name `Client {id}`.
    pub fn new(id: &str, secret: &str, redirect_uri: &str) -> Self {
        SimClient {
            id: id.to_owned(),
            secret: SecretString::from(secret.to_owned()),
            redirect_uris: vec![redirect_uri.to_owned()],
            name: format!("Client {id}"),
        }
    }

    /// Parses the command-line form `ID:SECRET:REDIRECT` (REDIRECT is everything after the
    /// second colon, so it may contain colons itself).
    pub fn parse_cli(spec: &str) -> Result<Self, ClientSpecError> {
        let mut parts = spec.splitn(3, ':');
        let (Some(id), Some(secret), Some(redirect)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ClientSpecError::Shape);
        };
        if id.is_empty() || secret.is_empty() || redirect.is_empty() {
            return Err(ClientSpecError::Shape);
        }
        url::Url::parse(redirect).map_err(|e| ClientSpecError::Redirect(e.to_string()))?;
        Ok(SimClient::new(id, secret, redirect))
    }
}

/// A `--client` value that is not `ID:SECRET:REDIRECT`.
#[derive(Debug, thiserror::Error)]
pub enum ClientSpecError {
    /// Fewer than three non-empty parts.
    #[error(
        "expected ID:SECRET:REDIRECT (e.g. APP-674MCQQR985VZZQ2:secret:http://127.0.0.1:8080/callback)"
    )]
    Shape,
    /// The redirect part is not an absolute URI.
    #[error("the redirect URI is not an absolute URI: {0}")]
    Redirect(String),
}

/// ORCID's rate limit: requests per second per client and the burst beyond which it answers 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second (ORCID: 24).
    pub per_second: u32,
    /// Burst size (ORCID: 40).
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 24,
            burst: 40,
        }
    }
}

/// Everything the simulator can be told at start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to bind. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Origin written into `Location` headers, `iss`, source blocks and paths. Defaults to
    /// `http://{bound address}`.
    pub public_url: Option<String>,
    /// Registered clients.
    pub clients: Vec<SimClient>,
    /// `None`: no rate limit (the default, as for tests and benchmarks).
    pub rate_limit: Option<RateLimit>,
    /// How often pending webhook callbacks are delivered (ORCID: about five minutes).
    pub webhook_interval: Duration,
    /// Retry delay unit after a failed callback; the n-th retry waits n × this (ORCID is linear).
    pub webhook_retry_delay: Duration,
    /// Failed callbacks after which a webhook stops firing.
    pub webhook_max_attempts: u32,
    /// How long one callback may take before it counts as failed.
    pub webhook_timeout: Duration,
    /// What `revoke_old` means when a refresh request leaves it out (ORCID is ambiguous).
    pub revoke_old_default: bool,
    /// Lifetime of an `id_token`.
    pub id_token_lifetime: Duration,
    /// actix worker threads.
    pub workers: usize,
    /// Serve `/oauth/jwks` as the single bare JWK object ORCID's documented controller returns
    /// (§1.4) instead of the standard `{"keys":[…]}` set (the default).
    pub jwks_bare: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            public_url: None,
            clients: Vec::new(),
            rate_limit: None,
            webhook_interval: Duration::from_secs(5),
            webhook_retry_delay: Duration::from_secs(10),
            webhook_max_attempts: 15,
            webhook_timeout: Duration::from_secs(10),
            revoke_old_default: false,
            id_token_lifetime: Duration::from_secs(600),
            workers: 2,
            jwks_bare: false,
        }
    }
}

impl SimConfig {
    /// Port 0 on loopback, webhook timing short enough for tests, one worker.
    pub fn for_tests() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_interval: Duration::from_millis(200),
            webhook_retry_delay: Duration::from_millis(100),
            webhook_max_attempts: 5,
            webhook_timeout: Duration::from_secs(2),
            workers: 1,
            ..SimConfig::default()
        }
    }

    /// Adds a member client with one registered redirect URI.
    pub fn with_client(mut self, id: &str, secret: &str, redirect_uri: &str) -> Self {
        self.clients.push(SimClient::new(id, secret, redirect_uri));
        self
    }

    /// Turns ORCID's member rate limit (24/s, burst 40) on.
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
}
