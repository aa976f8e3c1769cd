//! Integration tests of `idbridge-crypto`: one binary (see the workspace README).
#![allow(clippy::unwrap_used)]

mod debug_output;
mod envelope;
mod handoff;
mod hpke;
mod key_ring_loading;

/// Two fixed test key-encryption keys in the loaders' text form (standard base64 of 32
/// bytes), distinctive enough to search Debug output and error messages for.
pub const TEST_KEK_1: &str = "VEVTVC1LRUstMS1ub3QtYS1yZWFsLXNlY3JldC0wMDE=";
pub const TEST_KEK_2: &str = "VEVTVC1LRUstMi1ub3QtYS1yZWFsLXNlY3JldC0wMDI=";

/// A ring built from configuration text, for tests.
pub fn ring(keys: &str, active: &str) -> idbridge_crypto::KeyRing {
    idbridge_crypto::KeyRing::from_config(&secrecy::SecretString::from(keys), active).unwrap()
}
