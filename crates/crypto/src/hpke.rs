//! Sealed hand-off from the portal to the vault: HPKE (RFC 9180) base mode, single-shot,
//! with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM (KEM 0x0020, KDF 0x0001,
//! AEAD 0x0002), built from aws-lc-rs primitives.
//!
//! The portal holds only the vault's [`VaultPublicKey`] and calls [`seal_to`]; only the
//! vault's [`VaultKeyPair`] opens the [`SealedBox`]. `info` names the purpose (bind it to
//! the protocol and version), `aad` binds the box to its context (for example the
//! connection id), and both must be the same on both sides.
//!
//! Section numbers below are RFC 9180's. The AEAD is a parameter (`Suite`) only so the
//! tests can run the RFC's AES-128-GCM vector (Appendix A.1.1); the public API uses
//! `SUITE`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use aws_lc_rs::aead::{self, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::key_text::{self, KeyBytes};
use crate::{CryptoError, KeyId, KeyLoadError};

/// DHKEM(X25519, HKDF-SHA256) (§7.1).
const KEM_ID: u16 = 0x0020;
/// HKDF-SHA256 (§7.2).
const KDF_ID: u16 = 0x0001;
/// Nsecret, Nenc, Npk and Nsk of DHKEM(X25519, HKDF-SHA256) and Nh of HKDF-SHA256: all 32.
const N: usize = 32;
/// mode_base (§5).
const MODE_BASE: u8 = 0x00;

/// An AEAD from §7.3 with its registry id.
pub(crate) struct Suite {
    aead: &'static aead::Algorithm,
    aead_id: u16,
}

/// The suite idbridge uses: AES-256-GCM (0x0002).
pub(crate) const SUITE: Suite = Suite {
    aead: &AES_256_GCM,
    aead_id: 0x0002,
};

impl Suite {
    /// `suite_id = "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2)` (§5.1).
    fn id(&self) -> [u8; 10] {
        let mut id = [0u8; 10];
        id[..4].copy_from_slice(b"HPKE");
        id[4..6].copy_from_slice(&KEM_ID.to_be_bytes());
        id[6..8].copy_from_slice(&KDF_ID.to_be_bytes());
        id[8..].copy_from_slice(&self.aead_id.to_be_bytes());
        id
    }
}

/// `suite_id = "KEM" ‖ I2OSP(kem_id, 2)` (§4.1).
fn kem_suite_id() -> [u8; 5] {
    let mut id = [0u8; 5];
    id[..3].copy_from_slice(b"KEM");
    id[3..].copy_from_slice(&KEM_ID.to_be_bytes());
    id
}

// ---- §4: labeled KDF ---------------------------------------------------------------------

/// `LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm)`,
/// written into `prk`.
///
/// HKDF-Extract is HMAC-SHA256 keyed by the salt (RFC 5869 §2.2; an empty salt and 32 zero
/// bytes give the same HMAC key). It is computed with `hmac` because aws-lc-rs's
/// `hkdf::Prk` keeps its bytes private, and HPKE uses some extract outputs as bytes
/// (`psk_id_hash`, `info_hash`). Secrets are written into the caller's wiped buffers rather
/// than returned, so no copy is left behind by a move.
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8], prk: &mut [u8; N]) {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, salt));
    for part in [b"HPKE-v1".as_slice(), suite_id, label, ikm] {
        ctx.update(part);
    }
    prk.copy_from_slice(ctx.sign().as_ref());
}

/// `LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖
/// label ‖ info, L)`.
fn labeled_expand(
    suite_id: &[u8],
    prk: &[u8; N],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let length = u16::try_from(out.len())
        .map_err(|_| CryptoError::Internal("expanding an HPKE key"))?
        .to_be_bytes();
    let labeled_info = [length.as_slice(), b"HPKE-v1", suite_id, label, info];
    hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk)
        .expand(&labeled_info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::Internal("expanding an HPKE key"))
}

// ---- §4.1: DHKEM(X25519, HKDF-SHA256) ----------------------------------------------------

