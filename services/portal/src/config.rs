//! The portal's configuration: embedded defaults (`config.default.toml`), an optional TOML
//! file, then `IDBRIDGE__…` environment variables; validated at load, so an http redirect URI
//! off loopback, a development sign-in on a public address or a missing session key stops
//! the start with the key and the fix.

use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
pub use idbridge_platform::bus::BusConfig;
use idbridge_platform::config::{ConfigError, Problems, Sources, Validate, env_var_name};
pub use idbridge_platform::database::DatabaseConfig;
pub use idbridge_platform::orcid::OrcidConfig;
use idbridge_platform::telemetry::TelemetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Everything the portal reads. Unknown top-level sections are ignored so one file can
/// configure every service.
#[derive(Clone, Debug, Deserialize)]
pub struct PortalConfig {
    /// `[portal]`.
    pub portal: PortalSection,
    /// `[database]`: the portal's outbox.
    pub database: DatabaseConfig,
    /// `[bus]`.
    pub bus: BusConfig,
    /// `[orcid]`: the member client the researchers authorize.
    pub orcid: OrcidConfig,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[portal]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSection {
    /// Address to listen on.
    pub host: String,
    /// Port (0: any free port).
    pub port: u16,
    /// HTTP worker threads.
    pub workers: usize,
    /// The public origin (`https://orcid.example.edu`); the redirect URI is
    /// `{public_url}/orcid/callback`.
    pub public_url: String,
    /// 64 bytes, standard base64: encrypts the session cookie.
    #[serde(default)]
    pub session_key: Option<SecretString>,
    /// The scopes asked of ORCID (space-separated).
    pub scopes: String,
    /// How long an authorization at ORCID may take.
    pub state_ttl_secs: u64,
    /// How long a sign-in lasts.
    pub session_ttl_secs: u64,
    /// Pre-fill ORCID's registration form from the sign-in.
    pub prefill: bool,
    /// Person ids of administrators.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Services whose parked messages administrators may see and replay.
    #[serde(default = "default_parked_services")]
    pub parked_services: Vec<String>,
    /// The institution's words on the connect page.
    pub institution: Institution,
    /// How people sign in.
    pub signin: Signin,
    /// The token vault.
    pub vault: VaultSection,
    /// The writer's read API (items and their status).
    #[serde(default)]
    pub writer: WriterSection,
}

/// `[portal.institution]`: what the connect page says.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    /// The institution's name.
    pub name: String,
    /// What the integration does.
    pub what: String,
    /// Why connect.
    pub why: String,
    /// How the data is used.
    pub how: String,
}

/// The sign-in methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigninMethod {
    /// A form asking for a person id: loopback only.
    Dev,
    /// A trusted reverse proxy sets the person id in a header.
    Header,
    /// OpenID Connect against the institution's identity provider.
    Oidc,
}

/// `[portal.signin]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signin {
    /// Which method.
    pub method: SigninMethod,
    /// `[portal.signin.header]`.
    #[serde(default)]
    pub header: Option<HeaderSignin>,
    /// `[portal.signin.oidc]`.
    #[serde(default)]
    pub oidc: Option<OidcSignin>,
}

/// `[portal.signin.header]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSignin {
    /// The header holding the person id.
    pub person_id: String,
    /// The header holding the display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The header holding the e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// The header holding the groups (comma- or semicolon-separated).
    #[serde(default)]
    pub groups: Option<String>,
    /// Members of this group are administrators.
    #[serde(default)]
    pub admin_group: Option<String>,
    /// Peer addresses whose headers are believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// `[portal.signin.oidc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSignin {
    /// The issuer; discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The portal's client id at the identity provider.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
    /// Scopes asked (must include `openid`).
    #[serde(default = "default_oidc_scopes")]
    pub scopes: String,
    /// The claim holding the person id.
    #[serde(default = "default_person_claim")]
    pub person_id_claim: String,
    /// The claim holding the groups or roles (a list or a string).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Members of this group are administrators.
    #[serde(default)]
    pub admin_group: Option<String>,
}

fn default_parked_services() -> Vec<String> {
    vec!["writer".to_owned(), "token-vault".to_owned()]
}

fn default_oidc_scopes() -> String {
    "openid profile email".to_owned()
}

fn default_person_claim() -> String {
    "sub".to_owned()
}

/// `[portal.vault]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// The vault's base URL.
    pub url: String,
    /// The portal's caller token at the vault.
    #[serde(default)]
    pub caller_token: Option<SecretString>,
    /// The hand-off public key, `id:BASE64`; unset: asked of the vault.
    #[serde(default)]
    pub handoff_key: Option<String>,
}

/// `[portal.writer]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterSection {
    /// The writer's base URL; unset: the researcher page lists no items.
    #[serde(default)]
    pub url: Option<String>,
    /// The portal's caller token at the writer (rights `items:read`, `invitations:read`,
    /// `invitations:manage`).
    #[serde(default)]
    pub caller_token: Option<SecretString>,
}

