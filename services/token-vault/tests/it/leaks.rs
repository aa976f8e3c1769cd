//! The plaintext tokens appear nowhere: not in the database (every table dumped as text),
//! not in the log (every crate at TRACE, captured), not on the bus (every message on the
//! events exchange), not in `Debug` output, not in error answers. Every token route is
//! exercised: by iD, by person id (`GET /v1/tokens?person_id=…`), client credentials.

use std::time::Duration;

use base64::Engine;
use token_vault::client::{ClientError, ClientScope};

use crate::helpers::{Backend, TestSettings, TestVault, http, logs, spawn_vault_with};

/// A caller of `GET /v1/tokens?person_id=…`, which needs `token:read` and `connections:list`.
const PERSON_CALLER_TOKEN: &str = "TEST_LEAK_PERSON_CALLER_TOKEN_0005";

fn settings() -> TestSettings {
    let mut settings = TestSettings::new();
    settings.extra_env.extend([
        (
            "IDBRIDGE__VAULT__CALLERS__PERSONS__TOKEN_SHA256".to_owned(),
            token_vault::token_sha256_hex(PERSON_CALLER_TOKEN),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__PERSONS__RIGHTS".to_owned(),
            r#"["token:read", "connections:list"]"#.to_owned(),
        ),
    ]);
    settings
}

fn encodings(secret: &str) -> Vec<String> {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        secret.to_owned(),
        hex.clone(),
        hex.to_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ]
}

fn assert_absent(place: &str, haystack: &str, secrets: &[String]) {
    for secret in secrets {
        for form in encodings(secret) {
            assert!(
                !haystack.contains(&form),
                "a token (or its hex/base64 form) appears in {place}"
            );
        }
    }
}

