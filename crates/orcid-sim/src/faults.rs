//! Injected faults (`POST /_sim/faults`): error rates, fixed statuses, latency and hangs, for
//! every OAuth and API route or for those matching a pattern such as `POST /v3.0/*/employment`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One rule as posted to `/_sim/faults`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `"[METHOD ]PATH"`; `*` matches within one path segment, `**` any number of segments,
    /// `{name}` is the same as `*`. Absent: every OAuth and API route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Probability (0..=1) that a matching request fails. Defaults to 1 when `status` or
    /// `hang_ms` is given, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Status of a failure (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Delay added to every matching request, in ms.
    #[serde(default)]
    pub latency_ms: u64,
    /// A failure holds the request this long without answering (then 504) instead of
    /// answering with `status`: for client timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<u64>,
    /// The rule expires after acting on this many requests (e.g. a burst of five 503s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// A posted rule that makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum FaultSpecError {
    /// `error_rate` outside 0..=1.
    #[error("error_rate must be between 0 and 1")]
    Rate,
    /// `status` outside 400..=599.
    #[error("status must be between 400 and 599")]
    Status,
    /// An empty endpoint pattern.
    #[error("endpoint must be \"[METHOD ]/path\" with * wildcards")]
    Endpoint,
}

/// What the middleware must do with one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultAction {
    /// Wait this long first.
    pub latency: Duration,
    /// Then fail like this, instead of running the handler.
    pub failure: Option<Failure>,
}

/// How a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer with this status.
    Status(u16),
    /// Hold the request this long, then answer 504.
    Hang(Duration),
}

struct Rule {
    id: u64,
    spec: FaultSpec,
    method: Option<String>,
    path: Vec<String>,
    rate: f64,
    remaining: Option<AtomicU64>,
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        if self
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        if self.path.is_empty() {
            return true;
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match_segments(&self.path, &segments)
    }

    /// Claims one use of a counted rule; `false` once spent.
    fn claim(&self) -> bool {
        match &self.remaining {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => glob(first, seg) && match_segments(rest, path_rest),
            None => false,
        },
    }
}

/// `*` matches any run of characters within a segment.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The active rules.
#[derive(Default)]
pub struct Faults {
    rules: RwLock<Vec<Arc<Rule>>>,
    any: AtomicBool,
    next_id: AtomicU64,
}

impl Faults {
    /// Adds a rule; returns its id.
    pub fn add(&self, spec: FaultSpec) -> Result<u64, FaultSpecError> {
        let rate = match spec.error_rate {
            Some(r) if !(0.0..=1.0).contains(&r) => return Err(FaultSpecError::Rate),
            Some(r) => r,
            None if spec.status.is_some() || spec.hang_ms.is_some() => 1.0,
            None => 0.0,
        };
        if spec.status.is_some_and(|s| !(400..=599).contains(&s)) {
            return Err(FaultSpecError::Status);
        }
        let (method, path) = match spec.endpoint.as_deref().map(str::trim) {
            None => (None, Vec::new()),
            Some("") => return Err(FaultSpecError::Endpoint),
            Some(e) => {
                let (method, path) = match e.split_once(char::is_whitespace) {
                    Some((m, p)) => (Some(m.to_owned()).filter(|m| m != "*"), p.trim()),
                    None if e.starts_with('/') => (None, e),
                    None => (Some(e.to_owned()).filter(|m| m != "*"), "/**"),
                };
                if !path.starts_with('/') {
                    return Err(FaultSpecError::Endpoint);
                }
                let segments = path
                    .split('/')
                    .skip(1)
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            "*".to_owned()
                        } else {
                            s.to_owned()
                        }
                    })
                    .collect();
                (method, segments)
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let rule = Rule {
            id,
            remaining: spec.count.map(AtomicU64::new),
            spec,
            method,
            path,
            rate,
        };
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        rules.push(Arc::new(rule));
        self.any.store(true, Ordering::Release);
        Ok(id)
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        rules.clear();
        self.any.store(false, Ordering::Release);
    }

    /// The rules as posted, with their ids and remaining counts.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(&r.spec).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("id".into(), r.id.into());
                    if let Some(left) = &r.remaining {
                        obj.insert("remaining".into(), left.load(Ordering::Acquire).into());
                    }
                }
                v
            })
            .collect()
    }

    /// Decides what happens to `method path`: latencies of matching rules add up; the first
    /// rule whose dice roll fails the request decides the failure.
    pub fn decide(&self, method: &str, path: &str) -> FaultAction {
        let mut action = FaultAction::default();
        if !self.any.load(Ordering::Acquire) {
            return action;
        }
        let matching: Vec<Arc<Rule>> = {
            let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
            rules
                .iter()
                .filter(|r| r.matches(method, path))
                .cloned()
                .collect()
        };
        for rule in matching {
            let fails =
                action.failure.is_none() && rule.rate > 0.0 && rand::random::<f64>() < rule.rate;
            let acts = fails || rule.spec.latency_ms > 0;
            if !acts || !rule.claim() {
                continue;
            }
            action.latency += Duration::from_millis(rule.spec.latency_ms);
            if fails {
                action.failure = Some(match rule.spec.hang_ms {
                    Some(ms) => Failure::Hang(Duration::from_millis(ms)),
                    None => Failure::Status(rule.spec.status.unwrap_or(500)),
                });
            }
        }
        action
    }
}
