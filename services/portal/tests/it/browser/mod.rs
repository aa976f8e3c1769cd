//! Browser tests in headless Chromium (chromedriver, WebDriver through fantoccini): sign in,
//! connect through orcid-sim's real authorize page by clicking Authorize, the iD shown as
//! ORCID requires; the deny path; disconnect; an administrator's CSV export; a phone-sized
//! viewport. After each flow no page, URL, cookie or web storage holds an access or refresh
//! token. Screenshots: `target/test-artifacts/portal-browser/<test>-<step>.png`.
//!
//! Chromium and chromedriver must be installed (`apt-get install chromium chromium-driver`);
//! without them these tests fail, they are never skipped.

mod driver;

use orcid::OrcidId;
use serde_json::json;
use token_vault::client::ConnectionState;

use crate::helpers::{self, ORCID_CLIENT_ID, PASSWORD, TestPortal, WRITER_CALLER_TOKEN, spawn};
use driver::{BROWSER_DEADLINE, DESKTOP, PHONE, Session};

/// The text ORCID's guidelines require on the button.
const BUTTON_TEXT: &str = "Create or Connect your ORCID iD";

fn same_origin(url: &url::Url, base: &str) -> bool {
    url.as_str().starts_with(base.trim_end_matches('/'))
        && url.as_str()[base.trim_end_matches('/').len()..]
            .chars()
            .next()
            .is_none_or(|c| c == '/')
}

/// Signs in with the development form, typing into it; lands on `/me`.
async fn sign_in(s: &mut Session, portal: &TestPortal, person_id: &str, name: &str, admin: bool) {
    s.goto(&format!("{}/signin", portal.url)).await;
    s.fill("person_id", person_id).await;
    s.fill("name", name).await;
    s.fill(
        "email",
        &format!("{}@mailinator.com", person_id.to_lowercase()),
    )
    .await;
    if admin {
        s.click("admin").await;
    }
    s.snapshot("signin").await;
    s.click("dev-signin-button").await;
    s.wait_url("the researcher page after sign-in", |u| {
        same_origin(u, &portal.url) && u.path() == "/me"
    })
    .await;
    let signed_in = s.id("signed-in-as").await.text().await.expect("text");
    assert!(signed_in.contains(name), "{signed_in}");
}

/// From `/connect`: clicks ORCID's button, signs in at ORCID's authorize page as `login` if
/// asked, and clicks Authorize (or Deny). Returns when the browser is back at the portal.
async fn connect_at_orcid(s: &mut Session, portal: &TestPortal, login: &str, authorize: bool) {
    s.goto(&format!("{}/connect", portal.url)).await;
    let button = s.id("connect-orcid-button").await;
    assert_eq!(button.text().await.expect("text").trim(), BUTTON_TEXT);
    assert_eq!(
        button.attr("href").await.expect("href").as_deref(),
        Some("/connect/orcid")
    );
    let icon = button
        .find(fantoccini::Locator::Css("img"))
        .await
        .expect("the iD icon in the button");
    let src = icon.attr("src").await.expect("src").unwrap_or_default();
    assert!(src.ends_with("/static/orcid-id.svg"), "{src}");
    s.assert_image_loaded(&icon, "the button's iD icon").await;
    s.snapshot("connect").await;
    button.click().await.expect("click the ORCID button");

    // ORCID's (the simulator's) real authorize page.
    let at = s
        .wait_url("ORCID's authorize page", |u| {
            same_origin(u, portal.sim.base_url()) && u.path() == "/oauth/authorize"
        })
        .await;
    assert!(
        at.query_pairs()
            .any(|(k, v)| k == "client_id" && v == ORCID_CLIENT_ID)
    );
    s.id("authorize-button").await;
    let client = s.id("client-name").await.text().await.expect("text");
    assert!(!client.is_empty(), "ORCID names the client");
    if s.has("username").await {
        s.fill("username", login).await;
        s.fill("password", PASSWORD).await;
    }
    s.snapshot("orcid-authorize").await;
    s.click(if authorize {
        "authorize-button"
    } else {
        "deny-button"
    })
    .await;
    s.wait_url("ORCID to send the browser back", |u| {
        same_origin(u, &portal.url)
    })
    .await;
}