async fn nowhere(vault: &TestVault) {
    // The callers' bearer tokens are secrets too.
    let mut secrets: Vec<String> = vec![
        PERSON_CALLER_TOKEN.to_owned(),
        crate::helpers::TEST_WRITER_TOKEN.to_owned(),
    ];
    let keep = |tokens: &orcid::client::UserTokens, secrets: &mut Vec<String>| {
        secrets.push(tokens.access_token.expose_secret().to_owned());
        if let Some(refresh) = &tokens.refresh_token {
            secrets.push(refresh.expose_secret().to_owned());
        }
    };

    // A: refreshed on first read (the new pair exists only in the vault and at ORCID).
    let (orcid_a, mut issued) = vault.authorize_user().await;
    issued.expires_in = Some(Duration::from_secs(60));
    let a = vault.connect_with(orcid_a, issued).await;
    keep(&a.tokens, &mut secrets);
    let refreshed = vault
        .writer()
        .access_token(&a.orcid, "leak test")
        .await
        .unwrap();
    assert_ne!(
        refreshed.access_token.expose_secret(),
        a.tokens.access_token.expose_secret()
    );
    secrets.push(refreshed.access_token.expose_secret().to_owned());
    let record = vault
        .sim
        .state()
        .tokens
        .get(refreshed.access_token.expose_secret())
        .expect("the simulator knows the refreshed token");
    secrets.push(record.refresh_token.clone());

    // B: reported revoked. C: disconnected. D: plain reads.
    let b = vault.connect_user().await;
    keep(&b.tokens, &mut secrets);
    vault
        .writer()
        .mark_revoked(&b.orcid, None, "401 in leak test")
        .await
        .unwrap();
    let c = vault.connect_user().await;
    keep(&c.tokens, &mut secrets);
    vault
        .portal()
        .disconnect(&c.orcid, "leak test")
        .await
        .unwrap();
    let d = vault.connect_user().await;
    keep(&d.tokens, &mut secrets);
    let d_token = vault
        .writer()
        .access_token(&d.orcid, "leak test")
        .await
        .unwrap();

    // By person id: A's (the refreshed pair), D's, and E's, read only this way.
    let persons = vault.client(PERSON_CALLER_TOKEN);
    let a_by_person = persons
        .person_token(&a.person_id, "leak test")
        .await
        .unwrap();
    assert_eq!(
        a_by_person.access_token.expose_secret(),
        refreshed.access_token.expose_secret(),
        "the person route serves the refreshed token"
    );
    let d_by_person = persons
        .person_token(&d.person_id, "leak test")
        .await
        .unwrap();
    assert_eq!(d_by_person.orcid, d.orcid.to_string());
    let e = vault.connect_user().await;
    keep(&e.tokens, &mut secrets);
    let e_by_person = persons
        .person_token(&e.person_id, "leak test")
        .await
        .unwrap();
    assert_eq!(e_by_person.orcid, e.orcid.to_string());
    secrets.push(e_by_person.access_token.expose_secret().to_owned());

    // The person route's errors: nobody by that id and disconnected C (404), revoked B (410),
    // a caller without connections:list (403). Neither the client's errors nor the answers
    // carry a token.
    let nobody = format!("P-nobody-{}", uuid::Uuid::new_v4().simple());
    let mut errors = Vec::new();
    for (person, want) in [
        (nobody.as_str(), 404),
        (b.person_id.as_str(), 410),
        (c.person_id.as_str(), 404),
    ] {
        let error = persons
            .person_token(person, "leak test")
            .await
            .expect_err("no active connection");
        match (&error, want) {
            (ClientError::NotConnected, 404) | (ClientError::ConnectionEnded { .. }, 410) => {}
            _ => panic!("expected {want} for a person without an active connection, got {error:?}"),
        }
        errors.push(format!("{error} {error:?}"));
    }
    for (caller, person, want) in [
        (PERSON_CALLER_TOKEN, nobody.as_str(), 404),
        (PERSON_CALLER_TOKEN, b.person_id.as_str(), 410),
        (crate::helpers::TEST_WRITER_TOKEN, a.person_id.as_str(), 403),
    ] {
        let res = http()
            .get(format!("{}/v1/tokens", vault.base_url))
            .query(&[("person_id", person), ("purpose", "leak test")])
            .bearer_auth(caller)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want);
        errors.push(format!(
            "{:?} {}",
            res.headers().clone(),
            res.text().await.unwrap()
        ));
    }
    assert_absent("the person route's errors", &errors.join("\n"), &secrets);

    // Client-credentials tokens.
    let webhook = vault
        .writer()
        .client_token(ClientScope::Webhook, "leak test")
        .await
        .unwrap();
    let public = vault
        .writer()
        .client_token(ClientScope::ReadPublic, "leak test")
        .await
        .unwrap();
    secrets.push(webhook.access_token.expose_secret().to_owned());
    secrets.push(public.access_token.expose_secret().to_owned());

    // Debug output of everything that holds a token.
    let debug = format!(
        "{refreshed:?} {d_token:?} {a_by_person:?} {d_by_person:?} {e_by_person:?} {webhook:?} \
         {public:?} {:?} {:?} {persons:?}",
        a.tokens,
        vault.writer()
    );
    assert_absent("Debug output", &debug, &secrets);

    // Both "connection lost" events were relayed (the outbox drained).
    vault.next_event("connection-lost").await;
    vault.next_event("connection-lost").await;

    let dump = vault.db.dump().await;
    assert!(dump.contains(&a.orcid.to_string()), "the dump has content");
    assert!(
        dump.contains("connection-ready"),
        "the outbox is in the dump"
    );
    assert_absent("the database", &dump, &secrets);

    let log = logs();
    assert!(
        log.contains("token refreshed at ORCID"),
        "the capture sees the vault's log"
    );
    assert!(
        log.contains("\"level\":\"TRACE\""),
        "the capture records TRACE"
    );
    assert_absent("the log", &log, &secrets);

    let published: Vec<String> = vault
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|d| format!("{} {:?}", serde_json::to_string(&d.envelope).unwrap(), d))
        .collect();
    assert!(published.iter().any(|m| m.contains("id-connected")));
    assert!(
        published
            .iter()
            .filter(|m| m.contains("connection-ready"))
            .count()
            >= 4
    );
    assert_absent("the bus", &published.join("\n"), &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_tokens_appear_nowhere_postgres() {
    let vault = spawn_vault_with(Backend::Postgres, settings()).await;
    nowhere(&vault).await;
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_tokens_appear_nowhere_sqlite() {
    let vault = spawn_vault_with(Backend::Sqlite, settings()).await;
    nowhere(&vault).await;
    vault.stop().await;
}