impl PortalConfig {
    /// Loads defaults, then `file` when given, then the process environment.
    ///
    /// # Errors
    /// Every problem found, each with its key and fix.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Sources::new(DEFAULTS).file_opt(file).process_env().load()
    }

    /// Loads from explicit [`Sources`] (start from [`DEFAULTS`]).
    ///
    /// # Errors
    /// As [`PortalConfig::load`].
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        sources.load()
    }

    /// `{public_url}/orcid/callback`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/orcid/callback",
            self.portal.public_url.trim().trim_end_matches('/')
        )
    }

    /// Whether the portal is served on loopback only (development).
    pub fn is_loopback(&self) -> bool {
        url::Url::parse(self.portal.public_url.trim())
            .ok()
            .is_some_and(|u| host_is_loopback(&u))
    }

    /// Whether the public URL is https (then HSTS is sent).
    pub fn is_https(&self) -> bool {
        // `Url` lower-cases the scheme, so `HTTPS://` counts too.
        url::Url::parse(self.portal.public_url.trim())
            .ok()
            .is_some_and(|u| u.scheme().eq_ignore_ascii_case("https"))
    }

    /// The session cookie key: the configured one, or a random one on loopback.
    ///
    /// # Errors
    /// A key that is not 64 bytes of base64, or none off loopback (validation checked it).
    pub fn session_key(&self) -> Result<[u8; 64], String> {
        match &self.portal.session_key {
            Some(key) => decode_session_key(key),
            None if self.is_loopback() => {
                let mut key = [0u8; 64];
                aws_lc_rs::rand::fill(&mut key)
                    .map_err(|_| "the system random generator failed".to_owned())?;
                Ok(key)
            }
            None => Err("no session key".to_owned()),
        }
    }

    /// The configured hand-off key (`id`, key).
    ///
    /// # Errors
    /// Not `id:BASE64` or not a usable X25519 public key.
    pub fn handoff_key(&self) -> Result<Option<(String, idbridge_crypto::VaultPublicKey)>, String> {
        let Some(text) = &self.portal.vault.handoff_key else {
            return Ok(None);
        };
        let (id, key) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| "is not `id:BASE64`".to_owned())?;
        let key = key
            .trim()
            .parse::<idbridge_crypto::VaultPublicKey>()
            .map_err(|e| e.to_string())?;
        Ok(Some((id.trim().to_owned(), key)))
    }
}

fn decode_session_key(key: &SecretString) -> Result<[u8; 64], String> {
    let bytes = STANDARD
        .decode(key.expose_secret().trim())
        .map_err(|_| "is not standard base64".to_owned())?;
    <[u8; 64]>::try_from(bytes.as_slice())
        .map_err(|_| format!("decodes to {} bytes, not 64", bytes.len()))
}

