//! AES-256-GCM with a random nonce, stored as `nonce ‖ ciphertext ‖ tag` (the layout
//! crates.io uses for its token encryption).

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecretMut;
use zeroize::Zeroizing;

use crate::CryptoError;
/// AES-256 key length.
pub(crate) use crate::key_text::KEY_LEN;
use crate::key_text::KeyBytes;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub(crate) const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A fresh random 256-bit key, wiped when dropped (boxed, so returning it copies no key bytes).
pub(crate) fn random_key() -> Result<KeyBytes, CryptoError> {
    let mut key = KeyBytes::default();
    SystemRandom::new()
        .fill(key.expose_secret_mut())
        .map_err(|_| CryptoError::Internal("generating a random key"))?;
    Ok(key)
}

/// Encrypts `plaintext` under `key` with a nonce aws-lc draws at random.
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = RandomizedNonceKey::new(&AES_256_GCM, key)
        .map_err(|_| CryptoError::Internal("creating an AES-256-GCM key"))?;
    // Wiped if sealing fails, since it then still holds the plaintext.
    let mut out = Zeroizing::new(Vec::with_capacity(plaintext.len() + OVERHEAD));
    out.extend_from_slice(&[0u8; NONCE_LEN]);
    out.extend_from_slice(plaintext);
    let (nonce, tag) = key
        .seal_in_place_separate_tag(Aad::from(aad), &mut out[NONCE_LEN..])
        .map_err(|_| CryptoError::Internal("encrypting with AES-256-GCM"))?;
    out[..NONCE_LEN].copy_from_slice(nonce.as_ref());
    out.extend_from_slice(tag.as_ref());
    Ok(std::mem::take(&mut *out))
}

/// Decrypts a `nonce ‖ ciphertext ‖ tag` blob made by [`seal`].
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < OVERHEAD {
        return Err(CryptoError::Malformed("shorter than a nonce and a tag"));
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed("bad nonce"))?;
    let key = RandomizedNonceKey::new(&AES_256_GCM, key)
        .map_err(|_| CryptoError::Internal("creating an AES-256-GCM key"))?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Authentication)?
        .len();
    buf.truncate(len);
    Ok(buf)
}
