//! Registered users (people who sign in at `/oauth/authorize`) and their sign-in sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use orcid::OrcidId;
use secrecy::{ExposeSecret, SecretString};

/// First base handed out: `0009-0000-0000-000x`, the range ORCID issues new iDs from.
pub const FIRST_ID_BASE: u64 = 900_000_000_000;

/// A person with an ORCID account: how they sign in. Their name lives in their record
/// ([`crate::records::Records::person`]), the one place the settings hook edits it.
#[derive(Clone)]
pub struct User {
    /// Their iD.
    pub orcid: OrcidId,
    /// Sign-in e-mail.
    pub email: String,
    password: SecretString,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("orcid", &self.orcid)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl User {
    /// Whether `password` is theirs (constant-time comparison).
    pub fn password_matches(&self, password: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.password.expose_secret().as_bytes(),
            password.as_bytes(),
        )
        .is_ok()
    }
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Another account already uses that e-mail.
    #[error("the e-mail address is already in use")]
    EmailTaken,
    /// The iD range is exhausted (never in practice).
    #[error("no iD left in the range")]
    OutOfIds,
}

#[derive(Default)]
struct UserMaps {
    by_orcid: HashMap<OrcidId, User>,
    by_email: HashMap<String, OrcidId>,
}

/// All users, plus signed-in browser sessions.
pub struct Users {
    maps: RwLock<UserMaps>,
    next_base: AtomicU64,
    sessions: RwLock<HashMap<String, OrcidId>>,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            maps: RwLock::default(),
            next_base: AtomicU64::new(FIRST_ID_BASE),
            sessions: RwLock::default(),
        }
    }
}

impl Users {
    /// Creates a user with the next iD of the 0009- range (the caller creates their record).
    pub fn create(&self, email: &str, password: &str) -> Result<User, CreateUserError> {
        let key = email.trim().to_lowercase();
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        if maps.by_email.contains_key(&key) {
            return Err(CreateUserError::EmailTaken);
        }
        let base = self.next_base.fetch_add(1, Ordering::Relaxed);
        let orcid = OrcidId::from_base(base).ok_or(CreateUserError::OutOfIds)?;
        let user = User {
            orcid,
            email: email.trim().to_owned(),
            password: SecretString::from(password.to_owned()),
        };
        maps.by_email.insert(key, orcid);
        maps.by_orcid.insert(orcid, user.clone());
        Ok(user)
    }

    /// The user with this iD.
    pub fn get(&self, orcid: &OrcidId) -> Option<User> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.by_orcid.get(orcid).cloned()
    }

    /// Whether a user with this iD exists.
    pub fn exists(&self, orcid: &OrcidId) -> bool {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.by_orcid.contains_key(orcid)
    }

    /// Finds a user by what they type in the sign-in box: an e-mail (any case) or an iD (any
    /// form [`OrcidId::parse`] accepts).
    pub fn find_by_login(&self, login: &str) -> Option<User> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        let login = login.trim();
        let orcid = match OrcidId::parse(login) {
            Ok(id) => id,
            Err(_) => *maps.by_email.get(&login.to_lowercase())?,
        };
        maps.by_orcid.get(&orcid).cloned()
    }

    /// Opens a browser session for `orcid`; returns its cookie value.
    pub fn open_session(&self, orcid: OrcidId) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        sessions.insert(id.clone(), orcid);
        id
    }

    /// The user signed in with this session cookie, if any.
    pub fn session_user(&self, session: &str) -> Option<User> {
        let orcid = {
            let sessions = self.sessions.read().unwrap_or_else(PoisonError::into_inner);
            *sessions.get(session)?
        };
        self.get(&orcid)
    }

    /// Ends a session.
    pub fn close_session(&self, session: &str) {
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        sessions.remove(session);
    }

    /// Forgets every user and session; iDs start again from [`FIRST_ID_BASE`].
    pub fn clear(&self) {
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        *maps = UserMaps::default();
        self.next_base.store(FIRST_ID_BASE, Ordering::Relaxed);
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        sessions.clear();
    }
}
