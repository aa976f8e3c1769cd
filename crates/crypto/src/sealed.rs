//! Envelope encryption: seal, open and re-wrap a secret under a [`KeyRing`], bound to its row.
//!
//! ```text
//! ciphertext  = AES-256-GCM(DEK, secret, aad = lp("idbridge-crypto/v1/secret") ‖ lp(connection_id) ‖ lp(orcid))
//! wrapped_dek = AES-256-GCM(KEK, DEK,    aad = lp("idbridge-crypto/v1/dek") ‖ lp(key_id) ‖ lp(connection_id) ‖ lp(orcid))
//! lp(x)       = u32 big-endian length of x ‖ x
//! ```
//!
//! The key id is authenticated on the wrap, not on the secret's ciphertext: rotation swaps the
//! wrap and must leave that ciphertext valid as it is.

use std::fmt;

use secrecy::{ExposeSecret, ExposeSecretMut, SecretString};
use uuid::Uuid;

use crate::aead::{self, KEY_LEN, OVERHEAD};
use crate::key_text::KeyBytes;
use crate::{CryptoError, KeyId, KeyRing};

/// Blob format version (first byte of [`Sealed::to_bytes`]).
const VERSION: u8 = 1;
/// Length of a wrapped data key: nonce ‖ 32-byte key ‖ tag.
const WRAPPED_DEK_LEN: usize = KEY_LEN + OVERHEAD;
const SECRET_LABEL: &[u8] = b"idbridge-crypto/v1/secret";
const DEK_LABEL: &[u8] = b"idbridge-crypto/v1/dek";

/// The database row a secret belongs to. Both layers of a [`Sealed`] are bound to it, so a
/// blob copied into another row fails to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowBinding<'a> {
    /// The connection (row) id.
    pub connection_id: Uuid,
    /// The ORCID iD the secret was issued for, as stored in the row.
    pub orcid: &'a str,
}

impl<'a> RowBinding<'a> {
    /// Binds to connection `connection_id` of ORCID iD `orcid`.
    pub fn new(connection_id: Uuid, orcid: &'a str) -> Self {
        Self {
            connection_id,
            orcid,
        }
    }

    /// `label ‖ [key_id] ‖ connection_id ‖ orcid`, each length-prefixed so that no two
    /// different field lists give the same bytes.
    fn aad(&self, label: &[u8], key_id: Option<&KeyId>) -> Result<Vec<u8>, CryptoError> {
        let key_id = key_id.map(|id| id.as_str().as_bytes());
        let fields = [
            Some(label),
            key_id,
            Some(self.connection_id.as_bytes().as_slice()),
            Some(self.orcid.as_bytes()),
        ];
        let mut aad = Vec::with_capacity(128);
        for field in fields.into_iter().flatten() {
            let len = u32::try_from(field.len())
                .map_err(|_| CryptoError::Malformed("a row binding field is 4 GiB or longer"))?;
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(field);
        }
        Ok(aad)
    }
}

/// A sealed secret: the id of the key-encryption key, the wrapped data key and the secret's
/// ciphertext. Store it in one bytes column with [`to_bytes`](Self::to_bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    key_id: KeyId,
    /// nonce ‖ AES-256-GCM(KEK, DEK) ‖ tag.
    wrapped_dek: Vec<u8>,
    /// nonce ‖ AES-256-GCM(DEK, secret) ‖ tag.
    ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: the bytes are not secret, but they are noise in logs.
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id.as_str())
            .field("wrapped_dek_len", &self.wrapped_dek.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl Sealed {
    /// The id of the key-encryption key that wrapped the data key.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// `nonce ‖ encrypted data key ‖ tag` (60 bytes).
    pub fn wrapped_dek(&self) -> &[u8] {
        &self.wrapped_dek
    }

    /// `nonce ‖ encrypted secret ‖ tag`.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// `version (1) ‖ key id length (1 byte) ‖ key id ‖ wrapped DEK (60 bytes) ‖ ciphertext`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + WRAPPED_DEK_LEN + self.ciphertext.len());
        out.push(VERSION);
        // Key ids are at most 64 bytes (KeyId::MAX_LEN), so the length fits in one byte.
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.wrapped_dek);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the layout of [`to_bytes`](Self::to_bytes). Checks the layout only; opening
    /// checks the contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let [version, id_len, rest @ ..] = bytes else {
            return Err(CryptoError::Malformed("shorter than its header"));
        };
        if *version != VERSION {
            return Err(CryptoError::Malformed("unknown format version"));
        }
        let id_len = usize::from(*id_len);
        if rest.len() < id_len + WRAPPED_DEK_LEN + OVERHEAD {
            return Err(CryptoError::Malformed("truncated"));
        }
        let (id, rest) = rest.split_at(id_len);
        let key_id = std::str::from_utf8(id)
            .ok()
            .and_then(KeyId::parse)
            .ok_or(CryptoError::Malformed("invalid key id"))?;
        let (wrapped_dek, ciphertext) = rest.split_at(WRAPPED_DEK_LEN);
        Ok(Self {
            key_id,
            wrapped_dek: wrapped_dek.to_vec(),
            ciphertext: ciphertext.to_vec(),
        })
    }
}

