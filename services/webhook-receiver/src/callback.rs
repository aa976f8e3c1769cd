//! Callback URLs and their secrets.
//!
//! A callback URL is `{public_url}/orcid/webhook/{hook id}/{secret}`: the hook id is a random
//! UUID per connection (not the iD), the secret is HMAC-SHA256(`webhooks.callback_key`,
//! `"idbridge-webhook-v1:" + hook id`) in lower-case hex. Nothing secret is stored: the
//! secret is derived again to re-register, and checked in constant time on every callback.
//! Every request to the endpoint is counted by [`CallbackOutcome`].

use aws_lc_rs::hmac;
use secrecy::SecretString;
use uuid::Uuid;

/// The path every callback URL starts with, after the public URL.
pub const CALLBACK_PATH: &str = "/orcid/webhook";

const CONTEXT: &[u8] = b"idbridge-webhook-v1:";

/// The HMAC key callback secrets are derived with. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct CallbackKey {
    key: hmac::Key,
}

impl std::fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackKey(***)")
    }
}

impl CallbackKey {
    /// A key from the configured secret's bytes.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn message(hook_id: Uuid) -> Vec<u8> {
        let mut message = CONTEXT.to_vec();
        message.extend_from_slice(hook_id.as_bytes());
        message
    }

    /// The secret of `hook_id`, lower-case hex (64 characters).
    pub fn secret(&self, hook_id: Uuid) -> SecretString {
        let tag = hmac::sign(&self.key, &Self::message(hook_id));
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        SecretString::from(hex)
    }

    /// The callback URL of `hook_id` under `public_url` (no trailing `/`). A secret.
    pub fn callback_url(&self, public_url: &str, hook_id: Uuid) -> SecretString {
        use secrecy::ExposeSecret as _;
        let secret = self.secret(hook_id);
        SecretString::from(format!(
            "{}{CALLBACK_PATH}/{}/{}",
            public_url.trim_end_matches('/'),
            hook_id.simple(),
            secret.expose_secret()
        ))
    }

    /// Checks a callback's path segments: `Some(hook id)` when `secret` is the hook's, in
    /// constant time; `None` for anything malformed or wrong.
    pub fn verify(&self, hook_id: &str, secret: &str) -> Option<Uuid> {
        if hook_id.len() > 36 || secret.len() != 64 {
            return None;
        }
        let hook_id = Uuid::try_parse(hook_id).ok()?;
        let tag = decode_hex(secret)?;
        hmac::verify(&self.key, &Self::message(hook_id), &tag)
            .ok()
            .map(|()| hook_id)
    }
}

/// What became of one request to the callback endpoint, counted in
/// `idbridge_webhook_callbacks_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// A verified callback (answered 204).
    Accepted,
    /// Unknown hook, wrong secret, malformed path or method (answered 404).
    Rejected,
    /// Refused by the per-source limit on bad callbacks (answered 429).
    RateLimited,
}

impl CallbackOutcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
        }
    }

    /// Counts it (a no-op until the process installs a metrics recorder).
    pub fn record(self) {
        metrics::counter!(
            idbridge_platform::metrics::names::WEBHOOK_CALLBACKS_TOTAL,
            "outcome" => self.as_str()
        )
        .increment(1);
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn secrets_verify_and_depend_on_key_and_id() {
        let key = CallbackKey::new(b"0123456789abcdef0123456789abcdef");
        let id = Uuid::new_v4();
        let secret = key.secret(id);
        let secret = secret.expose_secret();
        assert_eq!(secret.len(), 64);
        assert_eq!(key.verify(&id.simple().to_string(), secret), Some(id));
        assert_eq!(key.verify(&id.to_string(), secret), Some(id));
        let other = CallbackKey::new(b"another key of at least 32 bytes!!");
        assert_eq!(other.verify(&id.simple().to_string(), secret), None);
        assert_eq!(
            key.verify(&Uuid::new_v4().simple().to_string(), secret),
            None
        );
        let mut wrong = secret.to_owned();
        wrong.replace_range(0..1, if secret.starts_with('0') { "1" } else { "0" });
        assert_eq!(key.verify(&id.simple().to_string(), &wrong), None);
        assert_eq!(key.verify("not-a-uuid", secret), None);
        assert_eq!(key.verify(&id.simple().to_string(), "zz"), None);
        assert!(!format!("{key:?}").contains("0123"));
        let url = key.callback_url("https://h.example/base/", id);
        assert_eq!(
            url.expose_secret(),
            &format!(
                "https://h.example/base/orcid/webhook/{}/{secret}",
                id.simple()
            )
        );
    }
}
