//! Content negotiation for the member API (reference §2.1, §11.11).
//!
//! ORCID produces six media types, each with a server preference (`qs`):
//! `application/vnd.orcid+xml` (5), `application/vnd.orcid+json` (4), `application/orcid+xml`
//! (3), `application/orcid+json` (2), `application/xml` and `application/json` (1). Its JAX-RS
//! stack picks the type with the highest client `q`, then the highest `qs`, then the least
//! wildcarded match. So a missing `Accept`, `*/*`, `application/*`, or an `Accept` that ranks an
//! XML type above every JSON type gets **XML** at ORCID.
//!
//! The simulator answers JSON only, and never silently where ORCID would send XML: such a
//! request gets `406` with a v3 error body (code 9001, in `application/vnd.orcid+json`) that
//! says "send `Accept: application/vnd.orcid+json`". Where ORCID would answer JSON, the
//! simulator answers that JSON type. Where the choice between `application/xml` and
//! `application/json` is a tie that ORCID's resource order decides, the simulator also
//! answers 406, so a client never depends on that order.
//!
//! Request bodies (POST/PUT) may be any of the six types (§2.1): the three JSON types are read
//! as JSON, the three XML types as ORCID XML (see [`crate::xml`]). A missing or other
//! `Content-Type` gets 415, as at ORCID.

use actix_web::HttpRequest;
use actix_web::http::header;

/// A JSON media type ORCID produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `application/vnd.orcid+json` (ORCID's preferred JSON type).
    VndOrcid,
    /// `application/orcid+json`.
    Orcid,
    /// `application/json`.
    Plain,
}

impl JsonType {
    /// The media type without parameters.
    pub fn essence(self) -> &'static str {
        match self {
            JsonType::VndOrcid => "application/vnd.orcid+json",
            JsonType::Orcid => "application/orcid+json",
            JsonType::Plain => "application/json",
        }
    }

    /// The `Content-Type` ORCID answers with for this type.
    pub fn content_type(self) -> &'static str {
        match self {
            JsonType::VndOrcid => "application/vnd.orcid+json; qs=4;charset=UTF-8",
            JsonType::Orcid => "application/orcid+json; qs=2;charset=UTF-8",
            JsonType::Plain => "application/json;charset=UTF-8",
        }
    }

    fn from_essence(essence: &str) -> Option<JsonType> {
        match essence {
            "application/vnd.orcid+json" => Some(JsonType::VndOrcid),
            "application/orcid+json" => Some(JsonType::Orcid),
            "application/json" => Some(JsonType::Plain),
            _ => None,
        }
    }
}

/// The three XML types ORCID also produces and reads.
pub const XML_TYPES: [&str; 3] = [
    "application/vnd.orcid+xml",
    "application/orcid+xml",
    "application/xml",
];

/// What ORCID produces, with its `qs`, in the order of its `@Produces` lists (XML first).
const PRODUCED: [(&str, Option<JsonType>, u8); 6] = [
    ("application/vnd.orcid+xml", None, 5),
    ("application/vnd.orcid+json", Some(JsonType::VndOrcid), 4),
    ("application/orcid+xml", None, 3),
    ("application/orcid+json", Some(JsonType::Orcid), 2),
    ("application/xml", None, 1),
    ("application/json", Some(JsonType::Plain), 1),
];

/// How a request body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One of the three JSON types.
    Json,
    /// One of the three XML types.
    Xml,
}

/// Why a request cannot be answered or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// 406: ORCID would answer this request with XML (the simulator serves JSON only).
    #[error("ORCID would answer with XML (Accept: {accept:?})")]
    WouldBeXml {
        /// The `Accept` header as sent (`None` when missing).
        accept: Option<String>,
    },
    /// 406: the caller accepts nothing ORCID produces.
    #[error("not acceptable: {accept}")]
    NotAcceptable {
        /// The `Accept` header as sent.
        accept: String,
    },
    /// 415: the request body is neither JSON nor XML.
    #[error("unsupported media type: {content_type:?}")]
    UnsupportedMediaType {
        /// The `Content-Type` as sent (`None` when missing).
        content_type: Option<String>,
    },
}

