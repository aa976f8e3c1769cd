//! Configuration: the HTTPS rule, presets, and the authorize URL's exact parameters.

use orcid::Error;
use orcid::client::{ClientConfig, Endpoints, OrcidClient, Prompt, Scope, Scopes};

use crate::client_helpers::*;

#[test]
fn plain_http_off_loopback_is_rejected_with_the_url_and_the_fix() {
    for url in [
        "http://example.org",
        "http://api.sandbox.orcid.org/",
        "http://10.0.0.8:8090",
        "http://192.168.1.10",
        "http://localhost.example.org",
    ] {
        let error = Endpoints::single_origin(url).unwrap_err();
        match &error {
            Error::InsecureUrl { url: u, .. } => assert_eq!(u, url),
            other => panic!("{url}: expected InsecureUrl, got {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains(url), "{message}");
        assert!(message.contains("https"), "{message}");
        assert!(message.contains("loopback"), "{message}");
    }
    let error = Endpoints::single_origin("http://example.org:8443/orcid").unwrap_err();
    assert!(
        error.to_string().contains("https://example.org:8443/orcid"),
        "{error}"
    );
    assert!(ClientConfig::custom("http://example.org", "APP-X", "s".into()).is_err());
    assert!(Endpoints::new("https://orcid.org", "http://api.example.org").is_err());
}

#[test]
fn loopback_may_use_plain_http() {
    for url in [
        "http://127.0.0.1:8090",
        "http://127.5.6.7",
        "http://[::1]:9000",
        "http://localhost:1234",
        "http://LOCALHOST",
        "https://example.org",
    ] {
        Endpoints::single_origin(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn other_schemes_and_relative_urls_are_configuration_errors() {
    for url in [
        "ftp://127.0.0.1",
        "127.0.0.1:8090",
        "https://orcid.org/?x=1",
    ] {
        let error = Endpoints::single_origin(url).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{url}: {error:?}");
    }
}

#[test]
fn presets_point_at_orcid() {
    let prod = Endpoints::production();
    assert_eq!(prod.token_url(), "https://orcid.org/oauth/token");
    assert_eq!(prod.api_base(), "https://api.orcid.org/");
    let sandbox = Endpoints::sandbox();
    assert_eq!(
        sandbox.authorize_url(),
        "https://sandbox.orcid.org/oauth/authorize"
    );
    assert_eq!(
        sandbox.revoke_url(),
        "https://sandbox.orcid.org/oauth/revoke"
    );
    assert_eq!(sandbox.api_base(), "https://api.sandbox.orcid.org/");
    let sim = Endpoints::single_origin("http://127.0.0.1:8090").unwrap();
    assert_eq!(sim.token_url(), "http://127.0.0.1:8090/oauth/token");
}

#[test]
fn empty_credentials_are_rejected() {
    let config = ClientConfig::sandbox("", "secret".into());
    assert!(matches!(OrcidClient::new(config), Err(Error::Config(_))));
    let config = ClientConfig::sandbox("APP-X", "".into());
    assert!(matches!(OrcidClient::new(config), Err(Error::Config(_))));
}

#[test]
fn debug_output_hides_the_secret() {
    let client = client_without_retries("http://127.0.0.1:1");
    let debug = format!("{client:?}");
    assert!(!debug.contains(TEST_CLIENT_SECRET), "{debug}");
    let config = test_config("http://127.0.0.1:1");
    assert!(!format!("{config:?}").contains(TEST_CLIENT_SECRET));
}

#[test]
fn authorize_url_has_exact_parameters() {
    let client = OrcidClient::new(ClientConfig::sandbox(
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET.into(),
    ))
    .unwrap();
    let url = client
        .authorize_url(
            "https://idbridge.example/orcid/callback?from=portal",
            [Scope::ReadLimited, Scope::ActivitiesUpdate],
        )
        .state("st-123")
        .prompt(Prompt::Login)
        .lang("de")
        .nonce("n-0S6")
        .show_login(false)
        .given_names("Sofia María")
        .family_names("García")
        .email("sofia+orcid@example.org")
        .orcid(&test_orcid())
        .to_url();
    assert_eq!(
        url,
        "https://sandbox.orcid.org/oauth/authorize?client_id=APP-TEST000000000001\
         &response_type=code\
         &scope=%2Fread-limited+%2Factivities%2Fupdate\
         &redirect_uri=https%3A%2F%2Fidbridge.example%2Forcid%2Fcallback%3Ffrom%3Dportal\
         &state=st-123&prompt=login&lang=de&nonce=n-0S6&show_login=false\
         &given_names=Sofia+Mar%C3%ADa&family_names=Garc%C3%ADa\
         &email=sofia%2Borcid%40example.org&orcid=0000-0002-1825-0097"
    );

    // Decoded, every parameter reads back as given.
    let parsed = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("scope"), Some("/read-limited /activities/update"));
    assert_eq!(Scopes::parse(get("scope").unwrap()).len(), 2);
    assert_eq!(get("email"), Some("sofia+orcid@example.org"));
    assert_eq!(
        get("redirect_uri"),
        Some("https://idbridge.example/orcid/callback?from=portal")
    );
    assert_eq!(pairs.len(), 13);
}

#[test]
fn authorize_request_debug_hides_state_nonce_and_personal_data() {
    let client = OrcidClient::new(ClientConfig::sandbox(
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET.into(),
    ))
    .unwrap();
    let request = client
        .authorize_url("https://idbridge.example/cb", Scope::ReadLimited)
        .state("csrf-state-5d1e")
        .nonce("nonce-9a7b")
        .given_names("Sofia")
        .family_names("Garcia")
        .email("sofia@example.org")
        .lang("de");
    let debug = format!("{request:?}");
    for hidden in [
        "csrf-state-5d1e",
        "nonce-9a7b",
        "Sofia",
        "Garcia",
        "sofia@example.org",
    ] {
        assert!(!debug.contains(hidden), "`{hidden}` in {debug}");
    }
    assert!(debug.contains("[REDACTED]"), "{debug}");
    assert!(debug.contains("\"lang\", \"de\""), "{debug}");
    assert!(debug.contains(TEST_CLIENT_ID), "{debug}");
    // The URL itself still carries everything.
    assert!(request.to_url().contains("state=csrf-state-5d1e"));
}

#[test]
fn authorize_url_minimal_and_openid() {
    let client = OrcidClient::new(ClientConfig::production(
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET.into(),
    ))
    .unwrap();
    let url = client
        .authorize_url("https://idbridge.example/cb", Scope::OpenId)
        .to_url();
    assert_eq!(
        url,
        "https://orcid.org/oauth/authorize?client_id=APP-TEST000000000001&response_type=code\
         &scope=openid&redirect_uri=https%3A%2F%2Fidbridge.example%2Fcb"
    );
    // Setting a parameter twice keeps the last value.
    let url = client
        .authorize_url("https://idbridge.example/cb", Scope::Authenticate)
        .state("a")
        .state("b")
        .to_url();
    assert!(url.ends_with("&state=b"), "{url}");
}

#[test]
fn scopes_parse_and_print() {
    let scopes = Scopes::parse("/read-limited openid /activities/update /orcid-works/create");
    assert!(scopes.contains(&Scope::OpenId));
    assert!(scopes.contains(&Scope::Other("/orcid-works/create".into())));
    // Printed in a fixed order (ORCID's scopes, then others), whatever order they came in.
    assert_eq!(
        scopes.to_string(),
        "openid /read-limited /activities/update /orcid-works/create"
    );
    assert_eq!(
        scopes,
        Scopes::parse("/orcid-works/create /activities/update openid /read-limited")
    );
    assert!(scopes.contains_all(&Scopes::from([Scope::ReadLimited, Scope::ActivitiesUpdate])));
    assert!(!scopes.contains(&Scope::Webhook));
}
