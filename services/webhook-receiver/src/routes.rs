//! The callback endpoint ORCID posts to.
//!
//! | request | answer |
//! |---|---|
//! | `POST /orcid/webhook/{hook id}/{secret}`, secret right | `204` at once; the change is debounced |
//! | the same with a wrong secret, an unknown or malformed id, any other path or method | `404`, no effect; beyond the per-address budget `429` |
//! | `GET /health` | `{"status":"ok"}` |
//!
//! A verified callback of a connection that was since disconnected is also answered 204 and
//! has no effect. Verification is an HMAC comparison in constant time and touches no
//! database, so bad callbacks cost nothing but the rate limiter's entry. The rate limit
//! charges only bad callbacks, so nobody can use it to make ORCID's own callbacks fail.
//! The client address is the TCP peer (a proxy in front should keep its own limit); IPv6
//! clients are counted per `/64`. The first bad callback of a source in a minute is logged
//! at `info`, the others at `debug` (counted in the next `info` line).
//! Paths are never logged: they hold the secrets.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use idbridge_platform::telemetry::http::{PublicRequestSpan, TracingLogger};

use crate::callback::{CALLBACK_PATH, CallbackKey, CallbackOutcome};
use crate::config::RateLimitConfig;
use crate::debounce::Marks;

/// Sources tracked at most; beyond that, newcomers are refused (429) until idle sources
/// are pruned.
pub const MAX_TRACKED: usize = 10_000;

/// How often sources whose bucket has refilled (idle) are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Bad callbacks of one source are logged at `info` once per this window (the others at
/// `debug`, counted in the next `info` line).
const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Whom a bad callback is charged to: an IPv4 address, or the `/64` of an IPv6 address
/// (one host or subscriber usually has a whole `/64`, so counting addresses would let it
/// fill the table). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    /// The source of a client at `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                // The shift leaves 64 bits: the cast loses nothing.
                None => Source::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::V4(v4) => write!(f, "{v4}"),
            Source::V6Prefix(prefix) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64))
            }
        }
    }
}

/// What charging a bad callback decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Within the source's budget: answer 404. `log` is `Some(n)` for the first bad
    /// callback of the source in a log window (`n` = those of the previous window not logged
    /// at `info`), `None` for the others.
    Allowed {
        /// Whether (and with what count) to log at `info`.
        log: Option<u64>,
    },
    /// The source's bucket is empty, or the table is full of active sources: answer 429.
    Refused,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// When the source was last logged at `info`.
    logged_at: Option<Instant>,
    unlogged: u64,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<Source, Bucket>,
    next_prune: Instant,
}

/// A token bucket per source ([`Source`]: IPv4 address or IPv6 `/64`), charged by bad
/// callbacks. At most [`MAX_TRACKED`] sources are kept; idle ones (bucket full again, not
/// logged in the last minute) are pruned at most every 10 s, by the charge that finds the time has come, so no charge
/// scans the table more often than that.
#[derive(Debug)]
pub struct IpLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<Buckets>,
}

impl IpLimiter {
    /// `per_minute` refill, `burst` deep.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            per_second: f64::from(config.per_minute.max(1)) / 60.0,
            burst: f64::from(config.burst.max(1)),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                next_prune: Instant::now() + PRUNE_EVERY,
            }),
        }
    }

    /// Takes one token of the bucket of `ip`'s source.
    pub fn charge(&self, ip: IpAddr) -> Charge {
        self.charge_at(Source::of(ip), Instant::now())
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    fn charge_at(&self, source: Source, now: Instant) -> Charge {
        let (rate, burst) = (self.per_second, self.burst);
        let refilled = |bucket: &Bucket| {
            (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate)
                .min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if now >= buckets.next_prune {
            // Idle: the bucket has refilled and the log window is over (dropping it then
            // changes nothing a new bucket would not do).
            buckets.map.retain(|_, bucket| {
                refilled(bucket) < burst
                    || bucket
                        .logged_at
                        .is_some_and(|at| now.saturating_duration_since(at) < LOG_WINDOW)
            });
            buckets.next_prune = now + PRUNE_EVERY;
        }
        let full = buckets.map.len() >= MAX_TRACKED;
        let bucket = match buckets.map.entry(source) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            // Full of active sources: refuse newcomers rather than grow or scan.
            std::collections::hash_map::Entry::Vacant(_) if full => return Charge::Refused,
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(Bucket {
                tokens: burst,
                at: now,
                logged_at: None,
                unlogged: 0,
            }),
        };
        bucket.tokens = refilled(bucket);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Charge::Refused;
        }
        bucket.tokens -= 1.0;
        let log_now = bucket
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_WINDOW);
        if log_now {
            let unlogged = std::mem::take(&mut bucket.unlogged);
            bucket.logged_at = Some(now);
            Charge::Allowed {
                log: Some(unlogged),
            }
        } else {
            bucket.unlogged += 1;
            Charge::Allowed { log: None }
        }
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct CallbackState {
    /// Verifies secrets.
    pub key: CallbackKey,
    /// Verified callbacks, for the debouncer.
    pub marks: Marks,
    /// Bad callbacks per address.
    pub limiter: IpLimiter,
}

