//! Webhooks (§5): registration by `PUT`/`DELETE /{orcid}/webhook/{callback}`, and delivery of an
//! empty `POST` to each callback after its record changed, batched per interval, retried with
//! linear back-off, by one background task.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use orcid::OrcidId;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthFailure, Caller, authenticate_scope};
use crate::errors::v3_error;
use crate::state::SimState;

/// How many clients' callbacks one run serves at the same time.
const DELIVERY_CONCURRENCY: usize = 16;

struct Hook {
    uri: String,
    client_id: String,
    /// Bumped by every change of the record.
    change_seq: u64,
    /// `change_seq` at the last successful send.
    delivered_seq: u64,
    failed_attempts: u32,
    last_failed: Option<Instant>,
}

impl Hook {
    fn pending(&self) -> bool {
        self.change_seq > self.delivered_seq
    }
}

/// Timing of delivery, from the config.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// Back-off unit: the n-th retry waits n × this.
    pub retry_delay: Duration,
    /// Failures after which a hook stops firing.
    pub max_attempts: u32,
}

/// Outcome of registering a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// New: 201.
    Created,
    /// Already there: 204.
    Existing,
}

/// Why unregistering failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnregisterError {
    /// No such hook: 404 (9028).
    NotFound,
    /// Another client's hook: 403 (9014).
    OtherClient,
}

/// One callback attempt of a run, as reported by `POST /_sim/webhooks/flush`.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The watched record.
    pub orcid: String,
    /// The callback URI as registered.
    pub callback: String,
    /// `delivered`, `failed` or `skipped` (client answered 429 earlier in the run).
    pub outcome: &'static str,
    /// HTTP status of the callback, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Transport error (timeout, refused), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed attempts so far for this hook (after this one).
    pub failed_attempts: u32,
}

/// Summary of one delivery run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Callbacks delivered (2xx).
    pub delivered: usize,
    /// Callbacks that failed (non-2xx, timeout, connection error).
    pub failed: usize,
    /// Hooks left for a later run because their client answered 429.
    pub skipped: usize,
    /// Every hook looked at.
    pub attempts: Vec<Attempt>,
}

/// All webhooks, keyed by iD.
#[derive(Default)]
pub struct Webhooks {
    hooks: Mutex<HashMap<OrcidId, Vec<Hook>>>,
}

