//! Configuration: defaults → environment, validated at load with the key and the fix.

use idbridge_platform::config::Sources;
use token_vault::config::{DEFAULTS, VaultConfig};

use crate::helpers::{TestSettings, new_key_entry, unique_key_id};

fn load(env: Vec<(String, String)>) -> Result<VaultConfig, String> {
    VaultConfig::from_sources(&Sources::new(DEFAULTS).env(env)).map_err(|e| e.to_string())
}

fn without(env: &[(String, String)], name: &str) -> Vec<(String, String)> {
    env.iter().filter(|(k, _)| k != name).cloned().collect()
}

fn with(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut env = without(env, name);
    env.push((name.to_owned(), value.to_owned()));
    env
}

#[test]
fn a_complete_environment_loads() {
    let settings = TestSettings::new();
    let config = load(settings.env("sqlite://x.sqlite?mode=rwc", "http://127.0.0.1:9")).unwrap();
    assert_eq!(config.vault.port, 0);
    assert_eq!(
        config.vault.refresh_before_expiry_secs, 86_400,
        "default kept"
    );
    assert_eq!(config.vault.callers.len(), 3);
    assert_eq!(
        config.key_ring().unwrap().active_key_id().as_str(),
        settings.active_key
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(&settings.key_entries[0]),
        "Debug hides the keys"
    );
    assert!(
        !debug.contains(crate::helpers::TEST_CLIENT_SECRET),
        "Debug hides the client secret"
    );
}

#[test]
fn each_missing_or_bad_value_names_its_key_and_fix() {
    let settings = TestSettings::new();
    let env = settings.env("sqlite://x.sqlite?mode=rwc", "http://127.0.0.1:9");

    let err = load(without(&env, "IDBRIDGE__ORCID__CLIENT_SECRET")).unwrap_err();
    assert!(err.contains("orcid.client_secret"), "{err}");
    assert!(err.contains("IDBRIDGE__ORCID__CLIENT_SECRET"), "{err}");

    let err = load(without(
        &without(&env, "IDBRIDGE__VAULT__KEYS"),
        "IDBRIDGE__VAULT__ACTIVE_KEY",
    ))
    .unwrap_err();
    assert!(
        err.contains("vault.keys: no key-encryption keys are configured"),
        "{err}"
    );
    assert!(err.contains("openssl rand -base64 32"), "{err}");

    let err = load(with(&env, "IDBRIDGE__VAULT__ACTIVE_KEY", "k-absent")).unwrap_err();
    assert!(err.contains("vault.keys: cannot be loaded"), "{err}");
    assert!(
        err.contains("'k-absent' is not among the loaded keys"),
        "{err}"
    );

    let err = load(with(
        &env,
        "IDBRIDGE__VAULT__CALLERS__WRITER__TOKEN_SHA256",
        "TEST_PLAIN_CALLER_TOKEN",
    ))
    .unwrap_err();
    assert!(
        err.contains("vault.callers.writer.token_sha256: is not 64 hexadecimal characters"),
        "{err}"
    );
    assert!(
        !err.contains("TEST_PLAIN_CALLER_TOKEN"),
        "the value is not echoed: {err}"
    );

    // Caller names go to the audit's 64-character column.
    let long_name = "c".repeat(65);
    let hash = "ab".repeat(32);
    let bad_caller = |name: &str| {
        let env = with(
            &env,
            &format!("IDBRIDGE__VAULT__CALLERS__{name}__TOKEN_SHA256"),
            &hash,
        );
        with(
            &env,
            &format!("IDBRIDGE__VAULT__CALLERS__{name}__RIGHTS"),
            r#"["token:read"]"#,
        )
    };
    let err = load(bad_caller(&long_name)).unwrap_err();
    assert!(
        err.contains("vault.callers: caller") && err.contains("not 1 to 64 characters"),
        "{err}"
    );
    // (Names with other characters cannot come from the environment, which lower-cases
    // names and splits at `__`; the same check covers a configuration file.)
    assert!(
        load(bad_caller(&"c".repeat(64))).is_ok(),
        "64 characters are fine"
    );

    let err = load(with(
        &env,
        "IDBRIDGE__VAULT__CALLERS__WRITER__RIGHTS",
        r#"["token:write"]"#,
    ))
    .unwrap_err();
    assert!(err.contains("vault.callers.writer.rights"), "{err}");
    assert!(
        err.contains("token:read"),
        "lists the accepted rights: {err}"
    );

    let err = load(with(
        &env,
        "IDBRIDGE__VAULT__HANDOFF_KEYS",
        "hk1:TEST_NOT_BASE64!",
    ))
    .unwrap_err();
    assert!(
        err.contains("vault.handoff_keys: cannot be loaded"),
        "{err}"
    );
    assert!(!err.contains("TEST_NOT_BASE64"), "{err}");

    let err = load(with(
        &env,
        "IDBRIDGE__ORCID__REGISTRY",
        "http://orcid.example.org",
    ))
    .unwrap_err();
    assert!(err.contains("orcid.registry"), "{err}");
    assert!(
        err.contains("https://orcid.example.org"),
        "suggests https: {err}"
    );

    let err = load(with(&env, "IDBRIDGE__DATABASE__URL", "mysql://db")).unwrap_err();
    assert!(err.contains("database.url"), "{err}");

    let err = load(with(&env, "IDBRIDGE__VAULT__PORTT", "1")).unwrap_err();
    assert!(err.contains("unknown key `portt`"), "{err}");
}

#[test]
fn keys_from_a_mounted_directory() {
    let settings = TestSettings::new();
    let env = settings.env("sqlite://x.sqlite?mode=rwc", "http://127.0.0.1:9");
    let dir = std::env::temp_dir().join(format!("vault-keys-{}", unique_key_id("d")));
    std::fs::create_dir_all(&dir).unwrap();
    let id = unique_key_id("k");
    let entry = new_key_entry(&id);
    let (_, key) = entry.split_once(':').unwrap();
    std::fs::write(dir.join(&id), format!("{key}\n")).unwrap();
    std::fs::write(dir.join("active"), format!("{id}\n")).unwrap();

    let from_dir = without(
        &without(&env, "IDBRIDGE__VAULT__KEYS"),
        "IDBRIDGE__VAULT__ACTIVE_KEY",
    );
    let config = load(with(
        &from_dir,
        "IDBRIDGE__VAULT__KEY_DIR",
        &dir.display().to_string(),
    ))
    .unwrap();
    assert_eq!(config.key_ring().unwrap().active_key_id().as_str(), id);

    let err = load(with(
        &env,
        "IDBRIDGE__VAULT__KEY_DIR",
        &dir.display().to_string(),
    ))
    .unwrap_err();
    assert!(err.contains("is set together with vault.key_dir"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
