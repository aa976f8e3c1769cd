//! Security headers, the session cookie's attributes, CSRF on every form, static assets.

use crate::helpers::{Browser, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_the_cookie_is_locked_down() {
    let portal = spawn().await;
    let mut browser = portal.browser();
    for path in ["/signin", "/health", "/static/portal.css", "/nowhere"] {
        let page = browser.get(path).await;
        let csp = page.header("content-security-policy").expect("CSP");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            page.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(
            page.header("referrer-policy").as_deref(),
            Some("no-referrer")
        );
        // http on loopback: no HSTS (the https case is in signin.rs).
        assert!(page.header("strict-transport-security").is_none());
    }
    let page = browser.get("/signin").await;
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    let page = browser.get("/nowhere").await;
    assert_eq!(page.status, 404);
    assert_eq!(page.error_code().as_deref(), Some("not_found"));
    let page = browser.get("/static/orcid-id.svg").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("image/svg+xml")
    );
    assert!(page.body.contains("#A6CE39"), "ORCID's green iD icon");

    browser.dev_sign_in("P-SEC", "Ida", "", false).await;
    let cookie = browser
        .set_cookies
        .iter()
        .rev()
        .find(|c| c.starts_with("idbridge_portal="))
        .expect("the session cookie")
        .to_ascii_lowercase();
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(cookie.contains("; httponly"), "{cookie}");
    assert!(cookie.contains("samesite=lax"), "{cookie}");
    // Private (encrypted): the person id is not readable in the cookie.
    assert!(!cookie.contains("p-sec"), "{cookie}");
    let page = browser.get("/health").await;
    assert_eq!(page.status, 200);
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let portal = spawn().await;
    // Sign-in form: no token, and a token from another session.
    let mut browser = portal.browser();
    let page = browser.get("/signin").await;
    let token = page.hidden("csrf").unwrap();
    let page = browser.post("/signin/dev", &[("person_id", "P-X")]).await;
    assert_eq!(page.status, 403);
    assert_eq!(page.error_code().as_deref(), Some("csrf"));
    let mut other = Browser::new(&portal.url);
    other.get("/signin").await;
    let page = other
        .post("/signin/dev", &[("csrf", &token), ("person_id", "P-X")])
        .await;
    assert_eq!(page.status, 403, "a token from another session");
    // A forged sign-in left nobody signed in.
    let page = other.get("/me").await;
    assert_eq!(page.status, 303);

    browser.dev_sign_in("P-CSRF", "Jo", "", false).await;
    for path in ["/disconnect", "/signout"] {
        let page = browser.post(path, &[]).await;
        assert_eq!(page.status, 403, "{path}");
        assert_eq!(page.error_code().as_deref(), Some("csrf"));
        let page = browser.post(path, &[("csrf", "wrong")]).await;
        assert_eq!(page.status, 403, "{path}");
    }
    // Still signed in; a real sign-out works and ends the session.
    let csrf = browser.csrf().await;
    let page = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/signin");
    let page = browser.get("/me").await;
    assert_eq!(page.status, 303);
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_session_cookie_is_not_a_session() {
    let portal = spawn().await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-TAMPER", "Kim", "", false).await;
    let value = browser.cookies.get("idbridge_portal").cloned().unwrap();
    let mut bytes = value.into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    browser.cookies.insert(
        "idbridge_portal".to_owned(),
        String::from_utf8(bytes).unwrap(),
    );
    let page = browser.get("/me").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/signin");
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_ends_after_the_session_lifetime() {
    let portal = crate::helpers::spawn_with(crate::helpers::Options {
        portal_env: vec![(
            "IDBRIDGE__PORTAL__SESSION_TTL_SECS".to_owned(),
            "1".to_owned(),
        )],
        ..crate::helpers::Options::default()
    })
    .await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-TTL", "Tia", "", false).await;
    assert_eq!(browser.get("/me").await.status, 200);
    // The sign-in lives one second (time must pass; nothing to poll).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/signin");
    portal.stop().await;
}