impl Webhooks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrcidId, Vec<Hook>>> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `uri` on `orcid` for `client_id`.
    pub fn register(&self, orcid: OrcidId, uri: &str, client_id: &str) -> Registered {
        let mut hooks = self.lock();
        let list = hooks.entry(orcid).or_default();
        if list.iter().any(|h| h.uri == uri) {
            return Registered::Existing;
        }
        // A new hook waits for the next change (ORCID compares the record's last-modified
        // time with the hook's own).
        list.push(Hook {
            uri: uri.to_owned(),
            client_id: client_id.to_owned(),
            change_seq: 0,
            delivered_seq: 0,
            failed_attempts: 0,
            last_failed: None,
        });
        Registered::Created
    }

    /// Removes the hook `uri` on `orcid` if `client_id` owns it.
    pub fn unregister(
        &self,
        orcid: &OrcidId,
        uri: &str,
        client_id: &str,
    ) -> Result<(), UnregisterError> {
        let mut hooks = self.lock();
        let list = hooks.get_mut(orcid).ok_or(UnregisterError::NotFound)?;
        let i = list
            .iter()
            .position(|h| h.uri == uri)
            .ok_or(UnregisterError::NotFound)?;
        if list[i].client_id != client_id {
            return Err(UnregisterError::OtherClient);
        }
        list.remove(i);
        if list.is_empty() {
            hooks.remove(orcid);
        }
        Ok(())
    }

    /// Marks every hook of `orcid` as due.
    pub fn record_changed(&self, orcid: &OrcidId) {
        let mut hooks = self.lock();
        if let Some(list) = hooks.get_mut(orcid) {
            for h in list {
                h.change_seq += 1;
            }
        }
    }

    /// Forgets every hook.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Hooks due now: pending, not disabled and, unless `ignore_backoff`, past their back-off.
    fn due(&self, policy: DeliveryPolicy, ignore_backoff: bool) -> Vec<Due> {
        let now = Instant::now();
        let hooks = self.lock();
        let mut due = Vec::new();
        for (orcid, list) in hooks.iter() {
            for h in list {
                if !h.pending() || h.failed_attempts >= policy.max_attempts {
                    continue;
                }
                let waited = match h.last_failed {
                    Some(t) if !ignore_backoff => {
                        now.duration_since(t) >= policy.retry_delay * h.failed_attempts
                    }
                    _ => true,
                };
                if waited {
                    due.push(Due {
                        orcid: *orcid,
                        uri: h.uri.clone(),
                        client_id: h.client_id.clone(),
                        seq: h.change_seq,
                    });
                }
            }
        }
        due
    }

    /// Records the result of one attempt; returns the failed-attempt count afterwards.
    fn settle(&self, due: &Due, delivered: bool) -> u32 {
        let mut hooks = self.lock();
        let Some(hook) = hooks
            .get_mut(&due.orcid)
            .and_then(|l| l.iter_mut().find(|h| h.uri == due.uri))
        else {
            return 0;
        };
        if delivered {
            hook.delivered_seq = hook.delivered_seq.max(due.seq);
            hook.failed_attempts = 0;
            hook.last_failed = None;
        } else {
            hook.failed_attempts += 1;
            hook.last_failed = Some(Instant::now());
        }
        hook.failed_attempts
    }

    /// One delivery run: every due hook gets an empty `POST`. A client's hooks go one after
    /// the other (clients in parallel), so a 429 from one of its callbacks skips the rest of
    /// that client's hooks for this run, as ORCID does.
    pub async fn run(
        &self,
        http: &reqwest::Client,
        policy: DeliveryPolicy,
        ignore_backoff: bool,
    ) -> RunSummary {
        let due = self.due(policy, ignore_backoff);
        if due.is_empty() {
            return RunSummary::default();
        }
        let mut by_client: HashMap<String, Vec<Due>> = HashMap::new();
        for d in due {
            by_client.entry(d.client_id.clone()).or_default().push(d);
        }
        let attempts: Vec<Attempt> = futures_util::stream::iter(by_client.into_values())
            .map(|hooks| self.run_client(http, hooks))
            .buffer_unordered(DELIVERY_CONCURRENCY)
            .flat_map(futures_util::stream::iter)
            .collect()
            .await;
        let count = |o: &str| attempts.iter().filter(|a| a.outcome == o).count();
        RunSummary {
            delivered: count("delivered"),
            failed: count("failed"),
            skipped: count("skipped"),
            attempts,
        }
    }

    async fn run_client(&self, http: &reqwest::Client, hooks: Vec<Due>) -> Vec<Attempt> {
        let mut attempts = Vec::with_capacity(hooks.len());
        let mut throttled = false;
        for d in hooks {
            if throttled {
                attempts.push(Attempt {
                    orcid: d.orcid.to_string(),
                    callback: d.uri,
                    outcome: "skipped",
                    status: None,
                    error: None,
                    failed_attempts: 0,
                });
                continue;
            }
            // ORCID puts `http://` in front of a stored URI without a scheme.
            let target = if d.uri.starts_with("http") {
                d.uri.clone()
            } else {
                format!("http://{}", d.uri)
            };
            let result = http
                .post(&target)
                .header(header::CONTENT_LENGTH.as_str(), "0")
                .send()
                .await;
            let (status, error) = match result {
                Ok(res) => (Some(res.status().as_u16()), None),
                Err(e) => (None, Some(transport_error(&e))),
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            throttled = status == Some(429);
            let failed_attempts = self.settle(&d, delivered);
            if !delivered {
                tracing::info!(orcid = %d.orcid, ?status, failed_attempts, "webhook callback failed");
            }
            attempts.push(Attempt {
                orcid: d.orcid.to_string(),
                callback: d.uri,
                outcome: if delivered { "delivered" } else { "failed" },
                status,
                error,
                failed_attempts,
            });
        }
        attempts
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

struct Due {
    orcid: OrcidId,
    uri: String,
    client_id: String,
    seq: u64,
}

/// Asks the delivery task for an immediate run; the reply is its summary.
pub type FlushRequest = oneshot::Sender<RunSummary>;

/// The background delivery loop: a run every `interval`, and one per flush request. Stops when
/// `shutdown` is cancelled.
pub async fn delivery_task(
    state: web::Data<SimState>,
    mut flushes: mpsc::Receiver<FlushRequest>,
    shutdown: CancellationToken,
) {
    let http = match reqwest::Client::builder()
        .timeout(state.config.webhook_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook HTTP client could not be built; delivery is off");
            return;
        }
    };
    let policy = DeliveryPolicy {
        retry_delay: state.config.webhook_retry_delay,
        max_attempts: state.config.webhook_max_attempts,
    };
    let mut ticker =
        tokio::time::interval(state.config.webhook_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                let summary = tokio::select! {
                    () = shutdown.cancelled() => break,
                    s = state.webhooks.run(&http, policy, false) => s,
                };
                if !summary.attempts.is_empty() {
                    tracing::debug!(delivered = summary.delivered, failed = summary.failed, "webhook run");
                }
            }
            request = flushes.recv() => {
                let Some(reply) = request else { break };
                let summary = tokio::select! {
                    () = shutdown.cancelled() => break,
                    s = state.webhooks.run(&http, policy, true) => s,
                };
                let _ = reply.send(summary);
            }
        }
    }
}

