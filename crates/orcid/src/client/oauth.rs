//! OAuth 2.0 with ORCID (reference §1): the authorize URL, the code exchange, refresh,
//! revocation and client-credentials tokens.

use std::time::Duration;

use reqwest::Method;
use secrecy::ExposeSecret;

use super::OrcidClient;
use super::scope::Scopes;
use super::tokens::{
    ClientToken, RefreshToken, Revocable, UserTokens, parse_token_answer, revocable_secret,
};
use super::transport::{Answer, PLAIN_JSON, Request, form, whole_seconds};
use crate::error::Error;
use crate::id::OrcidId;

/// The OpenID Connect `prompt` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// `login`: make the user sign in again even with an ORCID session.
    Login,
    /// `none`: return at once, with `error=login_required` or `interaction_required` when
    /// the user would have to do something.
    None,
    /// `confirm`: show the consent screen even if consent was given before.
    Confirm,
}

impl Prompt {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::Login => "login",
            Prompt::None => "none",
            Prompt::Confirm => "confirm",
        }
    }
}

/// The browser redirect to ORCID's consent page (reference §1.1), built with
/// [`OrcidClient::authorize_url`].
///
/// Parameters are written in a fixed order (`client_id`, `response_type`, `scope`,
/// `redirect_uri`, then the optional ones as set) and form-encoded: scopes are joined by a
/// space, which is written `+`; `@` in an e-mail is written `%40`.
///
/// ```
/// use orcid::client::{ClientConfig, OrcidClient, Prompt, Scope};
///
/// # fn main() -> Result<(), orcid::Error> {
/// let client = OrcidClient::new(ClientConfig::sandbox("APP-674MCQQR985VZZQ2", "s".into()))?;
/// let url = client
///     .authorize_url("https://idbridge.example/orcid/callback", [Scope::ReadLimited, Scope::ActivitiesUpdate])
///     .state("opaque-csrf-value")
///     .prompt(Prompt::Login)
///     .to_url();
/// assert!(url.starts_with("https://sandbox.orcid.org/oauth/authorize?client_id=APP-674MCQQR985VZZQ2&response_type=code&scope=%2Fread-limited+%2Factivities%2Fupdate&"));
/// # Ok(()) }
/// ```
///
/// Its `Debug` hides `state` and `nonce` (anti-forgery values) and the e-mail and names
/// (personal data); `Display` and [`to_url`](AuthorizeRequest::to_url) give the full URL.
#[derive(Clone)]
#[must_use = "call to_url() to get the URL"]
pub struct AuthorizeRequest {
    endpoint: String,
    client_id: String,
    response_type: String,
    scopes: Scopes,
    redirect_uri: String,
    optional: Vec<(&'static str, String)>,
}

impl AuthorizeRequest {
    fn set(mut self, key: &'static str, value: String) -> Self {
        self.optional.retain(|(k, _)| *k != key);
        self.optional.push((key, value));
        self
    }

    /// `state`: an opaque value returned unchanged with the code; bind it to the browser
    /// session to stop cross-site request forgery.
    pub fn state(self, state: impl Into<String>) -> Self {
        self.set("state", state.into())
    }

    /// `prompt` (OpenID Connect).
    pub fn prompt(self, prompt: Prompt) -> Self {
        self.set("prompt", prompt.as_str().to_owned())
    }

    /// `lang`: the language of ORCID's pages (`en`, `de`, `zh_CN`, …).
    pub fn lang(self, lang: impl Into<String>) -> Self {
        self.set("lang", lang.into())
    }

    /// `nonce` (OpenID Connect): copied into the `id_token`.
    pub fn nonce(self, nonce: impl Into<String>) -> Self {
        self.set("nonce", nonce.into())
    }

    /// `show_login`: `false` opens the registration form instead of the sign-in form.
    pub fn show_login(self, show_login: bool) -> Self {
        self.set("show_login", show_login.to_string())
    }

    /// `given_names`: pre-fills registration.
    pub fn given_names(self, given_names: impl Into<String>) -> Self {
        self.set("given_names", given_names.into())
    }

    /// `family_names`: pre-fills registration.
    pub fn family_names(self, family_names: impl Into<String>) -> Self {
        self.set("family_names", family_names.into())
    }

    /// `email`: pre-fills sign-in (a known address) or registration.
    pub fn email(self, email: impl Into<String>) -> Self {
        self.set("email", email.into())
    }

