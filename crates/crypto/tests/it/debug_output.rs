//! No `Debug` output contains key bytes, in any encoding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use idbridge_crypto::{HandoffKeys, KeyRing, RowBinding, VaultKeyPair};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{TEST_KEK_1, TEST_KEK_2, ring};

/// Renderings a careless Debug could give 32 key bytes: base64, hex, the byte list `[84, 69, …]`
/// and the raw bytes as text.
fn renderings(key_b64: &str) -> Vec<String> {
    let bytes = STANDARD.decode(key_b64).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        key_b64.to_owned(),
        key_b64[..16].to_owned(),
        hex[..16].to_owned(),
        format!("{:?}", &bytes[..4])
            .trim_end_matches(']')
            .to_owned(),
        String::from_utf8_lossy(&bytes[..10]).into_owned(),
    ]
}

fn assert_hides(debug: &str, key_b64: &str) {
    for rendering in renderings(key_b64) {
        assert!(
            !debug.contains(&rendering),
            "Debug shows {rendering:?}: {debug}"
        );
    }
}

#[test]
fn key_ring_debug_shows_ids_not_keys() {
    let ring = ring(&format!("k1:{TEST_KEK_1},k2:{TEST_KEK_2}"), "k2");
    let debug = format!("{ring:?}");
    assert_eq!(
        debug,
        r#"KeyRing { active: "k2", key_ids: ["k1", "k2"], .. }"#
    );
    let pretty = format!("{ring:#?}");
    for key in [TEST_KEK_1, TEST_KEK_2] {
        assert_hides(&debug, key);
        assert_hides(&pretty, key);
    }
}

#[test]
fn generated_key_debug_is_redacted() {
    let key = KeyRing::generate_key().unwrap();
    assert_hides(&format!("{key:?}"), key.expose_secret());
}

#[test]
fn sealed_and_error_debug_show_no_key_or_plaintext() {
    const TEST_SECRET: &str = "TEST-SECRET-plaintext-must-not-show";
    let ring = ring(&format!("k1:{TEST_KEK_1}"), "k1");
    let binding = RowBinding::new(Uuid::now_v7(), "0000-0002-1825-0097");
    let sealed = ring
        .seal(&SecretString::from(TEST_SECRET), &binding)
        .unwrap();
    let opened = ring.open(&sealed, &binding).unwrap();
    let other = RowBinding::new(Uuid::now_v7(), "0000-0002-1825-0097");
    let error = ring.open(&sealed, &other).unwrap_err();

    for debug in [
        format!("{sealed:?}"),
        format!("{opened:?}"),
        format!("{error:?}"),
        error.to_string(),
    ] {
        assert_hides(&debug, TEST_KEK_1);
        assert!(!debug.contains(TEST_SECRET), "{debug}");
        assert!(!debug.contains("TEST-SECRET"), "{debug}");
    }
}

#[test]
fn vault_key_pair_debug_shows_only_the_public_key() {
    let vault = VaultKeyPair::generate().unwrap();
    let private = vault.to_secret_base64().unwrap();
    let debug = format!("{vault:?}");
    assert_eq!(
        debug,
        format!(
            "VaultKeyPair {{ public: VaultPublicKey({}), .. }}",
            vault.public_key()
        )
    );
    assert_hides(&debug, private.expose_secret());
    assert_hides(&format!("{vault:#?}"), private.expose_secret());
    assert_hides(&format!("{private:?}"), private.expose_secret());
}

#[test]
fn handoff_keys_debug_shows_ids_not_keys() {
    let (a, b) = (
        VaultKeyPair::generate().unwrap(),
        VaultKeyPair::generate().unwrap(),
    );
    let (a_private, b_private) = (a.to_secret_base64().unwrap(), b.to_secret_base64().unwrap());
    let list = format!(
        "hk1:{},hk2:{}",
        a_private.expose_secret(),
        b_private.expose_secret()
    );
    let keys = HandoffKeys::from_config(&list.into(), Some("hk2")).unwrap();
    let debug = format!("{keys:?}");
    assert_eq!(
        debug,
        r#"HandoffKeys { active: "hk2", key_ids: ["hk1", "hk2"], .. }"#
    );
    for private in [&a_private, &b_private] {
        assert_hides(&debug, private.expose_secret());
        assert_hides(&format!("{keys:#?}"), private.expose_secret());
    }
}
