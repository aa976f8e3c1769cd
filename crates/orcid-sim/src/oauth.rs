//! OAuth 2.0 as ORCID runs it (§1): the sign-in and consent page, the token endpoint
//! (`authorization_code`, `refresh_token`, `client_credentials`) and revocation.

use std::collections::HashMap;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use orcid::OrcidId;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value, json};

use crate::config::SimClient;
use crate::consent::{self, ConsentPage};
use crate::errors::oauth_error;
use crate::oidc::{at_hash, insert_name_claims};
use crate::state::SimState;
use crate::tokens::{
    CLIENT_CREDENTIALS_SCOPES, Revocation, THREE_LEGGED_SCOPES, TOKEN_LIFETIME_SECS, TokenRecord,
    now_ms, parse_scopes,
};
use crate::users::User;

/// Name of the browser session cookie set after a form sign-in.
pub const SESSION_COOKIE: &str = "orcid_sim_session";

/// Characters left as-is in redirect query values: RFC 3986 unreserved (so a space is `%20`,
/// as ORCID writes `User%20denied%20access`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Form or query fields, first occurrence wins.
type Fields = HashMap<String, String>;

fn parse_fields(input: &[u8]) -> Fields {
    let mut fields = Fields::new();
    for (k, v) in url::form_urlencoded::parse(input) {
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    fields
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Whether `requested` may be used with a client that registered `registered` (§1.1): a full
/// URI must match exactly; a registration of scheme + host only accepts any path and port on
/// that host; a client with nothing registered accepts anything (sandbox behaviour).
pub fn redirect_allowed(registered: &[String], requested: &str) -> bool {
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    if registered.is_empty() {
        return true;
    }
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        let Ok(reg) = url::Url::parse(r) else {
            return false;
        };
        let host_only = reg.path() == "/" && reg.query().is_none() && reg.fragment().is_none();
        // A registered port (rare) must match; without one, any port is accepted.
        host_only
            && reg.scheme() == req.scheme()
            && reg.host_str().is_some()
            && reg.host_str() == req.host_str()
            && (reg.port().is_none() || reg.port() == req.port())
    })
}

/// `redirect_uri` with `pairs` appended to its query (fragment dropped, as OAuth forbids one).
pub fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    let base = redirect_uri.split('#').next().unwrap_or(redirect_uri);
    let mut out = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.extend(utf8_percent_encode(v, QUERY_VALUE));
        sep = '&';
    }
    out
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A validated authorize request.
struct Authorize {
    client: SimClient,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    nonce: Option<String>,
    prompt: Option<String>,
    fields: Fields,
}

impl Authorize {
    fn error_location(&self, error: &str, description: &str) -> String {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = &self.state {
            pairs.push(("state", s));
        }
        redirect_with(&self.redirect_uri, &pairs)
    }

    fn redirect_error(&self, error: &str, description: &str) -> HttpResponse {
        found(&self.error_location(error, description))
    }

    fn deny(&self) -> HttpResponse {
        self.redirect_error("access_denied", "User denied access")
    }

    fn approve(&self, state: &SimState, user: &User) -> HttpResponse {
        let code = state.codes.issue(
            &self.client.id,
            user.orcid,
            self.scopes.clone(),
            &self.redirect_uri,
            self.nonce.clone(),
            now_ms() / 1000,
        );
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &self.state {
            pairs.push(("state", s));
        }
        found(&redirect_with(&self.redirect_uri, &pairs))
    }

