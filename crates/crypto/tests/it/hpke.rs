//! The portal → vault hand-off (HPKE): round trip, wrong recipient, tampering, key loading.
//! The RFC 9180 vector tests are unit tests in `src/hpke.rs` (they need the AEAD parameter).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use idbridge_crypto::{
    CryptoError, HandoffKeys, KeyLoadError, SealedBox, VaultKeyPair, VaultPublicKey, seal_to,
};
use secrecy::{ExposeSecret, SecretString};

const TEST_TOKEN_RESPONSE: &[u8] =
    br#"{"access_token":"test-access-token","refresh_token":"test-refresh-token","orcid":"0000-0002-1825-0097"}"#;
const INFO: &[u8] = b"idbridge token hand-off v1";
const AAD: &[u8] = b"connection 0199c8f4-7d2e-7c4a-9b1e-3f6a2d8e5b10";

#[test]
fn seal_to_then_open_round_trips() {
    let vault = VaultKeyPair::generate().unwrap();
    let sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    assert_eq!(sealed.ciphertext.len(), TEST_TOKEN_RESPONSE.len() + 16);
    let opened = vault.open(&sealed, INFO, AAD).unwrap();
    assert_eq!(opened.expose_secret(), TEST_TOKEN_RESPONSE);

    // Each seal has its own ephemeral key.
    let again = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    assert_ne!(again.enc, sealed.enc);
    assert_ne!(again.ciphertext, sealed.ciphertext);
}

#[test]
fn another_recipient_cannot_open() {
    let vault = VaultKeyPair::generate().unwrap();
    let other = VaultKeyPair::generate().unwrap();
    let sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    assert!(matches!(
        other.open(&sealed, INFO, AAD).unwrap_err(),
        CryptoError::Authentication
    ));
}

#[test]
fn different_info_or_aad_does_not_open() {
    let vault = VaultKeyPair::generate().unwrap();
    let sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    for (info, aad) in [
        (b"other".as_slice(), AAD),
        (INFO, b"connection 2".as_slice()),
    ] {
        assert!(matches!(
            vault.open(&sealed, info, aad).unwrap_err(),
            CryptoError::Authentication
        ));
    }
}

#[test]
fn a_flipped_bit_in_enc_or_ciphertext_fails() {
    let vault = VaultKeyPair::generate().unwrap();
    let sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    for byte in 0..sealed.enc.len() {
        for bit in 0..8 {
            let mut tampered = sealed.clone();
            tampered.enc[byte] ^= 1 << bit;
            assert!(
                vault.open(&tampered, INFO, AAD).is_err(),
                "enc bit {bit} of byte {byte} flipped and the box still opened"
            );
        }
    }
    for byte in 0..sealed.ciphertext.len() {
        for bit in 0..8 {
            let mut tampered = sealed.clone();
            tampered.ciphertext[byte] ^= 1 << bit;
            assert!(matches!(
                vault.open(&tampered, INFO, AAD).unwrap_err(),
                CryptoError::Authentication
            ));
        }
    }
    let mut truncated = sealed.clone();
    truncated.ciphertext.truncate(10);
    assert!(vault.open(&truncated, INFO, AAD).is_err());
}

#[test]
fn a_low_order_enc_is_rejected() {
    // All-zero X25519 point: the shared secret would be zero (RFC 9180 §7.1.4).
    let vault = VaultKeyPair::generate().unwrap();
    let mut sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    sealed.enc = [0; 32];
    let err = vault.open(&sealed, INFO, AAD).unwrap_err();
    assert!(matches!(err, CryptoError::Malformed(_)), "{err:?}");
}

