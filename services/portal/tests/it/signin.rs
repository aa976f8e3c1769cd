//! Sign-in by a trusted proxy's header (and HSTS under https), and OpenID Connect against
//! orcid-sim's discovery, authorize page, token endpoint and JWKS.

use crate::helpers::{IDP_CLIENT_ID, Options, orcid_decides, query_param, spawn_with};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const SESSION_KEY: &str =
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_header_signs_in_and_https_gets_hsts() {
    let portal = spawn_with(Options {
        portal_env: env(&[
            ("IDBRIDGE__PORTAL__PUBLIC_URL", "https://orcid.example.edu"),
            ("IDBRIDGE__PORTAL__SESSION_KEY", SESSION_KEY),
            ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "header"),
            (
                "IDBRIDGE__PORTAL__SIGNIN__HEADER__PERSON_ID",
                "X-Remote-User",
            ),
            ("IDBRIDGE__PORTAL__SIGNIN__HEADER__NAME", "X-Remote-Name"),
            (
                "IDBRIDGE__PORTAL__SIGNIN__HEADER__GROUPS",
                "X-Remote-Groups",
            ),
            (
                "IDBRIDGE__PORTAL__SIGNIN__HEADER__ADMIN_GROUP",
                "orcid-admins",
            ),
            (
                "IDBRIDGE__PORTAL__SIGNIN__HEADER__TRUSTED_PROXIES",
                "[\"127.0.0.1\"]",
            ),
        ]),
        ..Options::default()
    })
    .await;
    let mut browser = portal.browser();
    // No header: the proxy did not authenticate.
    let page = browser.get("/signin").await;
    assert_eq!(page.status, 401);
    assert_eq!(page.error_code().as_deref(), Some("header_missing"));
    assert!(
        page.header("strict-transport-security")
            .is_some_and(|h| h.contains("max-age=")),
        "HSTS under https"
    );
    // The dev form does not exist here.
    let page = browser.post("/signin/dev", &[("person_id", "P-1")]).await;
    assert_eq!(page.status, 404);
    // The proxy's headers sign in (a member of the admin group is an administrator).
    let headers = [
        ("X-Remote-User", "P-HEADER"),
        ("X-Remote-Name", "Lee Smith"),
        ("X-Remote-Groups", "staff; orcid-admins"),
    ];
    let page = browser.get_with("/me", &headers).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Signed in as Lee Smith"));
    assert!(page.body.contains("id=\"nav-admin\""));
    // The session carries on without the header.
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    let page = browser.get("/admin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Another person behind the proxy replaces the session.
    let page = browser
        .get_with("/me", &[("X-Remote-User", "P-HEADER-2")])
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Signed in as P-HEADER-2"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"nav-admin\""));
    // The redirect URI is https.
    let authorize = browser.start_connect().await;
    assert_eq!(
        query_param(&authorize, "redirect_uri").as_deref(),
        Some("https://orcid.example.edu/orcid/callback")
    );
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_from_an_untrusted_address_is_refused() {
    let portal = spawn_with(Options {
        portal_env: env(&[
            ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "header"),
            (
                "IDBRIDGE__PORTAL__SIGNIN__HEADER__PERSON_ID",
                "X-Remote-User",
            ),
            (
                "IDBRIDGE__PORTAL__SIGNIN__HEADER__TRUSTED_PROXIES",
                "[\"10.9.9.9\"]",
            ),
        ]),
        ..Options::default()
    })
    .await;
    let mut browser = portal.browser();
    let page = browser
        .get_with("/me", &[("X-Remote-User", "P-SPOOF")])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(page.error_code().as_deref(), Some("untrusted_proxy"));
    let page = browser.get("/me").await;
    assert_eq!(page.status, 303, "not signed in");
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_connect_sign_in_with_pkce_and_nonce() {
    // orcid-sim is the institution's identity provider here too (discovery, JWKS, RS256).
    let portal = spawn_with(Options {
        oidc: true,
        ..Options::default()
    })
    .await;
    let issuer = portal.sim.base_url().to_owned();
    let (person, email) = portal.sim_user("Olive").await;
    let mut browser = portal.browser();
    let page = browser.get("/signin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"oidc-signin-link\""));
    let page = browser.get("/signin/oidc").await;
    assert_eq!(page.status, 303);
    let authorize = page.location();
    assert!(authorize.starts_with(&format!("{issuer}/oauth/authorize?")));
    assert_eq!(
        query_param(&authorize, "client_id").as_deref(),
        Some(IDP_CLIENT_ID)
    );
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&authorize, "code_challenge").map(|c| c.len()),
        Some(43)
    );
    assert!(query_param(&authorize, "nonce").is_some_and(|n| n.len() >= 40));
    let state = query_param(&authorize, "state").expect("state");

    // A forged state is refused (and spends the pending sign-in).
    let page = browser
        .get(&format!("/signin/oidc/callback?code=abc&state=not-{state}"))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_mismatch"));

    let page = browser.get("/signin/oidc").await;
    let authorize = page.location();
    let callback = orcid_decides(&authorize, &email, true).await;
    assert!(
        callback.starts_with(&format!("{}/signin/oidc/callback?", portal.url)),
        "{callback}"
    );
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/me");
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Signed in as Olive Tester"),
        "{}",
        page.body
    );
    // Replaying the answer is refused.
    let mut again = portal.browser();
    let page = again.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_missing"));
    let _ = person;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_name_is_cut_so_the_session_cookie_still_fits() {
    let portal = crate::helpers::spawn().await;
    let mut browser = portal.browser();
    // 4,000 bytes each would overflow the ~4 KB cookie if kept whole.
    let name = "N".repeat(4000);
    let email = format!("{}@example.edu", "e".repeat(4000));
    browser
        .dev_sign_in("P-LONG-NAME", &name, &email, false)
        .await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200, "still signed in: {}", page.body);
    assert!(page.body.contains(&"N".repeat(256)), "{}", page.body);
    assert!(!page.body.contains(&"N".repeat(257)), "cut to 256 bytes");
    portal.stop().await;
}
