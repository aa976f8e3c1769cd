//! The configuration loader: defaults plus the required keys load; bad values are refused
//! naming the key.

use idbridge_platform::config::Sources;
use reader::config::{DEFAULTS, ReaderConfig};

use crate::helpers::*;

fn base() -> Sources {
    Sources::new(DEFAULTS)
        .set("orcid.client_id", TEST_CLIENT_ID)
        .and_then(|s| s.set("orcid.client_secret", TEST_CLIENT_SECRET))
        .expect("overrides")
}

#[test]
fn defaults_load_with_the_orcid_client() {
    let config = ReaderConfig::from_sources(&base()).expect("valid");
    assert_eq!(config.reader.partitions, 4);
    assert!(config.reader.reconcile.enabled);
    let settings = config.reconcile_settings();
    assert_eq!(settings.period.as_secs(), 86_400);
    assert_eq!(settings.min_spacing.as_millis(), 250);
    assert_eq!(config.retry_policy().max_attempts, 8);
}

#[test]
fn bad_values_are_refused_with_their_keys() {
    let sources = base()
        .set("reader.partitions", 0)
        .and_then(|s| s.set("reader.reconcile.period_secs", 0))
        .and_then(|s| s.set("reader.vault.url", "not a url"))
        .and_then(|s| s.set("reader.retry_tiers_ms", vec![500u64, 100]))
        .expect("overrides");
    let error = ReaderConfig::from_sources(&sources).expect_err("refused");
    let keys: Vec<String> = error.problems().iter().map(|p| p.key.clone()).collect();
    for key in [
        "reader.partitions",
        "reader.reconcile.period_secs",
        "reader.vault.url",
        "reader.retry_tiers_ms",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} not named in {error}");
    }
}

#[test]
fn the_vault_token_is_not_in_debug_output() {
    let config = ReaderConfig::from_sources(
        &base()
            .set("reader.vault.caller_token", "TEST_SECRET_VAULT_TOKEN_42")
            .expect("override"),
    )
    .expect("valid");
    assert!(!format!("{config:?}").contains("TEST_SECRET_VAULT_TOKEN_42"));
}

#[test]
fn a_lease_outside_its_bounds_is_refused() {
    for lease in [0u64, 4, 3601, u64::MAX] {
        let sources = base()
            .set("reader.reconcile.lease_secs", lease)
            .expect("override");
        let error = ReaderConfig::from_sources(&sources).expect_err("refused");
        assert!(
            error
                .problems()
                .iter()
                .any(|p| p.key == "reader.reconcile.lease_secs"),
            "lease_secs = {lease}: {error}"
        );
    }
    let ok = base()
        .set("reader.reconcile.lease_secs", 3600)
        .expect("override");
    assert!(ReaderConfig::from_sources(&ok).is_ok());
}