impl KeyRing {
    /// Encrypts `secret` for the row `binding` under a fresh data key, wrapped by the active
    /// key-encryption key.
    pub fn seal(&self, secret: &SecretString, binding: &RowBinding) -> Result<Sealed, CryptoError> {
        let dek = aead::random_key()?;
        let ciphertext = aead::seal(
            dek.expose_secret(),
            &binding.aad(SECRET_LABEL, None)?,
            secret.expose_secret().as_bytes(),
        )?;
        let (key_id, wrapped_dek) = self.wrap(dek.expose_secret(), binding)?;
        Ok(Sealed {
            key_id,
            wrapped_dek,
            ciphertext,
        })
    }

    /// Decrypts a secret sealed for the row `binding`. Fails with
    /// [`CryptoError::UnknownKeyId`] if its key is not in the ring, and with
    /// [`CryptoError::Authentication`] if it was altered, belongs to another row or was sealed
    /// under different key material.
    pub fn open(&self, sealed: &Sealed, binding: &RowBinding) -> Result<SecretString, CryptoError> {
        let dek = self.unwrap_dek(sealed, binding)?;
        let plaintext = aead::open(
            dek.expose_secret(),
            &binding.aad(SECRET_LABEL, None)?,
            &sealed.ciphertext,
        )?;
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| CryptoError::Malformed("the secret is not UTF-8"))?;
        Ok(SecretString::from(text))
    }

    /// Whether `sealed` is wrapped by another key than the active one, so a rotation should
    /// [`rewrap`](Self::rewrap) it.
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active
    }

    /// Rotation: unwraps the data key with the key it was sealed under and wraps it with the
    /// active key. The secret's ciphertext is copied unchanged (and not checked here; `open`
    /// checks it).
    pub fn rewrap(&self, sealed: &Sealed, binding: &RowBinding) -> Result<Sealed, CryptoError> {
        let dek = self.unwrap_dek(sealed, binding)?;
        let (key_id, wrapped_dek) = self.wrap(dek.expose_secret(), binding)?;
        Ok(Sealed {
            key_id,
            wrapped_dek,
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    fn wrap(
        &self,
        dek: &[u8; KEY_LEN],
        binding: &RowBinding,
    ) -> Result<(KeyId, Vec<u8>), CryptoError> {
        let kek = self.kek(&self.active)?;
        let aad = binding.aad(DEK_LABEL, Some(&self.active))?;
        Ok((self.active.clone(), aead::seal(kek, &aad, dek)?))
    }

    fn unwrap_dek(&self, sealed: &Sealed, binding: &RowBinding) -> Result<KeyBytes, CryptoError> {
        let kek = self.kek(&sealed.key_id)?;
        let aad = binding.aad(DEK_LABEL, Some(&sealed.key_id))?;
        let bytes = aead::open(kek, &aad, &sealed.wrapped_dek)?;
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::Malformed("the data key has the wrong length"));
        }
        let mut dek = KeyBytes::default();
        dek.expose_secret_mut().copy_from_slice(&bytes);
        Ok(dek)
    }

    fn kek(&self, key_id: &KeyId) -> Result<&[u8; KEY_LEN], CryptoError> {
        self.keys
            .get(key_id)
            .map(ExposeSecret::expose_secret)
            .ok_or_else(|| CryptoError::UnknownKeyId {
                key_id: key_id.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECTION: Uuid = Uuid::from_u128(0x0199c8f4_7d2e_7c4a_9b1e_3f6a2d8e5b10);

    #[test]
    fn aad_is_length_prefixed_fields() {
        let key_id = KeyId::parse("k1").unwrap();
        let aad = RowBinding::new(CONNECTION, "0000-0002-1825-0097")
            .aad(DEK_LABEL, Some(&key_id))
            .unwrap();
        let expected = [
            &22u32.to_be_bytes()[..],
            b"idbridge-crypto/v1/dek",
            &2u32.to_be_bytes(),
            b"k1",
            &16u32.to_be_bytes(),
            CONNECTION.as_bytes(),
            &19u32.to_be_bytes(),
            b"0000-0002-1825-0097",
        ]
        .concat();
        assert_eq!(aad, expected);
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_aad() {
        // Without length prefixes, id "k1" + orcid "x" and id "k" + orcid "1x" could collide.
        let binding = RowBinding::new(CONNECTION, "0000-0002-1825-0097");
        let a = binding.aad(DEK_LABEL, Some(&KeyId::parse("k1").unwrap()));
        let b = binding.aad(DEK_LABEL, Some(&KeyId::parse("k").unwrap()));
        assert_ne!(a.unwrap(), b.unwrap());
        assert_ne!(
            binding.aad(SECRET_LABEL, None).unwrap(),
            binding.aad(DEK_LABEL, None).unwrap()
        );
    }

    #[test]
    fn blob_layout_is_version_id_wrap_ciphertext() {
        let sealed = Sealed {
            key_id: KeyId::parse("k2026a").unwrap(),
            wrapped_dek: vec![0xaa; WRAPPED_DEK_LEN],
            ciphertext: vec![0xbb; OVERHEAD + 3],
        };
        let bytes = sealed.to_bytes();
        assert_eq!(&bytes[..8], b"\x01\x06k2026a");
        assert_eq!(&bytes[8..68], &[0xaa; 60][..]);
        assert_eq!(&bytes[68..], &[0xbb; OVERHEAD + 3][..]);
        assert_eq!(Sealed::from_bytes(&bytes).unwrap(), sealed);
    }
}
