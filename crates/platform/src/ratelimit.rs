//! A token bucket held in the database, so that every replica using one ORCID client shares
//! that client's rate limit (ORCID counts requests per client, not per process).
//!
//! - [`RateLimitConfig`] is the small `[…rate_limit]` section a service embeds.
//! - [`ensure_table`] creates `idbridge_rate_buckets` (one row per bucket name).
//! - [`SharedRateLimiter`] implements [`orcid::client::RateLimiter`]: each permit is taken by
//!   ONE atomic upsert that refills the bucket by the time elapsed on the database clock and
//!   takes the permit. When the bucket is empty the permit is still taken, as debt (the
//!   tokens go negative), and the caller sleeps until its turn: one round trip per permit, no
//!   polling, first come first served across replicas.
//! - [`Priority`]: a limiter takes [`Priority::Normal`] permits (above, the writer's) or
//!   [`Priority::Yield`] ones (the reader's): a yielding permit is taken only while the
//!   bucket, refilled, would still hold at least [`YieldPolicy::reserve`] tokens after it (one
//!   conditional upsert; no row returned means not taken). Otherwise the caller reads the
//!   refilled level, sleeps until the bucket would be at `reserve + 1` (clamped to 50 ms …
//!   1 s, then it checks again) and tries again. Normal callers in debt keep the level below
//!   the reserve, so yielding callers wait while they are queued and take the headroom they
//!   leave. After [`YieldPolicy::max_yield`] a yielding caller takes a normal (debt) permit:
//!   starvation is bounded. The yielding callers of one limiter queue in order behind one
//!   another, so only one of them polls the database at a time.
//! - [`limiter_for`] (and [`limiter_for_priority`]) is what a service calls: shared or
//!   in-process, from the config.
//! - [`ReadYieldConfig`] holds the keys `read_reserve` and `read_max_yield_ms` that shape the
//!   yielding permits of `[orcid.rate_limit]` (crate::orcid).
//!
//! Every permit's wait goes to `idbridge_ratelimit_wait_seconds{scope}` (`shared`: a normal
//! permit from the database bucket; `shared-yield`: a yielding one, from its first try to the
//! permit, including a debt permit taken after `max_yield`; `local`: from an in-process
//! limiter, the configured one or the outage fallback), and each fallback permit to
//! `idbridge_ratelimit_fallback_total`. A yielding caller counts each refused try in
//! `idbridge_ratelimit_yield_refusals_total` and each time it yielded for `max_yield` and
//! took a normal permit in `idbridge_ratelimit_yield_overruns_total` (writes used the whole
//! limit for that long); [`SharedRateLimiter::stats`] keeps the same two counts.
//!
//! When the database does not answer (error, or no answer within the timeout), the limiter
//! falls back to an in-process governor at `per_second / replicas_hint` (burst
//! `burst / replicas_hint`), logs one warning per outage, and probes the database again at
//! most once per probe interval; the first probe that succeeds ends the outage. Yielding
//! callers use the same fallback, without priority.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use orcid::client::rate_limit::BoxFuture;
use orcid::client::{GovernorRateLimiter, LimiterStats, RateLimit, RateLimiter};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::{Problems, Validate};
use crate::metrics::names;

/// The table holding the buckets.
pub const TABLE: &str = "idbridge_rate_buckets";

/// How long one database round trip may take before the limiter falls back.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// How often, during an outage, the database is tried again.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Local reserved permits older than this are thrown away rather than used late.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// How long a yielding caller waits at most, by default, before it takes a normal permit.
pub const DEFAULT_MAX_YIELD: Duration = Duration::from_millis(DEFAULT_MAX_YIELD_MS);
const DEFAULT_MAX_YIELD_MS: u64 = 30_000;

/// The shortest and the longest sleep of a yielding caller between two tries.
const YIELD_RECHECK_MIN: Duration = Duration::from_millis(50);
const YIELD_RECHECK_MAX: Duration = Duration::from_secs(1);

/// The longest `read_max_yield_ms` accepted (one hour).
const MAX_YIELD_MS_LIMIT: u64 = 3_600_000;

fn default_one() -> u32 {
    1
}

/// `[…rate_limit]`: the limit of one ORCID client, and whether replicas share it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Share the bucket through the database (`true`) or keep it in this process.
    pub shared: bool,
    /// The bucket's name, the row key; every replica of one ORCID client must use the same
    /// one. Not a secret: use a configured name or the client id (`APP-…`), never the secret.
    pub bucket: String,
    /// Requests per second, sustained, for the whole client.
    pub per_second: u32,
    /// Requests that may go at once after a quiet period, for the whole client.
    pub burst: u32,
    /// How many replicas share the client: the fallback limit during a database outage is
    /// `per_second / replicas_hint`. Default 1.
    #[serde(default = "default_one")]
    pub replicas_hint: u32,
    /// Permits taken from the database per round trip (default 1). More cuts round trips,
    /// but a replica may then send up to `batch - 1` requests above the shared burst, and
    /// permits it does not use within a second are lost to the others.
    #[serde(default = "default_one")]
    pub batch: u32,
}

