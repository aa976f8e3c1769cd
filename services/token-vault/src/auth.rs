//! Who may call the API: services identified by a bearer token whose SHA-256 is in the
//! configuration (`vault.callers.<name>.token_sha256`), each with a list of rights.
//!
//! The vault never stores a caller's token, only its hash; a presented token is hashed and
//! compared with every configured hash in constant time.

use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use aws_lc_rs::{constant_time, digest};
use serde::{Deserialize, Serialize};

use crate::config::CallerConfig;
use crate::error::ApiError;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Right {
    /// Read a user's access token (`GET /v1/tokens/{orcid}`); marks the read in the audit.
    #[serde(rename = "token:read")]
    TokenRead,
    /// Read a client-credentials token (`GET /v1/client-tokens/{scope}`).
    #[serde(rename = "client-token:read")]
    ClientTokenRead,
    /// List connections, without tokens (`GET /v1/connections…`).
    #[serde(rename = "connections:list")]
    ConnectionsList,
    /// Mark a connection revoked after ORCID answered 401 (`POST /v1/connections/{orcid}/revoked`).
    #[serde(rename = "connections:revoke")]
    ConnectionsRevoke,
    /// Disconnect: revoke at ORCID and delete the tokens (`DELETE /v1/connections/{orcid}`).
    #[serde(rename = "connections:disconnect")]
    ConnectionsDisconnect,
}

impl Right {
    /// The name used in configuration and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::TokenRead => "token:read",
            Right::ClientTokenRead => "client-token:read",
            Right::ConnectionsList => "connections:list",
            Right::ConnectionsRevoke => "connections:revoke",
            Right::ConnectionsDisconnect => "connections:disconnect",
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

struct KnownCaller {
    name: String,
    token_sha256: [u8; 32],
    rights: Vec<Right>,
}

/// The configured callers.
#[derive(Clone)]
pub(crate) struct Callers(Arc<Vec<KnownCaller>>);

impl fmt::Debug for Callers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|c| &c.name))
            .finish()
    }
}

impl Callers {
    /// From the validated configuration (a malformed hash is skipped: validation refused it).
    pub(crate) fn from_config<'a>(
        callers: impl IntoIterator<Item = (&'a String, &'a CallerConfig)>,
    ) -> Self {
        let known = callers
            .into_iter()
            .filter_map(|(name, caller)| {
                Some(KnownCaller {
                    name: name.clone(),
                    token_sha256: decode_hex32(caller.token_sha256.trim())?,
                    rights: caller.rights.clone(),
                })
            })
            .collect();
        Self(Arc::new(known))
    }

    fn identify(&self, token: &str) -> Option<Caller> {
        let presented = digest::digest(&digest::SHA256, token.as_bytes());
        // Compare with every caller, so the time taken does not say which one matched.
        let mut found = None;
        for known in self.0.iter() {
            if constant_time::verify_slices_are_equal(presented.as_ref(), &known.token_sha256)
                .is_ok()
            {
                found = Some(Caller {
                    name: known.name.clone(),
                    rights: known.rights.clone(),
                });
            }
        }
        found
    }
}

/// An authenticated caller; extracting it from a request answers 401 without a valid token.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) name: String,
    rights: Vec<Right>,
}

impl Caller {
    /// `Ok` when the caller holds `right`; otherwise the 403 naming it.
    pub(crate) fn require(&self, right: Right) -> Result<(), ApiError> {
        if self.rights.contains(&right) {
            Ok(())
        } else {
            tracing::warn!(caller = %self.name, right = %right, "caller lacks a right");
            Err(ApiError::Forbidden {
                caller: self.name.clone(),
                right,
            })
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let Some(callers) = req.app_data::<web::Data<Callers>>() else {
        return Err(ApiError::internal_message("caller registry missing"));
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthenticated("no Authorization header"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated(
            "the Authorization header is not `Bearer <caller token>`",
        ))?;
    callers.identify(token).ok_or_else(|| {
        tracing::warn!("request with an unknown caller token");
        ApiError::Unauthenticated("unknown caller token")
    })
}

/// The lower-case hex SHA-256 of `token`, as `vault.callers.<name>.token_sha256` wants it.
pub fn token_sha256_hex(token: &str) -> String {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trip() {
        let hex = token_sha256_hex("TEST_CALLER_TOKEN");
        assert_eq!(hex.len(), 64);
        let bytes = decode_hex32(&hex).unwrap();
        let callers = Callers(Arc::new(vec![KnownCaller {
            name: "writer".into(),
            token_sha256: bytes,
            rights: vec![Right::TokenRead],
        }]));
        assert_eq!(
            callers.identify("TEST_CALLER_TOKEN").unwrap().name,
            "writer"
        );
        assert!(callers.identify("TEST_OTHER_TOKEN").is_none());
        assert!(decode_hex32(&hex.to_uppercase()).is_some());
        assert!(decode_hex32("zz").is_none());
    }
}
