//! Webhooks (reference §5): ORCID POSTs an empty body to a callback URL when a record changes.
//!
//! Registration needs a client-credentials token with the `/webhook` scope
//! ([`OrcidClient::client_credentials`]); the user's consent is not needed. The path is
//! `{api}/{orcid}/webhook/{callback}` — no `/v3.0` — with the callback fully
//! percent-encoded. The iD is not in ORCID's notification, so put it in the callback URL.
//!
//! ORCID signs nothing, so a callback URL usually carries a secret of its receiver (idbridge
//! puts a per-connection secret in it). The client treats the whole callback as a secret:
//! spans and events name only its host, and it is removed from every error text, including
//! the transport's.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;

use super::OrcidClient;
use super::tokens::AccessToken;
use super::transport::{Body, PLAIN_JSON, Request};
use crate::error::{Error, excerpt};
use crate::id::OrcidId;

/// Everything but RFC 3986's unreserved characters is encoded, `:` and `/` included.
const CALLBACK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a webhook registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRegistration {
    /// A new webhook (201 Created).
    Created,
    /// This iD and callback were already registered (204 No Content).
    AlreadyRegistered,
}

/// Checks that `callback` is an absolute http(s) URL. The error names neither the URL nor
/// the parser's view of it: the callback may hold a secret.
fn check_callback(callback: &str) -> Result<(), Error> {
    let url = url::Url::parse(callback).map_err(|e| {
        Error::InvalidRequest(format!("the webhook callback is not an absolute URL: {e}"))
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::InvalidRequest(
            "the webhook callback must be an http(s) URL".to_owned(),
        ));
    }
    Ok(())
}

/// The callback's host, the only part of it that is logged.
fn callback_host(callback: &str) -> String {
    url::Url::parse(callback)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "(invalid)".to_owned())
}

/// ORCID's code for "no webhook found" (404, reference §5).
const WEBHOOK_NOT_FOUND: u32 = 9028;

impl OrcidClient {
    fn webhook_url(&self, orcid: &OrcidId, encoded_callback: &str) -> String {
        self.inner
            .endpoints
            .api_url(&format!("{}/webhook/{encoded_callback}", orcid.path()))
    }

    /// The webhook request for `callback`; the callback, as given and as encoded in the
    /// URL, joins the secrets removed from any text kept.
    fn webhook_request<'a>(
        &'a self,
        method: Method,
        token: &'a AccessToken,
        orcid: &OrcidId,
        callback: &'a str,
        encoded_callback: &'a str,
        operation: &'a str,
    ) -> Request<'a> {
        Request {
            method,
            url: self.webhook_url(orcid, encoded_callback),
            bearer: Some(token),
            accept: PLAIN_JSON,
            body: Body::Empty,
            idempotent: true,
            operation,
            endpoint: "webhook",
            secrets: vec![
                token.expose_secret(),
                self.inner.client_secret.expose_secret(),
                callback,
                encoded_callback,
            ],
        }
    }

    /// Asks ORCID to call `callback` when the record of `orcid` changes (PUT; idempotent,
    /// retried on failure). The callback is used exactly as given: unregister with the same
    /// string. It is treated as a secret: only its host is logged, and no error quotes it.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, callback_host = %callback_host(callback)))]
    pub async fn register_webhook(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        callback: &str,
    ) -> Result<WebhookRegistration, Error> {
        check_callback(callback)?;
        let encoded = utf8_percent_encode(callback, CALLBACK).to_string();
        let request = self.webhook_request(
            Method::PUT,
            token,
            orcid,
            callback,
            &encoded,
            "register webhook",
        );
        let answer = self.send(&request).await?;
        match answer.status {
            StatusCode::CREATED => Ok(WebhookRegistration::Created),
            StatusCode::NO_CONTENT => Ok(WebhookRegistration::AlreadyRegistered),
            s if s.is_success() => Err(Error::UnexpectedResponse {
                status: s.as_u16(),
                reason: "a webhook registration answers 201 or 204".to_owned(),
                excerpt: excerpt(&answer.body, &request.secrets),
            }),
            _ => Err(answer.into_error(&request.secrets)),
        }
    }

    /// Stops ORCID calling `callback` for `orcid` (DELETE → 204). Not registered gives
    /// [`Error::NotFound`] (code 9028).
    ///
    /// Retried on failure. When an attempt's outcome was lost (a timeout, a lost connection,
    /// a 5xx other than 503) and a retry is answered 404 (code 9028), the call succeeds: the
    /// lost attempt most likely removed the webhook, and either way it is gone.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, callback_host = %callback_host(callback)))]
    pub async fn unregister_webhook(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        callback: &str,
    ) -> Result<(), Error> {
        check_callback(callback)?;
        let encoded = utf8_percent_encode(callback, CALLBACK).to_string();
        let request = self.webhook_request(
            Method::DELETE,
            token,
            orcid,
            callback,
            &encoded,
            "unregister webhook",
        );
        let answer = self.send(&request).await?;
        if answer.status.is_success() {
            Ok(())
        } else if answer.is_not_found_after_lost_outcome(&[WEBHOOK_NOT_FOUND], &request.secrets) {
            tracing::info!(
                "a retried unregistration found no webhook: an earlier attempt removed it"
            );
            Ok(())
        } else {
            Err(answer.into_error(&request.secrets))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_callbacks_are_refused_without_quoting_them() {
        for callback in ["not a url SECRET-abc123", "ftp://host/SECRET-abc123"] {
            let error = check_callback(callback).unwrap_err();
            assert!(
                !format!("{error} {error:?}").contains("SECRET-abc123"),
                "{error:?}"
            );
        }
        assert_eq!(
            callback_host("https://hooks.example/x/SECRET-abc123"),
            "hooks.example"
        );
    }

    #[test]
    fn callback_is_fully_encoded() {
        let encoded =
            utf8_percent_encode("https://nowhere2.com/0000-0002-7465-2162/updated", CALLBACK)
                .to_string();
        assert_eq!(
            encoded,
            "https%3A%2F%2Fnowhere2.com%2F0000-0002-7465-2162%2Fupdated"
        );
    }
}