impl RateLimitConfig {
    /// ORCID's member API limit (24/s, burst 40), shared through the bucket `bucket`.
    pub fn orcid_member(bucket: impl Into<String>) -> Self {
        RateLimitConfig {
            shared: true,
            bucket: bucket.into(),
            per_second: RateLimit::ORCID_MEMBER.per_second,
            burst: RateLimit::ORCID_MEMBER.burst,
            replicas_hint: 1,
            batch: 1,
        }
    }

    /// The bucket's shape.
    pub fn limit(&self) -> RateLimit {
        RateLimit {
            per_second: self.per_second,
            burst: self.burst,
        }
    }

    /// The in-process limit used during an outage: the shared one divided by `replicas_hint`
    /// (each at least 1).
    pub fn fallback_limit(&self) -> RateLimit {
        let replicas = self.replicas_hint.max(1);
        RateLimit {
            per_second: (self.per_second / replicas).max(1),
            burst: (self.burst / replicas).max(1),
        }
    }

    /// [`Validate`] with the keys under `section` (e.g. `orcid.rate_limit`).
    pub fn validate_at(&self, section: &str, problems: &mut Problems) {
        let key = |k: &str| format!("{section}.{k}");
        if self.per_second == 0 {
            problems.add(key("per_second"), "is 0", "use at least 1 (ORCID: 24)");
        }
        if self.burst == 0 {
            problems.add(key("burst"), "is 0", "use at least 1 (ORCID: 40)");
        }
        if self.replicas_hint == 0 {
            problems.add(
                key("replicas_hint"),
                "is 0",
                "set it to the number of replicas sharing the client (at least 1)",
            );
        }
        if self.batch == 0 || self.batch > self.burst.max(1) {
            problems.add(
                key("batch"),
                "is 0 or larger than burst",
                "use 1 (the default) or a small number no larger than burst",
            );
        }
        let bucket = self.bucket.trim();
        if self.shared && bucket.is_empty() {
            problems.add(
                key("bucket"),
                "is empty",
                "name the bucket, the same on every replica of this ORCID client",
            );
        }
        if bucket.len() > 200 {
            problems.add(
                key("bucket"),
                "is longer than 200 bytes",
                "use a short name",
            );
        }
    }
}

impl Validate for RateLimitConfig {
    fn validate(&self, problems: &mut Problems) {
        self.validate_at("rate_limit", problems);
    }
}

/// How a yielding ([`Priority::Yield`]) permit is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YieldPolicy {
    /// A yielding permit is taken only when the bucket, refilled, holds at least `reserve`
    /// tokens after it. Must be below the bucket's burst.
    pub reserve: u32,
    /// After waiting this long a yielding caller takes a normal permit (as debt if need be).
    pub max_yield: Duration,
}

impl YieldPolicy {
    /// The default reserve for a bucket of `burst`: half of it, rounded down, at least 1,
    /// and below `burst` (so 0 for a burst of 1).
    pub fn default_reserve(burst: u32) -> u32 {
        (burst / 2).max(1).min(burst.saturating_sub(1))
    }

    /// The default policy for a bucket of `burst`: [`YieldPolicy::default_reserve`] and
    /// [`DEFAULT_MAX_YIELD`].
    pub fn for_burst(burst: u32) -> Self {
        YieldPolicy {
            reserve: Self::default_reserve(burst),
            max_yield: DEFAULT_MAX_YIELD,
        }
    }
}

/// Whose permits go first when the bucket is short: see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Priority {
    /// Take the permit now, as debt when the bucket is empty, and wait for its turn.
    #[default]
    Normal,
    /// Take the permit only while the bucket keeps its reserve; yield to normal callers
    /// otherwise, for at most `max_yield`.
    Yield(YieldPolicy),
}

/// The `read_*` keys of an `[…rate_limit]` section: how the yielding permits of the
/// services that read (see [`Priority::Yield`]) are taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadYieldConfig {
    /// `read_reserve`: tokens a yielding permit leaves in the bucket. `None`: half of
    /// `burst` ([`YieldPolicy::default_reserve`]). Must be below `burst`.
    pub read_reserve: Option<u32>,
    /// `read_max_yield_ms`: how long a yielding caller waits at most before it takes a
    /// normal permit. Default 30000.
    pub read_max_yield_ms: u64,
}

impl Default for ReadYieldConfig {
    fn default() -> Self {
        ReadYieldConfig {
            read_reserve: None,
            read_max_yield_ms: DEFAULT_MAX_YIELD_MS,
        }
    }
}

impl ReadYieldConfig {
    /// The policy for a bucket of `burst`.
    pub fn policy(&self, burst: u32) -> YieldPolicy {
        YieldPolicy {
            reserve: self
                .read_reserve
                .unwrap_or_else(|| YieldPolicy::default_reserve(burst)),
            max_yield: Duration::from_millis(self.read_max_yield_ms),
        }
    }

