//! Error mapping: a canned server answers exactly as ORCID does (reference §1.3, §4) and
//! the client must produce the right variant, code and retryability — and never a token.
//! The canned server is used only for failures the simulator cannot be made to show on
//! demand (deprecated, locked, deactivated records, 5xx, works limit, …).

use orcid::client::{Resource, Section};
use orcid::error::OAuthErrorKind;
use orcid::model::{AffiliationType, PutCode};
use orcid::{Error, OrcidId};
use serde_json::{Value, json};

use crate::client_helpers::*;

const V3_JSON: &str = "application/vnd.orcid+json; qs=4;charset=UTF-8";
const OAUTH_JSON: &str = "application/json;charset=UTF-8";
const USER_MESSAGE: &str = "There was an error when updating the record. Please try again. If the error persists, please contact Test Client for assistance.";
const MORE_INFO: &str = "https://members.orcid.org/api/resources/troubleshooting";

/// ORCID's v3.0 error body (§4.1).
fn v3_body(status: u16, code: u32, developer_message: &str) -> String {
    json!({
        "response-code": status,
        "developer-message": developer_message,
        "user-message": USER_MESSAGE,
        "error-code": code,
        "more-info": MORE_INFO,
    })
    .to_string()
}

fn v3(status: u16, code: u32, developer_message: &str) -> Reply {
    Reply::json(status, V3_JSON, &v3_body(status, code, developer_message))
}

fn oauth(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        OAUTH_JSON,
        &json!({"error": error, "error_description": description}).to_string(),
    )
    .with_header("Cache-Control", "no-store")
}

/// Which client call meets the canned answer.
#[derive(Clone, Copy, Debug)]
enum Call {
    Read,
    Create,
    Update,
    Exchange,
}

async fn call(reply: Reply, call: Call) -> Error {
    let server = CannedServer::always(reply).await;
    let client = client_without_retries(server.base_url());
    let (token, orcid) = (test_token(), test_orcid());
    let employment = Section::Affiliation(AffiliationType::Employment);
    let body = json!({"department-name": "Dept", "organization": {"name": "Org"}});
    let result = match call {
        Call::Read => client
            .read::<Value>(&token, &orcid, Resource::Record)
            .await
            .map(|_| ()),
        Call::Create => client
            .create(&token, &orcid, employment, &body)
            .await
            .map(|_| ()),
        Call::Update => client
            .update::<_, Value>(&token, &orcid, employment, PutCode(7), &body)
            .await
            .map(|_| ()),
        Call::Exchange => client
            .exchange_code("WkiYjn", "https://idbridge.example/cb")
            .await
            .map(|_| ()),
    };
    let error = result.expect_err("the canned answer is an error");
    assert_token_free(&error);
    assert_eq!(server.hits(), 1, "no retries were configured");
    error
}

/// Neither the access token, the client secret nor the code shows in the error.
fn assert_token_free(error: &Error) {
    for text in [error.to_string(), format!("{error:?}")] {
        for secret in [TEST_ACCESS_TOKEN, TEST_CLIENT_SECRET, "WkiYjn"] {
            assert!(!text.contains(secret), "`{secret}` leaked into: {text}");
        }
    }
}