fn refuse(state: &CallbackState, req: &HttpRequest) -> HttpResponse {
    let ip = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    match state.limiter.charge(ip) {
        Charge::Allowed {
            log: Some(unlogged),
        } => {
            CallbackOutcome::Rejected.record();
            tracing::info!(%ip, not_logged_before = unlogged, "unknown or malformed webhook callback (more from this source within a minute are logged at debug)");
            HttpResponse::NotFound().finish()
        }
        Charge::Allowed { log: None } => {
            CallbackOutcome::Rejected.record();
            tracing::debug!(%ip, "unknown or malformed webhook callback");
            HttpResponse::NotFound().finish()
        }
        Charge::Refused => {
            CallbackOutcome::RateLimited.record();
            tracing::debug!(%ip, "webhook callbacks rate limited");
            HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", "60"))
                .finish()
        }
    }
}

async fn callback(
    state: web::Data<CallbackState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (hook_id, secret) = path.into_inner();
    match state.key.verify(&hook_id, &secret) {
        Some(hook_id) => {
            CallbackOutcome::Accepted.record();
            state.marks.mark(hook_id);
            HttpResponse::NoContent().finish()
        }
        None => refuse(&state, &req),
    }
}

async fn fallback(state: web::Data<CallbackState>, req: HttpRequest) -> HttpResponse {
    refuse(&state, &req)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Mounts the routes on an actix `App` (with [`CallbackState`] as app data).
/// Every resource and the app fall back to the same 404 + rate-limit charge, so a wrong
/// method is neither a 405 nor free.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(format!("{CALLBACK_PATH}/{{hook_id}}/{{secret}}"))
            .route(web::post().to(callback))
            .default_service(web::to(fallback)),
    )
    .service(
        web::resource("/health")
            .route(web::get().to(health))
            .default_service(web::to(fallback)),
    )
    .default_service(web::to(fallback));
}

/// The HTTP server on `listener`.
///
/// # Errors
/// The listener cannot be used.
pub fn server(
    listener: TcpListener,
    workers: usize,
    state: CallbackState,
) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::<PublicRequestSpan>::new())
            .app_data(state.clone())
            .configure(configure)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> IpLimiter {
        IpLimiter::new(RateLimitConfig { per_minute, burst })
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().expect("an IPv6 address")
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_bucket() {
        let limiter = limiter(1, 2);
        assert!(matches!(
            limiter.charge(v6("2001:db8:1:2::1")),
            Charge::Allowed { .. }
        ));
        assert!(matches!(
            limiter.charge(v6("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            Charge::Allowed { .. }
        ));
        // A third address of the same /64: the shared bucket is empty.
        assert_eq!(limiter.charge(v6("2001:db8:1:2:abcd::7")), Charge::Refused);
        // Another /64 has its own bucket.
        assert!(matches!(
            limiter.charge(v6("2001:db8:1:3::1")),
            Charge::Allowed { .. }
        ));
        assert_eq!(limiter.tracked(), 2);
        assert_eq!(
            Source::of(v6("2001:db8:1:2:abcd::7")).to_string(),
            "2001:db8:1:2::/64"
        );
        // IPv4-mapped IPv6 is the IPv4 address.
        assert_eq!(
            Source::of(v6("::ffff:192.0.2.7")),
            Source::of(IpAddr::from([192, 0, 2, 7]))
        );
    }

    #[test]
    fn a_full_table_refuses_newcomers_without_scanning_until_the_prune() {
        let limiter = limiter(60, 5);
        let start = Instant::now();
        let source = |i: usize| Source::V4(Ipv4Addr::from(u32::try_from(i).expect("small")));
        for i in 0..MAX_TRACKED {
            assert!(matches!(
                limiter.charge_at(source(i), start),
                Charge::Allowed { .. }
            ));
        }
        // Full: a newcomer is refused at once; known sources are still charged.
        let newcomer = source(MAX_TRACKED);
        assert_eq!(limiter.charge_at(newcomer, start), Charge::Refused);
        assert!(matches!(
            limiter.charge_at(source(0), start),
            Charge::Allowed { .. }
        ));
        // Their buckets refill within a few seconds, but the table is only pruned every
        // PRUNE_EVERY: until then the newcomer is still refused (no scan per request)...
        let later = start + PRUNE_EVERY / 2;
        assert_eq!(limiter.charge_at(newcomer, later), Charge::Refused);
        assert_eq!(limiter.tracked(), MAX_TRACKED);
        // ...and once idle (refilled, and their log minute over) they are dropped at the
        // next prune and the newcomer is taken.
        let after_prune = start + LOG_WINDOW;
        assert!(matches!(
            limiter.charge_at(newcomer, after_prune),
            Charge::Allowed { .. }
        ));
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn only_the_first_bad_callback_per_source_and_minute_is_logged_at_info() {
        let limiter = limiter(1, 1000);
        let start = Instant::now();
        let source = Source::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            limiter.charge_at(source, start),
            Charge::Allowed { log: Some(0) }
        );
        for i in 1..=10 {
            assert_eq!(
                limiter.charge_at(source, start + Duration::from_secs(i)),
                Charge::Allowed { log: None }
            );
        }
        // Another source is logged on its own.
        assert_eq!(
            limiter.charge_at(Source::V4(Ipv4Addr::new(192, 0, 2, 2)), start),
            Charge::Allowed { log: Some(0) }
        );
        // A minute later: logged again, with the count of those not logged.
        assert_eq!(
            limiter.charge_at(source, start + LOG_WINDOW),
            Charge::Allowed { log: Some(10) }
        );
    }
}
