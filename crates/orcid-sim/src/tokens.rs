//! Issued access/refresh token pairs and single-use authorization codes, in memory.
//!
//! Tokens are looked up on every API call, so the maps sit behind an `RwLock` that is only
//! ever held for a map operation (never across an await).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use orcid::OrcidId;
use rand::Rng;

/// Seconds a fresh token lives (ORCID's `expires_in`, about 20 years).
pub const TOKEN_LIFETIME_SECS: i64 = 631_138_518;

/// How long an authorization code may wait before its exchange.
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Who revoked a token; a user revocation still lets the client delete its own items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// `POST /oauth/revoke` or `revoke_old=true`: dead for everything.
    ByClient,
    /// The user removed the client from their trusted organisations.
    ByUser,
}

/// One access token and what it grants. `Debug` leaves the tokens out.
#[derive(Clone)]
pub struct TokenRecord {
    /// Client the token was issued to.
    pub client_id: String,
    /// The record (3-legged tokens) or `None` (client credentials).
    pub orcid: Option<OrcidId>,
    /// Granted scopes, in the order they were asked for.
    pub scopes: Vec<String>,
    /// Its refresh token.
    pub refresh_token: String,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: i64,
    /// Set once revoked.
    pub revoked: Option<Revocation>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("client_id", &self.client_id)
            .field("orcid", &self.orcid)
            .field("scopes", &self.scopes)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// Whether the token has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// Whole seconds left (rounded up), as `expires_in`.
    pub fn expires_in(&self, now_ms: i64) -> i64 {
        ((self.expires_at_ms - now_ms).max(0) + 999) / 1000
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Default)]
struct TokenMaps {
    by_access: HashMap<String, TokenRecord>,
    /// refresh token → access token.
    by_refresh: HashMap<String, String>,
    /// (record, client) → the access tokens of user tokens, so consent checks and user
    /// revocation look at that pair's tokens only.
    by_grant: HashMap<OrcidId, HashMap<String, Vec<String>>>,
}

/// All issued tokens.
#[derive(Default)]
pub struct TokenStore {
    maps: RwLock<TokenMaps>,
}

impl TokenStore {
    /// Issues a new UUIDv4 pair; returns the access token.
    pub fn issue(
        &self,
        client_id: &str,
        orcid: Option<OrcidId>,
        scopes: Vec<String>,
        expires_at_ms: i64,
    ) -> (String, TokenRecord) {
        let access = uuid::Uuid::new_v4().to_string();
        let record = TokenRecord {
            client_id: client_id.to_owned(),
            orcid,
            scopes,
            refresh_token: uuid::Uuid::new_v4().to_string(),
            expires_at_ms,
            revoked: None,
        };
        let mut maps = self.write();
        if let Some(orcid) = orcid {
            maps.by_grant
                .entry(orcid)
                .or_default()
                .entry(client_id.to_owned())
                .or_default()
                .push(access.clone());
        }
        maps.by_refresh
            .insert(record.refresh_token.clone(), access.clone());
        maps.by_access.insert(access.clone(), record.clone());
        (access, record)
    }

    /// The record of an access token (whatever its state).
    pub fn get(&self, access_token: &str) -> Option<TokenRecord> {
        self.read().by_access.get(access_token).cloned()
    }

    /// The client an access token belongs to (cheaper than [`TokenStore::get`]).
    pub fn client_of(&self, access_token: &str) -> Option<String> {
        self.read()
            .by_access
            .get(access_token)
            .map(|r| r.client_id.clone())
    }

    /// The access token and record a refresh token belongs to.
    pub fn by_refresh(&self, refresh_token: &str) -> Option<(String, TokenRecord)> {
        let maps = self.read();
        let access = maps.by_refresh.get(refresh_token)?;
        let record = maps.by_access.get(access)?;
        Some((access.clone(), record.clone()))
    }

    /// Revokes an access token (and so its refresh token).
    pub fn revoke_access(&self, access_token: &str, how: Revocation) {
        if let Some(r) = self.write().by_access.get_mut(access_token) {
            r.revoked.get_or_insert(how);
        }
    }

