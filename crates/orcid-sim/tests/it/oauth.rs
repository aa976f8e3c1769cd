//! OAuth (§1, §11.1–11.3): authorize page, codes, token grants, refresh, revoke.

use crate::helpers::*;
use orcid_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::Value;

fn authorize_url(sim: &orcid_sim::SimHandle, scope: &str, redirect: &str, state: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", sim.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", TEST_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", state);
    url.into()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

fn query(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn is_base62_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4) && s.len() == 36
}

async fn exchange(sim: &orcid_sim::SimHandle, code: &str, redirect: &str) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Accept", "application/json")
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap()
}

async fn token_form(sim: &orcid_sim::SimHandle, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn userinfo_status(sim: &orcid_sim::SimHandle, token: &str) -> StatusCode {
    http()
        .get(format!("{}/oauth/userinfo", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn authorize_page_lists_scopes_in_words_with_authorize_and_deny() {
    let sim = spawn_sim().await;
    let res = http()
        .get(authorize_url(
            &sim,
            "/read-limited /activities/update",
            TEST_REDIRECT_URI,
            "s1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("<form method=\"post\" action=\"/oauth/authorize\""));
    assert!(html.contains("Read your information with visibility set to Trusted Organizations"));
    assert!(html.contains("Add/update your research activities (works, affiliations, etc)"));
    assert!(html.contains("name=\"username\"") && html.contains("type=\"password\""));
    assert!(html.contains("value=\"authorize\"") && html.contains(">Authorize</button>"));
    assert!(html.contains("value=\"deny\"") && html.contains(">Deny</button>"));
    assert!(html.contains("name=\"state\" value=\"s1\""));
    assert!(html.contains(&format!("Client {TEST_CLIENT_ID}")));
    assert!(!html.contains("<script"), "no JavaScript needed");
    sim.stop().await;
}

#[tokio::test]
async fn form_sign_in_then_authorize_redirects_with_code_and_state() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let email = sim.state().users.get(&orcid).unwrap().email;
    let res = http()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/authenticate"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("state", "xyz 1"),
            ("username", email.as_str()),
            ("password", TEST_USER_PASSWORD),
            ("action", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert!(
        loc.starts_with(&format!("{TEST_REDIRECT_URI}?code=")),
        "{loc}"
    );
    assert!(loc.ends_with("&state=xyz%201"), "{loc}");
    let q = query(&loc);
    assert!(is_base62_code(&q["code"]), "{}", q["code"]);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("orcid_sim_session=") && cookie.contains("HttpOnly"));
    // The iD works as the sign-in name too.
    let res = http()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/authenticate"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("username", orcid.to_string().as_str()),
            ("password", TEST_USER_PASSWORD),
            ("action", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(!location(&res).contains("state="));
    sim.stop().await;
}

#[tokio::test]
async fn wrong_password_shows_the_page_again_without_redirect() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let res = http()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/authenticate"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("username", orcid.to_string().as_str()),
            ("password", "not-the-password"),
            ("action", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("location").is_none());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid email/ORCID iD or password.")
    );
    sim.stop().await;
}

#[tokio::test]
async fn signed_in_session_skips_sign_in_and_then_consent() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = |extra: &'static str| {
        let mut f = vec![
            ("client_id", TEST_CLIENT_ID.to_owned()),
            ("response_type", "code".to_owned()),
            ("scope", "/read-limited".to_owned()),
            ("redirect_uri", TEST_REDIRECT_URI.to_owned()),
            ("action", "authorize".to_owned()),
        ];
        if extra == "login" {
            f.push(("username", orcid.to_string()));
            f.push(("password", TEST_USER_PASSWORD.to_owned()));
        }
        f
    };
    let res = browser
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&form("login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    // Signed in, no token yet: the consent page without sign-in fields.
    let page = browser
        .get(authorize_url(&sim, "/read-limited", TEST_REDIRECT_URI, "a"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Signed in as <strong>Sofia Garcia</strong>"));
    assert!(!html.contains("name=\"password\""));
    // Authorize with the session only, then exchange: a live token now exists.
    let res = browser
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&form(""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let code = query(&location(&res))["code"].clone();
    assert_eq!(exchange(&sim, &code, TEST_REDIRECT_URI).await.status(), 200);
    // Same scopes again: ORCID redirects straight back with a new code.
    let res = browser
        .get(authorize_url(&sim, "/read-limited", TEST_REDIRECT_URI, "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let q = query(&location(&res));
    assert!(is_base62_code(&q["code"]));
    assert_eq!(q["state"], "b");
    // prompt=login forces the sign-in form again.
    let res = browser
        .get(authorize_url(&sim, "/read-limited", TEST_REDIRECT_URI, "c") + "&prompt=login")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("name=\"password\""));
    sim.stop().await;
}

#[tokio::test]
async fn prompt_none_without_session_redirects_login_required() {
    let sim = spawn_sim().await;
    let res = http()
        .get(authorize_url(&sim, "openid", TEST_REDIRECT_URI, "p") + "&prompt=none")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let q = query(&location(&res));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "p");
    sim.stop().await;
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state() {
    let sim = spawn_sim().await;
    let res = http()
        .post(format!("{}/oauth/authorize", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/activities/update"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("state", "st-9"),
            ("action", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        location(&res),
        format!(
            "{TEST_REDIRECT_URI}?error=access_denied&error_description=User%20denied%20access&state=st-9"
        )
    );
    // Headless deny answers the same.
    let orcid = create_user(&sim).await;
    let res = http()
        .get(
            authorize_url(&sim, "/activities/update", TEST_REDIRECT_URI, "st-9")
                + &format!("&sim_user={orcid}&sim_decision=deny"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(
        location(&res)
            .ends_with("?error=access_denied&error_description=User%20denied%20access&state=st-9")
    );
    sim.stop().await;
}

#[tokio::test]
async fn code_is_single_use_and_token_response_is_orcids() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let code = authorize_code(
        &sim,
        &orcid,
        "/read-limited /activities/update",
        TEST_CLIENT_ID,
    )
    .await;
    assert!(is_base62_code(&code));
    let res = exchange(&sim, &code, TEST_REDIRECT_URI).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    let body: Value = res.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "token_type",
            "refresh_token",
            "expires_in",
            "scope",
            "name",
            "orcid"
        ]
    );
    assert!(is_uuid_v4(body["access_token"].as_str().unwrap()));
    assert!(is_uuid_v4(body["refresh_token"].as_str().unwrap()));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 631_138_518);
    assert_eq!(body["scope"], "/read-limited /activities/update");
    assert_eq!(body["name"], "Sofia Garcia");
    assert_eq!(body["orcid"], orcid.to_string());

    let again = exchange(&sim, &code, TEST_REDIRECT_URI).await;
    assert_eq!(again.status(), 400);
    let err: Value = again.json().await.unwrap();
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(
        err["error_description"],
        format!("Invalid authorization code: {code}")
    );
    sim.stop().await;
}

#[tokio::test]
async fn exchange_with_another_redirect_uri_fails() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let code = authorize_code(&sim, &orcid, "/authenticate", TEST_CLIENT_ID).await;
    let res = exchange(&sim, &code, "http://127.0.0.1:9/elsewhere").await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err,
        serde_json::json!({"error": "invalid_grant", "error_description": "Redirect URI mismatch."})
    );
    sim.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_and_basic_auth_works() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let code = authorize_code(&sim, &orcid, "/authenticate", TEST_CLIENT_ID).await;
    let res = token_form(
        &sim,
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", "wrong"),
            ("grant_type", "authorization_code"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err,
        serde_json::json!({"error": "invalid_client", "error_description": "Bad client credentials"})
    );

    let code = authorize_code(&sim, &orcid, "/authenticate", TEST_CLIENT_ID).await;
    let res = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(TEST_CLIENT_ID, Some(TEST_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = token_form(
        &sim,
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = token_form(
        &sim,
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "password"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    sim.stop().await;
}

#[tokio::test]
async fn redirect_mismatch_shows_an_error_page_and_never_redirects() {
    let sim = spawn_sim().await;
    for bad in [
        "http://127.0.0.1:9/other",
        "https://evil.example/callback",
        "not a uri",
    ] {
        let res = http()
            .get(authorize_url(&sim, "/authenticate", bad, "s"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.headers().get("location").is_none());
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("does not match any redirect URI")
        );
    }
    // Unknown client: error page too.
    let res = http()
        .get(format!(
            "{}/oauth/authorize?client_id=APP-NOPE&response_type=code&scope=/authenticate&redirect_uri={}",
            sim.base_url(),
            TEST_REDIRECT_URI
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    sim.stop().await;
}

#[tokio::test]
async fn invalid_scope_at_authorize_redirects_invalid_scope() {
    let sim = spawn_sim().await;
    let res = http()
        .get(authorize_url(
            &sim,
            "/read-limited /webhook",
            TEST_REDIRECT_URI,
            "s",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        location(&res),
        format!(
            "{TEST_REDIRECT_URI}?error=invalid_scope&error_description=Invalid%20scope%3A%20%2Fwebhook&state=s"
        )
    );
    sim.stop().await;
}

#[tokio::test]
async fn host_only_registration_accepts_any_path_and_port_on_that_host() {
    let config =
        SimConfig::for_tests().with_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, "http://127.0.0.1");
    let sim = spawn_sim_with(config).await;
    let orcid = create_user(&sim).await;
    let redirect = "http://127.0.0.1:5555/some/other/path?x=1";
    let res = http()
        .get(authorize_url(&sim, "/authenticate", redirect, "h") + &format!("&sim_user={orcid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert!(
        loc.starts_with("http://127.0.0.1:5555/some/other/path?x=1&code="),
        "{loc}"
    );
    let code = query(&loc)["code"].clone();
    assert_eq!(exchange(&sim, &code, redirect).await.status(), 200);
    // Another host is still refused.
    let res = http()
        .get(authorize_url(
            &sim,
            "/authenticate",
            "http://localhost/cb",
            "h",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    sim.stop().await;
}

async fn refresh(
    sim: &orcid_sim::SimHandle,
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("client_id", TEST_CLIENT_ID),
        ("client_secret", TEST_CLIENT_SECRET),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend_from_slice(extra);
    token_form(sim, &form).await
}

#[tokio::test]
async fn refresh_with_revoke_old_true_kills_the_old_token() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let old = connect(&sim, &orcid, "openid /activities/update").await;
    let res = refresh(&sim, &old.refresh_token, &[("revoke_old", "true")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let new: TokenJson = res.json().await.unwrap();
    assert_ne!(new.access_token, old.access_token);
    assert_ne!(new.refresh_token, old.refresh_token);
    assert_eq!(new.scope, "openid /activities/update");
    assert_eq!(new.token_type, "bearer");
    assert_eq!(new.name.as_deref(), Some("Sofia Garcia"));
    assert_eq!(new.orcid.as_deref(), Some(orcid.to_string().as_str()));
    assert!(
        (631_138_516..=631_138_518).contains(&new.expires_in),
        "{}",
        new.expires_in
    );
    assert_eq!(userinfo_status(&sim, &old.access_token).await, 403);
    assert_eq!(userinfo_status(&sim, &new.access_token).await, 200);
    // The refresh token of the revoked parent is dead too.
    let res = refresh(&sim, &old.refresh_token, &[("revoke_old", "false")]).await;
    assert_eq!(res.status(), 401);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error_description"], "Parent token is disabled");
    sim.stop().await;
}

#[tokio::test]
async fn refresh_with_revoke_old_false_keeps_the_old_token() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let old = connect(&sim, &orcid, "openid /read-limited").await;
    let res = refresh(&sim, &old.refresh_token, &[("revoke_old", "false")]).await;
    assert_eq!(res.status(), 200);
    let new: TokenJson = res.json().await.unwrap();
    assert_eq!(userinfo_status(&sim, &old.access_token).await, 200);
    assert_eq!(userinfo_status(&sim, &new.access_token).await, 200);
    sim.stop().await;
}

#[tokio::test]
async fn refresh_narrows_scope_and_refuses_scopes_outside_the_parent() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let old = connect(&sim, &orcid, "/read-limited /activities/update").await;
    let res = refresh(
        &sim,
        &old.refresh_token,
        &[("scope", "/activities/update"), ("revoke_old", "false")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let narrow: TokenJson = res.json().await.unwrap();
    assert_eq!(narrow.scope, "/activities/update");

    let res = refresh(&sim, &old.refresh_token, &[("scope", "/person/update")]).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_scope");
    assert_eq!(
        err["error_description"],
        "The given scope '/person/update' is not allowed for the parent token"
    );

    let res = refresh(&sim, &old.refresh_token, &[("expires_in", "999999999999")]).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Token expiration can't be after")
    );

    let res = refresh(&sim, "00000000-0000-4000-8000-000000000000", &[]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
    sim.stop().await;
}

#[tokio::test]
async fn refresh_with_short_expires_in_gives_a_token_that_expires() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let old = connect(&sim, &orcid, "openid").await;
    let res = refresh(
        &sim,
        &old.refresh_token,
        &[("expires_in", "1"), ("revoke_old", "false")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let short: TokenJson = res.json().await.unwrap();
    assert_eq!(short.expires_in, 1);
    assert_eq!(userinfo_status(&sim, &short.access_token).await, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while userinfo_status(&sim, &short.access_token).await == 200 {
        assert!(std::time::Instant::now() < deadline, "token never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(userinfo_status(&sim, &old.access_token).await, 200);
    sim.stop().await;
}

#[tokio::test]
async fn revoke_kills_the_pair_whichever_token_is_given() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    for which in ["access", "refresh"] {
        let t = connect(&sim, &orcid, "openid").await;
        let token = if which == "access" {
            &t.access_token
        } else {
            &t.refresh_token
        };
        let res = http()
            .post(format!("{}/oauth/revoke", sim.base_url()))
            .form(&[
                ("client_id", TEST_CLIENT_ID),
                ("client_secret", TEST_CLIENT_SECRET),
                ("token", token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{which}");
        assert!(res.bytes().await.unwrap().is_empty());
        assert_eq!(userinfo_status(&sim, &t.access_token).await, 403, "{which}");
        let res = refresh(&sim, &t.refresh_token, &[]).await;
        assert_eq!(res.status(), 401, "{which}");
    }
    // Wrong client secret: 401 invalid_client, nothing revoked.
    let t = connect(&sim, &orcid, "openid").await;
    let res = http()
        .post(format!("{}/oauth/revoke", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", "nope"),
            ("token", &t.access_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(userinfo_status(&sim, &t.access_token).await, 200);
    // Basic auth on revoke.
    let res = http()
        .post(format!("{}/oauth/revoke", sim.base_url()))
        .basic_auth(TEST_CLIENT_ID, Some(TEST_CLIENT_SECRET))
        .form(&[("token", &t.access_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(userinfo_status(&sim, &t.access_token).await, 403);
    sim.stop().await;
}

#[tokio::test]
async fn client_credentials_grant() {
    let sim = spawn_sim().await;
    let res = token_form(
        &sim,
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "/read-public"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert!(is_uuid_v4(body["access_token"].as_str().unwrap()));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 631_138_518);
    assert_eq!(body["scope"], "/read-public");
    assert_eq!(body["orcid"], Value::Null);
    assert!(body.get("name").is_none());
    let webhook = client_credentials(&sim, "/webhook").await;
    assert_eq!(webhook.scope, "/webhook");

    let res = token_form(
        &sim,
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "/read-limited"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err,
        serde_json::json!({"error": "invalid_scope", "error_description": "Invalid scope: /read-limited"})
    );
    sim.stop().await;
}

/// Other methods on ORCID's OAuth paths are 405 with Spring's OAuth-style body, not an empty 404.
#[tokio::test]
async fn wrong_methods_on_oauth_paths_are_405() {
    let sim = spawn_sim().await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/oauth/token", "POST"),
        (reqwest::Method::PUT, "/oauth/token", "POST"),
        (reqwest::Method::GET, "/oauth/revoke", "POST"),
        (reqwest::Method::DELETE, "/oauth/authorize", "GET, POST"),
        (reqwest::Method::POST, "/oauth/jwks", "GET"),
        (reqwest::Method::PUT, "/oauth/userinfo", "GET, POST"),
        (
            reqwest::Method::POST,
            "/.well-known/openid-configuration",
            "GET",
        ),
    ] {
        let res = http()
            .request(method.clone(), format!("{}{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "method_not_allowed", "error_description": format!("Request method '{method}' not supported")}),
        );
    }
    sim.stop().await;
}