    /// Checks the keys under `section` (e.g. `orcid.rate_limit`) against the bucket's
    /// `burst`.
    pub fn validate_at(&self, section: &str, burst: u32, problems: &mut Problems) {
        if let Some(reserve) = self.read_reserve
            && burst > 0
            && reserve >= burst
        {
            problems.add(
                format!("{section}.read_reserve"),
                format!("is {reserve}, not below {section}.burst ({burst})"),
                format!(
                    "set {section}.read_reserve below {section}.burst (e.g. {}), or leave it out \
                     (default: half of burst)",
                    YieldPolicy::default_reserve(burst)
                ),
            );
        }
        if self.read_max_yield_ms > MAX_YIELD_MS_LIMIT {
            problems.add(
                format!("{section}.read_max_yield_ms"),
                "is longer than one hour",
                "use at most 3600000 (the default is 30000: reads wait at most 30 s for writes)",
            );
        }
    }
}

/// Refuses a yielding policy whose reserve a full bucket could never keep.
fn check_priority(limit: RateLimit, priority: Priority) -> Result<(), RateLimitError> {
    match priority {
        Priority::Yield(policy) if policy.reserve >= limit.burst => {
            Err(RateLimitError::Config(format!(
                "rate_limit.read_reserve ({}) is not below rate_limit.burst ({}); set the \
                 reserve below burst (e.g. {}) or leave it out",
                policy.reserve,
                limit.burst,
                YieldPolicy::default_reserve(limit.burst)
            )))
        }
        _ => Ok(()),
    }
}

/// The limiter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The configuration is invalid (the message names the key and the fix).
    #[error("invalid rate limit configuration: {0}")]
    Config(String),
    /// The bucket table could not be created.
    #[error("cannot create the table {TABLE}; check that the database user may create tables")]
    Table(#[source] DbErr),
    /// The database is neither PostgreSQL nor SQLite.
    #[error("the shared rate limiter needs PostgreSQL or SQLite")]
    UnsupportedBackend,
}

/// Creates the bucket table if it does not exist. Services call it at start (it is
/// idempotent and safe to run from several replicas at once).
///
/// On PostgreSQL the table is `UNLOGGED`: a permit's commit then waits for no WAL flush
/// (several times faster under contention), and the price is that a database crash empties
/// the table, so every bucket starts again full, one extra burst. Standbys do not get its rows
/// either; after a failover the buckets start full the same way. `updated_at` is a
/// `timestamptz`; on SQLite it is a REAL (Unix seconds).
///
/// # Errors
/// [`RateLimitError::Table`] when the statement fails.
pub async fn ensure_table(db: &DatabaseConnection) -> Result<(), RateLimitError> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "CREATE UNLOGGED TABLE IF NOT EXISTS idbridge_rate_buckets (\
             name text PRIMARY KEY, \
             tokens double precision NOT NULL, \
             updated_at timestamptz NOT NULL)"
        }
        DbBackend::Sqlite => {
            "CREATE TABLE IF NOT EXISTS idbridge_rate_buckets (\
             name TEXT PRIMARY KEY NOT NULL, \
             tokens REAL NOT NULL, \
             updated_at REAL NOT NULL)"
        }
        _ => return Err(RateLimitError::UnsupportedBackend),
    };
    match db.execute_unprepared(sql).await {
        Ok(_) => Ok(()),
        // Two replicas creating the table at the same instant: the loser sees a duplicate
        // type/relation; the table exists, which is all we wanted.
        Err(e)
            if e.to_string().contains("already exists")
                || e.to_string().contains("pg_type_typname_nsp_index") =>
        {
            Ok(())
        }
        Err(e) => Err(RateLimitError::Table(e)),
    }
}

/// Refill by the elapsed database time, take `$3` tokens, return what is left. The "now" is
/// the inserted row's `updated_at` (`excluded.updated_at`), so one statement reads the clock
/// once; `updated_at` never goes backwards.
const TAKE_POSTGRES: &str = "INSERT INTO idbridge_rate_buckets AS b (name, tokens, updated_at) \
     VALUES ($1, $2 - $3, clock_timestamp()) \
     ON CONFLICT (name) DO UPDATE SET \
     tokens = LEAST($2, b.tokens + $4 * GREATEST(0.0, \
         EXTRACT(EPOCH FROM (excluded.updated_at - b.updated_at))::double precision)) - $3, \
     updated_at = GREATEST(b.updated_at, excluded.updated_at) \
     RETURNING tokens";

const TAKE_SQLITE: &str = "INSERT INTO idbridge_rate_buckets AS b (name, tokens, updated_at) \
     VALUES (?1, ?2 - ?3, (julianday('now') - 2440587.5) * 86400.0) \
     ON CONFLICT (name) DO UPDATE SET \
     tokens = MIN(?2, b.tokens + ?4 * MAX(0.0, excluded.updated_at - b.updated_at)) - ?3, \
     updated_at = MAX(b.updated_at, excluded.updated_at) \
     RETURNING tokens";

/// The yielding take: `TAKE_POSTGRES` that takes `$3` tokens only when `$5` (the reserve)
/// are left after it, refilled: the first insert (through the `SELECT … WHERE`) and the update
/// (through `DO UPDATE … WHERE`). No row returned: not taken, and the row is left as it was.
const TAKE_YIELD_POSTGRES: &str = "INSERT INTO idbridge_rate_buckets AS b (name, tokens, updated_at) \
     SELECT $1, $2 - $3, clock_timestamp() WHERE $2 - $3 >= $5 \
     ON CONFLICT (name) DO UPDATE SET \
     tokens = LEAST($2, b.tokens + $4 * GREATEST(0.0, \
         EXTRACT(EPOCH FROM (excluded.updated_at - b.updated_at))::double precision)) - $3, \
     updated_at = GREATEST(b.updated_at, excluded.updated_at) \
     WHERE LEAST($2, b.tokens + $4 * GREATEST(0.0, \
         EXTRACT(EPOCH FROM (excluded.updated_at - b.updated_at))::double precision)) - $3 >= $5 \
     RETURNING tokens";

