//! Request counts by endpoint template and status, for `GET /_sim/stats`.
//!
//! Keys are `"METHOD /template"`. Every request no route serves, or with a method no route
//! knows, counts under the one key [`UNROUTED`], and the templates of routed paths have a fixed
//! set of shapes, so the map stays small whatever clients send. Keys are interned: counting a
//! request of a known template allocates nothing.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::records::Section;

/// The key of requests that no route serves.
pub const UNROUTED: &str = "(unrouted)";

/// A stats key, from [`Stats::key`].
pub type StatKey = Arc<str>;

/// Counters keyed by `"METHOD /template"` and status.
#[derive(Default)]
pub struct Stats {
    counts: Mutex<HashMap<StatKey, HashMap<u16, u64>>>,
    keys: Mutex<HashSet<StatKey>>,
}

thread_local! {
    /// Where [`Stats::key`] writes a key before looking it up.
    static KEY_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

impl Stats {
    /// The key of a request: `routed` says whether a route serves `path` at all.
    pub fn key(&self, method: &str, path: &str, routed: bool) -> StatKey {
        KEY_BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            let known = routed && known_method(method) && {
                buffer.push_str(method);
                buffer.push(' ');
                write_template(path, buffer)
            };
            let key: &str = if known { buffer } else { UNROUTED };
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            match keys.get(key) {
                Some(interned) => Arc::clone(interned),
                None => {
                    let interned: StatKey = Arc::from(key);
                    keys.insert(Arc::clone(&interned));
                    interned
                }
            }
        })
    }

    /// Counts one answered request.
    pub fn record(&self, key: &StatKey, status: u16) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts
            .entry(Arc::clone(key))
            .or_default()
            .entry(status)
            .or_insert(0) += 1;
    }

    /// `{"POST /v3.0/{orcid}/employment": {"201": 10}}`, keys sorted.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .map(|(k, by_status)| {
                let inner = by_status.iter().map(|(s, n)| (s.to_string(), *n)).collect();
                (k.to_string(), inner)
            })
            .collect()
    }

    /// Zeroes every counter.
    pub fn clear(&self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn known_method(method: &str) -> bool {
    matches!(
        method,
        "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS"
    )
}

/// The endpoint template of a concrete path: iDs become `{orcid}`, put-codes `{put-code}`
/// (comma lists `{put-codes}`), and a webhook's callback `{callback}`. A `/v3.0` path whose
/// shape no route serves (an unknown section name, a non-numeric put code) is [`UNROUTED`].
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    if write_template(path, &mut out) {
        out
    } else {
        UNROUTED.to_owned()
    }
}

/// Names a `/v3.0/{orcid}/…` path may contain besides put codes.
fn is_v3_name(segment: &str) -> bool {
    Section::from_item_path(segment).is_some()
        || Section::from_list_path(segment).is_some()
        || matches!(
            segment,
            "record"
                | "activities"
                | "person"
                | "personal-details"
                | "biography"
                | "email"
                | "peer-reviews"
                | "research-resources"
                | "summary"
        )
}

fn is_put_code(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Appends the template of `path` to `out`; `false` when the path has no routed shape.
fn write_template(path: &str, out: &mut String) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let mut segments = rest.split('/');
    let first = segments.next().unwrap_or_default();
    let second = segments.clone().next();
    if first == "v3.0" && second.is_some() {
        segments.next();
        out.push_str("/v3.0/{orcid}");
        let mut previous = "";
        for (i, segment) in segments.enumerate() {
            if i >= 3 {
                return false;
            }
            out.push('/');
            if is_v3_name(segment) {
                out.push_str(segment);
            } else if is_put_code(segment) {
                out.push_str("{put-code}");
            } else if previous == "works" {
                out.push_str("{put-codes}");
            } else {
                return false;
            }
            previous = segment;
        }
        return true;
    }
    if second == Some("webhook") {
        // Everything after `/webhook/` is the callback, slashes included.
        out.push_str("/{orcid}/webhook/{callback}");
        return true;
    }
    for segment in rest.split('/') {
        out.push('/');
        if looks_like_orcid(segment) {
            out.push_str("{orcid}");
        } else if is_put_code(segment) {
            out.push_str("{put-code}");
        } else {
            out.push_str(segment);
        }
    }
    true
}

fn looks_like_orcid(segment: &str) -> bool {
    // Shape only: a wrong check digit is still an iD position in the URL.
    segment.len() == 19
        && segment.bytes().enumerate().all(|(i, b)| match i {
            4 | 9 | 14 => b == b'-',
            18 => b.is_ascii_digit() || b == b'X',
            _ => b.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        for (path, expected) in [
            (
                "/v3.0/0009-0000-0000-0009/employment/12",
                "/v3.0/{orcid}/employment/{put-code}",
            ),
            ("/v3.0/not-an-id/works", "/v3.0/{orcid}/works"),
            (
                "/v3.0/0009-0000-0000-0009/works/1,x",
                "/v3.0/{orcid}/works/{put-codes}",
            ),
            (
                "/v3.0/0009-0000-0000-0009/funding/summary/3",
                "/v3.0/{orcid}/funding/summary/{put-code}",
            ),
            ("/v3.0/0009-0000-0000-0009/whatever", UNROUTED),
            ("/v3.0/0009-0000-0000-0009/work/abc", UNROUTED),
            ("/v3.0/0009-0000-0000-0009/a/b/c/d", UNROUTED),
            (
                "/0009-0000-0000-0009/webhook/http://a/b/c",
                "/{orcid}/webhook/{callback}",
            ),
            ("/oauth/token", "/oauth/token"),
        ] {
            assert_eq!(template(path), expected, "{path}");
        }
    }

    #[test]
    fn unrouted_requests_share_one_key() {
        let stats = Stats::default();
        for n in 0..50 {
            let key = stats.key("GET", &format!("/nowhere/{n}x"), false);
            stats.record(&key, 404);
            let key = stats.key("GET", &format!("/v3.0/0009-0000-0000-0009/x{n}"), true);
            stats.record(&key, 404);
        }
        let key = stats.key("BREW", "/oauth/token", true);
        stats.record(&key, 405);
        let key = stats.key("POST", "/oauth/token", true);
        stats.record(&key, 200);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.len(), 2, "{snapshot:?}");
        assert_eq!(snapshot[UNROUTED]["404"], 100);
        assert_eq!(snapshot[UNROUTED]["405"], 1);
        assert_eq!(snapshot["POST /oauth/token"]["200"], 1);
        // The same key is handed out again, not rebuilt.
        let a = stats.key("POST", "/oauth/token", true);
        let b = stats.key("POST", "/oauth/token", true);
        assert!(Arc::ptr_eq(&a, &b));
    }
}