    fn page(&self, state: &SimState, signed_in: Option<&User>, error: Option<&str>) -> ConsentPage {
        let prefill = field(&self.fields, "orcid")
            .or_else(|| field(&self.fields, "email"))
            .unwrap_or_default()
            .to_owned();
        ConsentPage {
            client_name: self.client.name.clone(),
            scopes: self.scopes.clone(),
            hidden: [
                "client_id",
                "response_type",
                "scope",
                "redirect_uri",
                "state",
                "nonce",
                "prompt",
            ]
            .iter()
            .filter_map(|k| self.fields.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect(),
            signed_in: signed_in.map(|u| {
                let name = state.records.display_name(&u.orcid).unwrap_or_default();
                (name, u.orcid.uri_on(&state.public_url))
            }),
            prefill_login: prefill,
            error: error.map(str::to_owned),
        }
    }
}

/// Why an authorize request stops before the consent page.
enum Rejected {
    /// Shown at the simulator, never redirected (bad client or redirect URI).
    Page(String),
    /// Sent back to the client's redirect URI (this `Location`).
    Redirect(String),
}

fn validate(state: &SimState, fields: Fields) -> Result<Authorize, Rejected> {
    let Some(client) = field(&fields, "client_id").and_then(|id| state.client(id)) else {
        return Err(Rejected::Page(
            "The client_id is missing or does not belong to a registered application.".into(),
        ));
    };
    let Some(redirect_uri) = field(&fields, "redirect_uri").map(str::to_owned) else {
        return Err(Rejected::Page(
            "The redirect_uri parameter is required.".into(),
        ));
    };
    if !redirect_allowed(&client.redirect_uris, &redirect_uri) {
        return Err(Rejected::Page(format!(
            "The redirect_uri {redirect_uri} does not match any redirect URI registered for {}.",
            client.name
        )));
    }
    let auth = Authorize {
        client: client.clone(),
        redirect_uri,
        scopes: parse_scopes(field(&fields, "scope").unwrap_or_default()),
        state: fields.get("state").cloned(),
        nonce: field(&fields, "nonce").map(str::to_owned),
        prompt: field(&fields, "prompt").map(str::to_owned),
        fields,
    };
    match field(&auth.fields, "response_type") {
        None => {
            return Err(Rejected::Redirect(
                auth.error_location("invalid_request", "Missing response_type"),
            ));
        }
        Some("code") => {}
        Some(other) => {
            return Err(Rejected::Redirect(auth.error_location(
                "unsupported_response_type",
                &format!("Unsupported response types: [{other}]"),
            )));
        }
    }
    if auth.scopes.is_empty() {
        return Err(Rejected::Redirect(auth.error_location(
            "invalid_scope",
            "Empty scope (either the client or the user is not allowed the requested scopes)",
        )));
    }
    if let Some(bad) = auth
        .scopes
        .iter()
        .find(|s| !THREE_LEGGED_SCOPES.contains(&s.as_str()))
    {
        let description = format!("Invalid scope: {bad}");
        return Err(Rejected::Redirect(
            auth.error_location("invalid_scope", &description),
        ));
    }
    Ok(auth)
}

fn error_page(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(consent::error_page(message))
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn session_user(state: &SimState, req: &HttpRequest) -> Option<User> {
    let cookie = req.cookie(SESSION_COOKIE)?;
    state.users.session_user(cookie.value())
}

/// `GET /oauth/authorize`: the sign-in and consent page, or (with `sim_user` and
/// `sim_decision`) the redirect at once.
pub async fn authorize_get(state: web::Data<SimState>, req: HttpRequest) -> HttpResponse {
    let fields = parse_fields(req.query_string().as_bytes());
    let sim_user = field(&fields, "sim_user").map(str::to_owned);
    let sim_decision = field(&fields, "sim_decision").map(str::to_owned);
    let auth = match validate(&state, fields) {
        Ok(a) => a,
        Err(Rejected::Page(msg)) => return error_page(&msg),
        Err(Rejected::Redirect(location)) => return found(&location),
    };
    if let Some(login) = sim_user {
        let Some(user) = state.users.find_by_login(&login) else {
            return error_page(&format!("sim_user {login} is not a registered user."));
        };
        return match sim_decision.as_deref().unwrap_or("authorize") {
            "authorize" => auth.approve(&state, &user),
            "deny" => auth.deny(),
            other => error_page(&format!(
                "sim_decision must be authorize or deny, not {other}."
            )),
        };
    }
    let signed_in = match auth.prompt.as_deref() {
        Some("login") => None,
        _ => session_user(&state, &req),
    };
    let granted = signed_in.as_ref().is_some_and(|u| {
        state
            .tokens
            .has_live_grant(&u.orcid, &auth.client.id, &auth.scopes)
    });
    match (auth.prompt.as_deref(), &signed_in) {
        (Some("none"), None) => {
            return auth.redirect_error("login_required", "User is not signed in");
        }
        (Some("none"), Some(_)) if !granted => {
            return auth.redirect_error("interaction_required", "User consent is required");
        }
        (Some("login" | "consent"), _) => {}
        (_, Some(user)) if granted => return auth.approve(&state, user),
        _ => {}
    }
    html(
        StatusCode::OK,
        auth.page(&state, signed_in.as_ref(), None).render(),
    )
}

/// `POST /oauth/authorize`: the form of the consent page (`action=authorize|deny`, with
/// `username` and `password` unless already signed in).
pub async fn authorize_post(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let fields = parse_fields(&body);
    let action = field(&fields, "action").unwrap_or("authorize").to_owned();
    let username = field(&fields, "username").map(str::to_owned);
    let password = fields.get("password").cloned().unwrap_or_default();
    let auth = match validate(&state, fields) {
        Ok(a) => a,
        Err(Rejected::Page(msg)) => return error_page(&msg),
        Err(Rejected::Redirect(location)) => return found(&location),
    };
    if action == "deny" {
        return auth.deny();
    }
    if action != "authorize" {
        return error_page("action must be authorize or deny.");
    }
    let (user, new_session) = match username {
        Some(login) => match state
            .users
            .find_by_login(&login)
            .filter(|u| u.password_matches(&password))
        {
            Some(u) => {
                let session = state.users.open_session(u.orcid);
                (u, Some(session))
            }
            None => {
                let page = auth.page(&state, None, Some("Invalid email/ORCID iD or password."));
                return html(StatusCode::UNAUTHORIZED, page.render());
            }
        },
        None => match session_user(&state, &req) {
            Some(u) => (u, None),
            None => {
                let page = auth.page(&state, None, Some("Sign in to authorize access."));
                return html(StatusCode::UNAUTHORIZED, page.render());
            }
        },
    };
    let mut res = auth.approve(&state, &user);
    if let Some(session) = new_session {
        let cookie = Cookie::build(SESSION_COOKIE, session)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .finish();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    res
}

/// `GET /signout`: ends the browser session (ORCID's sign-out link).
pub async fn signout(state: web::Data<SimState>, req: HttpRequest) -> HttpResponse {
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        state.users.close_session(c.value());
    }
    let mut removal = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    removal.make_removal();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .cookie(removal)
        .body(consent::signed_out_page())
}

/// `GET /userStatus.json[?logUserOut=true]`: `{"loggedIn": bool}`; optionally signs out.
pub async fn user_status(state: web::Data<SimState>, req: HttpRequest) -> HttpResponse {
    let fields = parse_fields(req.query_string().as_bytes());
    let session = req.cookie(SESSION_COOKIE);
    let logged_in = session
        .as_ref()
        .is_some_and(|c| state.users.session_user(c.value()).is_some());
    if field(&fields, "logUserOut") == Some("true") {
        if let Some(c) = &session {
            state.users.close_session(c.value());
        }
        return HttpResponse::Ok().json(json!({ "loggedIn": false }));
    }
    HttpResponse::Ok().json(json!({ "loggedIn": logged_in }))
}

/// Why client authentication failed at the token or revoke endpoint.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum ClientAuthError {
    /// Neither Basic nor both form fields: 400 `invalid_request`.
    #[error("Missing client credentials: send client_id and client_secret")]
    Missing,
    /// Unknown client or wrong secret: 401 `invalid_client`.
    #[error("Bad client credentials")]
    Bad,
}

impl ClientAuthError {
    /// ORCID's OAuth-style answer.
    pub fn into_response(self) -> HttpResponse {
        match self {
            ClientAuthError::Missing => oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &self.to_string(),
            ),
            ClientAuthError::Bad => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &self.to_string(),
            ),
        }
    }
}