/// `TAKE_YIELD_POSTGRES` for SQLite (whose `INSERT … SELECT` needs its `WHERE` for the
/// upsert to parse, which it has).
const TAKE_YIELD_SQLITE: &str = "INSERT INTO idbridge_rate_buckets AS b (name, tokens, updated_at) \
     SELECT ?1, ?2 - ?3, (julianday('now') - 2440587.5) * 86400.0 WHERE ?2 - ?3 >= ?5 \
     ON CONFLICT (name) DO UPDATE SET \
     tokens = MIN(?2, b.tokens + ?4 * MAX(0.0, excluded.updated_at - b.updated_at)) - ?3, \
     updated_at = MAX(b.updated_at, excluded.updated_at) \
     WHERE MIN(?2, b.tokens + ?4 * MAX(0.0, excluded.updated_at - b.updated_at)) - ?3 >= ?5 \
     RETURNING tokens";

/// The bucket's level refilled to now on the database clock, without taking anything (`$2`
/// burst, `$3` rate).
const LEVEL_POSTGRES: &str = "SELECT LEAST($2, tokens + $3 * GREATEST(0.0, \
     EXTRACT(EPOCH FROM (clock_timestamp() - updated_at))::double precision)) AS tokens \
     FROM idbridge_rate_buckets WHERE name = $1";

const LEVEL_SQLITE: &str = "SELECT MIN(?2, tokens + ?3 * MAX(0.0, \
     (julianday('now') - 2440587.5) * 86400.0 - updated_at)) AS tokens \
     FROM idbridge_rate_buckets WHERE name = ?1";

/// The statements of one backend.
#[derive(Clone, Copy)]
struct Statements {
    take: &'static str,
    take_yield: &'static str,
    level: &'static str,
}

const POSTGRES: Statements = Statements {
    take: TAKE_POSTGRES,
    take_yield: TAKE_YIELD_POSTGRES,
    level: LEVEL_POSTGRES,
};

const SQLITE: Statements = Statements {
    take: TAKE_SQLITE,
    take_yield: TAKE_YIELD_SQLITE,
    level: LEVEL_SQLITE,
};

/// What a [`SharedRateLimiter`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SharedLimiterStats {
    /// Permits given out (from the database and from the fallback).
    pub permits: u64,
    /// Permits that were not free at once: the caller had to wait.
    pub waits: u64,
    /// Total time callers waited.
    pub waited: Duration,
    /// Statements sent to the database that succeeded.
    pub db_round_trips: u64,
    /// Permits given by the in-process fallback during outages.
    pub fallback_permits: u64,
    /// Outages seen (one warning each).
    pub outages: u64,
    /// Yielding tries the bucket refused (its level was below the reserve).
    pub yield_refusals: u64,
    /// Yielding callers that waited `max_yield` and took a normal permit.
    pub yield_overruns: u64,
}

impl From<SharedLimiterStats> for LimiterStats {
    fn from(s: SharedLimiterStats) -> Self {
        LimiterStats {
            permits: s.permits,
            waits: s.waits,
            waited: s.waited,
        }
    }
}

#[derive(Default)]
struct Counters {
    permits: AtomicU64,
    waits: AtomicU64,
    waited_nanos: AtomicU64,
    db_round_trips: AtomicU64,
    fallback_permits: AtomicU64,
    outages: AtomicU64,
    yield_refusals: AtomicU64,
    yield_overruns: AtomicU64,
}

/// Permits reserved from the database and not used yet (only with `batch > 1`).
struct Reserved {
    /// When each reserved permit may be used, earliest first.
    ready: std::collections::VecDeque<Instant>,
    /// When they were reserved.
    at: Instant,
}

/// A token bucket in PostgreSQL (or SQLite) shared by every replica that names the same
/// bucket; see the [module docs](self).
///
/// Dropping an `acquire` future while it sleeps wastes its permit (it was already taken from
/// the bucket): the limit errs on the safe side.
pub struct SharedRateLimiter {
    db: DatabaseConnection,
    sql: Statements,
    priority: Priority,
    /// Yielding callers queue here, first come first served: only the first polls.
    yield_queue: tokio::sync::Mutex<()>,
    bucket: String,
    limit: RateLimit,
    batch: u32,
    fallback: GovernorRateLimiter,
    db_timeout: Duration,
    probe_interval: Duration,
    in_outage: AtomicBool,
    /// During an outage: when the database may be tried next.
    next_probe: Mutex<Option<Instant>>,
    reserved: tokio::sync::Mutex<Reserved>,
    counters: Counters,
}