    /// `POST /oauth/revoke`: `token` is an access or refresh token of `client_id`; kills the
    /// pair. Returns whether a token of that client was found.
    pub fn revoke_pair(&self, client_id: &str, token: &str) -> bool {
        let mut maps = self.write();
        let access = if maps.by_access.contains_key(token) {
            token.to_owned()
        } else if let Some(a) = maps.by_refresh.get(token) {
            a.clone()
        } else {
            return false;
        };
        match maps.by_access.get_mut(&access) {
            Some(r) if r.client_id == client_id => {
                r.revoked = Some(Revocation::ByClient);
                true
            }
            _ => false,
        }
    }

    /// The user removes `client_id` from their trusted organisations: every live token of that
    /// client for `orcid` becomes user-revoked. Returns how many.
    pub fn revoke_by_user(&self, orcid: &OrcidId, client_id: &str) -> usize {
        let mut guard = self.write();
        let TokenMaps {
            by_access,
            by_grant,
            ..
        } = &mut *guard;
        let Some(tokens) = by_grant.get(orcid).and_then(|c| c.get(client_id)) else {
            return 0;
        };
        let mut n = 0;
        for access in tokens {
            if let Some(r) = by_access.get_mut(access)
                && r.revoked.is_none()
            {
                r.revoked = Some(Revocation::ByUser);
                n += 1;
            }
        }
        n
    }

    /// Whether `client_id` holds a live token for `orcid` covering every scope in `scopes`
    /// (ORCID then skips the consent screen).
    pub fn has_live_grant(&self, orcid: &OrcidId, client_id: &str, scopes: &[String]) -> bool {
        let now = now_ms();
        let maps = self.read();
        let Some(tokens) = maps.by_grant.get(orcid).and_then(|c| c.get(client_id)) else {
            return false;
        };
        tokens
            .iter()
            .filter_map(|access| maps.by_access.get(access))
            .any(|r| {
                r.revoked.is_none() && !r.expired(now) && scopes.iter().all(|s| r.has_scope(s))
            })
    }

    /// Forgets every token.
    pub fn clear(&self) {
        *self.write() = TokenMaps::default();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TokenMaps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, TokenMaps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a code was issued for.
#[derive(Clone, Debug)]
pub struct AuthCode {
    /// Client that asked.
    pub client_id: String,
    /// The user who approved.
    pub orcid: OrcidId,
    /// Approved scopes.
    pub scopes: Vec<String>,
    /// `redirect_uri` of the authorize request; the exchange must repeat it.
    pub redirect_uri: String,
    /// OIDC `nonce`, copied into the `id_token`.
    pub nonce: Option<String>,
    /// When the user signed in (epoch seconds), for `auth_time`.
    pub auth_time: i64,
    issued: Instant,
}

/// Outstanding authorization codes.
#[derive(Default)]
pub struct CodeStore {
    codes: Mutex<HashMap<String, AuthCode>>,
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl CodeStore {
    /// Issues a fresh 6-character base62 code.
    pub fn issue(
        &self,
        client_id: &str,
        orcid: OrcidId,
        scopes: Vec<String>,
        redirect_uri: &str,
        nonce: Option<String>,
        auth_time: i64,
    ) -> String {
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME);
        let mut rng = rand::rng();
        let code = loop {
            let candidate: String = (0..6)
                .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
                .collect();
            if !codes.contains_key(&candidate) {
                break candidate;
            }
        };
        codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_owned(),
                orcid,
                scopes,
                redirect_uri: redirect_uri.to_owned(),
                nonce,
                auth_time,
                issued: Instant::now(),
            },
        );
        code
    }

    /// Removes and returns a code (single use: a failed exchange burns it too).
    pub fn take(&self, code: &str) -> Option<AuthCode> {
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes
            .remove(code)
            .filter(|c| c.issued.elapsed() < CODE_LIFETIME)
    }

    /// Forgets every code.
    pub fn clear(&self) {
        self.codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Scopes a user can grant at `/oauth/authorize`.
pub const THREE_LEGGED_SCOPES: &[&str] = &[
    "/authenticate",
    "openid",
    "/read-limited",
    "/activities/read-limited",
    "/person/read-limited",
    "/activities/update",
    "/person/update",
];

/// Scopes of the `client_credentials` grant.
pub const CLIENT_CREDENTIALS_SCOPES: &[&str] = &[
    "/read-public",
    "/webhook",
    "/premium-notification",
    "/group-id-record/read",
    "/group-id-record/update",
];

/// Splits a space-separated scope string (order kept, duplicates dropped).
pub fn parse_scopes(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split_whitespace() {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}
