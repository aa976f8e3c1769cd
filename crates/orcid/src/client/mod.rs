//! The ORCID HTTP client: OAuth, the member API v3.0 and webhooks.
//!
//! One [`OrcidClient`] per ORCID client id; clone it freely (clones share the connection
//! pool and the rate limiter).
//!
//! - [`config`]: where ORCID is ([`Endpoints`]: production, sandbox, or any URL such as a
//!   local simulator; HTTPS required off loopback), credentials, timeouts, retries.
//! - [`oauth`]: the authorize URL, code exchange, refresh, revocation, client credentials.
//! - [`api`]: reads, creates, updates, deletes, bulk works.
//! - [`webhook`]: register and unregister webhooks.
//! - [`rate_limit`]: the client-wide token bucket, behind a trait.
//! - [`retry`]: which requests are retried, and the back-off.
//!
//! Errors are [`crate::Error`]. Tokens are [`AccessToken`] / [`RefreshToken`], whose `Debug`
//! is redacted; no token is ever put in an error, a span or an event.

use std::fmt;
use std::sync::Arc;

use reqwest::redirect;
use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;

pub mod api;
pub mod config;
pub mod oauth;
pub mod rate_limit;
pub mod retry;
pub mod scope;
pub mod tokens;
mod transport;
pub mod webhook;

pub use api::{Resource, Section};
pub use config::{ClientConfig, Endpoints, Timeouts};
pub use oauth::{AuthorizeRequest, Prompt, Refresh};
pub use rate_limit::{GovernorRateLimiter, LimiterStats, RateLimit, RateLimiter, Unlimited};
pub use retry::RetryPolicy;
pub use scope::{Scope, Scopes};
pub use tokens::{AccessToken, ClientToken, IdToken, RefreshToken, Revocable, UserTokens};
pub use webhook::WebhookRegistration;

/// A client of one ORCID registry, for one ORCID client id.
///
/// ```
/// use orcid::client::{ClientConfig, OrcidClient};
///
/// # fn main() -> Result<(), orcid::Error> {
/// let client = OrcidClient::new(ClientConfig::custom(
///     "http://127.0.0.1:8090", // a local simulator; anything else must be https
///     "APP-674MCQQR985VZZQ2",
///     "client-secret".into(),
/// )?)?;
/// let _twin = client.clone(); // shares the rate limiter
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OrcidClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    client_id: String,
    client_secret: SecretString,
    retry: RetryPolicy,
    limiter: Arc<dyn RateLimiter>,
}

impl OrcidClient {
    /// A client with the in-process rate limiter of `config.rate_limit`.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty client id or secret, a zero timeout or rate, or an
    /// HTTP stack that cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let limiter = Arc::new(GovernorRateLimiter::new(config.rate_limit)?);
        OrcidClient::with_rate_limiter(config, limiter)
    }

    /// A client that takes its permits from `limiter` (e.g. one shared across replicas);
    /// `config.rate_limit` is then not used.
    ///
    /// # Errors
    /// As [`OrcidClient::new`].
    pub fn with_rate_limiter(
        config: ClientConfig,
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<Self, Error> {
        if config.client_id.trim().is_empty() {
            return Err(Error::Config(
                "client_id is empty; set it to the ORCID client id (APP-…)".to_owned(),
            ));
        }
        if config.client_secret.expose_secret().is_empty() {
            return Err(Error::Config(
                "client_secret is empty; set it to the ORCID client secret".to_owned(),
            ));
        }
        if config.timeouts.connect.is_zero() || config.timeouts.request.is_zero() {
            return Err(Error::Config(
                "timeouts must be greater than zero".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            // Tokens must never follow a redirect to another host; ORCID's one meaningful
            // redirect (301 for a deprecated record) is reported as an error instead.
            .redirect(redirect::Policy::none())
            .connect_timeout(config.timeouts.connect)
            .timeout(config.timeouts.request)
            .user_agent(config.user_agent.as_str())
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(OrcidClient {
            inner: Arc::new(Inner {
                http,
                endpoints: config.endpoints,
                client_id: config.client_id,
                client_secret: config.client_secret,
                retry: config.retry,
                limiter,
            }),
        })
    }

    /// Where this client sends its requests.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The ORCID client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// The rate limiter every request goes through.
    pub fn rate_limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.inner.limiter
    }
}

impl fmt::Debug for OrcidClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrcidClient")
            .field("endpoints", &self.inner.endpoints)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("retry", &self.inner.retry)
            .field("limiter", &self.inner.limiter)
            .finish()
    }
}