impl SharedRateLimiter {
    /// A limiter on `config.bucket` in `db`. It does not touch the database; call
    /// [`ensure_table`] once at start (a missing table counts as an outage).
    ///
    /// # Errors
    /// [`RateLimitError::Config`] when the config is invalid,
    /// [`RateLimitError::UnsupportedBackend`] for a database other than PostgreSQL/SQLite.
    pub fn new(db: DatabaseConnection, config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        let mut problems = Problems::default();
        config.validate(&mut problems);
        if let Err(e) = problems.into_result() {
            return Err(RateLimitError::Config(e.to_string()));
        }
        if config.bucket.trim().is_empty() {
            return Err(RateLimitError::Config(
                "rate_limit.bucket is empty; name the bucket".to_owned(),
            ));
        }
        let sql = match db.get_database_backend() {
            DbBackend::Postgres => POSTGRES,
            DbBackend::Sqlite => SQLITE,
            _ => return Err(RateLimitError::UnsupportedBackend),
        };
        let fallback = GovernorRateLimiter::new(config.fallback_limit())
            .map_err(|e| RateLimitError::Config(e.to_string()))?;
        Ok(SharedRateLimiter {
            db,
            sql,
            priority: Priority::Normal,
            yield_queue: tokio::sync::Mutex::new(()),
            bucket: config.bucket.trim().to_owned(),
            limit: config.limit(),
            batch: config.batch,
            fallback,
            db_timeout: DEFAULT_DB_TIMEOUT,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            in_outage: AtomicBool::new(false),
            next_probe: Mutex::new(None),
            reserved: tokio::sync::Mutex::new(Reserved {
                ready: std::collections::VecDeque::new(),
                at: Instant::now(),
            }),
            counters: Counters::default(),
        })
    }

    /// Sets how long a database round trip may take before falling back (default 2 s) and
    /// how often the database is tried again during an outage (default 5 s).
    #[must_use]
    pub fn with_timeouts(mut self, db_timeout: Duration, probe_interval: Duration) -> Self {
        self.db_timeout = db_timeout;
        self.probe_interval = probe_interval;
        self
    }

    /// Sets whose permits go first (default [`Priority::Normal`]); a reader asks for
    /// [`Priority::Yield`]. Limiters of either priority share the bucket by its name.
    ///
    /// # Errors
    /// [`RateLimitError::Config`] when a yielding reserve is not below the burst.
    pub fn with_priority(mut self, priority: Priority) -> Result<Self, RateLimitError> {
        check_priority(self.limit, priority)?;
        self.priority = priority;
        Ok(self)
    }

    /// The priority of this limiter's permits.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The shared bucket's shape.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the database is currently considered unreachable (the fallback is in use).
    pub fn in_outage(&self) -> bool {
        self.in_outage.load(Ordering::Relaxed)
    }

    /// Permits given, waits and outages so far.
    pub fn stats(&self) -> SharedLimiterStats {
        let c = &self.counters;
        SharedLimiterStats {
            permits: c.permits.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            waited: Duration::from_nanos(c.waited_nanos.load(Ordering::Relaxed)),
            db_round_trips: c.db_round_trips.load(Ordering::Relaxed),
            fallback_permits: c.fallback_permits.load(Ordering::Relaxed),
            outages: c.outages.load(Ordering::Relaxed),
            yield_refusals: c.yield_refusals.load(Ordering::Relaxed),
            yield_overruns: c.yield_overruns.load(Ordering::Relaxed),
        }
    }

