//! The text forms of keys, shared by the key ring and the hand-off keys: one 32-byte key in
//! standard base64, a `key_id:BASE64,key_id:BASE64` list, and the choice of the active id.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecretMut, SecretBox};
use zeroize::Zeroizing;

use crate::KeyLoadError;
use crate::error::MAX_ECHOED_ID_LEN;
use crate::key_ring::KeyId;

/// Length of every key this crate loads: AES-256 keys and X25519 keys alike.
pub(crate) const KEY_LEN: usize = 32;

/// 32 key bytes, wiped when dropped. Boxed, so moving it never copies the bytes.
pub(crate) type KeyBytes = SecretBox<[u8; KEY_LEN]>;

/// Decodes one key: standard base64 of exactly 32 bytes, surrounding whitespace ignored.
/// `describe` names the key in errors; errors never echo the text, which is key material.
pub(crate) fn decode_key(
    describe: impl Fn() -> String,
    text: &str,
) -> Result<KeyBytes, KeyLoadError> {
    let text = text.trim();
    // Decode into a buffer we wipe: base64's own `decode` would leave copies on failure.
    let mut buf = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let len = STANDARD
        .decode_slice(text, &mut buf[..])
        .map_err(|_| KeyLoadError::BadBase64 { key: describe() })?;
    if len != KEY_LEN {
        return Err(KeyLoadError::WrongLength {
            key: describe(),
            len,
        });
    }
    let mut key = KeyBytes::default();
    key.expose_secret_mut().copy_from_slice(&buf[..KEY_LEN]);
    Ok(key)
}

/// Parses `id:BASE64,id:BASE64` (spaces around entries allowed, empty entries skipped) and
/// turns each decoded key into a `K` with `load(description, bytes)`.
pub(crate) fn parse_key_list<K>(
    origin: &str,
    list: &str,
    mut load: impl FnMut(String, KeyBytes) -> Result<K, KeyLoadError>,
) -> Result<BTreeMap<KeyId, K>, KeyLoadError> {
    let mut keys = BTreeMap::new();
    let entries = list.split(',').map(str::trim).filter(|e| !e.is_empty());
    for (index, entry) in entries.enumerate() {
        let entry_no = index + 1;
        let Some((id, text)) = entry.split_once(':') else {
            return Err(KeyLoadError::EntryWithoutId {
                origin: origin.to_owned(),
                entry: entry_no,
            });
        };
        let key_id = KeyId::parse(id.trim()).ok_or_else(|| KeyLoadError::InvalidKeyId {
            origin: format!("{origin}, entry {entry_no}"),
        })?;
        let describe = || format!("key '{key_id}' in {origin}");
        let key = load(describe(), decode_key(describe, text)?)?;
        if keys.contains_key(&key_id) {
            return Err(KeyLoadError::DuplicateKeyId {
                origin: origin.to_owned(),
                key_id: key_id.as_str().to_owned(),
            });
        }
        keys.insert(key_id, key);
    }
    if keys.is_empty() {
        return Err(KeyLoadError::NoKeys {
            origin: origin.to_owned(),
        });
    }
    Ok(keys)
}

/// Checks the active id `active` (from `origin`) against the loaded `keys`.
pub(crate) fn active_id<K>(
    keys: &BTreeMap<KeyId, K>,
    origin: &str,
    active: &str,
    fix_if_empty: &'static str,
) -> Result<KeyId, KeyLoadError> {
    let active = active.trim();
    if active.is_empty() {
        return Err(KeyLoadError::NoActiveKey {
            origin: origin.to_owned(),
            fix: fix_if_empty,
        });
    }
    // An invalid id is not echoed: it may be key material pasted into the wrong place.
    let Some(active_id) = KeyId::parse(active) else {
        return Err(KeyLoadError::InvalidKeyId {
            origin: format!("{origin} (active key id)"),
        });
    };
    if !keys.contains_key(&active_id) {
        let echoed = active_id.as_str();
        return Err(KeyLoadError::ActiveKeyMissing {
            origin: origin.to_owned(),
            // A long valid id may still be unpadded base64 key material: echo short ids only.
            active: if echoed.len() <= MAX_ECHOED_ID_LEN {
                echoed.to_owned()
            } else {
                String::new()
            },
            available: keys
                .keys()
                .map(KeyId::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(active_id)
}