/// Low-order X25519 points (u-coordinates, little-endian). Any private key gets the same
/// shared secret with them, so a box sealed to one protects nothing.
const LOW_ORDER_POINTS: [(&str, &str); 3] = [
    (
        "all-zero (u = 0)",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ),
    ("u = 1", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    // e0eb7a7c…5f49b800, a point of order 8 (libsodium's and RFC 7748's blocklists).
    ("order 8", "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA="),
];

#[test]
fn a_low_order_public_key_fails_when_parsed() {
    for (what, text) in LOW_ORDER_POINTS {
        let err = text.parse::<VaultPublicKey>().unwrap_err();
        assert!(
            matches!(err, KeyLoadError::InvalidPublicKey { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the vault's HPKE public key is not a valid X25519 key (a low-order point); copy the public key the vault derives from its private key",
            "{what}"
        );
        let err = serde_json::from_str::<VaultPublicKey>(&format!("\"{text}\"")).unwrap_err();
        assert!(
            err.to_string().contains("not a valid X25519 key"),
            "{what}: {err}"
        );

        let bytes: [u8; 32] = STANDARD.decode(text).unwrap().try_into().unwrap();
        assert!(
            matches!(
                VaultPublicKey::from_bytes(bytes),
                Err(KeyLoadError::InvalidPublicKey { .. })
            ),
            "{what}"
        );
    }
    // A real key passes every check.
    let public = *VaultKeyPair::generate().unwrap().public_key();
    assert_eq!(
        VaultPublicKey::from_bytes(*public.as_bytes()).unwrap(),
        public
    );
}

#[test]
fn private_key_round_trips_through_its_text_form() {
    let vault = VaultKeyPair::generate().unwrap();
    let text = vault.to_secret_base64().unwrap();
    let loaded =
        VaultKeyPair::from_secret_base64(&format!("{}\n", text.expose_secret()).into()).unwrap();
    assert_eq!(loaded.public_key(), vault.public_key());
    let sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    assert_eq!(
        loaded.open(&sealed, INFO, AAD).unwrap().expose_secret(),
        TEST_TOKEN_RESPONSE
    );
}

#[test]
fn bad_private_key_text_is_explained_without_echoing_it() {
    const TEST_BAD_KEY: &str = "c2hvcnQta2V5";
    let err = VaultKeyPair::from_secret_base64(&TEST_BAD_KEY.into()).unwrap_err();
    assert!(matches!(err, KeyLoadError::WrongLength { len: 9, .. }));
    assert_eq!(
        err.to_string(),
        "the vault's HPKE private key decodes to 9 bytes but must be exactly 32; generate one with `openssl rand -base64 32`"
    );
    let err = VaultKeyPair::from_secret_base64(&"not base64!".into()).unwrap_err();
    assert!(matches!(err, KeyLoadError::BadBase64 { .. }));
    assert!(!err.to_string().contains("not base64!"));
}

#[test]
fn public_key_and_sealed_box_serialize_as_base64() {
    let vault = VaultKeyPair::generate().unwrap();
    let public = *vault.public_key();

    let text = public.to_string();
    assert_eq!(text.len(), 44);
    assert_eq!(text.parse::<VaultPublicKey>().unwrap(), public);
    let json = serde_json::to_string(&public).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(
        serde_json::from_str::<VaultPublicKey>(&json).unwrap(),
        public
    );
    assert!(matches!(
        "c2hvcnQ=".parse::<VaultPublicKey>().unwrap_err(),
        KeyLoadError::WrongLength { len: 5, .. }
    ));

    let sealed = seal_to(&public, INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    let json = serde_json::to_value(&sealed).unwrap();
    assert!(json["enc"].is_string() && json["ciphertext"].is_string());
    let back: SealedBox = serde_json::from_value(json).unwrap();
    assert_eq!(back, sealed);
    assert_eq!(
        vault.open(&back, INFO, AAD).unwrap().expose_secret(),
        TEST_TOKEN_RESPONSE
    );
    assert!(serde_json::from_str::<SealedBox>(r#"{"enc":"c2hvcnQ=","ciphertext":""}"#).is_err());
}

#[test]
fn sealed_box_bytes_are_version_enc_ciphertext() {
    let vault = VaultKeyPair::generate().unwrap();
    let sealed = seal_to(vault.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    let bytes = sealed.to_bytes();
    assert_eq!(bytes.len(), 1 + 32 + TEST_TOKEN_RESPONSE.len() + 16);
    assert_eq!(bytes[0], 0x01);
    assert_eq!(&bytes[1..33], &sealed.enc);
    assert_eq!(&bytes[33..], sealed.ciphertext.as_slice());
    let back = SealedBox::from_bytes(&bytes).unwrap();
    assert_eq!(back, sealed);
    assert_eq!(
        vault.open(&back, INFO, AAD).unwrap().expose_secret(),
        TEST_TOKEN_RESPONSE
    );

    // An empty plaintext still has enc and a tag: the shortest valid box.
    let empty = seal_to(vault.public_key(), INFO, AAD, b"")
        .unwrap()
        .to_bytes();
    assert_eq!(empty.len(), 1 + 32 + 16);
    let opened = vault
        .open(&SealedBox::from_bytes(&empty).unwrap(), INFO, AAD)
        .unwrap();
    assert!(opened.expose_secret().is_empty());

    for (what, bad) in [
        ("empty", Vec::new()),
        ("unknown version", [&[2u8][..], &bytes[1..]].concat()),
        ("no tag room", empty[..empty.len() - 1].to_vec()),
        ("version only", vec![1u8]),
    ] {
        let err = SealedBox::from_bytes(&bad).unwrap_err();
        assert!(matches!(err, CryptoError::Malformed(_)), "{what}: {err:?}");
    }
}

fn handoff_list(entries: &[(&str, &VaultKeyPair)]) -> SecretString {
    entries
        .iter()
        .map(|(id, pair)| format!("{id}:{}", pair.to_secret_base64().unwrap().expose_secret()))
        .collect::<Vec<_>>()
        .join(",")
        .into()
}

#[test]
fn handoff_keys_open_boxes_sealed_to_any_loaded_key() {
    let (old, new) = (
        VaultKeyPair::generate().unwrap(),
        VaultKeyPair::generate().unwrap(),
    );
    let keys = HandoffKeys::from_config(
        &handoff_list(&[("hk2025b", &old), ("hk2026a", &new)]),
        Some(" hk2026a\n"),
    )
    .unwrap();
    assert_eq!(keys.active_key_id(), "hk2026a");
    assert_eq!(keys.active_public_key(), new.public_key());
    assert_eq!(
        keys.key_ids().map(|id| id.as_str()).collect::<Vec<_>>(),
        ["hk2025b", "hk2026a"]
    );

    // A box sealed to the old key (during a hand-off key rotation) still opens.
    let sealed = seal_to(old.public_key(), INFO, AAD, TEST_TOKEN_RESPONSE).unwrap();
    let pair = keys.get("hk2025b").unwrap();
    assert_eq!(
        pair.open(&sealed, INFO, AAD).unwrap().expose_secret(),
        TEST_TOKEN_RESPONSE
    );
    assert!(matches!(
        keys.get("hk2026a").unwrap().open(&sealed, INFO, AAD),
        Err(CryptoError::Authentication)
    ));
    assert!(keys.get("hk-absent").is_none());
    assert!(keys.get("not a key id").is_none());
}

#[test]
fn handoff_keys_choose_the_active_key() {
    let (a, b) = (
        VaultKeyPair::generate().unwrap(),
        VaultKeyPair::generate().unwrap(),
    );
    // One key: it is the active one, named or not.
    for active in [None, Some(""), Some("hk1")] {
        let keys = HandoffKeys::from_config(&handoff_list(&[("hk1", &a)]), active).unwrap();
        assert_eq!(keys.active_key_id(), "hk1", "{active:?}");
        assert_eq!(keys.active_public_key(), a.public_key());
    }
    // Several keys: the active one must be named, and loaded.
    let both = handoff_list(&[("hk1", &a), ("hk2", &b)]);
    let err = HandoffKeys::from_config(&both, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "hand-off key configuration: no active key id; several hand-off keys are loaded: name the one the portal seals to as active"
    );
    let err = HandoffKeys::from_config(&both, Some("hk3")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "hand-off key configuration: active key id 'hk3' is not among the loaded keys (hk1, hk2); add that key or set the active id to one of them"
    );
}

#[test]
fn handoff_key_errors_name_the_key_without_echoing_it() {
    const TEST_SHORT_KEY: &str = "c2hvcnQta2V5";
    let err = HandoffKeys::from_config(&format!("hk1:{TEST_SHORT_KEY}").into(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key 'hk1' in hand-off key configuration decodes to 9 bytes but must be exactly 32; generate one with `openssl rand -base64 32`"
    );
    let a = VaultKeyPair::generate().unwrap();
    let private = a.to_secret_base64().unwrap();
    for (list, expected) in [
        (
            format!("hk1:{0},hk1:{0}", private.expose_secret()),
            "hand-off key configuration: key id 'hk1' appears more than once; keep one key per id",
        ),
        (
            private.expose_secret().to_owned(),
            "hand-off key configuration: entry 1 is not `key_id:BASE64`; write the list as `k2026a:BASE64KEY,k2025b:BASE64KEY`",
        ),
        (
            " , ".to_owned(),
            "hand-off key configuration: no keys found; add at least one key (generate one with `openssl rand -base64 32`)",
        ),
    ] {
        let message = HandoffKeys::from_config(&list.into(), None)
            .unwrap_err()
            .to_string();
        assert_eq!(message, expected);
        assert!(!message.contains(&private.expose_secret()[..12]));
    }
}
