//! The key ring: key-encryption keys (KEKs) by id, exactly one of them active, and the two
//! ways to load it (a configuration string, a mounted directory).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::key_text::{self, KeyBytes};
use crate::{CryptoError, KeyLoadError, aead};

/// The file in a key directory that names the active key.
const ACTIVE_FILE: &str = "active";
/// The link Kubernetes points at the current version of a mounted Secret or ConfigMap.
const K8S_DATA_LINK: &str = "..data";

/// The name of a key-encryption key, recorded in every blob it wraps.
///
/// 1 to 64 characters of `A-Z a-z 0-9 _ -`: safe as a file name, free of the list
/// separators `:` and `,`, and short enough for the blob's one-byte length prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The longest id accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks `id`; `None` if it is not a valid key id.
    pub fn parse(id: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_LEN).contains(&id.len())
            && id != ACTIVE_FILE
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| Self(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for KeyId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for KeyId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A key-encryption key's bytes, wiped when dropped.
pub(crate) type Kek = KeyBytes;

/// Key-encryption keys by id, exactly one of them active (used for new seals and for
/// [`rewrap`](KeyRing::rewrap)); the others only open what they sealed before a rotation.
///
/// Sealing, opening and re-wrapping ([`seal`](Self::seal), [`open`](Self::open),
/// [`rewrap`](Self::rewrap)) are in `sealed.rs`.
pub struct KeyRing {
    pub(crate) keys: BTreeMap<KeyId, Kek>,
    pub(crate) active: KeyId,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active.as_str())
            .field(
                "key_ids",
                &self.keys.keys().map(KeyId::as_str).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the ring from configuration values: `keys` is `k2026a:BASE64,k2025b:BASE64`
    /// (each key 32 bytes, standard base64), `active` the id new seals use.
    pub fn from_config(keys: &SecretString, active: &str) -> Result<Self, KeyLoadError> {
        const ORIGIN: &str = "key ring configuration";
        let keys = key_text::parse_key_list(ORIGIN, keys.expose_secret(), |_, key| Ok(key))?;
        Self::with_active(keys, ORIGIN, active)
    }

    /// Loads the ring from a directory, as Kubernetes mounts a Secret: one file per key,
    /// named by its id and holding the key's 32 bytes in base64, plus a file `active` holding
    /// the active id. The directory must hold nothing else (names starting with `.` are
    /// skipped).
    ///
    /// When `dir/..data` exists (Kubernetes' link to the current version of the Secret), it
    /// is resolved once and every file is read from its target, so a load that races the
    /// kubelet's update sees either the old or the new version, never old keys with a new
    /// `active`. If the kubelet deletes the old version mid-load, the load fails with
    /// [`KeyLoadError::Io`]; load again.
    pub fn from_dir(dir: &Path) -> Result<Self, KeyLoadError> {
        let dir = snapshot_dir(dir)?;
        let dir = dir.as_path();
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyLoadError::Io { path, source }
        };
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == ACTIVE_FILE {
                continue;
            }
            let key_id = KeyId::parse(&name).ok_or_else(|| KeyLoadError::InvalidKeyId {
                origin: format!("key file {}", path.display()),
            })?;
            let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io_error(&path))?);
            let key = key_text::decode_key(
                || format!("key '{key_id}' (file {})", path.display()),
                &text,
            )?;
            keys.insert(key_id, key);
        }
        if keys.is_empty() {
            return Err(KeyLoadError::NoKeys {
                origin: dir.display().to_string(),
            });
        }
        let active_path = dir.join(ACTIVE_FILE);
        let origin = active_path.display().to_string();
        let active = std::fs::read_to_string(&active_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                KeyLoadError::NoActiveKey {
                    origin: origin.clone(),
                    fix: "write the active key id into a file named `active` in the key directory",
                }
            } else {
                io_error(&active_path)(source)
            }
        })?;
        Self::with_active(keys, &origin, &active)
    }

    /// A new random key-encryption key in the text form the loaders read (standard base64 of
    /// 32 bytes), for `idbridge keys rotate`.
    pub fn generate_key() -> Result<SecretString, CryptoError> {
        let key = aead::random_key()?;
        Ok(SecretString::from(STANDARD.encode(key.expose_secret())))
    }

    /// A ring with one fixed, publicly known key (`test`), for tests and benchmarks only:
    /// data sealed under it is not protected. Compiled only with the `test-util` feature
    /// (enable it from `[dev-dependencies]`), so no service binary carries it.
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_testing() -> Self {
        const TEST_KEY_ENCRYPTION_KEY: [u8; key_text::KEY_LEN] =
            *b"idbridge test key; never in prod";
        let active = KeyId("test".to_owned());
        let keys = BTreeMap::from([(active.clone(), Kek::new(Box::new(TEST_KEY_ENCRYPTION_KEY)))]);
        Self { keys, active }
    }

    /// The id of the key new seals and re-wraps use.
    pub fn active_key_id(&self) -> &KeyId {
        &self.active
    }

    /// Whether the ring holds a key with this id.
    pub fn contains(&self, key_id: &KeyId) -> bool {
        self.keys.contains_key(key_id)
    }

    /// Checks the active id (from `origin`) against the loaded keys.
    fn with_active(
        keys: BTreeMap<KeyId, Kek>,
        origin: &str,
        active: &str,
    ) -> Result<Self, KeyLoadError> {
        let active = key_text::active_id(
            &keys,
            origin,
            active,
            "name one of the loaded key ids as active",
        )?;
        Ok(Self { keys, active })
    }
}

/// The directory to read a key directory's files from: the target of `dir/..data` when
/// Kubernetes put one there (resolved once, see [`KeyRing::from_dir`]), else `dir` itself.
fn snapshot_dir(dir: &Path) -> Result<PathBuf, KeyLoadError> {
    let data = dir.join(K8S_DATA_LINK);
    match std::fs::symlink_metadata(&data) {
        Ok(_) => std::fs::canonicalize(&data).map_err(|source| KeyLoadError::Io {
            path: data.clone(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir.to_path_buf()),
        Err(source) => Err(KeyLoadError::Io { path: data, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_rules() {
        assert!(KeyId::parse("k2026a").is_some());
        assert!(KeyId::parse("kek_2026-01").is_some());
        assert!(KeyId::parse(&"a".repeat(64)).is_some());
        for bad in [
            "",
            "active",
            "a.b",
            "a/b",
            "a b",
            "k:1",
            "é",
            &"a".repeat(65),
        ] {
            assert!(KeyId::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_test_ring_is_compiled_for_unit_tests() {
        assert_eq!(KeyRing::for_testing().active_key_id(), "test");
    }
}
