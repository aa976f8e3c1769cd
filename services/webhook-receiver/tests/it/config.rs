//! Configuration errors name the key and the fix, and never show the callback key.

use idbridge_platform::config::Sources;
use webhook_receiver::config::{DEFAULTS, ReceiverConfig};

fn base() -> Sources {
    Sources::new(DEFAULTS)
        .set("orcid.client_id", "APP-TESTWEBHOOK00001")
        .and_then(|s| s.set("orcid.client_secret", "test-secret"))
        .expect("overrides")
}

#[test]
fn defaults_need_a_public_url_and_a_callback_key() {
    let error = ReceiverConfig::from_sources(&base()).expect_err("incomplete");
    let text = error.to_string();
    assert!(text.contains("webhooks.public_url"), "{text}");
    assert!(text.contains("webhooks.callback_key"), "{text}");
    assert!(text.contains("IDBRIDGE__WEBHOOKS__CALLBACK_KEY"), "{text}");
}

#[test]
fn bad_values_are_named_and_the_key_is_never_shown() {
    let error = ReceiverConfig::from_sources(
        &base()
            .set("webhooks.public_url", "ftp://example.org")
            .and_then(|s| s.set("webhooks.callback_key", "short-SECRET-KEY"))
            .and_then(|s| s.set("webhooks.http.listen", "localhost"))
            .and_then(|s| s.set("webhooks.rate_limit.burst", 0))
            .and_then(|s| s.set("webhooks.retry_tiers_ms", vec![100u64, 50]))
            .and_then(|s| s.set("database.url", "sqlite://x.sqlite"))
            .expect("overrides"),
    )
    .expect_err("invalid");
    let text = format!("{error} {error:?}");
    for key in [
        "webhooks.public_url",
        "webhooks.callback_key",
        "webhooks.http.listen",
        "webhooks.rate_limit",
        "webhooks.retry_tiers_ms",
        "database.url",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    assert!(!text.contains("short-SECRET-KEY"), "{text}");
}

#[test]
fn a_complete_configuration_loads_and_hides_its_secrets() {
    let config = ReceiverConfig::from_sources(
        &base()
            .set("webhooks.public_url", "https://idbridge.example.org/")
            .and_then(|s| {
                s.set(
                    "webhooks.callback_key",
                    "TEST-CALLBACK-KEY-0123456789abcdef0123",
                )
            })
            .and_then(|s| s.set("database.url", "postgres://u:DBPASS@db/idbridge"))
            .expect("overrides"),
    )
    .expect("valid");
    assert_eq!(config.public_url(), "https://idbridge.example.org");
    assert_eq!(config.debounce(), std::time::Duration::from_secs(5));
    let debug = format!("{config:?}");
    assert!(!debug.contains("TEST-CALLBACK-KEY"), "{debug}");
    assert!(!debug.contains("DBPASS"), "{debug}");
}
