//! The token hand-off format: round trip, binding to the event, layout.

use idbridge_crypto::handoff::{HandoffError, HandoffTokens, open_tokens, seal_tokens};
use idbridge_crypto::{CryptoError, HandoffKeys, VaultKeyPair};
use secrecy::{ExposeSecret, SecretString};

const TEST_ACCESS_TOKEN: &str = "TEST-ACCESS-TOKEN-0000-0000-000000000001";
const TEST_REFRESH_TOKEN: &str = "TEST-REFRESH-TOKEN-000-0000-000000000002";
const ORCID: &str = "0000-0002-1825-0097";

fn keys() -> (HandoffKeys, idbridge_crypto::VaultPublicKey) {
    let pair = VaultKeyPair::generate().unwrap();
    let public = *pair.public_key();
    let list = format!("hk1:{}", pair.to_secret_base64().unwrap().expose_secret());
    (
        HandoffKeys::from_config(&SecretString::from(list), None).unwrap(),
        public,
    )
}

fn tokens() -> HandoffTokens {
    HandoffTokens {
        access_token: SecretString::from(TEST_ACCESS_TOKEN),
        token_type: Some("bearer".to_owned()),
        refresh_token: Some(SecretString::from(TEST_REFRESH_TOKEN)),
        expires_in: Some(631_138_518),
        scope: Some("/read-limited /activities/update".to_owned()),
        name: Some("Sofia Garcia".to_owned()),
        orcid: Some(ORCID.to_owned()),
    }
}

#[test]
fn sealed_tokens_open_for_the_same_event_only() {
    let (keys, public) = keys();
    let sealed = seal_tokens(&public, ORCID, "P-1", &tokens()).unwrap();
    assert_eq!(sealed[0], 1, "SealedBox::to_bytes version byte");
    let opened = open_tokens(&keys, "hk1", ORCID, "P-1", &sealed).unwrap();
    assert_eq!(opened.access_token.expose_secret(), TEST_ACCESS_TOKEN);
    assert_eq!(
        opened.refresh_token.as_ref().unwrap().expose_secret(),
        TEST_REFRESH_TOKEN
    );
    assert_eq!(opened.expires_in, Some(631_138_518));
    assert_eq!(opened.orcid.as_deref(), Some(ORCID));
    let debug = format!("{opened:?}");
    assert!(!debug.contains(TEST_ACCESS_TOKEN) && !debug.contains(TEST_REFRESH_TOKEN));

    // Replayed for another person or iD: does not open.
    for (orcid, person) in [(ORCID, "P-2"), ("0000-0001-5109-3700", "P-1")] {
        match open_tokens(&keys, "hk1", orcid, person, &sealed) {
            Err(HandoffError::Crypto(CryptoError::Authentication)) => {}
            other => panic!("expected an authentication failure, got {other:?}"),
        }
    }
    match open_tokens(&keys, "hk-other", ORCID, "P-1", &sealed) {
        Err(HandoffError::UnknownKey { key_id }) => assert_eq!(key_id, "hk-other"),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    match open_tokens(&keys, "hk1", ORCID, "P-1", &sealed[..10]) {
        Err(HandoffError::Crypto(CryptoError::Malformed(_))) => {}
        other => panic!("expected Malformed, got {other:?}"),
    }
}
