//! Where ORCID is and how to talk to it: base URLs (with the HTTPS rule), credentials,
//! timeouts, retries, rate limit, user agent.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

use super::rate_limit::RateLimit;
use super::retry::RetryPolicy;
use crate::error::Error;

/// The base URLs of one ORCID registry (reference §0).
///
/// ORCID spreads itself over hosts: the OAuth pages and token endpoint on `orcid.org`, the
/// member API and webhooks on `api.orcid.org`. A simulator serves everything on one origin.
/// Only HTTPS is accepted, except on loopback (127.0.0.0/8, `::1`, `localhost`), so a
/// configuration can never send a token over plain HTTP to the network.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Validated, ends with `/`.
    oauth: String,
    /// Validated, ends with `/`.
    api: String,
}

impl Endpoints {
    /// The production registry: `https://orcid.org` and `https://api.orcid.org`.
    pub fn production() -> Self {
        Endpoints {
            oauth: "https://orcid.org/".to_owned(),
            api: "https://api.orcid.org/".to_owned(),
        }
    }

    /// The sandbox registry: `https://sandbox.orcid.org` and `https://api.sandbox.orcid.org`.
    pub fn sandbox() -> Self {
        Endpoints {
            oauth: "https://sandbox.orcid.org/".to_owned(),
            api: "https://api.sandbox.orcid.org/".to_owned(),
        }
    }

    /// One origin serving everything, such as a local simulator (`http://127.0.0.1:8090`).
    /// A path prefix is kept (`https://gateway.example/orcid` serves
    /// `https://gateway.example/orcid/oauth/token`).
    ///
    /// # Errors
    /// [`Error::InsecureUrl`] for `http://` off loopback; [`Error::Config`] for anything that
    /// is not an absolute http(s) URL without query or fragment.
    pub fn single_origin(base: &str) -> Result<Self, Error> {
        let url = parse_base(base)?;
        Ok(Endpoints {
            oauth: url.clone(),
            api: url,
        })
    }

    /// Separate bases for OAuth (`/oauth/authorize`, `/oauth/token`, `/oauth/revoke`) and for
    /// the API (`/v3.0/…` and webhooks).
    ///
    /// # Errors
    /// As [`Endpoints::single_origin`], for either URL.
    pub fn new(oauth_base: &str, api_base: &str) -> Result<Self, Error> {
        Ok(Endpoints {
            oauth: parse_base(oauth_base)?,
            api: parse_base(api_base)?,
        })
    }

    /// The OAuth base, ending with `/`.
    pub fn oauth_base(&self) -> &str {
        &self.oauth
    }

    /// The API base, ending with `/`.
    pub fn api_base(&self) -> &str {
        &self.api
    }

    /// `{oauth}/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}oauth/authorize", self.oauth)
    }

    /// `{oauth}/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}oauth/token", self.oauth)
    }

    /// `{oauth}/oauth/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}oauth/revoke", self.oauth)
    }

    /// `{api}/{relative}`; `relative` has no leading `/` and is already percent-encoded.
    pub(crate) fn api_url(&self, relative: &str) -> String {
        format!("{}{relative}", self.api)
    }
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("oauth", &self.oauth)
            .field("api", &self.api)
            .finish()
    }
}

fn parse_base(input: &str) -> Result<String, Error> {
    let trimmed = input.trim();
    let url = Url::parse(trimmed).map_err(|e| {
        Error::Config(format!(
            "ORCID base URL `{trimmed}` is not an absolute URL ({e}); write it as \
             https://host[:port][/prefix]"
        ))
    })?;
    check_scheme(&url, trimmed)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "ORCID base URL `{trimmed}` must not have a query or fragment"
        )));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(Error::Config(format!(
            "ORCID base URL `{trimmed}` has no host"
        )));
    }
    let mut base = url.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(base)
}

fn check_scheme(url: &Url, as_given: &str) -> Result<(), Error> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(Error::InsecureUrl {
            url: as_given.to_owned(),
            suggestion: format!("https{}", &as_given[as_given.find(':').unwrap_or(0)..]),
        }),
        other => Err(Error::Config(format!(
            "ORCID base URL `{as_given}` has scheme `{other}`; use https:// (or http:// on \
             loopback)"
        ))),
    }
}

/// 127.0.0.0/8, `::1` (and IPv4-mapped loopback), or the name `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| IpAddr::V4(v4).is_loopback())
        }
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Timeouts of one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection (TCP and TLS). Default 10 s.
    pub connect: Duration,
    /// The whole request, from connecting to the last byte of the answer. Default 30 s.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// Everything [`OrcidClient::new`](super::OrcidClient::new) needs.
///
/// ```
/// use std::time::Duration;
/// use orcid::client::{ClientConfig, RetryPolicy};
///
/// let config = ClientConfig::sandbox("APP-674MCQQR985VZZQ2", "client-secret".into())
///     .with_retry(RetryPolicy::none())
///     .with_request_timeout(Duration::from_secs(5));
/// assert_eq!(config.endpoints.token_url(), "https://sandbox.orcid.org/oauth/token");
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where ORCID is.
    pub endpoints: Endpoints,
    /// The member API client id (`APP-…`).
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
    /// Connect and request timeouts.
    pub timeouts: Timeouts,
    /// When idempotent requests are retried.
    pub retry: RetryPolicy,
    /// The client-wide rate limit (ORCID's member limit: 24/s, burst 40).
    pub rate_limit: RateLimit,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl ClientConfig {
    /// A client of `endpoints` with default timeouts, retry policy and rate limit.
    pub fn new(
        endpoints: Endpoints,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        ClientConfig {
            endpoints,
            client_id: client_id.into(),
            client_secret,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            rate_limit: RateLimit::default(),
            user_agent: format!("idbridge-orcid/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// A client of the production registry.
    pub fn production(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ClientConfig::new(Endpoints::production(), client_id, client_secret)
    }

    /// A client of the sandbox registry.
    pub fn sandbox(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ClientConfig::new(Endpoints::sandbox(), client_id, client_secret)
    }

    /// A client of one origin serving everything (a local simulator, a gateway).
    ///
    /// # Errors
    /// See [`Endpoints::single_origin`].
    pub fn custom(
        base_url: &str,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Result<Self, Error> {
        Ok(ClientConfig::new(
            Endpoints::single_origin(base_url)?,
            client_id,
            client_secret,
        ))
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the client-wide rate limit.
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets the whole-request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Sets the `User-Agent` header.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_a_prefix() {
        let e = Endpoints::single_origin("https://gw.example/orcid").unwrap();
        assert_eq!(e.token_url(), "https://gw.example/orcid/oauth/token");
        let e = Endpoints::single_origin("http://127.0.0.1:8090").unwrap();
        assert_eq!(e.revoke_url(), "http://127.0.0.1:8090/oauth/revoke");
    }

    #[test]
    fn presets() {
        assert_eq!(
            Endpoints::production().authorize_url(),
            "https://orcid.org/oauth/authorize"
        );
        assert_eq!(
            Endpoints::sandbox().api_base(),
            "https://api.sandbox.orcid.org/"
        );
    }
}