    /// Runs `sql` with `values` within the timeout; its `tokens` column, `None` for no row.
    async fn query_tokens<const N: usize>(
        &self,
        sql: &'static str,
        values: [Value; N],
    ) -> Result<Option<f64>, String> {
        let statement = Statement::from_sql_and_values(self.db.get_database_backend(), sql, values);
        let row =
            match tokio::time::timeout(self.db_timeout, self.db.query_one_raw(statement)).await {
                Err(_) => return Err(format!("no answer within {:?}", self.db_timeout)),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(row)) => row,
            };
        let tokens = match row {
            None => None,
            Some(row) => Some(
                row.try_get::<f64>("", "tokens")
                    .map_err(|e| e.to_string())?,
            ),
        };
        self.counters.db_round_trips.fetch_add(1, Ordering::Relaxed);
        Ok(tokens)
    }

    /// Takes `n` tokens in one statement; returns the tokens left (negative: debt).
    async fn take(&self, n: u32) -> Result<f64, String> {
        self.query_tokens(
            self.sql.take,
            [
                Value::from(self.bucket.clone()),
                Value::from(f64::from(self.limit.burst)),
                Value::from(f64::from(n)),
                Value::from(f64::from(self.limit.per_second)),
            ],
        )
        .await?
        .ok_or_else(|| "the upsert returned no row".to_owned())
    }

    /// Takes one token only when `reserve` are left after it, refilled: `Some(tokens left)`
    /// when taken, `None` when the bucket refused (and was left as it was).
    async fn take_yield(&self, reserve: u32) -> Result<Option<f64>, String> {
        self.query_tokens(
            self.sql.take_yield,
            [
                Value::from(self.bucket.clone()),
                Value::from(f64::from(self.limit.burst)),
                Value::from(1.0f64),
                Value::from(f64::from(self.limit.per_second)),
                Value::from(f64::from(reserve)),
            ],
        )
        .await
    }

    /// The bucket's level refilled to now, without taking; `None` when it has no row.
    async fn level(&self) -> Result<Option<f64>, String> {
        self.query_tokens(
            self.sql.level,
            [
                Value::from(self.bucket.clone()),
                Value::from(f64::from(self.limit.burst)),
                Value::from(f64::from(self.limit.per_second)),
            ],
        )
        .await
    }

    /// Whether the database should be tried now: `Some(false)` outside an outage,
    /// `Some(true)` for the one caller per probe interval that probes during an outage,
    /// `None` for the others.
    fn may_try_db(&self) -> Option<bool> {
        if !self.in_outage.load(Ordering::Relaxed) {
            return Some(false);
        }
        let Ok(mut next) = self.next_probe.lock() else {
            return Some(true);
        };
        let now = Instant::now();
        match *next {
            Some(at) if now < at => None,
            _ => {
                *next = Some(now + self.probe_interval);
                Some(true)
            }
        }
    }

    fn db_failed(&self, error: &str) {
        if let Ok(mut next) = self.next_probe.lock() {
            *next = Some(Instant::now() + self.probe_interval);
        }
        if !self.in_outage.swap(true, Ordering::Relaxed) {
            self.counters.outages.fetch_add(1, Ordering::Relaxed);
            let fallback = self.fallback.limit();
            tracing::warn!(
                bucket = %self.bucket,
                error = %error,
                fallback_per_second = fallback.per_second,
                fallback_burst = fallback.burst,
                "shared rate limit: the database does not answer; limiting in this process \
                 until it does"
            );
        }
    }

    fn db_answered(&self) {
        if self.in_outage.swap(false, Ordering::Relaxed) {
            tracing::info!(bucket = %self.bucket, "shared rate limit: the database answers again");
        }
    }

    /// One normal permit from the database (as debt if need be): when it may be used, or
    /// `None` when the database did not answer (the outage is recorded).
    async fn take_one(&self) -> Option<Instant> {
        let tokens = match self.take(1).await {
            Ok(tokens) => tokens,
            Err(e) => {
                self.db_failed(&e);
                return None;
            }
        };
        self.db_answered();
        Some(Instant::now() + debt_wait(tokens, f64::from(self.limit.per_second)))
    }

    /// When the next permit may be used, from the database (with a local batch), or `None`
    /// when the database did not answer.
    async fn ready_at(&self, probe: bool) -> Option<Instant> {
        let rate = f64::from(self.limit.per_second);
        if self.batch <= 1 {
            return self.take_one().await;
        }
        let mut reserved = self.reserved.lock().await;
        // An outage began while this caller queued for the lock: do not wait out another
        // timeout, unless this caller is the probe.
        if !probe && self.in_outage.load(Ordering::Relaxed) {
            return None;
        }
        let now = Instant::now();
        if now.duration_since(reserved.at) > MAX_HOLD {
            reserved.ready.clear();
        }
        if let Some(at) = reserved.ready.pop_front() {
            return Some(at);
        }
        let n = self.batch;
        let tokens = match self.take(n).await {
            Ok(t) => t,
            Err(e) => {
                self.db_failed(&e);
                return None;
            }
        };
        self.db_answered();
        let now = Instant::now();
        reserved.at = now;
        // After the batch `tokens` are left; permit i (0-based) left `tokens + (n - 1 - i)`.
        for i in 0..n {
            let left = tokens + f64::from(n - 1 - i);
            reserved.ready.push_back(now + debt_wait(left, rate));
        }
        reserved.ready.pop_front()
    }

    /// A yielding permit from the database (see the [module docs](self)) and how long its
    /// caller waited, or `None` when the database did not answer (the caller falls back).
    async fn acquire_yielding(&self, policy: YieldPolicy) -> Option<Duration> {
        let probe = self.may_try_db()?;
        let start = Instant::now();
        let deadline = start + policy.max_yield;
        let rate = f64::from(self.limit.per_second);
        // First come first served among this limiter's yielding callers; a caller that
        // cannot get its turn before its deadline takes a normal permit.
        let (queue, queued) = match self.yield_queue.try_lock() {
            Ok(turn) => (Some(turn), false),
            Err(_) => (
                tokio::time::timeout_at(deadline, self.yield_queue.lock())
                    .await
                    .ok(),
                true,
            ),
        };
        // An outage began while this caller queued: do not wait out another timeout, unless
        // this caller is the probe.
        if !probe && self.in_outage.load(Ordering::Relaxed) {
            return None;
        }
        if queue.is_some() {
            let mut refused = false;
            loop {
                match self.take_yield(policy.reserve).await {
                    Err(e) => {
                        self.db_failed(&e);
                        return None;
                    }
                    Ok(Some(_)) => {
                        self.db_answered();
                        // Free at the first try, with no one ahead: no wait (the round trip
                        // is not one).
                        let waited = if refused || queued {
                            start.elapsed()
                        } else {
                            Duration::ZERO
                        };
                        record_wait(SCOPE_SHARED_YIELD, waited);
                        return Some(waited);
                    }
                    Ok(None) => {}
                }
                self.db_answered();
                refused = true;
                self.counters.yield_refusals.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(names::RATELIMIT_YIELD_REFUSALS_TOTAL).increment(1);
                let level = match self.level().await {
                    Ok(level) => level,
                    Err(e) => {
                        self.db_failed(&e);
                        return None;
                    }
                };
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let wait = recheck_wait(level, policy.reserve, rate).min(deadline - now);
                tokio::time::sleep(wait).await;
                if Instant::now() >= deadline {
                    break;
                }
            }
        }
        drop(queue);
        // Yielded long enough: a normal permit, as debt if need be.
        self.counters.yield_overruns.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::RATELIMIT_YIELD_OVERRUNS_TOTAL).increment(1);
        let at = self.take_one().await?;
        tokio::time::sleep_until(at).await;
        let waited = start.elapsed();
        record_wait(SCOPE_SHARED_YIELD, waited);
        Some(waited)
    }

    /// A permit from the in-process fallback, during an outage.
    async fn fallback_permit(&self) -> Duration {
        let w = self.fallback.acquire().await;
        self.counters
            .fallback_permits
            .fetch_add(1, Ordering::Relaxed);
        record_wait(SCOPE_LOCAL, w);
        metrics::counter!(names::RATELIMIT_FALLBACK_TOTAL).increment(1);
        w
    }

    async fn acquire_permit(&self) -> Duration {
        let waited = match self.priority {
            Priority::Yield(policy) => match self.acquire_yielding(policy).await {
                Some(waited) => waited,
                None => self.fallback_permit().await,
            },
            Priority::Normal => {
                let from_db = match self.may_try_db() {
                    Some(probe) => self.ready_at(probe).await,
                    None => None,
                };
                match from_db {
                    Some(at) => {
                        // Time spent waiting for the bucket, not the round trip itself.
                        let wait = at.saturating_duration_since(Instant::now());
                        if !wait.is_zero() {
                            tokio::time::sleep_until(at).await;
                        }
                        record_wait(SCOPE_SHARED, wait);
                        wait
                    }
                    None => self.fallback_permit().await,
                }
            }
        };
        let c = &self.counters;
        c.permits.fetch_add(1, Ordering::Relaxed);
        if !waited.is_zero() {
            c.waits.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            c.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        waited
    }
}

