//! The token vault's cryptography, on aws-lc-rs.
//!
//! - [`KeyRing`]: envelope encryption of secrets at rest. Each secret gets its own random
//!   AES-256-GCM data key (DEK); the DEK is wrapped by the ring's active key-encryption key
//!   (KEK). Both layers are bound to their database row through associated data
//!   ([`RowBinding`]), so a ciphertext copied to another row does not open. Rotation re-wraps
//!   the DEK ([`KeyRing::rewrap`]) and leaves the secret's ciphertext alone.
//! - [`hpke`]: HPKE (RFC 9180) base mode, single-shot, so the portal can seal a token
//!   response to the vault's public key and never read it back; [`HandoffKeys`] holds the
//!   vault's key pairs by id.
//! - [`handoff`]: the portal → vault token hand-off format on top of [`hpke`]
//!   ([`handoff::seal_tokens`], [`handoff::open_tokens`]).
//!
//! The blob format, the associated-data layout, the key file formats and the rotation
//! procedure are in the crate's README.
#![warn(missing_docs)]

mod aead;
pub mod error;
pub mod handoff;
pub mod hpke;
mod key_ring;
mod key_text;
mod sealed;

pub use error::{CryptoError, KeyLoadError};
pub use hpke::{HandoffKeys, SealedBox, VaultKeyPair, VaultPublicKey, seal_to};
pub use key_ring::{KeyId, KeyRing};
pub use sealed::{RowBinding, Sealed};