    /// `orcid`: pre-fills sign-in with this iD.
    pub fn orcid(self, orcid: &OrcidId) -> Self {
        self.set("orcid", orcid.path())
    }

    /// `response_type`; `code` (the default) for the authorization-code flow.
    pub fn response_type(mut self, response_type: impl Into<String>) -> Self {
        self.response_type = response_type.into();
        self
    }

    /// The URL to redirect the browser to.
    pub fn to_url(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", &self.response_type)
            .append_pair("scope", &self.scopes.to_string())
            .append_pair("redirect_uri", &self.redirect_uri);
        for (key, value) in &self.optional {
            query.append_pair(key, value);
        }
        format!("{}?{}", self.endpoint, query.finish())
    }
}

/// The optional parameters whose values `Debug` does not print.
const HIDDEN_IN_DEBUG: [&str; 5] = ["state", "nonce", "email", "given_names", "family_names"];

impl std::fmt::Debug for AuthorizeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let optional: Vec<(&str, &str)> = self
            .optional
            .iter()
            .map(|(key, value)| {
                if HIDDEN_IN_DEBUG.contains(key) {
                    (*key, "[REDACTED]")
                } else {
                    (*key, value.as_str())
                }
            })
            .collect();
        f.debug_struct("AuthorizeRequest")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("response_type", &self.response_type)
            .field("scopes", &self.scopes)
            .field("redirect_uri", &self.redirect_uri)
            .field("optional", &optional)
            .finish()
    }
}

impl std::fmt::Display for AuthorizeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_url())
    }
}

/// How to refresh: `revoke_old` is always sent (ORCID's default is ambiguous, reference
/// §1.3), so it has no default here either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// Whether ORCID should revoke the access token the refresh token belongs to.
    pub revoke_old: bool,
    /// A narrower set of scopes for the new token (a subset of the old one's).
    pub scopes: Option<Scopes>,
    /// A shorter lifetime for the new token (not past the old one's expiry).
    pub expires_in: Option<Duration>,
}

impl Refresh {
    /// Refresh, and revoke the old access token (`revoke_old=true`).
    pub fn revoking_old() -> Self {
        Refresh {
            revoke_old: true,
            scopes: None,
            expires_in: None,
        }
    }

    /// Refresh and keep the old access token working (`revoke_old=false`).
    pub fn keeping_old() -> Self {
        Refresh {
            revoke_old: false,
            ..Refresh::revoking_old()
        }
    }

    /// Asks for these scopes only.
    pub fn with_scopes(mut self, scopes: impl Into<Scopes>) -> Self {
        self.scopes = Some(scopes.into());
        self
    }

    /// Asks for this lifetime.
    pub fn with_expires_in(mut self, expires_in: Duration) -> Self {
        self.expires_in = Some(expires_in);
        self
    }
}

impl OrcidClient {
    /// The URL that sends a user to ORCID to sign in and grant `scopes` to this client;
    /// ORCID then redirects the browser to `redirect_uri` with `code` (and `state`).
    pub fn authorize_url(
        &self,
        redirect_uri: impl Into<String>,
        scopes: impl Into<Scopes>,
    ) -> AuthorizeRequest {
        AuthorizeRequest {
            endpoint: self.inner.endpoints.authorize_url(),
            client_id: self.inner.client_id.clone(),
            response_type: "code".to_owned(),
            scopes: scopes.into(),
            redirect_uri: redirect_uri.into(),
            optional: Vec::new(),
        }
    }

    /// Exchanges an authorization code for the user's tokens (`grant_type=authorization_code`).
    /// `redirect_uri` must be the one used in the authorize URL.
    ///
    /// Not retried once sent: a code is single-use, so an unknown outcome is
    /// [`Error::OutcomeUnknown`] and the user has to authorize again.
    #[tracing::instrument(skip_all, fields(client_id = %self.inner.client_id))]
    pub async fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<UserTokens, Error> {
        let secret = self.inner.client_secret.expose_secret();
        let body = form(&[
            ("client_id", &self.inner.client_id),
            ("client_secret", secret),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ]);
        let answer = self
            .token_request(
                body,
                "exchange authorization code",
                false,
                vec![secret, code],
            )
            .await?;
        let status = answer.status.as_u16();
        parse_token_answer(status, &answer.body)
            .and_then(|t| t.into_user_tokens(status))
            .map_err(|e| e.outcome_unknown("exchange authorization code"))
            .inspect(|t| tracing::info!(orcid = %t.orcid, scopes = %t.scopes, "authorization code exchanged"))
    }