/// `scope` of a permit from the database bucket.
const SCOPE_SHARED: &str = "shared";
/// `scope` of a yielding permit from the database bucket.
const SCOPE_SHARED_YIELD: &str = "shared-yield";
/// `scope` of a permit from an in-process limiter (configured, or the outage fallback).
const SCOPE_LOCAL: &str = "local";

/// One permit's wait, in `idbridge_ratelimit_wait_seconds{scope}` (zero waits included, so
/// the histogram's count is the number of permits).
fn record_wait(scope: &'static str, waited: Duration) {
    metrics::histogram!(names::RATELIMIT_WAIT_SECONDS, "scope" => scope)
        .record(waited.as_secs_f64());
}

/// An in-process limiter whose waits are recorded with `scope="local"`. `Debug` is the
/// inner limiter's.
struct MeteredLocal(GovernorRateLimiter);

impl fmt::Debug for MeteredLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl RateLimiter for MeteredLocal {
    fn acquire(&self) -> BoxFuture<'_, Duration> {
        Box::pin(async move {
            let waited = self.0.acquire().await;
            record_wait(SCOPE_LOCAL, waited);
            waited
        })
    }
}

/// How long until a permit that left `tokens` in the bucket may be used.
fn debt_wait(tokens: f64, rate: f64) -> Duration {
    if tokens >= 0.0 || rate <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(-tokens / rate).unwrap_or(Duration::from_secs(3600))
}

/// How long a yielding caller refused at `level` sleeps before it tries again: until the
/// bucket would hold `reserve + 1` at `rate`, within 50 ms … 1 s. `None` (no row yet): soon.
fn recheck_wait(level: Option<f64>, reserve: u32, rate: f64) -> Duration {
    let Some(level) = level else {
        return YIELD_RECHECK_MIN;
    };
    let missing = f64::from(reserve) + 1.0 - level;
    if missing <= 0.0 || rate <= 0.0 {
        return YIELD_RECHECK_MIN;
    }
    Duration::try_from_secs_f64(missing / rate)
        .unwrap_or(YIELD_RECHECK_MAX)
        .clamp(YIELD_RECHECK_MIN, YIELD_RECHECK_MAX)
}

impl fmt::Debug for SharedRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRateLimiter")
            .field("bucket", &self.bucket)
            .field("limit", &self.limit)
            .field("batch", &self.batch)
            .field("priority", &self.priority)
            .field("in_outage", &self.in_outage())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RateLimiter for SharedRateLimiter {
    fn acquire(&self) -> BoxFuture<'_, Duration> {
        Box::pin(self.acquire_permit())
    }
}

/// The limiter a service hands to `OrcidClient::with_rate_limiter`: a [`SharedRateLimiter`]
/// on `db` when `config.shared` (after [`ensure_table`]), otherwise an in-process
/// [`GovernorRateLimiter`] of `config.limit()`. Its permits are [`Priority::Normal`].
///
/// # Errors
/// [`RateLimitError`] when the config is invalid or the table cannot be created.
pub async fn limiter_for(
    config: &RateLimitConfig,
    db: &DatabaseConnection,
) -> Result<Arc<dyn RateLimiter>, RateLimitError> {
    limiter_for_priority(config, db, Priority::Normal).await
}