/// `ExtractAndExpand(dh, kem_context)`: the KEM's shared secret, written into
/// `shared_secret`.
fn extract_and_expand(
    dh: &[u8],
    kem_context: &[u8],
    shared_secret: &mut [u8; N],
) -> Result<(), CryptoError> {
    let suite_id = kem_suite_id();
    let mut eae_prk = Zeroizing::new([0u8; N]);
    labeled_extract(&suite_id, b"", b"eae_prk", dh, &mut eae_prk);
    labeled_expand(
        &suite_id,
        &eae_prk,
        b"shared_secret",
        kem_context,
        shared_secret,
    )
}

/// `DH(sk, pk)`: X25519, written into `out`. aws-lc rejects an all-zero result (a low-order
/// `pk`), as §7.1.4 requires.
fn dh(sk: &PrivateKey, pk: &[u8; N], out: &mut [u8; N]) -> Result<(), CryptoError> {
    agreement::agree(
        sk,
        UnparsedPublicKey::new(&X25519, pk),
        CryptoError::Malformed("the X25519 public key was rejected"),
        |shared| {
            out.copy_from_slice(shared);
            Ok(())
        },
    )
}

/// `Encap(pkR)` with the ephemeral key `sk_e` given (random in [`seal_to`], fixed in the RFC
/// vector test). Writes the shared secret and returns `enc`.
fn encap(
    pk_r: &[u8; N],
    sk_e: &PrivateKey,
    shared_secret: &mut [u8; N],
) -> Result<[u8; N], CryptoError> {
    let enc = public_bytes(sk_e)?;
    let mut dh_out = Zeroizing::new([0u8; N]);
    dh(sk_e, pk_r, &mut dh_out)?;
    let kem_context = [enc.as_slice(), pk_r].concat();
    extract_and_expand(&dh_out[..], &kem_context, shared_secret)?;
    Ok(enc)
}

/// `Decap(enc, skR)`: writes the shared secret. `pk_r` is `skR`'s public key, passed in
/// because recomputing it is a second X25519 operation per open.
fn decap(
    enc: &[u8; N],
    sk_r: &PrivateKey,
    pk_r: &[u8; N],
    shared_secret: &mut [u8; N],
) -> Result<(), CryptoError> {
    let mut dh_out = Zeroizing::new([0u8; N]);
    dh(sk_r, enc, &mut dh_out)?;
    let kem_context = [enc.as_slice(), pk_r].concat();
    extract_and_expand(&dh_out[..], &kem_context, shared_secret)
}

fn public_bytes(sk: &PrivateKey) -> Result<[u8; N], CryptoError> {
    let pk = sk
        .compute_public_key()
        .map_err(|_| CryptoError::Internal("computing an X25519 public key"))?;
    pk.as_ref()
        .try_into()
        .map_err(|_| CryptoError::Internal("computing an X25519 public key"))
}

// ---- §5.1: key schedule (base mode: psk = psk_id = "") ------------------------------------

/// `KeyScheduleS/R` for mode_base, reduced to what single-shot needs: the AEAD key and
/// `base_nonce` (sequence number 0, so it is the nonce). The exporter secret is not derived.
fn key_schedule(
    suite: &Suite,
    shared_secret: &[u8; N],
    info: &[u8],
) -> Result<(LessSafeKey, [u8; NONCE_LEN]), CryptoError> {
    let suite_id = suite.id();
    // Not secret: hashes of the (empty) psk_id and of the public info.
    let mut psk_id_hash = [0u8; N];
    labeled_extract(&suite_id, b"", b"psk_id_hash", b"", &mut psk_id_hash);
    let mut info_hash = [0u8; N];
    labeled_extract(&suite_id, b"", b"info_hash", info, &mut info_hash);
    let key_schedule_context = [[MODE_BASE].as_slice(), &psk_id_hash, &info_hash].concat();
    let mut secret = Zeroizing::new([0u8; N]);
    labeled_extract(&suite_id, shared_secret, b"secret", b"", &mut secret);

    let mut key = Zeroizing::new(vec![0u8; suite.aead.key_len()]);
    labeled_expand(&suite_id, &secret, b"key", &key_schedule_context, &mut key)?;
    let mut base_nonce = [0u8; NONCE_LEN];
    labeled_expand(
        &suite_id,
        &secret,
        b"base_nonce",
        &key_schedule_context,
        &mut base_nonce,
    )?;

    // LessSafeKey because HPKE fixes the nonce; one key seals exactly one message here.
    let key = UnboundKey::new(suite.aead, &key)
        .map_err(|_| CryptoError::Internal("creating the HPKE AEAD key"))?;
    Ok((LessSafeKey::new(key), base_nonce))
}

