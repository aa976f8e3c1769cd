//! OpenID Connect sign-in against the institution's identity provider: discovery, the
//! authorization code flow with PKCE (S256), `state` and `nonce` bound to the session, and
//! an `id_token` checked against the provider's JWKS (RS256), issuer, audience, expiry and
//! nonce.

use std::time::Duration;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::{OidcSignin, SigninMethod};
use crate::pages::PageError;
use crate::session::{self, OIDC_PENDING, PendingOidc, SessionUser, random_token, same};
use crate::state::{AppState, see_other};

/// The provider's endpoints (from discovery).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// Why a sign-in through the identity provider failed (never quotes a token).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Transport(String),
    #[error("the identity provider answered {0}")]
    Status(u16),
    #[error("the identity provider's answer is not usable: {0}")]
    Invalid(&'static str),
}

/// The client of the identity provider (discovery cached after the first success).
pub(crate) struct OidcClient {
    config: OidcSignin,
    http: reqwest::Client,
    discovery: OnceCell<Discovery>,
    redirect_uri: String,
}

impl OidcClient {
    pub(crate) fn new(config: OidcSignin, public_url: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            config,
            http,
            discovery: OnceCell::new(),
            redirect_uri: format!(
                "{}/signin/oidc/callback",
                public_url.trim().trim_end_matches('/')
            ),
        })
    }

    async fn get_json(&self, url: &str) -> Result<Value, OidcError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Status(response.status().as_u16()));
        }
        response
            .json()
            .await
            .map_err(|_| OidcError::Invalid("not JSON"))
    }

    async fn discovery(&self) -> Result<&Discovery, OidcError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim().trim_end_matches('/')
                );
                let doc = self.get_json(&url).await?;
                let discovery: Discovery = serde_json::from_value(doc)
                    .map_err(|_| OidcError::Invalid("discovery document lacks endpoints"))?;
                if discovery.issuer.trim_end_matches('/')
                    != self.config.issuer.trim().trim_end_matches('/')
                {
                    return Err(OidcError::Invalid(
                        "discovery names another issuer than configured",
                    ));
                }
                Ok(discovery)
            })
            .await
    }

    /// The authorization URL and the pending state to keep in the session.
    async fn start(&self, ttl_secs: u64) -> Result<(String, PendingOidc), OidcError> {
        let discovery = self.discovery().await?;
        let pending = PendingOidc {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            expires_at: session::now() + i64::try_from(ttl_secs).unwrap_or(600),
        };
        let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, pending.verifier.as_bytes()));
        let mut url = url::Url::parse(&discovery.authorization_endpoint)
            .map_err(|_| OidcError::Invalid("authorization_endpoint is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.config.scopes)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok((url.to_string(), pending))
    }

    /// Exchanges `code`, verifies the `id_token`, returns its claims.
    async fn finish(&self, code: &str, pending: &PendingOidc) -> Result<Value, OidcError> {
        let discovery = self.discovery().await?;
        let response = self
            .http
            .post(&discovery.token_endpoint)
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("client_id", &self.config.client_id),
                ("client_secret", self.config.client_secret.expose_secret()),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Status(response.status().as_u16()));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| OidcError::Invalid("token answer is not JSON"))?;
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(OidcError::Invalid("no id_token in the token answer"))?;
        let jwks = self.get_json(&discovery.jwks_uri).await?;
        let claims = verify_id_token(id_token, &jwks)?;
        check_claims(
            &claims,
            &discovery.issuer,
            &self.config.client_id,
            &pending.nonce,
            session::now(),
        )?;
        Ok(claims)
    }
}

