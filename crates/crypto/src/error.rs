//! The two error types: [`KeyLoadError`] when key material is loaded (at start-up), and
//! [`CryptoError`] when data is sealed or opened (per request).
//!
//! Neither ever carries plaintext or key bytes: messages name the key id, the file or the
//! variable, and the fix.

use std::path::PathBuf;

/// The longest requested active key id an error repeats.
pub(crate) const MAX_ECHOED_ID_LEN: usize = 32;

/// `'id'`, or a note that the id is not shown (see [`KeyLoadError::ActiveKeyMissing`]).
fn quoted_or_hidden(id: &str) -> String {
    if id.is_empty() {
        format!("(longer than {MAX_ECHOED_ID_LEN} characters, not shown)")
    } else {
        format!("'{id}'")
    }
}

/// Sealing, opening or re-wrapping failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The blob names a key-encryption key the key ring does not hold.
    #[error(
        "row sealed with key '{key_id}' which is not in the key ring; add it back to decrypt, then rotate"
    )]
    UnknownKeyId {
        /// The key id recorded in the blob.
        key_id: String,
    },
    /// AES-GCM refused the data: it was tampered with, moved to another row (or another HPKE
    /// context), or sealed under a different key.
    #[error(
        "authentication failed: the data was tampered with, belongs to another row or context, or was sealed with a different key"
    )]
    Authentication,
    /// The blob is not in the expected layout (too short, unknown version, bad key id, …).
    #[error("malformed sealed data: {0}")]
    Malformed(&'static str),
    /// aws-lc reported an internal failure (for example, no randomness available).
    #[error("the crypto library failed unexpectedly while {0}")]
    Internal(&'static str),
}

/// Key material could not be loaded. Raised at start-up, so the process fails before it
/// serves anything; the message says which key and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    /// A `key_id:BASE64` list entry has no `:`.
    #[error(
        "{origin}: entry {entry} is not `key_id:BASE64`; write the list as `k2026a:BASE64KEY,k2025b:BASE64KEY`"
    )]
    EntryWithoutId {
        /// Where the list came from (variable name or "configuration").
        origin: String,
        /// 1-based position of the entry in the list.
        entry: usize,
    },
    /// A key id is empty, too long or has characters outside `A-Z a-z 0-9 _ -`.
    #[error(
        "{origin}: key id is invalid; use 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (and not the reserved name 'active')"
    )]
    InvalidKeyId {
        /// Where the id came from (entry position, or the file path).
        origin: String,
    },
    /// The key text is not base64.
    #[error(
        "{key} is not valid base64 (standard alphabet, with padding); store the 32 key bytes as `openssl rand -base64 32` prints them"
    )]
    BadBase64 {
        /// Which key: id and where it came from.
        key: String,
    },
    /// The key decodes to the wrong number of bytes.
    #[error(
        "{key} decodes to {len} bytes but must be exactly 32; generate one with `openssl rand -base64 32`"
    )]
    WrongLength {
        /// Which key: id and where it came from.
        key: String,
        /// The decoded length.
        len: usize,
    },
    /// The crypto library refused key bytes that passed the format checks.
    #[error("{key} was rejected by the crypto library; generate a new key")]
    Rejected {
        /// Which key.
        key: String,
    },
    /// The same key id appears twice.
    #[error("{origin}: key id '{key_id}' appears more than once; keep one key per id")]
    DuplicateKeyId {
        /// Where the keys came from.
        origin: String,
        /// The repeated id.
        key_id: String,
    },
    /// No keys at all.
    #[error(
        "{origin}: no keys found; add at least one key (generate one with `openssl rand -base64 32`)"
    )]
    NoKeys {
        /// Where the keys were looked for.
        origin: String,
    },
    /// No active key id was given.
    #[error("{origin}: no active key id; {fix}")]
    NoActiveKey {
        /// Where the active id was looked for.
        origin: String,
        /// How to name one.
        fix: &'static str,
    },
    /// The active key id names no loaded key.
    #[error(
        "{origin}: active key id {} is not among the loaded keys ({available}); add that key or set the active id to one of them",
        quoted_or_hidden(.active)
    )]
    ActiveKeyMissing {
        /// Where the active id came from.
        origin: String,
        /// The id that was asked for; empty when it is longer than 32 characters, since a
        /// long id may be key material pasted into the wrong place.
        active: String,
        /// The ids that were loaded, comma-separated.
        available: String,
    },
    /// A public key decoded but is not usable: an X25519 point of small order, with which
    /// every private key computes the same all-zero shared secret (so sealing to it fails).
    #[error(
        "{key} is not a valid X25519 key (a low-order point); copy the public key the vault derives from its private key"
    )]
    InvalidPublicKey {
        /// Which key.
        key: String,
    },
    /// A key file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