/// Client authentication by HTTP Basic or the `client_id`/`client_secret` form fields.
fn authenticate_client<'s>(
    state: &'s SimState,
    req: &HttpRequest,
    fields: &Fields,
) -> Result<&'s SimClient, ClientAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((
                percent_decode_str(id).decode_utf8_lossy().into_owned(),
                percent_decode_str(secret).decode_utf8_lossy().into_owned(),
            ))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => match (field(fields, "client_id"), field(fields, "client_secret")) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            _ => return Err(ClientAuthError::Missing),
        },
    };
    state
        .client(&id)
        .filter(|c| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                c.secret.expose_secret().as_bytes(),
                secret.as_bytes(),
            )
            .is_ok()
        })
        .ok_or(ClientAuthError::Bad)
}

fn token_json(
    state: &SimState,
    access: &str,
    record: &TokenRecord,
    id_token: Option<String>,
) -> HttpResponse {
    let mut body = Map::new();
    body.insert("access_token".into(), access.into());
    body.insert("token_type".into(), "bearer".into());
    body.insert("refresh_token".into(), record.refresh_token.as_str().into());
    body.insert("expires_in".into(), record.expires_in(now_ms()).into());
    body.insert("scope".into(), record.scopes.join(" ").into());
    match record.orcid {
        Some(orcid) => {
            // The record's public name, read now: the settings hook may have changed it.
            if let Some(name) = state.records.public_name(&orcid) {
                body.insert("name".into(), name.display_name.into());
            }
            body.insert("orcid".into(), orcid.to_string().into());
        }
        None => {
            body.insert("orcid".into(), Value::Null);
        }
    }
    if let Some(t) = id_token {
        body.insert("id_token".into(), t.into());
    }
    HttpResponse::Ok()
        .content_type("application/json;charset=UTF-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(Value::Object(body))
}

/// `POST /oauth/token`.
pub async fn token(state: web::Data<SimState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let fields = parse_fields(&body);
    let client = match authenticate_client(&state, &req, &fields) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match field(&fields, "grant_type") {
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing grant type",
        ),
        Some("authorization_code") => authorization_code(&state, client, &fields),
        Some("refresh_token") => refresh(&state, client, &fields),
        Some("client_credentials") => client_credentials(&state, client, &fields),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
    }
}

