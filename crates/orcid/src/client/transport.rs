//! Sending one logical request: rate limiting, the retry loop, and the split between answers
//! the caller interprets and failures that are retried or reported.

use std::error::Error as StdError;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument as _;

use super::OrcidClient;
use super::tokens::AccessToken;
use crate::error::{Error, from_response, redact};

/// ORCID's JSON media type (reference §2.1).
pub(crate) const ORCID_JSON: &str = "application/vnd.orcid+json";
/// What the OAuth endpoints answer.
pub(crate) const PLAIN_JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// A request body.
pub(crate) enum Body {
    /// No body (GET, DELETE, webhook PUT).
    Empty,
    /// ORCID JSON, already serialized.
    Json(Vec<u8>),
    /// A form; it carries the client secret, hence secret.
    Form(SecretString),
}

/// One logical request, as many times as it is sent.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: String,
    pub bearer: Option<&'a AccessToken>,
    pub accept: &'static str,
    pub body: Body,
    /// Whether sending it twice is harmless (see [`super::retry`]).
    pub idempotent: bool,
    /// What is being done, for logs and [`Error::OutcomeUnknown`], e.g. `create work`.
    pub operation: &'a str,
    /// Which ORCID endpoint, for spans and metrics: a fixed word (`token`, `revoke`,
    /// `webhook`, `record`, `employment`, `works`…), never an id.
    pub endpoint: &'static str,
    /// Secrets sent with it (in headers, the body or the URL), to remove from any text kept
    /// from the answer or from a transport failure.
    pub secrets: Vec<&'a str>,
}

/// An answer the caller interprets: 1xx-4xx, and 2xx; never 429 or 5xx (those are errors).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Whether an earlier attempt of this request may have been carried out without its
    /// answer arriving (it timed out, lost its connection, or got a 5xx other than 503).
    pub after_lost_outcome: bool,
}

impl Answer {
    /// Whether this is ORCID's "not found" (404 with one of `codes`) to a retry that
    /// followed an attempt whose outcome was lost: for a DELETE, the sign that the earlier
    /// attempt deleted it.
    pub(crate) fn is_not_found_after_lost_outcome(&self, codes: &[u32], secrets: &[&str]) -> bool {
        self.after_lost_outcome
            && self.status == StatusCode::NOT_FOUND
            && match from_response(self.status, &self.headers, &self.body, secrets) {
                Error::NotFound {
                    code: Some(code), ..
                } => codes.contains(&code),
                _ => false,
            }
    }

    /// Maps a non-2xx answer to an error.
    pub(crate) fn into_error(self, secrets: &[&str]) -> Error {
        from_response(self.status, &self.headers, &self.body, secrets)
    }
}

