//! Who may call the API: systems identified by a bearer token whose SHA-256 is configured
//! (`[[writer.http.callers]]`), each with a list of rights. Tokens are never stored, only
//! their hashes; a presented token is hashed and compared with every configured hash in
//! constant time.

use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use aws_lc_rs::{constant_time, digest};

use super::error::ApiError;
use crate::api::Right;
use crate::config::HttpCaller;

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
    pub(crate) fn from_config(callers: &[HttpCaller]) -> Self {
        let known = callers
            .iter()
            .filter_map(|caller| {
                Some(KnownCaller {
                    name: caller.name.clone(),
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
        .and_then(bearer_token)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated(
            "the Authorization header is not `Bearer <token>`",
        ))?;
    callers.identify(token).ok_or_else(|| {
        tracing::warn!("request with an unknown caller token");
        ApiError::Unauthenticated("unknown caller token")
    })
}

/// The token of `Bearer <token>`: the scheme in any case (RFC 7235 §2.1), then spaces.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
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
    use crate::api::token_sha256_hex;

    #[test]
    fn hash_round_trip() {
        let hex = token_sha256_hex("TEST_CALLER_TOKEN");
        assert_eq!(hex.len(), 64);
        let callers = Callers::from_config(&[HttpCaller {
            name: "hr".into(),
            token_sha256: hex.to_uppercase(),
            rights: vec![Right::HrEventsWrite],
        }]);
        let caller = callers.identify("TEST_CALLER_TOKEN").unwrap();
        assert_eq!(caller.name, "hr");
        assert!(caller.require(Right::HrEventsWrite).is_ok());
        assert!(caller.require(Right::ItemsRead).is_err());
        assert!(callers.identify("TEST_OTHER_TOKEN").is_none());
        assert!(decode_hex32("zz").is_none());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "bEaReR   abc ",
            "Bearer\tabc",
        ] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