/// Verifies an RS256 compact JWS with a key of `jwks` (`{"keys":[…]}` or one bare JWK).
pub(crate) fn verify_id_token(token: &str, jwks: &Value) -> Result<Value, OidcError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Invalid("id_token is not a compact JWS"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| OidcError::Invalid("id_token is not base64url"))
    };
    let header: Value = serde_json::from_slice(&decode(header)?)
        .map_err(|_| OidcError::Invalid("id_token header is not JSON"))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(OidcError::Invalid("id_token is not signed with RS256"));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys: Vec<&Value> = match jwks.get("keys").and_then(Value::as_array) {
        Some(keys) => keys.iter().collect(),
        None => vec![jwks],
    };
    let key = keys
        .into_iter()
        .find(|k| {
            k.get("kty").and_then(Value::as_str) == Some("RSA")
                && (kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        })
        .ok_or(OidcError::Invalid("no JWKS key matches the id_token's kid"))?;
    let n = decode(key.get("n").and_then(Value::as_str).unwrap_or(""))?;
    let e = decode(key.get("e").and_then(Value::as_str).unwrap_or(""))?;
    let signing_input = &token[..token.len() - signature.len() - 1];
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &decode(signature)?,
        )
        .map_err(|_| OidcError::Invalid("the id_token signature does not verify"))?;
    serde_json::from_slice(&decode(claims)?)
        .map_err(|_| OidcError::Invalid("id_token claims are not JSON"))
}