/// `SealBase(pkR, info, aad, pt)` (§6.1) with the ephemeral key given.
fn seal_base(
    suite: &Suite,
    pk_r: &[u8; N],
    sk_e: &PrivateKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedBox, CryptoError> {
    let mut shared_secret = Zeroizing::new([0u8; N]);
    let enc = encap(pk_r, sk_e, &mut shared_secret)?;
    let (key, nonce) = key_schedule(suite, &shared_secret, info)?;
    // Room for the tag up front, so appending it does not leave a plaintext copy behind;
    // wiped if sealing fails, since it then still holds the plaintext.
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + suite.aead.tag_len()));
    buf.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut *buf,
    )
    .map_err(|_| CryptoError::Internal("encrypting the HPKE payload"))?;
    let ciphertext = std::mem::take(&mut *buf);
    Ok(SealedBox { enc, ciphertext })
}

/// `OpenBase(enc, skR, info, aad, ct)` (§6.1); `pk_r` is `skR`'s public key.
fn open_base(
    suite: &Suite,
    sk_r: &PrivateKey,
    pk_r: &[u8; N],
    sealed: &SealedBox,
    info: &[u8],
    aad: &[u8],
) -> Result<SecretBox<[u8]>, CryptoError> {
    let mut shared_secret = Zeroizing::new([0u8; N]);
    decap(&sealed.enc, sk_r, pk_r, &mut shared_secret)?;
    let (key, nonce) = key_schedule(suite, &shared_secret, info)?;
    let mut buf = Zeroizing::new(sealed.ciphertext.clone());
    let plaintext = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError::Authentication)?;
    Ok(SecretBox::new(Box::from(&*plaintext)))
}

// ---- public API ---------------------------------------------------------------------------

/// Seals `plaintext` to the vault: only the holder of the matching [`VaultKeyPair`] can
/// open it, with the same `info` and `aad`.
pub fn seal_to(
    recipient: &VaultPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedBox, CryptoError> {
    let sk_e = PrivateKey::generate(&X25519)
        .map_err(|_| CryptoError::Internal("generating an ephemeral X25519 key"))?;
    seal_base(&SUITE, &recipient.0, &sk_e, info, aad, plaintext)
}

/// HPKE output: the encapsulated ephemeral public key and the AEAD ciphertext (with tag).
/// Serializes as `{"enc": BASE64, "ciphertext": BASE64}`; [`to_bytes`](Self::to_bytes) gives
/// a compact binary form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBox {
    /// `enc`: the sender's ephemeral X25519 public key.
    #[serde(with = "base64_array")]
    pub enc: [u8; N],
    /// The AES-256-GCM ciphertext followed by its 16-byte tag.
    #[serde(with = "base64_vec")]
    pub ciphertext: Vec<u8>,
}

/// First byte of [`SealedBox::to_bytes`]: version 1 is this module's suite,
/// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
const SEALED_BOX_VERSION: u8 = 1;
/// AES-256-GCM tag length.
const TAG_LEN: usize = 16;