    /// Gets a new access token (and refresh token) with a refresh token
    /// (`grant_type=refresh_token`). `revoke_old` is always sent.
    ///
    /// Not retried once sent (with `revoke_old` the old pair may already be dead): an unknown
    /// outcome is [`Error::OutcomeUnknown`].
    #[tracing::instrument(skip_all, fields(client_id = %self.inner.client_id, revoke_old = options.revoke_old))]
    pub async fn refresh(
        &self,
        refresh_token: &RefreshToken,
        options: &Refresh,
    ) -> Result<UserTokens, Error> {
        let secret = self.inner.client_secret.expose_secret();
        let scope = options.scopes.as_ref().map(Scopes::to_string);
        let expires_in = options.expires_in.map(|d| whole_seconds(d).to_string());
        let mut pairs: Vec<(&str, &str)> = vec![
            ("client_id", &self.inner.client_id),
            ("client_secret", secret),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            (
                "revoke_old",
                if options.revoke_old { "true" } else { "false" },
            ),
        ];
        if let Some(scope) = &scope {
            pairs.push(("scope", scope));
        }
        if let Some(expires_in) = &expires_in {
            pairs.push(("expires_in", expires_in));
        }
        let answer = self
            .token_request(
                form(&pairs),
                "refresh token",
                false,
                vec![secret, refresh_token.expose_secret()],
            )
            .await?;
        let status = answer.status.as_u16();
        parse_token_answer(status, &answer.body)
            .and_then(|t| t.into_user_tokens(status))
            .map_err(|e| e.outcome_unknown("refresh token"))
    }

    /// Gets a client-credentials token (`grant_type=client_credentials`), e.g. for
    /// `/read-public` or `/webhook`. Keep it: one token serves every record.
    ///
    /// Retried like a GET (timeouts, lost connections, 5xx): asking again only issues
    /// another token and spends nothing of the user's, so an unknown outcome is never
    /// [`Error::OutcomeUnknown`]; an answer that cannot be read is
    /// [`Error::UnexpectedResponse`].
    pub async fn client_credentials(
        &self,
        scopes: impl Into<Scopes>,
    ) -> Result<ClientToken, Error> {
        self.client_credentials_for(&scopes.into()).await
    }

    #[tracing::instrument(skip_all, fields(client_id = %self.inner.client_id, scopes = %scopes))]
    async fn client_credentials_for(&self, scopes: &Scopes) -> Result<ClientToken, Error> {
        let secret = self.inner.client_secret.expose_secret();
        let scope = scopes.to_string();
        let body = form(&[
            ("client_id", &self.inner.client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", &scope),
        ]);
        let answer = self
            .token_request(body, "client credentials", true, vec![secret])
            .await?;
        let status = answer.status.as_u16();
        parse_token_answer(status, &answer.body).map(|t| t.into_client_token())
    }

    /// Revokes a token (`POST /oauth/revoke`); revoking either token of a pair kills both.
    /// Revoking is idempotent, so it is retried like a GET.
    #[tracing::instrument(skip_all, fields(client_id = %self.inner.client_id))]
    pub async fn revoke<T: Revocable + ?Sized>(&self, token: &T) -> Result<(), Error> {
        let secret = self.inner.client_secret.expose_secret();
        let token = revocable_secret(token);
        let body = form(&[
            ("client_id", &self.inner.client_id),
            ("client_secret", secret),
            ("token", token),
        ]);
        let request = Request {
            method: Method::POST,
            url: self.inner.endpoints.revoke_url(),
            bearer: None,
            accept: PLAIN_JSON,
            body,
            idempotent: true,
            operation: "revoke token",
            endpoint: "revoke",
            secrets: vec![secret, token],
        };
        let answer = self.send(&request).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(answer.into_error(&request.secrets))
        }
    }

    /// POSTs a form to the token endpoint; a non-2xx answer becomes an error. `idempotent`
    /// says whether asking twice is harmless (see [`super::retry`]).
    async fn token_request(
        &self,
        body: super::transport::Body,
        operation: &str,
        idempotent: bool,
        secrets: Vec<&str>,
    ) -> Result<Answer, Error> {
        let request = Request {
            method: Method::POST,
            url: self.inner.endpoints.token_url(),
            bearer: None,
            accept: PLAIN_JSON,
            body,
            idempotent,
            operation,
            endpoint: "token",
            secrets,
        };
        let answer = self.send(&request).await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(answer.into_error(&request.secrets))
        }
    }
}
