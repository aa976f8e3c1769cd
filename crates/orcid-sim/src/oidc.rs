//! OpenID Connect: discovery, JWKS, userinfo, and the RS256 `id_token` signer (§1.4).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::auth::bearer_token;
use crate::records::PublicName;
use crate::state::SimState;
use crate::tokens::now_ms;

/// Signs `id_token`s with one RSA key generated when the simulator starts.
pub struct IdTokenSigner {
    key: KeyPair,
    kid: String,
    jwk: Value,
    rng: SystemRandom,
}

impl std::fmt::Debug for IdTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The signing key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("RSA signing key: {0}")]
pub struct SignerError(&'static str);

impl IdTokenSigner {
    /// Generates a fresh RSA-2048 key.
    pub fn generate() -> Result<Self, SignerError> {
        let key =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| SignerError("generation failed"))?;
        let kid = format!("orcid-sim-{}", uuid::Uuid::new_v4().simple());
        let public = key.public_key();
        let jwk = json!({
            "kty": "RSA",
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            "use": "sig",
            "kid": kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        });
        Ok(IdTokenSigner {
            key,
            kid,
            jwk,
            rng: SystemRandom::new(),
        })
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// A compact JWS (`header.claims.signature`) over `claims`, header `{"kid","alg":"RS256"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, SignerError> {
        let header = json!({ "kid": self.kid, "alg": "RS256" });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignerError("signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// Adds `given_name`, `family_name` and `name` (those that are not empty) for a public name;
/// ORCID sends them only when the name is public (§1.4).
pub fn insert_name_claims(claims: &mut Map<String, Value>, name: &PublicName) {
    for (claim, value) in [
        ("given_name", &name.given_names),
        ("family_name", &name.family_name),
        ("name", &name.display_name),
    ] {
        if !value.is_empty() {
            claims.insert(claim.into(), value.as_str().into());
        }
    }
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(state: web::Data<SimState>) -> HttpResponse {
    let iss = &state.public_url;
    HttpResponse::Ok()
        .content_type("application/json;charset=UTF-8")
        .json(json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/oauth/authorize"),
            "token_endpoint": format!("{iss}/oauth/token"),
            "userinfo_endpoint": format!("{iss}/oauth/userinfo"),
            "jwks_uri": format!("{iss}/oauth/jwks"),
            "scopes_supported": ["openid"],
            "response_types_supported": ["code", "id_token", "id_token token"],
            "grant_types_supported": ["authorization_code", "implicit", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": ["family_name", "given_name", "name", "auth_time", "iss", "sub"],
            "claims_parameter_supported": false,
        }))
}

/// `GET /oauth/jwks`: the standard `{"keys":[…]}` set, or with
/// [`crate::SimConfig::jwks_bare`] the bare JWK object of ORCID's documented controller.
pub async fn jwks(state: web::Data<SimState>) -> HttpResponse {
    let body = if state.config.jwks_bare {
        state.signer.jwk().clone()
    } else {
        json!({ "keys": [state.signer.jwk()] })
    };
    HttpResponse::Ok()
        .content_type("application/json;charset=UTF-8")
        .json(body)
}

/// `GET /oauth/userinfo` (Bearer) and `POST /oauth/userinfo` (form `access_token`).
pub async fn userinfo(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let from_form = || {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    };
    let token = bearer_token(&req).map(str::to_owned).or_else(from_form);
    let record = token
        .as_deref()
        .and_then(|t| state.tokens.get(t))
        .filter(|r| {
            r.revoked.is_none()
                && !r.expired(now_ms())
                && (r.has_scope("openid") || r.has_scope("/authenticate"))
        });
    let Some(orcid) = record
        .and_then(|r| r.orcid)
        .filter(|orcid| state.users.exists(orcid))
    else {
        return HttpResponse::build(StatusCode::FORBIDDEN)
            .content_type("application/json;charset=UTF-8")
            .json(
                json!({"error": "access_denied", "error-description": "access_token is invalid"}),
            );
    };
    let mut body = Map::new();
    body.insert("id".into(), orcid.uri_on(&state.public_url).into());
    body.insert("sub".into(), orcid.to_string().into());
    if let Some(name) = state.records.public_name(&orcid) {
        insert_name_claims(&mut body, &name);
    }
    HttpResponse::Ok()
        .content_type("application/json;charset=UTF-8")
        .json(Value::Object(body))
}
