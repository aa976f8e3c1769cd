//! Development keys for `idbridge up`, generated on first start into the data directory
//! (files with mode 0600 in a 0700 directory) and read back on later starts. Never printed.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use idbridge_crypto::{KeyRing, VaultKeyPair, VaultPublicKey};
use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;

/// The id of the development key-encryption key.
pub const KEK_ID: &str = "dev1";
/// The id of the development hand-off key.
pub const HANDOFF_ID: &str = "hk-dev1";

/// The vault's development keys.
pub struct DevKeys {
    /// The key-encryption key (standard base64 of 32 bytes).
    pub kek: SecretString,
    /// The hand-off private key (standard base64).
    pub handoff_private: SecretString,
    /// Its public half, which the portal seals to.
    pub handoff_public: VaultPublicKey,
}

impl std::fmt::Debug for DevKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevKeys([REDACTED])")
    }
}

fn write_new(path: &Path, secret: &SecretString) -> Result<(), Error> {
    let error = |source| Error::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(error)?;
    file.write_all(secret.expose_secret().as_bytes())
        .map_err(error)?;
    file.sync_all().map_err(error)
}

fn read_or_create(
    path: &Path,
    generate: impl FnOnce() -> Result<SecretString, String>,
) -> Result<SecretString, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SecretString::from(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = generate().map_err(Error::Keys)?;
            write_new(path, &secret)?;
            Ok(secret)
        }
        Err(source) => Err(Error::ReadFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads the keys under `data_dir/keys`, generating the missing ones.
///
/// # Errors
/// The directory or a file cannot be written or read, or a stored key does not load.
pub fn load_or_create(data_dir: &Path) -> Result<DevKeys, Error> {
    let dir: PathBuf = data_dir.join("keys");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| Error::WriteFile {
            path: dir.clone(),
            source,
        })?;
    let kek = read_or_create(&dir.join("vault-kek"), || {
        KeyRing::generate_key().map_err(|e| e.to_string())
    })?;
    let handoff_private = read_or_create(&dir.join("handoff-key"), || {
        VaultKeyPair::generate()
            .and_then(|pair| pair.to_secret_base64())
            .map_err(|e| e.to_string())
    })?;
    let pair = VaultKeyPair::from_secret_base64(&handoff_private).map_err(|e| {
        Error::Keys(format!(
            "{} does not hold a hand-off key ({e}); delete it to generate a new one",
            dir.join("handoff-key").display()
        ))
    })?;
    Ok(DevKeys {
        kek,
        handoff_private,
        handoff_public: *pair.public_key(),
    })
}

/// The webhook receiver's callback key in `data_dir/keys/webhook-callback-key`, generated on
/// first use (44 characters of base64; every callback URL derives from it, so it is kept).
///
/// # Errors
/// The file cannot be read or written, or the random generator failed.
pub fn callback_key(data_dir: &Path) -> Result<SecretString, Error> {
    read_or_create(&data_dir.join("keys").join("webhook-callback-key"), || {
        KeyRing::generate_key().map_err(|e| e.to_string())
    })
}

/// Writes `secret` to `path` (mode 0600), replacing an earlier file.
///
/// # Errors
/// The file cannot be removed or written.
pub fn replace_secret_file(path: &Path, secret: &SecretString) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::WriteFile {
                path: path.to_owned(),
                source,
            });
        }
    }
    write_new(path, secret)
}

/// A random bearer token for a caller of the vault (one per start).
///
/// # Errors
/// The random generator failed.
pub fn caller_token() -> Result<SecretString, Error> {
    KeyRing::generate_key().map_err(|e| Error::Keys(e.to_string()))
}