fn authorization_code(state: &SimState, client: &SimClient, fields: &Fields) -> HttpResponse {
    let Some(code) = field(fields, "code") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "An authorization code must be supplied.",
        );
    };
    let invalid = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("Invalid authorization code: {code}"),
        )
    };
    let Some(grant) = state.codes.take(code) else {
        return invalid();
    };
    if grant.client_id != client.id {
        return invalid();
    }
    // The basic tutorial leaves redirect_uri out of the exchange, so only a differing one fails.
    if field(fields, "redirect_uri").is_some_and(|r| r != grant.redirect_uri) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Redirect URI mismatch.",
        );
    }
    let expires_at = now_ms() + TOKEN_LIFETIME_SECS * 1000;
    let (access, record) = state.tokens.issue(
        &client.id,
        Some(grant.orcid),
        grant.scopes.clone(),
        expires_at,
    );
    let id_token = if record.has_scope("openid") {
        match id_token(
            state,
            client,
            &grant.orcid,
            &access,
            grant.nonce.as_deref(),
            grant.auth_time,
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "id_token signing failed");
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "Could not sign the id_token",
                );
            }
        }
    } else {
        None
    };
    token_json(state, &access, &record, id_token)
}

fn id_token(
    state: &SimState,
    client: &SimClient,
    orcid: &OrcidId,
    access: &str,
    nonce: Option<&str>,
    auth_time: i64,
) -> Result<String, crate::oidc::SignerError> {
    let now = now_ms() / 1000;
    let lifetime = i64::try_from(state.config.id_token_lifetime.as_secs()).unwrap_or(600);
    let mut claims = Map::new();
    claims.insert("at_hash".into(), at_hash(access).into());
    claims.insert("aud".into(), client.id.as_str().into());
    claims.insert("sub".into(), orcid.to_string().into());
    claims.insert("auth_time".into(), auth_time.into());
    claims.insert("amr".into(), "pwd".into());
    claims.insert("iss".into(), state.public_url.as_str().into());
    claims.insert("exp".into(), (now + lifetime).into());
    claims.insert("iat".into(), now.into());
    if let Some(name) = state.records.public_name(orcid) {
        insert_name_claims(&mut claims, &name);
    }
    if let Some(n) = nonce {
        claims.insert("nonce".into(), n.into());
    }
    claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
    state.signer.sign(&Value::Object(claims))
}