/// Whether a listen address (`portal.host`) is loopback: 127.0.0.0/8, ::1 (with or
/// without brackets) or `localhost`. `0.0.0.0`, `::` and any other name are not.
pub(crate) fn host_str_is_loopback(host: &str) -> bool {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// 127.0.0.0/8, ::1 or `localhost`.
pub(crate) fn host_is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl Validate for PortalConfig {
    fn validate(&self, problems: &mut Problems) {
        let portal = &self.portal;
        let institution = &portal.institution;
        for (key, text) in [
            ("portal.institution.name", &institution.name),
            ("portal.institution.what", &institution.what),
            ("portal.institution.why", &institution.why),
            ("portal.institution.how", &institution.how),
        ] {
            if text.trim().is_empty() {
                problems.add(
                    key,
                    "is empty",
                    "write what researchers should read on the connect page (ORCID's integration review checks it)",
                );
            } else if text.contains("CHANGE-ME") {
                problems.add(
                    key,
                    "still holds the CHANGE-ME placeholder",
                    "write the institution's own words for the connect page",
                );
            }
        }
        if portal.host.trim().is_empty() {
            problems.add(
                "portal.host",
                "is empty",
                "set it to the address to listen on (0.0.0.0 in a container)",
            );
        }
        if portal.workers == 0 {
            problems.add("portal.workers", "is 0", "use at least 1");
        }
        match url::Url::parse(portal.public_url.trim()) {
            Err(_) => problems.add(
                "portal.public_url",
                "is not a URL",
                "write the portal's public origin, e.g. https://orcid.example.edu",
            ),
            Ok(url) => {
                if url.scheme() != "https" && !(url.scheme() == "http" && host_is_loopback(&url)) {
                    problems.add(
                        "portal.public_url",
                        "is not https://, so the ORCID redirect URI would not be either",
                        "serve the portal over https (plain http is accepted on loopback only)",
                    );
                }
            }
        }
        if orcid::client::Scopes::parse(&portal.scopes).is_empty() {
            problems.add(
                "portal.scopes",
                "is empty",
                "ask for \"/read-limited /activities/update\"",
            );
        }
        if portal.state_ttl_secs == 0 || portal.session_ttl_secs == 0 {
            problems.add(
                "portal.state_ttl_secs",
                "or portal.session_ttl_secs is 0",
                "use 600 and 28800",
            );
        }
        match &portal.session_key {
            Some(key) => {
                if let Err(e) = decode_session_key(key) {
                    problems.add(
                        "portal.session_key",
                        e,
                        "generate one with `openssl rand -base64 64`",
                    );
                }
            }
            None if !self.is_loopback() => problems.add(
                "portal.session_key",
                "is not set, and the portal is not on loopback",
                format!(
                    "set {} to 64 random bytes in base64 (`openssl rand -base64 64`)",
                    env_var_name("portal.session_key")
                ),
            ),
            None => {}
        }
        self.validate_signin(problems);
        if portal.vault.caller_token.is_none() {
            problems.add(
                "portal.vault.caller_token",
                "is not set, so the portal cannot show or end connections",
                format!(
                    "set {} to the token the vault knows the portal by (rights connections:list and connections:disconnect)",
                    env_var_name("portal.vault.caller_token")
                ),
            );
        }
        if url::Url::parse(portal.vault.url.trim()).is_err() {
            problems.add(
                "portal.vault.url",
                "is not a URL",
                "write the vault's base URL, e.g. http://token-vault:8081",
            );
        }
        if let Err(e) = self.handoff_key() {
            problems.add(
                "portal.vault.handoff_key",
                e,
                "write `id:BASE64` as the vault's /v1/handoff-key answers, or unset it",
            );
        }
        if let Some(url) = &portal.writer.url {
            if url::Url::parse(url.trim()).is_err() {
                problems.add(
                    "portal.writer.url",
                    "is not a URL",
                    "write the writer's base URL, e.g. http://writer:8082",
                );
            }
            if portal.writer.caller_token.is_none() {
                problems.add(
                    "portal.writer.caller_token",
                    "is not set while portal.writer.url is",
                    format!(
                        "set {} to the portal's token at the writer (right items:read)",
                        env_var_name("portal.writer.caller_token")
                    ),
                );
            }
        }
        self.database.validate(problems);
        self.bus.validate(problems);
        self.orcid.validate(problems);
        self.telemetry.validate(problems);
    }
}

impl PortalConfig {
    fn validate_signin(&self, problems: &mut Problems) {
        let signin = &self.portal.signin;
        match signin.method {
            SigninMethod::Dev => {
                if !self.is_loopback() {
                    problems.add(
                        "portal.signin.method",
                        "is `dev`, which lets anyone claim any person id, on a public address",
                        "use `header` (behind a Shibboleth/SAML or oauth2-proxy) or `oidc`",
                    );
                }
                if !host_str_is_loopback(&self.portal.host) {
                    problems.add(
                        "portal.host",
                        "is not a loopback address while portal.signin.method is `dev`, \
                         which would let anyone on the network sign in as any person (or admin)",
                        "listen on 127.0.0.1, ::1 or localhost, or use signin method `header` or `oidc`",
                    );
                }
            }
            SigninMethod::Header => match &signin.header {
                None => problems.add(
                    "portal.signin.header",
                    "is missing while portal.signin.method is `header`",
                    "set portal.signin.header.person_id and trusted_proxies",
                ),
                Some(header) => {
                    if header.person_id.trim().is_empty() {
                        problems.add(
                            "portal.signin.header.person_id",
                            "is empty",
                            "name the header the proxy sets, e.g. X-Remote-User",
                        );
                    }
                    if header.trusted_proxies.is_empty() {
                        problems.add(
                            "portal.signin.header.trusted_proxies",
                            "is empty, so no request could sign in",
                            "list the reverse proxy's addresses, e.g. [\"10.0.0.5\"]",
                        );
                    }
                }
            },
            SigninMethod::Oidc => match &signin.oidc {
                None => problems.add(
                    "portal.signin.oidc",
                    "is missing while portal.signin.method is `oidc`",
                    "set portal.signin.oidc.issuer, client_id and client_secret",
                ),
                Some(oidc) => {
                    match url::Url::parse(oidc.issuer.trim()) {
                        Ok(url)
                            if url.scheme() == "https"
                                || (url.scheme() == "http" && host_is_loopback(&url)) => {}
                        _ => problems.add(
                            "portal.signin.oidc.issuer",
                            "is not an https:// URL",
                            "write the identity provider's issuer (https; http on loopback only)",
                        ),
                    }
                    if oidc.client_id.trim().is_empty() {
                        problems.add(
                            "portal.signin.oidc.client_id",
                            "is empty",
                            "the client id the identity provider issued to the portal",
                        );
                    }
                    if !oidc.scopes.split_whitespace().any(|s| s == "openid") {
                        problems.add(
                            "portal.signin.oidc.scopes",
                            "lacks `openid`",
                            "ask for \"openid profile email\"",
                        );
                    }
                }
            },
        }
    }
}