/// [`limiter_for`] with permits of `priority`: a reader asks for [`Priority::Yield`] so that
/// its requests give way to the writers' on the same bucket. An in-process limiter
/// (`shared = false`) shares its bucket with nobody and ignores the priority.
///
/// # Errors
/// [`RateLimitError`] when the config or the priority is invalid (a reserve not below the
/// burst) or the table cannot be created.
pub async fn limiter_for_priority(
    config: &RateLimitConfig,
    db: &DatabaseConnection,
    priority: Priority,
) -> Result<Arc<dyn RateLimiter>, RateLimitError> {
    check_priority(config.limit(), priority)?;
    if config.shared {
        ensure_table(db).await?;
        Ok(Arc::new(
            SharedRateLimiter::new(db.clone(), config)?.with_priority(priority)?,
        ))
    } else {
        let mut problems = Problems::default();
        config.validate(&mut problems);
        if let Err(e) = problems.into_result() {
            return Err(RateLimitError::Config(e.to_string()));
        }
        Ok(Arc::new(MeteredLocal(
            GovernorRateLimiter::new(config.limit())
                .map_err(|e| RateLimitError::Config(e.to_string()))?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample `series` in `text`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Runs `test` on a current-thread runtime with a metrics recorder of its own and an
    /// in-memory SQLite database; its answer and the rendered metrics.
    fn with_local_metrics<T, F, Fut>(test: F) -> (T, String)
    where
        F: FnOnce(DatabaseConnection) -> Fut,
        Fut: Future<Output = T>,
    {
        let recorder = crate::metrics::builder().expect("builder").build_recorder();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let answer = metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let db = sea_orm::Database::connect("sqlite::memory:")
                    .await
                    .expect("SQLite in memory");
                test(db).await
            })
        });
        (answer, recorder.handle().render())
    }

    #[test]
    fn every_permit_records_its_wait_and_fallback_permits_are_counted() {
        let ((), text) = with_local_metrics(|db| async move {
            let mut local = RateLimitConfig::orcid_member("metrics-test");
            local.shared = false;
            let local = limiter_for(&local, &db).await.expect("local limiter");
            local.acquire().await;
            local.acquire().await;
            // No bucket table: the shared limiter's database fails, the fallback gives
            // the permit.
            let shared = SharedRateLimiter::new(db.clone(), &RateLimitConfig::orcid_member("none"))
                .expect("shared limiter");
            shared.acquire().await;
            assert!(shared.in_outage());
            ensure_table(&db).await.expect("table");
            let shared = SharedRateLimiter::new(db.clone(), &RateLimitConfig::orcid_member("t"))
                .expect("shared limiter");
            shared.acquire().await;
            let yielding = SharedRateLimiter::new(db.clone(), &RateLimitConfig::orcid_member("t"))
                .expect("shared limiter")
                .with_priority(Priority::Yield(YieldPolicy::for_burst(40)))
                .expect("yielding limiter");
            yielding.acquire().await;
        });
        assert_eq!(
            sample(
                &text,
                "idbridge_ratelimit_wait_seconds_count{scope=\"local\"}"
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "idbridge_ratelimit_wait_seconds_count{scope=\"shared\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "idbridge_ratelimit_wait_seconds_bucket{scope=\"shared\",le=\"0\"}"
            ),
            Some(1.0),
            "a free permit waits 0: {text}"
        );
        assert_eq!(
            sample(
                &text,
                "idbridge_ratelimit_wait_seconds_bucket{scope=\"shared-yield\",le=\"0\"}"
            ),
            Some(1.0),
            "a free yielding permit waits 0: {text}"
        );
        assert_eq!(
            sample(&text, "idbridge_ratelimit_fallback_total"),
            Some(1.0),
            "{text}"
        );
    }

    #[test]
    fn yield_refusals_and_overruns_are_counted() {
        let (stats, text) = with_local_metrics(|db| async move {
            ensure_table(&db).await.expect("table");
            let mut config = RateLimitConfig::orcid_member("overrun");
            config.per_second = 2;
            config.burst = 2;
            // A writer empties the bucket: 0 tokens, the reserve (1) needs 2 before a read.
            let writer = SharedRateLimiter::new(db.clone(), &config).expect("writer");
            writer.acquire().await;
            writer.acquire().await;
            let reader = SharedRateLimiter::new(db.clone(), &config)
                .expect("reader")
                .with_priority(Priority::Yield(YieldPolicy {
                    reserve: 1,
                    max_yield: Duration::from_millis(100),
                }))
                .expect("yielding limiter");
            reader.acquire().await;
            reader.stats()
        });
        assert_eq!(stats.yield_overruns, 1, "{stats:?}");
        assert!(stats.yield_refusals >= 1, "{stats:?}");
        assert_eq!(
            sample(&text, "idbridge_ratelimit_yield_overruns_total"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "idbridge_ratelimit_yield_refusals_total"),
            Some(stats.yield_refusals as f64),
            "{text}"
        );
    }
}