#[tokio::test]
async fn invalid_token_401() {
    let reply = oauth(
        401,
        "invalid_token",
        &format!("Invalid access token: {TEST_ACCESS_TOKEN}"),
    );
    let error = call(reply, Call::Read).await;
    assert!(matches!(error, Error::InvalidToken), "{error:?}");
    assert_eq!(error.error_code(), None);
    assert_eq!(error.http_status(), Some(401));
    assert!(error.needs_new_token());
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn token_for_another_record_401_9017() {
    let reply = v3(
        401,
        9017,
        "401 Unauthorized: The client application is not authorized for this ORCID record. Full validation error: Access token is for a different record",
    );
    let error = call(reply, Call::Read).await;
    assert!(
        matches!(error, Error::TokenForOtherRecord { .. }),
        "{error:?}"
    );
    assert_eq!(error.error_code(), Some(9017));
    assert!(error.needs_new_token());
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn missing_scope_403_9038() {
    let reply = v3(
        403,
        9038,
        "409 Conflict: The access token doesn't have the required scope to access this resource.",
    );
    let error = call(reply, Call::Create).await;
    assert!(
        matches!(error, Error::MissingScope { status: 403, .. }),
        "{error:?}"
    );
    assert_eq!(error.error_code(), Some(9038));
    assert_eq!(error.http_status(), Some(403));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn not_the_source_403_9010() {
    let reply = v3(
        403,
        9010,
        "403 Forbidden: You are not the source of the work, so you are not allowed to update it.",
    );
    let error = call(reply, Call::Update).await;
    assert!(matches!(error, Error::NotSource { .. }), "{error:?}");
    assert_eq!(error.error_code(), Some(9010));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn not_found_404_9016_and_9011() {
    let error = call(
        v3(404, 9016, "404 Not Found: The resource was not found."),
        Call::Read,
    )
    .await;
    assert!(
        matches!(
            error,
            Error::NotFound {
                code: Some(9016),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable());

    let error = call(
        v3(
            404,
            9011,
            "404 Not Found: The ORCID record or item was not found.",
        ),
        Call::Read,
    )
    .await;
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
    assert_eq!(error.error_code(), Some(9011));
}

#[tokio::test]
async fn duplicate_409_9021_carries_the_existing_put_code() {
    let reply = v3(
        409,
        9021,
        "409 Conflict: You have already added this activity (matched by external identifiers), please see element with put-code 1234. If you are trying to edit the item, please use PUT instead of POST.",
    );
    let error = call(reply, Call::Create).await;
    match &error {
        Error::Duplicate { put_code, code, .. } => {
            assert_eq!(*put_code, Some(PutCode(1234)));
            assert_eq!(*code, Some(9021));
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn works_limit_409_9048() {
    let reply = v3(
        409,
        9048,
        "409 Conflict: This record has reached the maximum of 10000 works.",
    );
    let error = call(reply, Call::Create).await;
    assert!(matches!(error, Error::WorksLimit { .. }), "{error:?}");
    assert_eq!(error.error_code(), Some(9048));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn validation_400_keeps_code_and_developer_message() {
    let reply = v3(
        400,
        9022,
        "400 Bad Request: There is an error in the title. Full validation error: title cannot be empty",
    );
    let error = call(reply, Call::Create).await;
    match &error {
        Error::Validation {
            status,
            code,
            message,
        } => {
            assert_eq!((*status, *code), (400, Some(9022)));
            assert!(message.contains("title cannot be empty"), "{message}");
        }
        other => panic!("expected Validation, got {other:?}"),
    }
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn deprecated_record_301_on_read_names_the_primary() {
    let primary: OrcidId = "0000-0001-5109-3700".parse().unwrap();
    let reply = v3(
        301,
        9007,
        "301 Moved Permanently: This account is deprecated. Please refer to account: 0000-0001-5109-3700",
    )
    .with_header(
        "Location",
        "https://api.sandbox.orcid.org/v3.0/0000-0001-5109-3700/record",
    );
    let error = call(reply, Call::Read).await;
    match &error {
        Error::RecordDeprecated {
            status, primary: p, ..
        } => {
            assert_eq!(*status, 301);
            assert_eq!(*p, Some(primary));
        }
        other => panic!("expected RecordDeprecated, got {other:?}"),
    }
    assert_eq!(error.error_code(), Some(9007));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn deprecated_record_409_on_write() {
    let reply = v3(
        409,
        9007,
        "409 Conflict: This account is deprecated. Please refer to account: 0000-0002-1694-233X",
    );
    let error = call(reply, Call::Create).await;
    match &error {
        Error::RecordDeprecated {
            status, primary, ..
        } => {
            assert_eq!(*status, 409);
            assert_eq!(
                primary.map(|p| p.to_string()).as_deref(),
                Some("0000-0002-1694-233X")
            );
        }
        other => panic!("expected RecordDeprecated, got {other:?}"),
    }
}

#[tokio::test]
async fn deactivated_409_9044_and_locked_409_9018() {
    let error = call(
        v3(409, 9044, "409 Conflict: The ORCID record is deactivated."),
        Call::Create,
    )
    .await;
    assert!(
        matches!(
            error,
            Error::RecordDeactivated {
                code: Some(9044),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable());

    let error = call(
        v3(409, 9018, "409 Conflict: The ORCID record is locked."),
        Call::Update,
    )
    .await;
    assert!(
        matches!(
            error,
            Error::RecordLocked {
                code: Some(9018),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn forbidden_403_without_a_token() {
    let reply = oauth(
        403,
        "forbidden",
        "Forbidden: The server understood the request but refuses to authorize it.",
    );
    let error = call(reply, Call::Create).await;
    match &error {
        Error::Forbidden { code, message } => {
            assert_eq!(*code, None);
            assert!(message.starts_with("Forbidden:"), "{message}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(error.http_status(), Some(403));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn rate_limited_503_and_429() {
    // ORCID's burst refusal: 503, no documented body.
    let error = call(Reply::status(503), Call::Read).await;
    assert!(
        matches!(error, Error::RateLimited { status: 503, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());

    let error = call(
        Reply::status(429).with_header("Retry-After", "2"),
        Call::Read,
    )
    .await;
    match &error {
        Error::RateLimited {
            status,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 429);
            assert_eq!(*retry_after, Some(std::time::Duration::from_secs(2)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(error.is_retryable());
}

#[tokio::test]
async fn server_error_500_9008() {
    let error = call(
        v3(
            500,
            9008,
            "500 Internal Server Error: Something went wrong in ORCID.",
        ),
        Call::Read,
    )
    .await;
    assert!(
        matches!(
            error,
            Error::Server {
                status: 500,
                code: Some(9008),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.error_code(), Some(9008));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn transport_refused_and_timeout() {
    let refusing = RefusingPort::new();
    let client = client_without_retries(&refusing.base_url());
    let error = client
        .read::<Value>(&test_token(), &test_orcid(), Resource::Record)
        .await
        .unwrap_err();
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
    assert_token_free(&error);

    let server = CannedServer::always(Reply::Hang).await;
    let client = orcid::client::OrcidClient::new(
        test_config(server.base_url()).with_request_timeout(std::time::Duration::from_millis(200)),
    )
    .unwrap();
    let error = client
        .read::<Value>(&test_token(), &test_orcid(), Resource::Record)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn oauth_errors_from_the_token_endpoint() {
    let cases = [
        (
            400,
            "invalid_grant",
            "Invalid authorization code: WkiYjn",
            OAuthErrorKind::InvalidGrant,
        ),
        (
            401,
            "invalid_client",
            "Bad client credentials",
            OAuthErrorKind::InvalidClient,
        ),
        (
            400,
            "invalid_scope",
            "Invalid scope: /webhook",
            OAuthErrorKind::InvalidScope,
        ),
        (
            400,
            "invalid_request",
            "Missing grant type",
            OAuthErrorKind::InvalidRequest,
        ),
        (
            400,
            "unauthorized_client",
            "Client is locked",
            OAuthErrorKind::UnauthorizedClient,
        ),
    ];
    for (status, error_name, description, kind) in cases {
        let error = call(oauth(status, error_name, description), Call::Exchange).await;
        match &error {
            Error::OAuth {
                status: s,
                kind: k,
                description: d,
            } => {
                assert_eq!(*s, status);
                assert_eq!(k, &kind);
                let d = d.as_deref().unwrap();
                // The description is kept, the code it quotes is not.
                let expected = description.replace("WkiYjn", "[REDACTED]");
                assert_eq!(d, expected);
            }
            other => panic!("{error_name}: expected OAuth, got {other:?}"),
        }
        assert!(!error.is_retryable(), "{error_name}");
        assert_eq!(error.http_status(), Some(status));
    }
}

#[tokio::test]
async fn unparseable_success_body_is_an_unexpected_response_with_a_clean_excerpt() {
    let html = format!(
        "<html><body>Oops {TEST_ACCESS_TOKEN} {TEST_CLIENT_SECRET} something broke</body></html>"
    );
    let reply = Reply::json(200, "text/html", &html);
    let error = call(reply, Call::Read).await;
    match &error {
        Error::UnexpectedResponse {
            status, excerpt, ..
        } => {
            assert_eq!(*status, 200);
            assert!(
                excerpt.starts_with("<html><body>Oops [REDACTED]"),
                "{excerpt}"
            );
            assert!(excerpt.chars().count() <= 201);
        }
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn token_answer_that_does_not_parse_never_quotes_the_body() {
    let reply = Reply::json(
        200,
        OAUTH_JSON,
        r#"{"access_token": 42, "refresh_token": "f725f747-3a65-49f6-a231-3e8944ce464d"}"#,
    );
    let error = call(reply, Call::Exchange).await;
    match &error {
        Error::OutcomeUnknown { cause, .. } => match cause.as_ref() {
            Error::UnexpectedResponse { excerpt, .. } => assert!(excerpt.is_empty()),
            other => panic!("expected UnexpectedResponse, got {other:?}"),
        },
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert!(!format!("{error:?}").contains("f725f747"));
}

#[tokio::test]
async fn requests_carry_orcid_headers_and_bearer() {
    let server = CannedServer::always(Reply::json(200, V3_JSON, "{}")).await;
    let client = client_without_retries(server.base_url());
    let _: Value = client
        .read(&test_token(), &test_orcid(), Resource::List(Section::Work))
        .await
        .unwrap();
    let put_code = PutCode(42);
    let server2 = CannedServer::always(Reply::json(200, V3_JSON, r#"{"put-code":42}"#)).await;
    let client2 = client_without_retries(server2.base_url());
    let _: Value = client2
        .update(
            &test_token(),
            &test_orcid(),
            Section::Work,
            put_code,
            &json!({"title": {"title": {"value": "T"}}}),
        )
        .await
        .unwrap();

    let get = &server.requests()[0];
    assert_eq!(get.method, "GET");
    assert_eq!(get.target, format!("/v3.0/{TEST_ORCID}/works"));
    assert_eq!(get.header("accept"), Some("application/vnd.orcid+json"));
    assert_eq!(
        get.header("authorization"),
        Some(format!("Bearer {TEST_ACCESS_TOKEN}").as_str())
    );

    let put = &server2.requests()[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(put.target, format!("/v3.0/{TEST_ORCID}/work/42"));
    assert_eq!(
        put.header("content-type"),
        Some("application/vnd.orcid+json")
    );
    let body: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(
        body["put-code"], 42,
        "the path's put code is written into the body"
    );
}

#[tokio::test]
async fn update_with_another_put_code_in_the_body_is_refused_before_sending() {
    let server = CannedServer::always(Reply::status(200)).await;
    let client = client_without_retries(server.base_url());
    let error = client
        .update::<_, Value>(
            &test_token(),
            &test_orcid(),
            Section::Work,
            PutCode(42),
            &json!({"put-code": 41}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::PutCodeMismatch {
                path: PutCode(42),
                body: PutCode(41)
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn webhook_path_is_unversioned_and_fully_encoded() {
    let server = CannedServer::start(vec![Reply::status(201)], Reply::status(204)).await;
    let client = client_without_retries(server.base_url());
    let callback = format!("https://idbridge.example/hooks/{TEST_ORCID}/updated?x=1");
    let first = client
        .register_webhook(&test_token(), &test_orcid(), &callback)
        .await
        .unwrap();
    let again = client
        .register_webhook(&test_token(), &test_orcid(), &callback)
        .await
        .unwrap();
    assert_eq!(first, orcid::client::WebhookRegistration::Created);
    assert_eq!(again, orcid::client::WebhookRegistration::AlreadyRegistered);
    let request = &server.requests()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(
        request.target,
        format!(
            "/{TEST_ORCID}/webhook/https%3A%2F%2Fidbridge.example%2Fhooks%2F{TEST_ORCID}%2Fupdated%3Fx%3D1"
        )
    );
    assert_eq!(request.header("content-length"), Some("0"));

    let error = client
        .register_webhook(&test_token(), &test_orcid(), "not a url")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn client_credentials_token_has_no_orcid() {
    let body = json!({"access_token": TEST_ACCESS_TOKEN, "token_type": "bearer",
        "refresh_token": "c7d3d5fd-0000-4000-8000-000000000000", "expires_in": 631138518,
        "scope": "/webhook"});
    let server = CannedServer::always(Reply::json(200, OAUTH_JSON, &body.to_string())).await;
    let client = client_without_retries(server.base_url());
    let token = client
        .client_credentials(orcid::client::Scope::Webhook)
        .await
        .unwrap();
    assert!(token.scopes.contains(&orcid::client::Scope::Webhook));
    assert_eq!(token.access_token.expose_secret(), TEST_ACCESS_TOKEN);
    let form = server.requests()[0].form();
    assert!(form.contains(&("grant_type".to_owned(), "client_credentials".to_owned())));
    assert!(form.contains(&("scope".to_owned(), "/webhook".to_owned())));
    assert_eq!(server.requests()[0].target, "/oauth/token");
}

#[tokio::test]
async fn duplicate_person_element_409_9030_has_no_put_code() {
    let reply = v3(
        409,
        9030,
        "409 Conflict: The element 'machine learning' of type 'keyword' is duplicated.",
    );
    let error = call(reply, Call::Create).await;
    assert!(
        matches!(
            error,
            Error::Duplicate {
                code: Some(9030),
                put_code: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.http_status(), Some(409));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn unauthorized_401_with_a_v3_body_9002_is_an_invalid_token() {
    let reply = v3(
        401,
        9002,
        "401 Unauthorized: The client application is not authorized.",
    );
    let error = call(reply, Call::Read).await;
    assert!(matches!(error, Error::InvalidToken), "{error:?}");
    assert_eq!(error.http_status(), Some(401));
    assert!(error.needs_new_token());
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn invalid_scope_401_9015_is_a_missing_scope() {
    let reply = v3(401, 9015, "401 Unauthorized: Invalid scope.");
    let error = call(reply, Call::Create).await;
    assert!(
        matches!(
            error,
            Error::MissingScope {
                status: 401,
                code: Some(9015),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.http_status(), Some(401));
    assert_eq!(error.error_code(), Some(9015));
    assert!(!error.is_retryable());
}