impl NegotiationError {
    /// A developer message for the error body.
    pub fn message(&self) -> String {
        match self {
            NegotiationError::WouldBeXml { accept } => {
                let sent = accept
                    .as_deref()
                    .map_or_else(|| "no Accept header".to_owned(), |a| format!("Accept: {a}"));
                format!(
                    "406 Not Acceptable: ORCID would answer with XML ({sent}); this simulator serves JSON — send Accept: application/vnd.orcid+json (or application/orcid+json, application/json). Full validation error: HTTP 406 Not Acceptable"
                )
            }
            NegotiationError::NotAcceptable { accept } => format!(
                "406 Not Acceptable: ORCID produces only XML and JSON (Accept: {accept}). Full validation error: HTTP 406 Not Acceptable"
            ),
            NegotiationError::UnsupportedMediaType {
                content_type: Some(ct),
            } => format!(
                "415 Unsupported Media Type: data must be in XML or JSON format (Content-Type: {ct}). Full validation error: HTTP 415 Unsupported Media Type"
            ),
            NegotiationError::UnsupportedMediaType { content_type: None } => "415 Unsupported Media Type: data must be in XML or JSON format, and the request has no Content-Type. Full validation error: HTTP 415 Unsupported Media Type".to_owned(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            NegotiationError::WouldBeXml { .. } | NegotiationError::NotAcceptable { .. } => 406,
            NegotiationError::UnsupportedMediaType { .. } => 415,
        }
    }
}

/// One media range of an `Accept` header.
struct Range {
    essence: String,
    q: f32,
}

impl Range {
    /// How closely this range names `media`: 2 exactly, 1 `type/*`, 0 `*/*`; `None` if it
    /// does not cover it.
    fn specificity(&self, media: &str) -> Option<u8> {
        if self.essence == media {
            return Some(2);
        }
        if self.essence == "*/*" {
            return Some(0);
        }
        let (kind, _) = media.split_once('/')?;
        self.essence
            .strip_suffix("/*")
            .filter(|k| *k == kind)
            .map(|_| 1)
    }
}

fn ranges(accept: &str) -> Vec<Range> {
    accept
        .split(',')
        .filter_map(|raw| {
            let mut parts = raw.split(';');
            let essence = parts.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
                })
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some(Range { essence, q })
        })
        .collect()
}

/// Picks the JSON type to answer `req` with, or why the simulator will not answer.
pub fn response_type(req: &HttpRequest) -> Result<JsonType, NegotiationError> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty());
    match accept {
        // ORCID's default is XML (qs 5).
        None => Err(NegotiationError::WouldBeXml { accept: None }),
        Some(accept) => choose(accept),
    }
}

/// [`response_type`] for an `Accept` value.
pub fn choose(accept: &str) -> Result<JsonType, NegotiationError> {
    let ranges = ranges(accept);
    // For each produced type: the q of the most specific range covering it (RFC 9110 §12.5.1),
    // and how specific that range was.
    let candidates = PRODUCED.iter().filter_map(|&(media, json, qs)| {
        let (specificity, q) = ranges
            .iter()
            .filter_map(|r| r.specificity(media).map(|s| (s, r.q)))
            .max_by_key(|(s, _)| *s)?;
        (q > 0.0).then_some((json, q, qs, specificity))
    });
    // Highest q, then highest qs, then the least wildcarded; `None` = a tie between XML and JSON.
    let mut best: Option<(Option<JsonType>, f32, u8, u8)> = None;
    let mut tied_with_xml = false;
    for candidate in candidates {
        let (json, q, qs, specificity) = candidate;
        let ordering = match best {
            None => std::cmp::Ordering::Greater,
            Some((_, bq, bqs, bs)) => q
                .partial_cmp(&bq)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(qs.cmp(&bqs))
                .then(specificity.cmp(&bs)),
        };
        match ordering {
            std::cmp::Ordering::Greater => {
                best = Some(candidate);
                tied_with_xml = false;
            }
            std::cmp::Ordering::Equal => {
                if best.is_some_and(|(b, ..)| b.is_some() != json.is_some()) {
                    tied_with_xml = true;
                }
            }
            std::cmp::Ordering::Less => {}
        }
    }
    match best {
        Some((Some(json), ..)) if !tied_with_xml => Ok(json),
        Some(_) => Err(NegotiationError::WouldBeXml {
            accept: Some(accept.to_owned()),
        }),
        None => Err(NegotiationError::NotAcceptable {
            accept: accept.to_owned(),
        }),
    }
}

