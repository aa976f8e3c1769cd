//! Response headers on every answer: a content security policy (`default-src 'self'`),
//! framing denied, no MIME sniffing, no referrer (the callback URL carries a code), no
//! caching of pages, and HSTS when the portal is served over https.

use actix_web::http::header::{self, HeaderName, HeaderValue};

/// The policy: everything from the portal itself; forms post only to the portal.
pub(crate) const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to `headers`.
pub(crate) fn apply(headers: &mut header::HeaderMap, https: bool, path: &str) {
    let mut set = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if https {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    if !path.starts_with("/static/") {
        set(header::CACHE_CONTROL, "no-store");
    }
}
