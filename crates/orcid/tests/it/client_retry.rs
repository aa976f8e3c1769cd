//! Retries: idempotent requests are retried; a POST is retried only when ORCID certainly did
//! not act on it, and otherwise ends in `OutcomeUnknown` after exactly one call.

use std::time::Duration;

use orcid::Error;
use orcid::client::{OrcidClient, Resource, RetryPolicy, Section};
use orcid::model::PutCode;
use serde_json::{Value, json};

use crate::client_helpers::*;

const V3_JSON: &str = "application/vnd.orcid+json; qs=4;charset=UTF-8";

fn created(put_code: u64) -> Reply {
    Reply::status(201).with_header(
        "Location",
        &format!("https://api.sandbox.orcid.org/v3.0/{TEST_ORCID}/work/{put_code}"),
    )
}

fn server_error(status: u16) -> Reply {
    Reply::json(
        status,
        V3_JSON,
        &json!({"response-code": status, "developer-message": "Something went wrong in ORCID.", "error-code": 9008}).to_string(),
    )
}

fn work() -> Value {
    json!({"title": {"title": {"value": "A work"}}, "type": "journal-article"})
}

#[tokio::test]
async fn get_succeeds_after_n_failures_in_n_plus_1_calls() {
    let failures = vec![
        server_error(500),
        Reply::Close,
        server_error(502),
        Reply::status(503),
    ];
    let n = failures.len();
    let server = CannedServer::start(failures, Reply::json(200, V3_JSON, r#"{"ok":true}"#)).await;
    let client = client_with_retries(server.base_url(), 5);
    let body: Value = client
        .read(&test_token(), &test_orcid(), Resource::Record)
        .await
        .unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(server.hits(), n + 1);
}

#[tokio::test]
async fn get_gives_up_after_max_retries() {
    let server = CannedServer::always(server_error(500)).await;
    let client = client_with_retries(server.base_url(), 2);
    let error = client
        .read::<Value>(&test_token(), &test_orcid(), Resource::Record)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Server { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn zero_retries_means_one_call() {
    let server = CannedServer::always(server_error(500)).await;
    let client = client_without_retries(server.base_url());
    let _ = client
        .read::<Value>(&test_token(), &test_orcid(), Resource::Record)
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn put_and_delete_are_retried() {
    let server = CannedServer::start(
        vec![Reply::Close, server_error(504)],
        Reply::json(200, V3_JSON, r#"{"put-code": 5}"#),
    )
    .await;
    let client = client_with_retries(server.base_url(), 3);
    let _: Value = client
        .update(
            &test_token(),
            &test_orcid(),
            Section::Work,
            PutCode(5),
            &work(),
        )
        .await
        .unwrap();
    assert_eq!(server.hits(), 3);

    let server = CannedServer::start(vec![server_error(500)], Reply::status(204)).await;
    let client = client_with_retries(server.base_url(), 3);
    client
        .delete(&test_token(), &test_orcid(), Section::Work, PutCode(5))
        .await
        .unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn post_that_times_out_is_outcome_unknown_after_one_call() {
    let server = CannedServer::always(Reply::Hang).await;
    let client = OrcidClient::new(
        test_config(server.base_url())
            .with_retry(RetryPolicy::new(
                5,
                Duration::from_millis(1),
                Duration::from_millis(5),
            ))
            .with_request_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let error = client
        .create(&test_token(), &test_orcid(), Section::Work, &work())
        .await
        .unwrap_err();
    match &error {
        Error::OutcomeUnknown { cause, operation } => {
            assert!(matches!(cause.as_ref(), Error::Timeout { .. }), "{cause:?}");
            assert_eq!(operation, "create work");
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert!(
        !error.is_retryable(),
        "read back first, do not repeat blindly"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn post_with_lost_connection_or_500_is_outcome_unknown_after_one_call() {
    for reply in [
        Reply::Close,
        server_error(500),
        server_error(502),
        server_error(504),
    ] {
        let server = CannedServer::always(reply.clone()).await;
        let client = client_with_retries(server.base_url(), 5);
        let error = client
            .create(&test_token(), &test_orcid(), Section::Work, &work())
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::OutcomeUnknown { .. }),
            "{reply:?}: {error:?}"
        );
        assert_eq!(server.hits(), 1, "{reply:?}");
    }
}

#[tokio::test]
async fn post_refused_with_503_or_429_is_retried() {
    let server =
        CannedServer::start(vec![Reply::status(503), Reply::status(429)], created(4242)).await;
    let client = client_with_retries(server.base_url(), 3);
    let put_code = client
        .create(&test_token(), &test_orcid(), Section::Work, &work())
        .await
        .unwrap();
    assert_eq!(put_code, PutCode(4242));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn post_that_cannot_connect_is_retried_and_reports_a_transport_error() {
    let refusing = RefusingPort::new();
    let client = client_with_retries(&refusing.base_url(), 2);
    let error = client
        .create(&test_token(), &test_orcid(), Section::Work, &work())
        .await
        .unwrap_err();
    // Nothing reached ORCID, so this is not an unknown outcome.
    assert!(
        matches!(
            error,
            Error::Transport {
                connected: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn created_without_location_is_outcome_unknown() {
    let server = CannedServer::always(Reply::status(201)).await;
    let client = client_with_retries(server.base_url(), 3);
    let error = client
        .create(&test_token(), &test_orcid(), Section::Work, &work())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error:?}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn token_exchange_is_not_retried_on_500_but_is_on_503() {
    let server = CannedServer::always(server_error(500)).await;
    let client = client_with_retries(server.base_url(), 3);
    let error = client
        .exchange_code("Q70Y3A", "https://idbridge.example/cb")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error:?}");
    assert_eq!(server.hits(), 1);

    let token_json = json!({
        "access_token": TEST_ACCESS_TOKEN, "token_type": "bearer",
        "refresh_token": "f725f747-3a65-49f6-a231-3e8944ce464d", "expires_in": 631138518,
        "scope": "/read-limited /activities/update", "name": "Sofia Garcia", "orcid": TEST_ORCID,
    });
    let server = CannedServer::start(
        vec![Reply::status(503)],
        Reply::json(
            200,
            "application/json;charset=UTF-8",
            &token_json.to_string(),
        ),
    )
    .await;
    let client = client_with_retries(server.base_url(), 3);
    let tokens = client
        .exchange_code("Q70Y3A", "https://idbridge.example/cb")
        .await
        .unwrap();
    assert_eq!(tokens.orcid, test_orcid());
    assert_eq!(server.hits(), 2);
    let form = server.requests()[1].form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(get("code").as_deref(), Some("Q70Y3A"));
    assert_eq!(
        get("redirect_uri").as_deref(),
        Some("https://idbridge.example/cb")
    );
    assert_eq!(get("client_id").as_deref(), Some(TEST_CLIENT_ID));
    assert_eq!(get("client_secret").as_deref(), Some(TEST_CLIENT_SECRET));
}

#[tokio::test]
async fn refresh_always_sends_revoke_old() {
    let token_json = json!({
        "access_token": TEST_ACCESS_TOKEN, "token_type": "bearer",
        "refresh_token": "f725f747-3a65-49f6-a231-3e8944ce464d", "expires_in": 3600,
        "scope": "/read-limited", "name": null, "orcid": TEST_ORCID,
    })
    .to_string();
    let server = CannedServer::always(Reply::json(200, "application/json", &token_json)).await;
    let client = client_without_retries(server.base_url());
    let refresh = orcid::client::RefreshToken::new("81hbd686-0000-4000-8000-000000000000");
    client
        .refresh(&refresh, &orcid::client::Refresh::keeping_old())
        .await
        .unwrap();
    let tokens = client
        .refresh(
            &refresh,
            &orcid::client::Refresh::revoking_old()
                .with_scopes(orcid::client::Scope::ReadLimited)
                .with_expires_in(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(tokens.name, None);
    let requests = server.requests();
    let field = |i: usize, k: &str| {
        requests[i]
            .form()
            .into_iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v)
    };
    assert_eq!(field(0, "revoke_old").as_deref(), Some("false"));
    assert_eq!(field(0, "scope"), None);
    assert_eq!(field(1, "revoke_old").as_deref(), Some("true"));
    assert_eq!(field(1, "scope").as_deref(), Some("/read-limited"));
    assert_eq!(field(1, "expires_in").as_deref(), Some("600"));
    assert_eq!(field(1, "grant_type").as_deref(), Some("refresh_token"));
}

#[tokio::test]
async fn revoke_is_idempotent_and_retried() {
    let server = CannedServer::start(vec![server_error(500)], Reply::status(200)).await;
    let client = client_with_retries(server.base_url(), 2);
    client.revoke(&test_token()).await.unwrap();
    assert_eq!(server.hits(), 2);
    let request = &server.requests()[1];
    assert_eq!(request.target, "/oauth/revoke");
    assert!(
        request
            .form()
            .contains(&("token".to_owned(), TEST_ACCESS_TOKEN.to_owned()))
    );
}

fn not_found(code: u32) -> Reply {
    Reply::json(
        404,
        V3_JSON,
        &json!({"response-code": 404, "developer-message": "404 Not Found: The resource was not found.", "error-code": code}).to_string(),
    )
}

/// Retries with millisecond back-off and a short request timeout, for `Reply::Hang`.
fn client_with_retries_and_short_timeout(base_url: &str) -> OrcidClient {
    OrcidClient::new(
        test_config(base_url)
            .with_retry(RetryPolicy::new(
                2,
                Duration::from_millis(1),
                Duration::from_millis(5),
            ))
            .with_request_timeout(Duration::from_millis(300)),
    )
    .unwrap()
}

/// ORCID applied the delete, but its answer was lost (a 500 after applying, or no answer in
/// time); the retry then finds nothing to delete. The caller asked for the item to be gone,
/// and it is.
#[tokio::test]
async fn a_delete_whose_answer_was_lost_succeeds_when_the_retry_is_answered_404() {
    for lost in [
        server_error(500),
        server_error(504),
        Reply::Close,
        Reply::Hang,
    ] {
        let server = CannedServer::start(vec![lost.clone()], not_found(9016)).await;
        let client = client_with_retries_and_short_timeout(server.base_url());
        client
            .delete(&test_token(), &test_orcid(), Section::Work, PutCode(5))
            .await
            .unwrap_or_else(|e| panic!("{lost:?} then 404: {e:?}"));
        assert_eq!(server.hits(), 2, "{lost:?}");
        let requests = server.requests();
        assert!(requests.iter().all(|r| r.method == "DELETE"));
    }
}

#[tokio::test]
async fn a_delete_answered_404_without_a_lost_attempt_is_not_found() {
    // At once, or after ORCID refused the first attempt for load (nothing was done then).
    for script in [vec![], vec![Reply::status(503)], vec![Reply::status(429)]] {
        let server = CannedServer::start(script.clone(), not_found(9016)).await;
        let client = client_with_retries(server.base_url(), 2);
        let error = client
            .delete(&test_token(), &test_orcid(), Section::Work, PutCode(5))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::NotFound {
                    code: Some(9016),
                    ..
                }
            ),
            "{script:?}: {error:?}"
        );
    }
    // Another 404 code after a lost attempt is not read as "already deleted".
    let server = CannedServer::start(vec![server_error(500)], not_found(9011)).await;
    let client = client_with_retries(server.base_url(), 2);
    let error = client
        .delete(&test_token(), &test_orcid(), Section::Work, PutCode(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotFound {
                code: Some(9011),
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_webhook_unregistration_whose_answer_was_lost_succeeds_on_9028() {
    let callback = "https://idbridge.example/hooks/updated";
    let server = CannedServer::start(vec![Reply::Hang], not_found(9028)).await;
    let client = client_with_retries_and_short_timeout(server.base_url());
    client
        .unregister_webhook(&test_token(), &test_orcid(), callback)
        .await
        .unwrap();
    assert_eq!(server.hits(), 2);

    let server = CannedServer::always(not_found(9028)).await;
    let client = client_with_retries(server.base_url(), 2);
    let error = client
        .unregister_webhook(&test_token(), &test_orcid(), callback)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotFound {
                code: Some(9028),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_post_refused_for_load_until_retries_run_out_is_rate_limited_not_unknown() {
    let server = CannedServer::always(Reply::status(503)).await;
    let client = client_with_retries(server.base_url(), 2);
    let error = client
        .create(&test_token(), &test_orcid(), Section::Work, &work())
        .await
        .unwrap_err();
    // Every attempt was turned away before processing: nothing was created.
    assert!(
        matches!(error, Error::RateLimited { status: 503, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_refresh_answered_500_is_outcome_unknown_after_one_call() {
    let server = CannedServer::always(server_error(500)).await;
    let client = client_with_retries(server.base_url(), 3);
    let error = client
        .refresh(
            &orcid::client::RefreshToken::new("81hbd686-0000-4000-8000-000000000000"),
            &orcid::client::Refresh::revoking_old(),
        )
        .await
        .unwrap_err();
    match &error {
        Error::OutcomeUnknown { operation, cause } => {
            assert_eq!(operation, "refresh token");
            assert!(
                matches!(cause.as_ref(), Error::Server { status: 500, .. }),
                "{cause:?}"
            );
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert_eq!(
        server.hits(),
        1,
        "with revoke_old the old pair may be dead: never repeat"
    );
    assert!(!format!("{error:?}").contains("81hbd686"));
}

#[tokio::test]
async fn client_credentials_are_retried_like_a_get() {
    let token_json = json!({
        "access_token": TEST_ACCESS_TOKEN, "token_type": "bearer", "expires_in": 631138518,
        "scope": "/webhook",
    });
    let server = CannedServer::start(
        vec![server_error(500), Reply::Close],
        Reply::json(200, "application/json", &token_json.to_string()),
    )
    .await;
    let client = client_with_retries(server.base_url(), 3);
    let token = client
        .client_credentials(orcid::client::Scope::Webhook)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), TEST_ACCESS_TOKEN);
    assert_eq!(server.hits(), 3);

    // An unreadable success is a plain unexpected answer: asking again is harmless.
    let server = CannedServer::always(Reply::json(200, "application/json", "{}")).await;
    let client = client_with_retries(server.base_url(), 3);
    let error = client
        .client_credentials(orcid::client::Scope::Webhook)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedResponse { status: 200, .. }),
        "{error:?}"
    );
}
