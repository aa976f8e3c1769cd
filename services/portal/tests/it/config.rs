//! Configuration validation: the rules that keep a development set-up from going public.

use crate::helpers::{load_config, portal_env};

fn base() -> Vec<(String, String)> {
    portal_env(
        "postgres://postgres@127.0.0.1:5432/x",
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
    )
}

fn with(extra: &[(&str, &str)]) -> Result<portal::config::PortalConfig, String> {
    let mut env = base();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    load_config(env)
}

const KEY64: &str =
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==";

#[test]
fn the_embedded_defaults_are_a_loopback_development_set_up() {
    let config = with(&[]).expect("defaults load");
    assert!(config.is_loopback());
    assert_eq!(
        config.portal.signin.method,
        portal::config::SigninMethod::Dev
    );
    assert_eq!(
        config.redirect_uri(),
        "http://127.0.0.1:8080/orcid/callback"
    );
    assert!(config.session_key().is_ok(), "a random key on loopback");
}

#[test]
fn a_public_portal_refuses_dev_sign_in_http_and_a_missing_session_key() {
    let error = with(&[("IDBRIDGE__PORTAL__PUBLIC_URL", "http://orcid.example.edu")]).unwrap_err();
    assert!(error.contains("portal.public_url"), "{error}");
    assert!(error.contains("portal.signin.method"), "{error}");
    assert!(error.contains("portal.session_key"), "{error}");
    // Fixed: https, a key, a real sign-in.
    let ok = with(&[
        ("IDBRIDGE__PORTAL__PUBLIC_URL", "https://orcid.example.edu"),
        ("IDBRIDGE__PORTAL__SESSION_KEY", KEY64),
        ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "header"),
        (
            "IDBRIDGE__PORTAL__SIGNIN__HEADER__PERSON_ID",
            "X-Remote-User",
        ),
        (
            "IDBRIDGE__PORTAL__SIGNIN__HEADER__TRUSTED_PROXIES",
            "[\"10.0.0.5\"]",
        ),
    ])
    .expect("valid");
    assert_eq!(
        ok.redirect_uri(),
        "https://orcid.example.edu/orcid/callback"
    );
}

#[test]
fn bad_keys_and_incomplete_sign_in_sections_are_named() {
    let error = with(&[("IDBRIDGE__PORTAL__SESSION_KEY", "c2hvcnQ=")]).unwrap_err();
    assert!(error.contains("portal.session_key"), "{error}");
    assert!(
        !error.contains("c2hvcnQ="),
        "no configured secret is quoted: {error}"
    );
    let error = with(&[("IDBRIDGE__PORTAL__SIGNIN__METHOD", "oidc")]).unwrap_err();
    assert!(error.contains("portal.signin.oidc"), "{error}");
    let error = with(&[
        ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "oidc"),
        (
            "IDBRIDGE__PORTAL__SIGNIN__OIDC__ISSUER",
            "http://idp.example.edu",
        ),
        ("IDBRIDGE__PORTAL__SIGNIN__OIDC__CLIENT_ID", "portal"),
        ("IDBRIDGE__PORTAL__SIGNIN__OIDC__CLIENT_SECRET", "s"),
        ("IDBRIDGE__PORTAL__SIGNIN__OIDC__SCOPES", "profile"),
    ])
    .unwrap_err();
    assert!(error.contains("portal.signin.oidc.issuer"), "{error}");
    assert!(error.contains("portal.signin.oidc.scopes"), "{error}");
    let error = with(&[("IDBRIDGE__PORTAL__SIGNIN__METHOD", "header")]).unwrap_err();
    assert!(error.contains("portal.signin.header"), "{error}");
    let error = with(&[("IDBRIDGE__PORTAL__VAULT__HANDOFF_KEY", "nokey")]).unwrap_err();
    assert!(error.contains("portal.vault.handoff_key"), "{error}");
    let mut env = base();
    env.retain(|(k, _)| k != "IDBRIDGE__PORTAL__VAULT__CALLER_TOKEN");
    let error = load_config(env).unwrap_err();
    assert!(error.contains("portal.vault.caller_token"), "{error}");
}

#[test]
fn dev_sign_in_refuses_a_non_loopback_listen_address() {
    // The README's container hint (0.0.0.0) with the default loopback public_url.
    for host in ["0.0.0.0", "::", "10.1.2.3", "portal.example.edu"] {
        let error = with(&[("IDBRIDGE__PORTAL__HOST", host)]).unwrap_err();
        assert!(error.contains("portal.host"), "{host}: {error}");
        assert!(error.contains("dev"), "{host}: {error}");
    }
    for host in ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"] {
        with(&[("IDBRIDGE__PORTAL__HOST", host)])
            .unwrap_or_else(|e| panic!("{host} is loopback: {e}"));
    }
    // Another sign-in method may listen anywhere.
    with(&[
        ("IDBRIDGE__PORTAL__HOST", "0.0.0.0"),
        ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "header"),
        (
            "IDBRIDGE__PORTAL__SIGNIN__HEADER__PERSON_ID",
            "X-Remote-User",
        ),
        (
            "IDBRIDGE__PORTAL__SIGNIN__HEADER__TRUSTED_PROXIES",
            "[\"127.0.0.1\"]",
        ),
    ])
    .expect("header sign-in on 0.0.0.0");
}

#[test]
fn https_is_recognised_whatever_the_case_of_the_scheme() {
    let config = with(&[
        ("IDBRIDGE__PORTAL__PUBLIC_URL", "HTTPS://orcid.example.edu"),
        ("IDBRIDGE__PORTAL__SESSION_KEY", KEY64),
        ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "header"),
        (
            "IDBRIDGE__PORTAL__SIGNIN__HEADER__PERSON_ID",
            "X-Remote-User",
        ),
        (
            "IDBRIDGE__PORTAL__SIGNIN__HEADER__TRUSTED_PROXIES",
            "[\"10.0.0.5\"]",
        ),
    ])
    .expect("valid");
    assert!(config.is_https());
    assert!(!with(&[]).expect("defaults").is_https());
}

#[test]
fn empty_or_placeholder_institution_texts_are_refused() {
    let error = with(&[
        ("IDBRIDGE__PORTAL__INSTITUTION__WHAT", "  "),
        (
            "IDBRIDGE__PORTAL__INSTITUTION__WHY",
            "CHANGE-ME: why connect",
        ),
    ])
    .unwrap_err();
    assert!(error.contains("portal.institution.what"), "{error}");
    assert!(error.contains("portal.institution.why"), "{error}");
    assert!(!error.contains("portal.institution.how"), "{error}");
    assert!(
        with(&[(
            "IDBRIDGE__PORTAL__INSTITUTION__WHAT",
            "We add your employment."
        )])
        .is_ok(),
        "real words load"
    );
}