impl OrcidClient {
    /// Sends `request`, retrying as the policy and the request's idempotency allow.
    pub(crate) async fn send(&self, request: &Request<'_>) -> Result<Answer, Error> {
        let policy = self.inner.retry;
        let mut retry: u32 = 0;
        let mut lost_outcome = false;
        loop {
            let waited = self.inner.limiter.acquire().await;
            if !waited.is_zero() {
                tracing::debug!(
                    operation = request.operation,
                    waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    "waited for the ORCID rate limiter"
                );
            }
            let (error, retry_after) = match self.send_once(request, lost_outcome).await {
                Ok(answer) => {
                    let status = answer.status;
                    if status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE
                    {
                        // Refused for load before being processed: safe to repeat, POST too.
                        let error = answer.into_error(&request.secrets);
                        let after = match &error {
                            Error::RateLimited { retry_after, .. } => *retry_after,
                            _ => None,
                        };
                        (error, after)
                    } else if status.is_server_error() {
                        lost_outcome = true;
                        let error = answer.into_error(&request.secrets);
                        if !request.idempotent {
                            return Err(error.outcome_unknown(request.operation));
                        }
                        (error, None)
                    } else {
                        return Ok(answer);
                    }
                }
                Err(failure) => {
                    let reached = !failure.is_connect();
                    lost_outcome |= reached;
                    let error = transport_error(failure, &request.secrets);
                    if reached && !request.idempotent {
                        return Err(error.outcome_unknown(request.operation));
                    }
                    (error, None)
                }
            };
            if retry >= policy.max_retries {
                return Err(error);
            }
            let delay = policy.delay(retry, retry_after);
            retry += 1;
            tracing::warn!(
                operation = request.operation,
                retry,
                of = policy.max_retries,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "retrying ORCID request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        request: &Request<'_>,
        after_lost_outcome: bool,
    ) -> Result<Answer, reqwest::Error> {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), &request.url)
            .header(ACCEPT, request.accept);
        if let Some(token) = request.bearer {
            // reqwest marks this header sensitive, so it is never printed either.
            builder = builder.bearer_auth(token.expose_secret());
        }
        builder = match &request.body {
            Body::Empty if request.method == Method::GET || request.method == Method::DELETE => {
                builder
            }
            // ORCID's webhook PUT sends `Content-Length: 0` (reference §5); hyper leaves the
            // header out for an empty body unless told.
            Body::Empty => builder.header(CONTENT_LENGTH, "0").body(Vec::new()),
            Body::Json(bytes) => builder.header(CONTENT_TYPE, ORCID_JSON).body(bytes.clone()),
            Body::Form(form) => builder
                .header(CONTENT_TYPE, FORM)
                .body(form.expose_secret().to_owned()),
        };
        // One span and one count per HTTP call (a retried request has several): endpoint,
        // method and status only — no iD, put code, URL or token.
        // Target `orcid::http`, apart from the `orcid::client` spans that name iDs: an
        // exporter can keep these and drop those.
        let span = tracing::info_span!(
            target: "orcid::http",
            "orcid.request",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            endpoint = request.endpoint,
            http.request.method = %request.method,
            http.response.status_code = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let result = async {
            let response = builder.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed();
        let status_label = match &result {
            Ok((status, _, _)) => {
                span.record("http.response.status_code", status.as_u16());
                if status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS {
                    span.record("otel.status_code", "ERROR");
                }
                status.as_str().to_owned()
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
                "error".to_owned()
            }
        };
        let method = request.method.as_str().to_owned();
        metrics::counter!(
            "idbridge_orcid_requests_total",
            "endpoint" => request.endpoint,
            "method" => method.clone(),
            "status" => status_label
        )
        .increment(1);
        metrics::histogram!(
            "idbridge_orcid_request_duration_seconds",
            "endpoint" => request.endpoint,
            "method" => method
        )
        .record(elapsed.as_secs_f64());
        let (status, headers, body) = result?;
        tracing::debug!(
            method = %request.method,
            operation = request.operation,
            status = status.as_u16(),
            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "ORCID answered"
        );
        Ok(Answer {
            status,
            headers,
            body,
            after_lost_outcome,
        })
    }
}

/// A reqwest failure as an [`Error`]: [`Error::Timeout`] or [`Error::Transport`].
///
/// The request URL is dropped from reqwest's text, and what is left passes through
/// [`redact`] with the call's `secrets`: a URL may carry one (a webhook callback holds a
/// per-connection secret), and a cause's text could quote the URL again.
fn transport_error(failure: reqwest::Error, secrets: &[&str]) -> Error {
    let connect = failure.is_connect();
    let timeout = failure.is_timeout();
    let failure = failure.without_url();
    // reqwest's own text is generic ("error sending request"); the cause chain says what
    // happened.
    let mut message = failure.to_string();
    let mut source = failure.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let message = redact(&message, secrets);
    if connect {
        Error::Transport {
            connected: false,
            message,
        }
    } else if timeout {
        Error::Timeout { message }
    } else {
        Error::Transport {
            connected: true,
            message,
        }
    }
}

/// A form body for the token endpoints.
pub(crate) fn form(pairs: &[(&str, &str)]) -> Body {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    Body::Form(SecretString::from(serializer.finish()))
}

/// How long a duration is in whole seconds, at least 1 (for `expires_in`).
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}
