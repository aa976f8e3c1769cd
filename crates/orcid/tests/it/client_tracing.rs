//! What the client logs: limiter waits and retries are recorded; no token, secret or code
//! ever appears in a span or an event, even at TRACE.

use std::io::Write;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use orcid::Error;
use orcid::client::{
    GovernorRateLimiter, OrcidClient, RateLimit, Refresh, RefreshToken, Resource, RetryPolicy,
};
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

use crate::client_helpers::*;

const REFRESH_TOKEN: &str = "81hbd686-1111-4222-8333-444455556666";
const CODE: &str = "eUeiz2";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything this thread logs at TRACE, for as long as it lives. Use it in a
/// current-thread runtime, which keeps every task on this thread, under the thread-local
/// subscriber.
struct LogCapture {
    captured: Captured,
    _guard: tracing::subscriber::DefaultGuard,
    _inert: tracing::Dispatch,
}

impl LogCapture {
    fn start() -> LogCapture {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish();
        // With a single registered dispatcher, tracing-core computes a callsite's interest
        // from the *registering thread's* default, so a callsite first hit by a parallel test
        // (which has no subscriber) would be switched off for this one too. A second, inert
        // dispatcher makes it consult every registered dispatcher instead.
        let inert = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        LogCapture {
            captured,
            _guard: guard,
            _inert: inert,
        }
    }

    fn text(&self) -> String {
        String::from_utf8(self.captured.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_limiter_waits_and_retries_but_never_a_secret() {
    let capture = LogCapture::start();

    let token_json = json!({
        "access_token": TEST_ACCESS_TOKEN, "token_type": "bearer", "refresh_token": REFRESH_TOKEN,
        "expires_in": 631138518, "scope": "/read-limited", "name": "Sofia Garcia", "orcid": TEST_ORCID,
    })
    .to_string();
    let invalid = json!({"error": "invalid_token", "error_description": format!("Invalid access token: {TEST_ACCESS_TOKEN}")}).to_string();
    let server = CannedServer::start(
        vec![
            Reply::json(200, "application/json", &token_json), // exchange
            Reply::json(200, "application/json", &token_json), // refresh
            Reply::status(503),                                // read: retried …
            Reply::json(200, "application/vnd.orcid+json", "{}"), // … then fine
            Reply::json(401, "application/json", &invalid),    // read: invalid token
        ],
        Reply::json(200, "application/vnd.orcid+json", "{}"),
    )
    .await;
    // Burst 1, refilled once a second: every request after the first waits for the limiter,
    // however fast the machine.
    let limiter = Arc::new(
        GovernorRateLimiter::new(RateLimit {
            per_second: 1,
            burst: 1,
        })
        .unwrap(),
    );
    let client = OrcidClient::with_rate_limiter(
        test_config(server.base_url()).with_retry(RetryPolicy::new(
            2,
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
        limiter.clone(),
    )
    .unwrap();

    let tokens = client
        .exchange_code(CODE, "https://idbridge.example/cb")
        .await
        .unwrap();
    client
        .refresh(&RefreshToken::new(REFRESH_TOKEN), &Refresh::keeping_old())
        .await
        .unwrap();
    let _: Value = client
        .read(&tokens.access_token, &tokens.orcid, Resource::Record)
        .await
        .unwrap();
    let error = client
        .read::<Value>(&tokens.access_token, &tokens.orcid, Resource::Record)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidToken));
    // Debug of everything holding a token is redacted too.
    tracing::info!(tokens = ?tokens, "debug of the tokens");

    let logs = capture.text();
    assert!(limiter.stats().waits >= 1, "{:?}", limiter.stats());
    assert!(logs.contains("waited for the ORCID rate limiter"), "{logs}");
    assert!(logs.contains("retrying ORCID request"), "{logs}");
    assert!(
        logs.contains(&format!("orcid={TEST_ORCID}")),
        "spans carry the iD: {logs}"
    );
    for secret in [TEST_ACCESS_TOKEN, REFRESH_TOKEN, TEST_CLIENT_SECRET, CODE] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
    }
}

/// A per-connection secret in a webhook callback, as idbridge builds them (test value).
const TEST_WEBHOOK_SECRET: &str = "TESTWEBHOOKSECRET7f3a9c";

/// ORCID signs no notification, so the callback URL carries a secret: it must not leak
/// through a transport error (reqwest's text quotes the request URL, which holds the
/// callback), an ORCID message quoting it, a span field or a retry event.
#[tokio::test(flavor = "current_thread")]
async fn a_webhook_callback_secret_never_shows_in_errors_or_logs() {
    let capture = LogCapture::start();
    let callback = format!(
        "https://hooks.idbridge.example/orcid/{TEST_ORCID}/{TEST_WEBHOOK_SECRET}?k={TEST_WEBHOOK_SECRET}"
    );
    let retrying = |base_url: &str| {
        OrcidClient::new(
            test_config(base_url)
                .with_retry(RetryPolicy::new(
                    1,
                    Duration::from_millis(1),
                    Duration::from_millis(5),
                ))
                .with_request_timeout(Duration::from_millis(200)),
        )
        .unwrap()
    };

    // Nobody listens: connect refused, retried, then reported.
    let refusing = RefusingPort::new();
    let refused = retrying(&refusing.base_url())
        .register_webhook(&test_token(), &test_orcid(), &callback)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Transport {
                connected: false,
                ..
            }
        ),
        "{refused:?}"
    );

    // A server that never answers: timeouts, retried, then reported.
    let silent = CannedServer::always(Reply::Hang).await;
    let timed_out = retrying(silent.base_url())
        .unregister_webhook(&test_token(), &test_orcid(), &callback)
        .await
        .unwrap_err();
    assert!(matches!(timed_out, Error::Timeout { .. }), "{timed_out:?}");
    assert_eq!(silent.hits(), 2);

    // ORCID's 9028 message quotes the callback.
    let quoting = CannedServer::always(Reply::json(
        404,
        "application/json",
        &json!({"response-code": 404, "error-code": 9028,
            "developer-message": format!("No webhook found for orcid={TEST_ORCID}, and uri={callback}.")})
        .to_string(),
    ))
    .await;
    let not_found = client_without_retries(quoting.base_url())
        .unregister_webhook(&test_token(), &test_orcid(), &callback)
        .await
        .unwrap_err();
    assert!(
        matches!(
            not_found,
            Error::NotFound {
                code: Some(9028),
                ..
            }
        ),
        "{not_found:?}"
    );

    // A callback that is not a URL is refused without being quoted.
    let invalid = client_without_retries(quoting.base_url())
        .register_webhook(
            &test_token(),
            &test_orcid(),
            &format!("hooks idbridge {TEST_WEBHOOK_SECRET}"),
        )
        .await
        .unwrap_err();
    assert!(matches!(invalid, Error::InvalidRequest(_)), "{invalid:?}");

    for error in [&refused, &timed_out, &not_found, &invalid] {
        let mut texts = vec![error.to_string(), format!("{error:?}")];
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            texts.push(cause.to_string());
            source = cause.source();
        }
        for text in texts {
            assert!(
                !text.contains(TEST_WEBHOOK_SECRET),
                "the callback secret leaked into an error: {text}"
            );
        }
    }
    let logs = capture.text();
    assert!(logs.contains("retrying ORCID request"), "{logs}");
    assert!(
        logs.contains("callback_host=hooks.idbridge.example"),
        "spans name the callback's host: {logs}"
    );
    assert!(
        !logs.contains(TEST_WEBHOOK_SECRET),
        "the callback secret leaked into the logs:\n{logs}"
    );
}
