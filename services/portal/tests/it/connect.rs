//! Sign in, connect through ORCID's real authorize page, the hand-off to the vault, the
//! researcher page, disconnect; deny; the callback's bad paths.

use token_vault::client::ConnectionState;

use crate::helpers::{
    self, Browser, Options, PORTAL_CALLER_TOKEN, WRITER_CALLER_TOKEN, connect, orcid_decides,
    query_param, spawn, spawn_with,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_hands_the_sealed_token_to_the_vault_and_shows_the_id() {
    let portal = spawn().await;
    let mut browser = portal.browser();
    browser
        .dev_sign_in("P-CONNECT-1", "Ada Lovelace", "ada@mailinator.com", false)
        .await;

    // The connect page: the institution's words, the scopes, ORCID's button.
    let page = browser.get("/connect").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"text-what\""));
    assert!(page.body.contains("id=\"text-why\""));
    assert!(page.body.contains("id=\"text-how\""));
    assert!(page.body.contains("Create or Connect your ORCID iD"));
    assert!(page.body.contains("/static/orcid-id.svg"));
    assert!(page.body.contains("data-scope=\"/activities/update\""));

    // Off to ORCID with the configured scopes, our redirect URI, a state and the pre-fill.
    let authorize = browser.start_connect().await;
    assert!(authorize.starts_with(portal.sim.base_url()), "{authorize}");
    assert_eq!(
        query_param(&authorize, "client_id").unwrap(),
        helpers::ORCID_CLIENT_ID
    );
    assert_eq!(query_param(&authorize, "response_type").unwrap(), "code");
    assert_eq!(query_param(&authorize, "scope").unwrap(), helpers::SCOPES);
    assert_eq!(
        query_param(&authorize, "redirect_uri").unwrap(),
        format!("{}/orcid/callback", portal.url)
    );
    assert_eq!(query_param(&authorize, "given_names").unwrap(), "Ada");
    assert_eq!(query_param(&authorize, "family_names").unwrap(), "Lovelace");
    assert_eq!(
        query_param(&authorize, "email").unwrap(),
        "ada@mailinator.com"
    );
    let state = query_param(&authorize, "state").expect("state");
    assert!(state.len() >= 40, "an unguessable state");

    // The researcher authorizes at ORCID's real page.
    let (orcid, email) = portal.sim_user("Ada").await;
    let callback = orcid_decides(&authorize, &email, true).await;
    assert!(callback.starts_with(&format!("{}/orcid/callback?", portal.url)));
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/me?connected=1");

    // "iD connected" went into the portal's outbox, sealed (no token in it) ...
    let bodies = portal.db.outbox_bodies("id-connected").await;
    assert_eq!(bodies.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(event["payload"]["orcid"], orcid.to_string());
    assert_eq!(event["payload"]["person_id"], "P-CONNECT-1");
    // ... and the vault opened it and stored the connection.
    let stored = portal.wait_connected("P-CONNECT-1").await;
    assert_eq!(stored.orcid, orcid.to_string());
    assert_eq!(stored.scopes.join(" "), helpers::SCOPES);

    // The researcher's page: ORCID's display format, status, scopes, disconnect.
    let page = browser.get("/me?connected=1").await;
    assert_eq!(page.status, 200);
    let uri = format!("{}/{orcid}", portal.sim.base_url());
    assert!(
        page.body.contains(&format!("href=\"{uri}\""))
            && page.body.contains(&format!(">{uri}</a>")),
        "the full iD link: {}",
        page.body
    );
    assert!(page.body.contains("alt=\"ORCID iD icon\""));
    assert!(
        page.body.contains("data-status=\"active\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"connected-notice\""));
    assert!(page.body.contains("data-scope=\"/read-limited\""));
    assert!(page.body.contains("id=\"disconnect-link\""));
    assert!(
        page.body.contains("id=\"items-note\""),
        "no writer configured: said so"
    );

    // The token the vault holds works at ORCID, and appears nowhere the portal wrote.
    let token = portal
        .vault_client(WRITER_CALLER_TOKEN)
        .access_token(&orcid, "test")
        .await
        .expect("token");
    let access = token.access_token.expose_secret().to_owned();
    for body in browser.seen.iter().chain(&bodies) {
        assert!(
            !body.contains(&access),
            "a page or the event holds the token"
        );
    }
    for cookie in &browser.set_cookies {
        assert!(!cookie.contains(&access));
    }
    assert!(
        !helpers::logs().contains(&access),
        "the log holds the token"
    );
    // No page lets anyone type an iD.
    for body in &browser.seen {
        assert!(
            !body.to_lowercase().contains("name=\"orcid"),
            "an iD field: {body}"
        );
    }

    // Disconnect: confirm, then the vault revokes at ORCID.
    let page = browser.get("/disconnect").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&uri));
    let csrf = page.hidden("csrf").expect("csrf");
    let page = browser.post("/disconnect", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/me?disconnected=1");
    let after = portal
        .vault_client(PORTAL_CALLER_TOKEN)
        .connection(&orcid)
        .await
        .unwrap();
    assert_eq!(after.state, ConnectionState::Disconnected);
    let status = helpers::http()
        .get(format!("{}/v3.0/{orcid}/record", portal.sim.base_url()))
        .bearer_auth(&access)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "the token is revoked at ORCID");
    let page = browser.get("/me?disconnected=1").await;
    assert!(
        page.body.contains("data-status=\"disconnected\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"disconnected-notice\""));
    assert!(!page.body.contains("id=\"disconnect-link\""));

    // Replaying the callback URL is refused: the state was single-use.
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_missing"));
    assert_eq!(portal.db.outbox_bodies("id-connected").await.len(), 1);
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_shows_orcids_wording_and_a_way_to_try_again() {
    let portal = spawn().await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-DENY", "Bo", "", false).await;
    let (_, email) = portal.sim_user("Bo").await;
    let authorize = browser.start_connect().await;
    let callback = orcid_decides(&authorize, &email, false).await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"deny-message\""));
    assert!(page.body.contains("You have denied"));
    assert!(
        page.body
            .contains("href=\"/connect/orcid\" id=\"try-again-button\"")
    );
    assert!(portal.db.outbox_bodies("id-connected").await.is_empty());
    // Trying again works.
    let again = browser.start_connect().await;
    assert!(again.starts_with(portal.sim.base_url()));
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_bad_paths_get_clear_pages_and_connect_nothing() {
    let portal = spawn().await;
    let (_, email) = portal.sim_user("Cy").await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-BAD", "Cy", "", false).await;

    // A forged state.
    let authorize = browser.start_connect().await;
    let callback = orcid_decides(&authorize, &email, true).await;
    let code = query_param(&callback, "code").unwrap();
    let page = browser
        .get(&format!("/orcid/callback?code={code}&state=forged-state"))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_mismatch"));
    assert!(page.body.contains("id=\"retry-link\""));
    // The forged attempt spent the state: the real answer is refused now too.
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_missing"));

    // A callback with no state in the session at all.
    let page = browser.get("/orcid/callback?code=abcdef&state=x").await;
    assert_eq!(page.error_code().as_deref(), Some("state_missing"));

    // Another browser's callback (state bound to the session).
    let mut other = portal.browser();
    other.dev_sign_in("P-OTHER", "Di", "", false).await;
    let authorize = browser.start_connect().await;
    let callback = orcid_decides(&authorize, &email, true).await;
    let page = other.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_missing"));

    // An ORCID error other than deny: shown, escaped.
    let authorize = browser.start_connect().await;
    let state = query_param(&authorize, "state").unwrap();
    let page = browser
        .get(&format!(
            "/orcid/callback?error=invalid_scope&error_description=%3Cscript%3Ebad%3C%2Fscript%3E&state={state}"
        ))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("orcid_error"));
    assert!(!page.body.contains("<script>"));
    assert!(
        page.body.contains("&lt;script&gt;") || page.body.contains("&#60;script&#62;"),
        "{}",
        page.body
    );

    // A code ORCID does not know: the exchange fails.
    let authorize = browser.start_connect().await;
    let state = query_param(&authorize, "state").unwrap();
    let page = browser
        .get(&format!("/orcid/callback?code=NOPE42&state={state}"))
        .await;
    assert_eq!(page.status, 502);
    assert_eq!(page.error_code().as_deref(), Some("exchange_failed"));

    // No code at all.
    let authorize = browser.start_connect().await;
    let state = query_param(&authorize, "state").unwrap();
    let page = browser.get(&format!("/orcid/callback?state={state}")).await;
    assert_eq!(page.error_code().as_deref(), Some("code_missing"));

    // A callback without any session.
    let mut stranger = Browser::new(&portal.url);
    let page = stranger
        .get(&format!("/orcid/callback?code={code}&state=x"))
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(page.error_code().as_deref(), Some("session_missing"));

    assert!(portal.db.outbox_bodies("id-connected").await.is_empty());
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_state_is_refused() {
    let portal = spawn_with(Options {
        portal_env: vec![(
            "IDBRIDGE__PORTAL__STATE_TTL_SECS".to_owned(),
            "1".to_owned(),
        )],
        ..Options::default()
    })
    .await;
    let (_, email) = portal.sim_user("Ed").await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-EXPIRED", "Ed", "", false).await;
    let authorize = browser.start_connect().await;
    let callback = orcid_decides(&authorize, &email, true).await;
    // The state lives one second; let it expire (time must pass, nothing to poll).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.error_code().as_deref(), Some("state_expired"));
    assert!(portal.db.outbox_bodies("id-connected").await.is_empty());
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_sign_in_and_disconnect_without_a_connection_changes_nothing() {
    let portal = spawn().await;
    let mut browser = portal.browser();
    for path in [
        "/",
        "/me",
        "/connect",
        "/connect/orcid",
        "/disconnect",
        "/admin",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location(), "/signin", "{path}");
    }
    browser.dev_sign_in("P-NOCONN", "Fay", "", false).await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"not-connected\""));
    assert!(page.body.contains("href=\"/connect\""));
    // Nothing to disconnect: back to the page.
    let page = browser.get("/disconnect").await;
    assert_eq!(page.status, 303);
    let csrf = browser.csrf().await;
    let page = browser.post("/disconnect", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/me");
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_down_gives_clear_pages() {
    let portal = spawn_with(Options {
        without_vault: true,
        ..Options::default()
    })
    .await;
    let (_, email) = portal.sim_user("Gus").await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-NOVAULT", "Gus", "", false).await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"status-note\""));
    // The hand-off key cannot be fetched: the connection is not half-made.
    let authorize = browser.start_connect().await;
    let callback = orcid_decides(&authorize, &email, true).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 503);
    assert_eq!(page.error_code().as_deref(), Some("handoff_failed"));
    assert!(portal.db.outbox_bodies("id-connected").await.is_empty());
    let csrf = browser.csrf().await;
    let page = browser.post("/disconnect", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 503);
    assert_eq!(page.error_code().as_deref(), Some("disconnect_failed"));
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_hand_off_key_is_used_and_the_connect_page_notes_a_connection() {
    let portal = spawn_with(Options {
        configured_handoff: true,
        ..Options::default()
    })
    .await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-AGAIN", "Hal", "", false).await;
    let (orcid, _) = connect(&portal, &mut browser).await;
    portal.wait_connected("P-AGAIN").await;
    let page = browser.get("/connect").await;
    assert!(page.body.contains("id=\"already-connected\""));
    let page = browser.get("/me").await;
    assert!(page.body.contains(&orcid.to_string()));
    portal.stop().await;
}