impl SealedBox {
    /// `version (1 byte = 0x01) ‖ enc (32 bytes) ‖ ciphertext (with its 16-byte tag)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + N + self.ciphertext.len());
        out.push(SEALED_BOX_VERSION);
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the layout of [`to_bytes`](Self::to_bytes). Checks the layout only; opening
    /// checks the contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(CryptoError::Malformed("empty sealed box"));
        };
        if version != SEALED_BOX_VERSION {
            return Err(CryptoError::Malformed("unknown sealed box version"));
        }
        if rest.len() < N + TAG_LEN {
            return Err(CryptoError::Malformed(
                "sealed box shorter than enc and a tag",
            ));
        }
        let (enc, ciphertext) = rest.split_at(N);
        let enc = enc
            .try_into()
            .map_err(|_| CryptoError::Malformed("sealed box shorter than enc and a tag"))?;
        Ok(Self {
            enc,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// The vault's X25519 key pair. Load the private half from a mounted Secret with
/// [`from_secret_base64`](Self::from_secret_base64); give the portal
/// [`public_key`](Self::public_key).
pub struct VaultKeyPair {
    private: PrivateKey,
    public: VaultPublicKey,
}

impl fmt::Debug for VaultKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VaultKeyPair {
    /// A new random key pair.
    pub fn generate() -> Result<Self, CryptoError> {
        let private = PrivateKey::generate(&X25519)
            .map_err(|_| CryptoError::Internal("generating an X25519 key"))?;
        Self::from_private(private)
    }

    /// Loads the private key from standard base64 of its 32 bytes (as
    /// [`to_secret_base64`](Self::to_secret_base64) writes it; surrounding whitespace is
    /// ignored).
    pub fn from_secret_base64(encoded: &SecretString) -> Result<Self, KeyLoadError> {
        const WHAT: &str = "the vault's HPKE private key";
        let key = key_text::decode_key(|| WHAT.into(), encoded.expose_secret())?;
        Self::from_key_bytes(WHAT, &key)
    }

    /// The key pair of the 32 private key bytes `key`; `what` names it in errors.
    fn from_key_bytes(what: &str, key: &KeyBytes) -> Result<Self, KeyLoadError> {
        let rejected = || KeyLoadError::Rejected { key: what.into() };
        let private =
            PrivateKey::from_private_key(&X25519, key.expose_secret()).map_err(|_| rejected())?;
        Self::from_private(private).map_err(|_| rejected())
    }

    /// The private key as standard base64 of its 32 bytes, to store in a Secret.
    pub fn to_secret_base64(&self) -> Result<SecretString, CryptoError> {
        let seed: Curve25519SeedBin<'static> = self
            .private
            .as_be_bytes()
            .map_err(|_| CryptoError::Internal("exporting the X25519 private key"))?;
        Ok(SecretString::from(STANDARD.encode(seed.as_ref())))
    }

    /// The public half, for the portal's configuration.
    pub fn public_key(&self) -> &VaultPublicKey {
        &self.public
    }

    /// Opens a box sealed with [`seal_to`] to this key pair's public key. Fails with
    /// [`CryptoError::Authentication`] if it was sealed to another key, altered, or `info`
    /// or `aad` differ.
    pub fn open(
        &self,
        sealed: &SealedBox,
        info: &[u8],
        aad: &[u8],
    ) -> Result<SecretBox<[u8]>, CryptoError> {
        open_base(&SUITE, &self.private, &self.public.0, sealed, info, aad)
    }

    fn from_private(private: PrivateKey) -> Result<Self, CryptoError> {
        let public = VaultPublicKey(public_bytes(&private)?);
        Ok(Self { private, public })
    }
}

/// The vault's X25519 public key. Text form: standard base64 of its 32 bytes (`Display`,
/// `FromStr`, serde).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VaultPublicKey([u8; N]);

impl VaultPublicKey {
    /// Checks and wraps 32 public key bytes. Fails with [`KeyLoadError::InvalidPublicKey`]
    /// for a low-order point (all-zero, u = 1, the order-8 points, …): every private key
    /// gets the same all-zero shared secret with it, which [`seal_to`] refuses, so a
    /// misconfigured portal fails at start-up rather than at every hand-off.
    pub fn from_bytes(bytes: [u8; N]) -> Result<Self, KeyLoadError> {
        const WHAT: &str = "the vault's HPKE public key";
        // The test agreement `seal_to` would make: aws-lc refuses an all-zero shared secret,
        // which is what any private key gets with a low-order point.
        let probe = PrivateKey::generate(&X25519)
            .map_err(|_| KeyLoadError::Rejected { key: WHAT.into() })?;
        let mut shared = Zeroizing::new([0u8; N]);
        dh(&probe, &bytes, &mut shared)
            .map_err(|_| KeyLoadError::InvalidPublicKey { key: WHAT.into() })?;
        Ok(Self(bytes))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl fmt::Display for VaultPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for VaultPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultPublicKey({self})")
    }
}

impl FromStr for VaultPublicKey {
    type Err = KeyLoadError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "the vault's HPKE public key";
        // Not secret, but the shared decoder keeps one set of rules for every key's text.
        let key = key_text::decode_key(|| WHAT.into(), text)?;
        Self::from_bytes(*key.expose_secret())
    }
}

impl Serialize for VaultPublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VaultPublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The vault's hand-off key pairs by id, one of them active (the one the portal seals to);
/// the others still open boxes sealed to them during a hand-off key rotation.
pub struct HandoffKeys {
    keys: BTreeMap<KeyId, VaultKeyPair>,
    active: KeyId,
    /// The active key's public half, copied out so reading it needs no lookup.
    active_public: VaultPublicKey,
}

impl fmt::Debug for HandoffKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffKeys")
            .field("active", &self.active.as_str())
            .field(
                "key_ids",
                &self.keys.keys().map(KeyId::as_str).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HandoffKeys {
    /// Loads the private keys from `hk2026a:BASE64,hk2025b:BASE64` (the same list format and
    /// id rules as [`KeyRing::from_config`](crate::KeyRing::from_config); each key as
    /// [`VaultKeyPair::to_secret_base64`] writes it). `active` names the key the portal
    /// seals to; it may be left out (`None` or blank) when the list holds one key.
    pub fn from_config(keys: &SecretString, active: Option<&str>) -> Result<Self, KeyLoadError> {
        const ORIGIN: &str = "hand-off key configuration";
        let keys = key_text::parse_key_list(ORIGIN, keys.expose_secret(), |what, key| {
            VaultKeyPair::from_key_bytes(&what, &key)
        })?;
        let active = match active.map(str::trim).filter(|a| !a.is_empty()) {
            Some(active) => active.to_owned(),
            None if keys.len() == 1 => keys
                .keys()
                .next()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            None => String::new(),
        };
        let active = key_text::active_id(
            &keys,
            ORIGIN,
            &active,
            "several hand-off keys are loaded: name the one the portal seals to as active",
        )?;
        let active_public = keys
            .get(&active)
            .map(|pair| *pair.public_key())
            .ok_or_else(|| KeyLoadError::NoKeys {
                origin: ORIGIN.to_owned(),
            })?;
        Ok(Self {
            keys,
            active,
            active_public,
        })
    }

    /// The id of the key the portal seals to.
    pub fn active_key_id(&self) -> &KeyId {
        &self.active
    }

    /// The public key the portal seals to (the active key's).
    pub fn active_public_key(&self) -> &VaultPublicKey {
        &self.active_public
    }

    /// The key pair with id `key_id` (for example the id an event names), to open a box
    /// sealed to it; `None` if the vault does not hold it.
    pub fn get(&self, key_id: &str) -> Option<&VaultKeyPair> {
        KeyId::parse(key_id).and_then(|id| self.keys.get(&id))
    }

    /// The ids of every loaded key, in order.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }
}

/// Serde for `Vec<u8>` as a base64 string.
mod base64_vec {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Serde for `[u8; 32]` as a base64 string.
mod base64_array {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &[u8; 32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::base64_vec::serialize(bytes, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 32], D::Error> {
        let bytes = super::base64_vec::deserialize(deserializer)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("enc must be 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::AES_128_GCM;

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn x25519_key(text: &str) -> PrivateKey {
        PrivateKey::from_private_key(&X25519, &hex(text)).unwrap()
    }

    fn array(text: &str) -> [u8; N] {
        hex(text).try_into().unwrap()
    }

    // RFC 9180 Appendix A.1.1, "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM",
    // Base Setup Information and Encryptions, sequence number 0
    // (https://www.rfc-editor.org/rfc/rfc9180.html#appendix-A.1.1). Copied from the RFC
    // vector as transcribed in google/tink `hybrid/internal/hpke_test_util.cc`, and checked
    // against the same vector in other public HPKE test suites (Go, Python, TypeScript).
    const A11_INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
    const A11_SK_EM: &str = "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736";
    const A11_PK_RM: &str = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
    const A11_SK_RM: &str = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
    const A11_ENC: &str = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
    const A11_SHARED_SECRET: &str =
        "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc";
    const A11_BASE_NONCE: &str = "56d890e5accaaf011cff4b7d";
    const A11_PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
    const A11_AAD: &str = "436f756e742d30";
    const A11_CT: &str = "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a";

    const AES_128_GCM_SUITE: Suite = Suite {
        aead: &AES_128_GCM,
        aead_id: 0x0001,
    };

    #[test]
    fn rfc9180_a_1_1_base_mode_sequence_0() {
        let sk_e = x25519_key(A11_SK_EM);
        let sk_r = x25519_key(A11_SK_RM);
        let pk_r = array(A11_PK_RM);
        assert_eq!(public_bytes(&sk_r).unwrap(), pk_r);

        let mut shared_secret = [0u8; N];
        let enc = encap(&pk_r, &sk_e, &mut shared_secret).unwrap();
        assert_eq!(enc, array(A11_ENC));
        assert_eq!(shared_secret, array(A11_SHARED_SECRET));
        let mut decapped = [0u8; N];
        decap(&enc, &sk_r, &pk_r, &mut decapped).unwrap();
        assert_eq!(decapped, array(A11_SHARED_SECRET));
        let (_, base_nonce) =
            key_schedule(&AES_128_GCM_SUITE, &shared_secret, &hex(A11_INFO)).unwrap();
        assert_eq!(base_nonce.to_vec(), hex(A11_BASE_NONCE));

        let sealed = seal_base(
            &AES_128_GCM_SUITE,
            &pk_r,
            &sk_e,
            &hex(A11_INFO),
            &hex(A11_AAD),
            &hex(A11_PT),
        )
        .unwrap();
        assert_eq!(sealed.enc, array(A11_ENC));
        assert_eq!(sealed.ciphertext, hex(A11_CT));

        let opened = open_base(
            &AES_128_GCM_SUITE,
            &sk_r,
            &pk_r,
            &sealed,
            &hex(A11_INFO),
            &hex(A11_AAD),
        )
        .unwrap();
        assert_eq!(opened.expose_secret(), hex(A11_PT).as_slice());
    }

    // DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM — our suite, which RFC 9180 has no
    // vector for. BoringSSL's hpke_test_vectors.txt has one (sender side: pkRm, skEm, ct),
    // copied from google/tink `hybrid/internal/hpke_test_util.cc`
    // (`kTestX25519HkdfSha256Aes256Gcm`). Same info, pt and aad as A.1.1.
    const B_PK_RM: &str = "ac66bae9ffa270cf4a89ed9f274e30c0456babae2572aaaf002ff0d8884ab018";
    const B_SK_EM: &str = "28e212563a8b6f068af7ff17400ff1baf23612b7a738bbaf5dfb321b2b5b431a";
    const B_CT: &str = "23ded2d5d90ea89d975dac4792b297240f194952d7421aacbff0474100052b6bb8aa58d18ef6c42b6960e2e28f";

    #[test]
    fn boringssl_vector_for_x25519_aes_256_gcm() {
        let sealed = seal_base(
            &SUITE,
            &array(B_PK_RM),
            &x25519_key(B_SK_EM),
            &hex(A11_INFO),
            &hex(A11_AAD),
            &hex(A11_PT),
        )
        .unwrap();
        assert_eq!(sealed.ciphertext, hex(B_CT));
    }

    #[test]
    fn suite_ids_are_the_registry_values() {
        assert_eq!(SUITE.id(), *b"HPKE\x00\x20\x00\x01\x00\x02");
        assert_eq!(kem_suite_id(), *b"KEM\x00\x20");
    }
}