/// Checks that a request body is JSON or XML; returns which.
pub fn request_format(req: &HttpRequest) -> Result<BodyFormat, NegotiationError> {
    let raw = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(raw) = raw else {
        return Err(NegotiationError::UnsupportedMediaType { content_type: None });
    };
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if JsonType::from_essence(&essence).is_some() {
        Ok(BodyFormat::Json)
    } else if XML_TYPES.contains(&essence.as_str()) {
        Ok(BodyFormat::Xml)
    } else {
        Err(NegotiationError::UnsupportedMediaType {
            content_type: Some(raw.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn would_be_xml(accept: &str) -> bool {
        matches!(choose(accept), Err(NegotiationError::WouldBeXml { .. }))
    }

    #[test]
    fn json_types_are_chosen() {
        assert_eq!(choose("application/vnd.orcid+json"), Ok(JsonType::VndOrcid));
        assert_eq!(choose("application/orcid+json"), Ok(JsonType::Orcid));
        assert_eq!(choose("application/json"), Ok(JsonType::Plain));
        assert_eq!(
            choose("application/json; charset=utf-8"),
            Ok(JsonType::Plain)
        );
        assert_eq!(
            choose("application/json;q=0.5, application/orcid+json;q=0.9"),
            Ok(JsonType::Orcid)
        );
        // JSON ranked above XML by q.
        assert_eq!(
            choose("application/vnd.orcid+xml;q=0.5, application/json"),
            Ok(JsonType::Plain)
        );
        assert_eq!(
            choose("application/vnd.orcid+json, */*;q=0.8"),
            Ok(JsonType::VndOrcid)
        );
        // `application/*` with XML excluded: vnd.orcid+json has the best qs left.
        assert_eq!(
            choose(
                "application/*, application/vnd.orcid+xml;q=0, application/orcid+xml;q=0, application/xml;q=0"
            ),
            Ok(JsonType::VndOrcid)
        );
    }

    #[test]
    fn where_orcid_would_send_xml_it_is_406() {
        for accept in [
            "*/*",
            "application/*",
            "text/html, */*;q=0.8",
            "application/vnd.orcid+xml",
            "application/xml",
            "application/vnd.orcid+xml, application/json;q=0.1",
            // Equal q: qs decides (vnd.orcid+xml 5 > json 1).
            "application/vnd.orcid+xml, application/json",
            // Equal q and qs: ORCID's resource order decides; the simulator will not guess.
            "application/json, application/xml",
            // vnd.orcid+xml through */* beats vnd.orcid+json by qs at equal q.
            "application/vnd.orcid+json, */*",
        ] {
            assert!(would_be_xml(accept), "{accept}: {:?}", choose(accept));
        }
    }

    #[test]
    fn others_are_406_not_acceptable() {
        for accept in ["text/csv", "application/json;q=0", "text/*"] {
            assert!(
                matches!(choose(accept), Err(NegotiationError::NotAcceptable { .. })),
                "{accept}"
            );
        }
    }
}