/// Reloads `/me` until the connection shows `status` (the vault stores it asynchronously).
async fn wait_status(s: &Session, portal: &TestPortal, path: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    loop {
        s.goto(&format!("{}{path}", portal.url)).await;
        let shown = s
            .client
            .find_all(fantoccini::Locator::Id("connection-status"))
            .await
            .expect("find");
        if let Some(e) = shown.first()
            && e.attr("data-status").await.expect("attr").as_deref() == Some(status)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the researcher page never showed the status {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The researcher page shows the iD as ORCID requires: the iD icon and the full iD URI as
/// the link text and target.
async fn assert_id_shown(s: &Session, portal: &TestPortal, orcid: &OrcidId) {
    let uri = format!("{}/{orcid}", portal.sim.base_url());
    let link = s.id("orcid-id-link").await;
    assert_eq!(link.attr("href").await.expect("href"), Some(uri.clone()));
    assert_eq!(link.text().await.expect("text").trim(), uri);
    assert!(link.is_displayed().await.expect("displayed"));
    let icon = link
        .find(fantoccini::Locator::Css("img"))
        .await
        .expect("the iD icon next to the iD");
    assert_eq!(
        icon.attr("alt").await.expect("alt").as_deref(),
        Some("ORCID iD icon")
    );
    assert!(
        icon.attr("src")
            .await
            .expect("src")
            .unwrap_or_default()
            .ends_with("/static/orcid-id.svg")
    );
    s.assert_image_loaded(&icon, "the iD icon").await;
}

/// The access token the vault holds for `orcid` (the writer's seam) and its refresh token
/// (the simulator's token store).
async fn tokens_of(portal: &TestPortal, orcid: &OrcidId) -> (String, String) {
    let token = portal
        .vault_client(WRITER_CALLER_TOKEN)
        .access_token(orcid, "test")
        .await
        .expect("the vault hands the writer the token");
    let access = token.access_token.expose_secret().to_owned();
    let refresh = portal
        .sim
        .state()
        .tokens
        .get(&access)
        .expect("ORCID issued that token")
        .refresh_token;
    (access, refresh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_connect_clicks_authorize_at_orcid_and_shows_the_full_id_link() {
    let portal = spawn().await;
    let (orcid, email) = portal.sim_user("Ada").await;
    let mut s = Session::start("connect", DESKTOP).await;
    sign_in(&mut s, &portal, "P-BR-CONNECT", "Ada Lovelace", false).await;
    assert!(s.has("not-connected").await);
    s.snapshot("me-before").await;

    connect_at_orcid(&mut s, &portal, &email, true).await;
    let back = s.url().await;
    assert_eq!(back.path(), "/me");
    assert_eq!(back.query(), Some("connected=1"));
    assert!(s.has("connected-notice").await);
    s.snapshot("returned").await;

    let stored = portal.wait_connected("P-BR-CONNECT").await;
    assert_eq!(stored.orcid, orcid.to_string());
    wait_status(&s, &portal, "/me?connected=1", "active").await;
    assert_id_shown(&s, &portal, &orcid).await;
    let status = s.id("connection-status").await.text().await.expect("text");
    assert_eq!(status.trim(), "Connected");
    assert!(s.has("disconnect-link").await);
    assert!(s.has("connected-notice").await);
    s.snapshot("connected").await;

    // No token in any page, URL, cookie or web storage along the way. (The snapshots do see
    // the HttpOnly session cookie and the pages' text, so an absence means something.)
    assert!(
        s.snapshots.iter().any(|snap| snap
            .cookies
            .iter()
            .any(|c| c.starts_with("idbridge_portal="))),
        "the session cookie is among the cookies checked"
    );
    assert!(
        s.snapshots
            .iter()
            .any(|snap| snap.source.contains(&orcid.to_string()))
    );
    let (access, refresh) = tokens_of(&portal, &orcid).await;
    s.assert_nothing_holds(&[&access, &refresh]);
    // No page let anyone type an iD.
    for snap in &s.snapshots {
        if same_origin(&url::Url::parse(&snap.url).expect("url"), &portal.url) {
            assert!(
                !snap.source.to_lowercase().contains("name=\"orcid"),
                "step {}: an iD field",
                snap.step
            );
        }
    }
    s.close().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_deny_shows_orcids_wording_and_a_try_again_link() {
    let portal = spawn().await;
    let (orcid, email) = portal.sim_user("Bo").await;
    let mut s = Session::start("deny", DESKTOP).await;
    sign_in(&mut s, &portal, "P-BR-DENY", "Bo Denied", false).await;
    connect_at_orcid(&mut s, &portal, &email, false).await;

    let at = s.url().await;
    assert_eq!(at.path(), "/orcid/callback");
    assert!(
        at.query_pairs()
            .any(|(k, v)| k == "error" && v == "access_denied")
    );
    let title = s.id("deny-title").await.text().await.expect("text");
    assert_eq!(title, "You did not connect your ORCID iD");
    let message = s.id("deny-message").await.text().await.expect("text");
    assert!(
        message.contains("You have denied")
            && message.contains("permission to access your ORCID record"),
        "{message}"
    );
    assert!(message.contains("try again"), "{message}");
    let again = s.id("try-again-button").await;
    assert_eq!(
        again.attr("href").await.expect("href").as_deref(),
        Some("/connect/orcid")
    );
    assert_eq!(again.text().await.expect("text").trim(), BUTTON_TEXT);
    s.snapshot("denied").await;

    // Nothing was connected or issued.
    assert!(portal.db.outbox_bodies("id-connected").await.is_empty());
    assert!(
        !portal
            .sim
            .state()
            .tokens
            .has_live_grant(&orcid, ORCID_CLIENT_ID, &[]),
        "a deny issued a token"
    );

    // "Try again" goes back to ORCID's authorize page.
    again.click().await.expect("click try again");
    s.wait_url("ORCID's authorize page again", |u| {
        same_origin(u, portal.sim.base_url()) && u.path() == "/oauth/authorize"
    })
    .await;
    s.id("authorize-button").await;
    s.snapshot("try-again").await;
    s.close().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_disconnect_confirms_then_the_token_is_revoked_at_orcid() {
    let portal = spawn().await;
    let (orcid, email) = portal.sim_user("Cy").await;
    let mut s = Session::start("disconnect", DESKTOP).await;
    sign_in(&mut s, &portal, "P-BR-DISC", "Cy Leaving", false).await;
    connect_at_orcid(&mut s, &portal, &email, true).await;
    portal.wait_connected("P-BR-DISC").await;
    wait_status(&s, &portal, "/me", "active").await;
    let (access, refresh) = tokens_of(&portal, &orcid).await;
    assert!(
        portal
            .sim
            .state()
            .tokens
            .get(&access)
            .expect("token")
            .revoked
            .is_none()
    );

    // The confirm page names the iD; confirming disconnects.
    s.click("disconnect-link").await;
    s.wait_url("the confirm page", |u| u.path() == "/disconnect")
        .await;
    let title = s.id("disconnect-title").await.text().await.expect("text");
    assert_eq!(title, "Disconnect your ORCID iD?");
    let uri = format!("{}/{orcid}", portal.sim.base_url());
    let body = s.id("main").await.text().await.expect("text");
    assert!(body.contains(&uri), "{body}");
    assert!(s.has("disconnect-cancel").await);
    s.snapshot("confirm").await;
    s.click("disconnect-confirm-button").await;
    s.wait_url("the researcher page after disconnecting", |u| {
        u.path() == "/me" && u.query() == Some("disconnected=1")
    })
    .await;
    let notice = s.id("disconnected-notice").await;
    assert!(notice.is_displayed().await.expect("displayed"));
    let status = s.id("connection-status").await;
    assert_eq!(
        status.attr("data-status").await.expect("attr").as_deref(),
        Some("disconnected")
    );
    assert!(!s.has("disconnect-link").await);
    s.snapshot("disconnected").await;

    // The vault ended the connection and ORCID revoked the token.
    let after = portal
        .vault_client(helpers::PORTAL_CALLER_TOKEN)
        .connection(&orcid)
        .await
        .expect("connection");
    assert_eq!(after.state, ConnectionState::Disconnected);
    let record = portal.sim.state().tokens.get(&access).expect("token");
    assert!(record.revoked.is_some(), "ORCID shows the token revoked");
    let status = helpers::http()
        .get(format!("{}/v3.0/{orcid}/record", portal.sim.base_url()))
        .bearer_auth(&access)
        .header("Accept", "application/json")
        .send()
        .await
        .expect("ORCID API")
        .status();
    assert_eq!(status, 401, "the revoked token no longer reads the record");

    s.assert_nothing_holds(&[&access, &refresh]);
    s.close().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_admin_exports_the_connections_csv_with_the_researcher() {
    let portal = spawn().await;
    // A researcher connected (over plain HTTP: this test is about the administrator).
    let mut researcher = portal.browser();
    researcher
        .dev_sign_in("P-BR-EXPORTED", "Grace Hopper", "", false)
        .await;
    let (orcid, _) = helpers::connect(&portal, &mut researcher).await;
    portal.wait_connected("P-BR-EXPORTED").await;
    let (access, refresh) = tokens_of(&portal, &orcid).await;
    let uri = format!("{}/{orcid}", portal.sim.base_url());

    let mut s = Session::start("admin-export", DESKTOP).await;
    sign_in(&mut s, &portal, "P-BR-ADMIN", "Root Admin", true).await;
    s.click("nav-admin").await;
    s.wait_url("the administration page", |u| u.path() == "/admin")
        .await;
    let rows = s
        .client
        .find_all(fantoccini::Locator::Css(
            "tr[data-person-id=\"P-BR-EXPORTED\"]",
        ))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "the researcher is listed");
    let row = rows[0].text().await.expect("text");
    assert!(row.contains(&uri), "{row}");
    s.snapshot("admin").await;

    // The CSV export link, fetched by the browser with its own session.
    let link = s.id("export-connections-csv").await;
    assert_eq!(link.text().await.expect("text").trim(), "connections (CSV)");
    let href = link.attr("href").await.expect("href").expect("an href");
    assert_eq!(href, "/admin/reports/connections.csv");
    let fetched = s
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {credentials: 'same-origin'})
               .then(r => r.text().then(body => done({
                 status: r.status,
                 type: r.headers.get('content-type'),
                 disposition: r.headers.get('content-disposition'),
                 body })))
               .catch(e => done({error: String(e)}));",
            vec![json!(href)],
        )
        .await
        .expect("fetch the export");
    assert_eq!(fetched["status"], json!(200), "{fetched}");
    assert!(
        fetched["type"]
            .as_str()
            .unwrap_or_default()
            .starts_with("text/csv"),
        "{fetched}"
    );
    assert!(
        fetched["disposition"]
            .as_str()
            .unwrap_or_default()
            .starts_with("attachment"),
        "{fetched}"
    );
    let csv = fetched["body"].as_str().expect("body");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("person_id,orcid,name,state,scopes,granted_at,ended_at")
    );
    assert!(
        lines.any(|l| l.starts_with(&format!("P-BR-EXPORTED,{uri},")) && l.contains(",active,")),
        "{csv}"
    );
    assert!(!csv.contains(&access) && !csv.contains(&refresh));
    // Clicking the link downloads the same report; the page stays where it is.
    link.click().await.expect("click the export link");
    let file = s.downloaded("connections.csv").await;
    assert!(
        file.lines()
            .any(|l| l.starts_with(&format!("P-BR-EXPORTED,{uri},")) && l.contains(",active,")),
        "{file}"
    );
    assert!(!file.contains(&access) && !file.contains(&refresh));
    assert!(s.has("export-connections-csv").await);
    s.snapshot("after-export").await;
    // Without the browser's session the export is not served.
    let stranger = helpers::http()
        .get(format!("{}{href}", portal.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(stranger.status(), 303);

    s.assert_nothing_holds(&[&access, &refresh]);
    s.close().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_phone_viewport_pages_do_not_scroll_sideways() {
    let portal = spawn().await;
    let (orcid, email) = portal.sim_user("Di").await;
    let mut s = Session::start("phone", PHONE).await;
    s.goto(&format!("{}/signin", portal.url)).await;
    let width = s.js("return window.innerWidth;").await;
    assert!(
        width.as_u64().is_some_and(|w| w <= u64::from(PHONE.0)),
        "a phone-sized viewport, got {width}"
    );
    s.assert_no_horizontal_scroll("/signin").await;
    sign_in(&mut s, &portal, "P-BR-PHONE", "Di Mobile", false).await;
    s.assert_no_horizontal_scroll("/me (not connected)").await;
    s.snapshot("me-before").await;

    s.goto(&format!("{}/connect", portal.url)).await;
    let button = s.id("connect-orcid-button").await;
    assert!(button.is_displayed().await.expect("displayed"));
    let (x, _, w, _) = button.rectangle().await.expect("rect");
    assert!(
        x >= 0.0 && x + w <= f64::from(PHONE.0),
        "the ORCID button fits the screen: x={x} width={w}"
    );
    s.assert_no_horizontal_scroll("/connect").await;
    s.snapshot("connect-fits").await;

    connect_at_orcid(&mut s, &portal, &email, true).await;
    portal.wait_connected("P-BR-PHONE").await;
    wait_status(&s, &portal, "/me", "active").await;
    assert_id_shown(&s, &portal, &orcid).await;
    s.assert_no_horizontal_scroll("/me (connected, the full iD URI)")
        .await;
    s.snapshot("connected").await;
    s.click("disconnect-link").await;
    s.id("disconnect-confirm-button").await;
    s.assert_no_horizontal_scroll("/disconnect").await;
    s.snapshot("confirm").await;

    let (access, refresh) = tokens_of(&portal, &orcid).await;
    s.assert_nothing_holds(&[&access, &refresh]);
    s.close().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_admin_resends_an_invitation_and_the_page_fits_a_phone() {
    use crate::invitations::{eml_files, portal_for_writer, post_hire, writer_with_invitations};

    let writer_port = crate::real_writer::free_port();
    let portal = portal_for_writer(writer_port).await;
    let mail_dir = std::env::temp_dir().join(format!(
        "portal-browser-invitations-{}",
        uuid::Uuid::new_v4()
    ));
    let writer = writer_with_invitations(&portal, writer_port, &mail_dir).await;
    let person = format!(
        "P-BR-INV-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    post_hire(&writer, &person, "invited.browser@example.org").await;

    let mut s = Session::start("admin-invitations", DESKTOP).await;
    sign_in(&mut s, &portal, "P-BR-INV-ADMIN", "Root Admin", true).await;
    s.goto(&format!("{}/admin", portal.url)).await;
    s.click("invitations-link").await;
    s.wait_url("the invitations page", |u| u.path() == "/admin/invitations")
        .await;
    let row_css = format!("tr[data-person-id=\"{person}\"][data-state=\"sent\"]");
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    loop {
        let rows = s
            .client
            .find_all(fantoccini::Locator::Css(&row_css))
            .await
            .expect("rows");
        if rows.len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the invitation of {person} listed as sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        s.client.refresh().await.expect("reload");
    }
    assert_eq!(eml_files(&mail_dir).len(), 1);
    s.snapshot("listed").await;

    // Clicking the row's Resend button (the form carries the CSRF token).
    s.client
        .find(fantoccini::Locator::Css(&format!(
            "{row_css} button[data-testid=\"resend\"]"
        )))
        .await
        .expect("the Resend button")
        .click()
        .await
        .expect("click Resend");
    let notice = s.id("resend-notice").await;
    assert_eq!(
        notice.attr("data-outcome").await.expect("attr").as_deref(),
        Some("sent")
    );
    let text = notice.text().await.expect("text");
    assert!(
        text.contains(&format!("Invitation sent again to {person}")),
        "{text}"
    );
    assert_eq!(eml_files(&mail_dir).len(), 2, "a second e-mail");
    s.snapshot("resent").await;
    s.close().await;

    // On a phone the page scrolls its table, not itself.
    let mut phone = Session::start("admin-invitations-phone", PHONE).await;
    sign_in(&mut phone, &portal, "P-BR-INV-ADMIN", "Root Admin", true).await;
    phone
        .goto(&format!("{}/admin/invitations", portal.url))
        .await;
    phone.id("invitations").await;
    phone
        .assert_no_horizontal_scroll("/admin/invitations")
        .await;
    phone.snapshot("phone").await;
    phone.close().await;

    writer.stop().await;
    portal.stop().await;
    let _ = std::fs::remove_dir_all(&mail_dir);
}