fn refresh(state: &SimState, client: &SimClient, fields: &Fields) -> HttpResponse {
    let Some(refresh_token) = field(fields, "refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing refresh token",
        );
    };
    let Some((parent_access, parent)) = state.tokens.by_refresh(refresh_token) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("Invalid refresh token: {refresh_token}"),
        );
    };
    if parent.client_id != client.id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "This token does not belong to the given client",
        );
    }
    let now = now_ms();
    if parent.revoked.is_some() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Parent token is disabled",
        );
    }
    if parent.expired(now) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Parent token is expired",
        );
    }
    let scopes = match field(fields, "scope") {
        None => parent.scopes.clone(),
        Some(s) => {
            let asked = parse_scopes(s);
            if let Some(bad) = asked.iter().find(|s| !parent.has_scope(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("The given scope '{bad}' is not allowed for the parent token"),
                );
            }
            asked
        }
    };
    let expires_at = match field(fields, "expires_in") {
        None => parent.expires_at_ms,
        Some(raw) => match raw.parse::<i64>() {
            Ok(secs) if secs > 0 => {
                let wanted = now.saturating_add(secs.saturating_mul(1000));
                if wanted > parent.expires_at_ms {
                    let limit = chrono::DateTime::from_timestamp_millis(parent.expires_at_ms)
                        .map(|d| d.to_rfc2822())
                        .unwrap_or_default();
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        &format!("Token expiration can't be after {limit}"),
                    );
                }
                wanted
            }
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Invalid expires_in: {raw}"),
                );
            }
        },
    };
    let revoke_old = match field(fields, "revoke_old") {
        None => state.config.revoke_old_default,
        Some(v) => v.eq_ignore_ascii_case("true"),
    };
    if revoke_old {
        state
            .tokens
            .revoke_access(&parent_access, Revocation::ByClient);
    }
    let (access, record) = state
        .tokens
        .issue(&client.id, parent.orcid, scopes, expires_at);
    token_json(state, &access, &record, None)
}

fn client_credentials(state: &SimState, client: &SimClient, fields: &Fields) -> HttpResponse {
    let scopes = parse_scopes(field(fields, "scope").unwrap_or_default());
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Empty scope (either the client or the user is not allowed the requested scopes)",
        );
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| !CLIENT_CREDENTIALS_SCOPES.contains(&s.as_str()))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("Invalid scope: {bad}"),
        );
    }
    let expires_at = now_ms() + TOKEN_LIFETIME_SECS * 1000;
    let (access, record) = state.tokens.issue(&client.id, None, scopes, expires_at);
    token_json(state, &access, &record, None)
}

/// `POST /oauth/revoke` (form `token`, client auth by form or Basic): 200 with an empty body;
/// revoking either token of a pair kills both.
pub async fn revoke(
    state: web::Data<SimState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let fields = parse_fields(&body);
    let client = match authenticate_client(&state, &req, &fields) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Some(token) = field(&fields, "token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing token");
    };
    // RFC 7009: an unknown token (or another client's) is not an error.
    state.tokens.revoke_pair(&client.id, token);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