/// Issuer, audience, expiry (60 s leeway) and nonce.
pub(crate) fn check_claims(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<(), OidcError> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(OidcError::Invalid("id_token issuer differs"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(OidcError::Invalid("id_token is for another client"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp.saturating_add(60) < now {
        return Err(OidcError::Invalid("id_token expired"));
    }
    let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !same(got, nonce) {
        return Err(OidcError::Invalid("id_token nonce differs"));
    }
    Ok(())
}

/// `GET /signin/oidc`: off to the identity provider.
pub(crate) async fn start(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some(client) = oidc_client(&state) else {
        return Err(not_found(&state, &session));
    };
    match client.start(state.config.portal.state_ttl_secs).await {
        Ok((url, pending)) => {
            session
                .insert(OIDC_PENDING, &pending)
                .map_err(|_| unavailable(&state, &session, "the session could not be written"))?;
            Ok(see_other(&url))
        }
        Err(e) => {
            tracing::error!(error = %e, "OIDC sign-in could not start");
            Err(unavailable(
                &state,
                &session,
                "the identity provider is unavailable",
            ))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /signin/oidc/callback`.
pub(crate) async fn callback(
    _req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(client) = oidc_client(&state) else {
        return Err(not_found(&state, &session));
    };
    let pending: Option<PendingOidc> = session.remove_as(OIDC_PENDING).and_then(Result::ok);
    let retry = Some(("/signin", "Sign in again"));
    let Some(pending) = pending else {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::BAD_REQUEST,
            "state_missing",
            "Sign-in link used or expired",
            "This sign-in answer does not belong to a sign-in in progress in this browser (it was used already, or your session ended).",
            retry,
        ));
    };
    if !query
        .state
        .as_deref()
        .is_some_and(|s| same(s, &pending.state))
    {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::BAD_REQUEST,
            "state_mismatch",
            "Sign-in not accepted",
            "The answer from the identity provider does not match the sign-in this browser started.",
            retry,
        ));
    }
    if pending.expires_at < session::now() {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::BAD_REQUEST,
            "state_expired",
            "Sign-in took too long",
            "The sign-in took too long and has expired.",
            retry,
        ));
    }
    if query.error.is_some() {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::BAD_REQUEST,
            "idp_error",
            "Sign-in did not complete",
            "The identity provider did not sign you in.",
            retry,
        ));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::BAD_REQUEST,
            "code_missing",
            "Sign-in did not complete",
            "The identity provider's answer has no code.",
            retry,
        ));
    };
    let claims = match client.finish(code, &pending).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(error = %e, "OIDC sign-in failed");
            return Err(state.error_with_retry(
                &session,
                None,
                StatusCode::BAD_GATEWAY,
                "idp_failed",
                "Sign-in did not complete",
                "The identity provider's answer could not be verified. Please try again.",
                retry,
            ));
        }
    };
    let user = user_from_claims(&state, &client.config, &claims).ok_or_else(|| {
        state.error(
            &session,
            None,
            StatusCode::BAD_GATEWAY,
            "person_id_missing",
            "Sign-in did not complete",
            "The identity provider did not say who you are (the configured person id claim is missing).",
        )
    })?;
    session::sign_in(&session, &user).map_err(|e| unavailable(&state, &session, &e))?;
    tracing::info!(method = "oidc", "signed in");
    Ok(see_other("/me"))
}

fn user_from_claims(state: &AppState, config: &OidcSignin, claims: &Value) -> Option<SessionUser> {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let person_id = text(&config.person_id_claim).filter(|p| p.len() <= 255)?;
    let in_admin_group = match (&config.groups_claim, &config.admin_group) {
        (Some(claim), Some(group)) => match claims.get(claim) {
            Some(Value::Array(list)) => list.iter().any(|g| g.as_str() == Some(group)),
            Some(Value::String(s)) => s.split([',', ' ', ';']).any(|g| g == group),
            _ => false,
        },
        _ => false,
    };
    let given_name = text("given_name");
    let family_name = text("family_name");
    let name = text("name").or_else(|| match (&given_name, &family_name) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        (Some(g), None) => Some(g.clone()),
        _ => None,
    });
    Some(
        SessionUser {
            admin: in_admin_group || state.configured_admin(&person_id),
            person_id,
            name,
            given_name,
            family_name,
            email: text("email"),
            signed_in_at: session::now(),
        }
        .capped(),
    )
}

fn oidc_client(state: &AppState) -> Option<&OidcClient> {
    if state.config.portal.signin.method == SigninMethod::Oidc {
        state.oidc.as_ref()
    } else {
        None
    }
}

fn not_found(state: &AppState, session: &Session) -> PageError {
    state.error(
        session,
        None,
        StatusCode::NOT_FOUND,
        "not_found",
        "Page not found",
        "There is no such page.",
    )
}

fn unavailable(state: &AppState, session: &Session, what: &str) -> PageError {
    state.error_with_retry(
        session,
        None,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Sign-in is unavailable",
        &format!("Sign-in is unavailable right now ({what}). Please try again in a few minutes."),
        Some(("/signin", "Try again")),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{OidcError, check_claims, verify_id_token};

    fn claims() -> serde_json::Value {
        json!({"iss": "https://idp.example.edu", "aud": "portal", "exp": 2_000, "nonce": "n-1", "sub": "P-1"})
    }

    #[test]
    fn claims_are_checked_for_issuer_audience_expiry_and_nonce() {
        let ok = check_claims(
            &claims(),
            "https://idp.example.edu/",
            "portal",
            "n-1",
            1_000,
        );
        assert!(ok.is_ok());
        let mut c = claims();
        c["aud"] = json!(["other", "portal"]);
        assert!(check_claims(&c, "https://idp.example.edu", "portal", "n-1", 1_000).is_ok());
        for (name, claims, now) in [
            (
                "issuer",
                json!({"iss": "https://evil.example", "aud": "portal", "exp": 2_000, "nonce": "n-1"}),
                1_000,
            ),
            (
                "audience",
                json!({"iss": "https://idp.example.edu", "aud": "other", "exp": 2_000, "nonce": "n-1"}),
                1_000,
            ),
            ("expiry", claims(), 2_100),
            (
                "nonce",
                json!({"iss": "https://idp.example.edu", "aud": "portal", "exp": 2_000, "nonce": "n-2"}),
                1_000,
            ),
            (
                "no nonce",
                json!({"iss": "https://idp.example.edu", "aud": "portal", "exp": 2_000}),
                1_000,
            ),
        ] {
            assert!(
                matches!(
                    check_claims(&claims, "https://idp.example.edu", "portal", "n-1", now),
                    Err(OidcError::Invalid(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn unsigned_or_malformed_tokens_are_refused() {
        let jwks = json!({"keys": []});
        assert!(verify_id_token("a.b", &jwks).is_err());
        // alg none
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none"}"#,
        );
        let body = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sub":"x"}"#,
        );
        assert!(verify_id_token(&format!("{header}.{body}."), &jwks).is_err());
        // RS256 but no matching key
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"RS256","kid":"k"}"#,
        );
        assert!(verify_id_token(&format!("{header}.{body}.c2ln"), &jwks).is_err());
    }
}