/// The callback of a webhook path: the raw segment after `/webhook/`, and its decoded form.
fn callback_of(req: &HttpRequest) -> Option<(String, String)> {
    let path = req.uri().path();
    let (_, raw) = path.split_once("/webhook/")?;
    let decoded = percent_decode_str(raw).decode_utf8().ok()?.into_owned();
    Some((raw.to_owned(), decoded))
}

/// `java.net.URI` accepts relative references, so only characters a URI may never hold (and an
/// unparseable authority) make it "syntactically incorrect".
fn callback_syntax_ok(uri: &str) -> bool {
    if uri.is_empty()
        || uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`".contains(c))
    {
        return false;
    }
    if uri.starts_with("http") {
        url::Url::parse(uri).is_ok()
    } else {
        url::Url::parse(&format!("http://{uri}")).is_ok()
    }
}

/// Why a webhook call is refused before touching the hooks.
#[derive(Debug)]
enum TargetError {
    /// Bearer check failed.
    Auth(AuthFailure),
    /// No record with that iD: 404 (9016).
    UnknownOrcid(String),
    /// The callback is not a URI: 400 (9012).
    BadCallback(String),
}

impl TargetError {
    fn into_response(self) -> HttpResponse {
        match self {
            TargetError::Auth(f) => f.into_response(),
            TargetError::UnknownOrcid(raw) => v3_error(
                StatusCode::NOT_FOUND,
                9016,
                &format!(
                    "404 Not Found: The resource was not found. Full validation error: ORCID iD {raw} not found"
                ),
            ),
            TargetError::BadCallback(uri) => v3_error(
                StatusCode::BAD_REQUEST,
                9012,
                &format!("400 Bad Request: Webhook uri: {uri} is syntactically incorrect"),
            ),
        }
    }
}

/// A checked webhook call: the caller, the record, and the callback (raw segment, decoded).
struct Target {
    caller: Caller,
    orcid: OrcidId,
    raw: String,
    uri: String,
}

fn webhook_target(state: &SimState, req: &HttpRequest) -> Result<Target, TargetError> {
    let caller = authenticate_scope(state, req, "/webhook").map_err(TargetError::Auth)?;
    let raw_orcid = req.match_info().get("orcid").unwrap_or_default();
    let orcid = OrcidId::parse(raw_orcid)
        .ok()
        .filter(|o| state.users.exists(o))
        .ok_or_else(|| TargetError::UnknownOrcid(raw_orcid.to_owned()))?;
    let Some((raw, uri)) = callback_of(req).filter(|(_, u)| callback_syntax_ok(u)) else {
        let shown = callback_of(req).map(|(_, u)| u).unwrap_or_default();
        return Err(TargetError::BadCallback(shown));
    };
    Ok(Target {
        caller,
        orcid,
        raw,
        uri,
    })
}

/// `PUT /{orcid}/webhook/{callback}`: 201 + Location when new, 204 when already there.
pub async fn register(state: web::Data<SimState>, req: HttpRequest) -> HttpResponse {
    let Target {
        caller,
        orcid,
        raw,
        uri,
    } = match webhook_target(&state, &req) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match state.webhooks.register(orcid, &uri, &caller.client_id) {
        Registered::Created => HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("{}/{orcid}/webhook/{raw}", state.public_url),
            ))
            .finish(),
        Registered::Existing => HttpResponse::NoContent().finish(),
    }
}

/// `DELETE /{orcid}/webhook/{callback}`: 204, or 404 (9028), or 403 (9014).
pub async fn unregister(state: web::Data<SimState>, req: HttpRequest) -> HttpResponse {
    let Target {
        caller, orcid, uri, ..
    } = match webhook_target(&state, &req) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match state.webhooks.unregister(&orcid, &uri, &caller.client_id) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(UnregisterError::NotFound) => v3_error(
            StatusCode::NOT_FOUND,
            9028,
            &format!("404 Not Found: No webhook found for orcid={orcid}, and uri={uri}."),
        ),
        Err(UnregisterError::OtherClient) => v3_error(
            StatusCode::FORBIDDEN,
            9014,
            "403 Forbidden: You do not have the required permissions. Full validation error: This webhook belongs to another client",
        ),
    }
}
