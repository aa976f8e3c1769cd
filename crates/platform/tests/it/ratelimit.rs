//! The shared rate limiter: one budget for several replicas (separate pools on one database),
//! the burst of a fresh bucket, SQLite, and the fallback when the database is gone.

use std::sync::Arc;
use std::time::Duration;

use idbridge_platform::config::{Problems, Validate};
use idbridge_platform::ratelimit::{RateLimitConfig, SharedRateLimiter, ensure_table, limiter_for};
use orcid::client::RateLimiter;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tokio::time::Instant;
use uuid::Uuid;

pub(crate) fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of this test's own on the test PostgreSQL server, dropped by [`PgDb::drop`].
pub(crate) struct PgDb {
    url: String,
    name: String,
}

impl PgDb {
    pub(crate) async fn create() -> Self {
        let admin_url = admin_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("rate limit tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL): {e}")
        });
        let name = format!("test_{}", Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let _ = admin.close().await;
        let (base, _) = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .unwrap();
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Its URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A new pool, as a separate replica would open.
    pub(crate) async fn pool(&self) -> DatabaseConnection {
        Database::connect(&self.url).await.unwrap()
    }

    pub(crate) async fn drop(self) {
        let admin = Database::connect(&admin_url()).await.unwrap();
        let _ = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
        let _ = admin.close().await;
    }
}

pub(crate) fn config(bucket: &str, per_second: u32, burst: u32) -> RateLimitConfig {
    RateLimitConfig {
        shared: true,
        bucket: bucket.to_owned(),
        per_second,
        burst,
        replicas_hint: 1,
        batch: 1,
    }
}

/// Runs `tasks` tasks per limiter, each taking permits until `run` has passed; returns the
/// permits granted within the run and the run's measured length.
async fn hammer(
    limiters: &[Arc<SharedRateLimiter>],
    tasks: usize,
    run: Duration,
) -> (u64, Duration) {
    let start = Instant::now();
    let end = start + run;
    let mut handles = Vec::new();
    for limiter in limiters {
        for _ in 0..tasks {
            let limiter = Arc::clone(limiter);
            handles.push(tokio::spawn(async move {
                let mut granted = 0u64;
                loop {
                    limiter.acquire().await;
                    if Instant::now() > end {
                        break;
                    }
                    granted += 1;
                }
                granted
            }));
        }
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    eprintln!("{total} permits granted in {run:?}");
    (total, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_budget() {
    let pg = PgDb::create().await;
    let (rate, burst) = (40u32, 20u32);
    let mut limiters = Vec::new();
    let mut pools = Vec::new();
    for _ in 0..3 {
        let db = pg.pool().await;
        ensure_table(&db).await.unwrap();
        limiters.push(Arc::new(
            SharedRateLimiter::new(db.clone(), &config("orcid-APP-TEST", rate, burst)).unwrap(),
        ));
        pools.push(db);
    }
    let (granted, run) = hammer(&limiters, 4, Duration::from_secs(3)).await;
    let allowed = f64::from(burst) + f64::from(rate) * run.as_secs_f64();
    let granted_f = granted as f64;
    assert!(
        granted_f <= allowed + 3.0,
        "{granted} permits in {run:?}, the bucket allows {allowed}"
    );
    assert!(
        granted_f >= 0.8 * allowed,
        "only {granted} permits in {run:?} of the {allowed} allowed"
    );
    // Every replica got a share, and none fell back.
    for limiter in &limiters {
        let stats = limiter.stats();
        assert!(stats.permits > 0, "{stats:?}");
        assert_eq!(stats.fallback_permits, 0, "{stats:?}");
        assert_eq!(stats.outages, 0, "{stats:?}");
        assert!(stats.waits > 0, "{stats:?}");
    }
    // One row, named by the bucket.
    let row = pools[0]
        .query_one_raw(Statement::from_string(
            pools[0].get_database_backend(),
            "SELECT COUNT(*) AS n, MIN(name) AS name FROM idbridge_rate_buckets",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1);
    assert_eq!(row.try_get::<String>("", "name").unwrap(), "orcid-APP-TEST");
    for db in pools {
        db.close().await.unwrap();
    }
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_permits_keep_the_shared_budget() {
    let pg = PgDb::create().await;
    let (rate, burst) = (40u32, 20u32);
    let mut limiters = Vec::new();
    let mut pools = Vec::new();
    for _ in 0..2 {
        let db = pg.pool().await;
        ensure_table(&db).await.unwrap();
        let mut config = config("batched", rate, burst);
        config.batch = 4;
        limiters.push(Arc::new(
            SharedRateLimiter::new(db.clone(), &config).unwrap(),
        ));
        pools.push(db);
    }
    let (granted, run) = hammer(&limiters, 3, Duration::from_secs(3)).await;
    let allowed = f64::from(burst) + f64::from(rate) * run.as_secs_f64();
    // Each replica may run up to batch - 1 permits ahead of the shared burst.
    assert!(
        granted as f64 <= allowed + 2.0 * 3.0 + 3.0,
        "{granted} permits in {run:?}, the bucket allows {allowed}"
    );
    assert!(
        granted as f64 >= 0.8 * allowed,
        "only {granted} permits of {allowed}"
    );
    // Fewer round trips than permits.
    let trips: u64 = limiters.iter().map(|l| l.stats().db_round_trips).sum();
    let permits: u64 = limiters.iter().map(|l| l.stats().permits).sum();
    assert!(
        trips * 3 <= permits,
        "{trips} round trips for {permits} permits"
    );
    for db in pools {
        db.close().await.unwrap();
    }
    pg.drop().await;
}

#[tokio::test]
async fn a_fresh_bucket_gives_its_burst_at_once_then_waits() {
    let pg = PgDb::create().await;
    let db = pg.pool().await;
    ensure_table(&db).await.unwrap();
    // A slow refill so that the burst is all there is within the test.
    let limiter = SharedRateLimiter::new(db.clone(), &config("fresh", 1, 10)).unwrap();
    let start = Instant::now();
    for _ in 0..10 {
        let waited = limiter.acquire().await;
        assert_eq!(waited, Duration::ZERO);
    }
    assert_eq!(limiter.stats().waits, 0);
    // The 11th permit is not given before the bucket has refilled one token (1 s at 1/s).
    let waited = limiter.acquire().await;
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "11 permits in {:?} from a bucket of 10 at 1/s",
        start.elapsed()
    );
    assert!(waited <= Duration::from_secs(1), "{waited:?}");
    assert_eq!(limiter.stats().permits, 11);
    db.close().await.unwrap();
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pool_falls_back_to_a_local_limit_and_warns_once() {
    let pg = PgDb::create().await;
    let db = pg.pool().await;
    ensure_table(&db).await.unwrap();
    let mut config = config("outage", 20, 10);
    config.replicas_hint = 2; // fallback: 10/s, burst 5
    let limiter = Arc::new(
        SharedRateLimiter::new(db.clone(), &config)
            .unwrap()
            .with_timeouts(Duration::from_millis(500), Duration::from_millis(200)),
    );
    limiter.acquire().await;
    assert!(!limiter.in_outage());
    db.close_by_ref().await.unwrap();

    let (granted, run) = hammer(&[Arc::clone(&limiter)], 3, Duration::from_secs(2)).await;
    let fallback = config.fallback_limit();
    let allowed = f64::from(fallback.burst) + f64::from(fallback.per_second) * run.as_secs_f64();
    assert!(
        granted as f64 <= allowed + 2.0,
        "{granted} permits in {run:?} during the outage, the fallback allows {allowed}"
    );
    assert!(
        granted as f64 >= 0.7 * allowed,
        "the fallback stalled: {granted} permits of {allowed}"
    );
    let stats = limiter.stats();
    assert!(limiter.in_outage());
    assert_eq!(stats.outages, 1, "one outage, one warning: {stats:?}");
    assert!(stats.fallback_permits >= granted, "{stats:?}");
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_never_answers_costs_one_timeout_not_one_per_caller() {
    // A server that accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut options =
        sea_orm::ConnectOptions::new(format!("postgres://postgres@127.0.0.1:{port}/silent"));
    options
        .connect_lazy(true)
        .acquire_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30));
    let db = Database::connect(options).await.unwrap();
    let mut config = config("silent", 100, 40);
    config.replicas_hint = 2;
    config.batch = 4;
    let limiter = Arc::new(
        SharedRateLimiter::new(db, &config)
            .unwrap()
            .with_timeouts(Duration::from_millis(300), Duration::from_secs(60)),
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // One 0.3 s timeout, then the local fallback (burst 20): not 8 timeouts in a row.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let stats = limiter.stats();
    assert_eq!((stats.outages, stats.fallback_permits), (1, 8), "{stats:?}");
    silent.abort();
}

#[tokio::test]
async fn the_limiter_goes_back_to_the_database_when_it_answers_again() {
    // A lazy pool to a database that does not exist yet: every statement fails.
    let pg = PgDb {
        name: format!("test_{}", Uuid::new_v4().simple()),
        url: String::new(),
    };
    let (base, _) = admin_url()
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(b, d)| (b.to_owned(), d.to_owned()))
        .unwrap();
    let url = format!("{base}/{}", pg.name);
    let mut options = sea_orm::ConnectOptions::new(url);
    options.connect_lazy(true);
    let db = Database::connect(options).await.unwrap();
    let limiter = SharedRateLimiter::new(db.clone(), &config("recover", 100, 100))
        .unwrap()
        .with_timeouts(Duration::from_secs(2), Duration::from_millis(100));
    limiter.acquire().await;
    assert!(limiter.in_outage());

    // The database appears, with its table.
    let admin = Database::connect(&admin_url()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {}", pg.name))
        .await
        .unwrap();
    let _ = admin.close().await;
    ensure_table(&db).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while limiter.in_outage() {
        assert!(
            Instant::now() < deadline,
            "never went back: {:?}",
            limiter.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        limiter.acquire().await;
    }
    let stats = limiter.stats();
    assert_eq!(stats.outages, 1, "{stats:?}");
    assert!(stats.db_round_trips >= 1, "{stats:?}");
    db.close().await.unwrap();
    pg.drop().await;
}

/// A lazy pool on a port where no PostgreSQL listens: every statement fails.
pub(crate) async fn unreachable_db() -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new("postgres://postgres@127.0.0.1:1/nowhere");
    options
        .connect_lazy(true)
        .acquire_timeout(Duration::from_secs(30));
    Database::connect(options).await.unwrap()
}

#[tokio::test]
async fn an_unreachable_server_falls_back_at_once() {
    let db = unreachable_db().await;
    let limiter = SharedRateLimiter::new(db, &config("unreachable", 1, 3))
        .unwrap()
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(60));
    let start = Instant::now();
    for _ in 0..3 {
        limiter.acquire().await;
    }
    // One probe (at most the timeout), then the local burst.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let waited = limiter.acquire().await;
    assert!(waited > Duration::ZERO, "the fallback limits too");
    let stats = limiter.stats();
    assert_eq!((stats.outages, stats.fallback_permits), (1, 4), "{stats:?}");
}

#[tokio::test]
async fn sqlite_shares_the_bucket_between_pools_on_one_file() {
    let path = std::env::temp_dir().join(format!("ratelimit-{}.sqlite", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let a = Database::connect(&url).await.unwrap();
    let b = Database::connect(&url).await.unwrap();
    ensure_table(&a).await.unwrap();
    ensure_table(&b).await.unwrap();
    let la = SharedRateLimiter::new(a.clone(), &config("lite", 1, 4)).unwrap();
    let lb = SharedRateLimiter::new(b.clone(), &config("lite", 1, 4)).unwrap();
    let start = Instant::now();
    for limiter in [&la, &lb, &la, &lb] {
        assert_eq!(limiter.acquire().await, Duration::ZERO);
    }
    // The burst of 4 is spent between the two: the fifth permit waits for a refill (1 s).
    lb.acquire().await;
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(la.stats().db_round_trips + lb.stats().db_round_trips, 5);
    a.close().await.unwrap();
    b.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn limiter_for_builds_shared_or_local_from_the_config() {
    let path = std::env::temp_dir().join(format!("ratelimit-{}.sqlite", Uuid::new_v4().simple()));
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let shared = limiter_for(&config("svc", 24, 40), &db).await.unwrap();
    assert!(format!("{shared:?}").starts_with("SharedRateLimiter"));
    let mut local = config("", 24, 40);
    local.shared = false;
    let local = limiter_for(&local, &db).await.unwrap();
    assert!(format!("{local:?}").starts_with("GovernorRateLimiter"));
    db.close().await.unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_config_is_validated_and_parsed_with_defaults() {
    let parsed: RateLimitConfig = serde_json::from_value(serde_json::json!({
        "shared": true, "bucket": "orcid", "per_second": 24, "burst": 40
    }))
    .unwrap();
    assert_eq!(parsed, RateLimitConfig::orcid_member("orcid"));
    let mut bad = config(" ", 0, 2);
    bad.batch = 3;
    bad.replicas_hint = 0;
    let mut problems = Problems::default();
    bad.validate(&mut problems);
    let keys: Vec<_> = problems.as_slice().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "rate_limit.per_second",
            "rate_limit.replicas_hint",
            "rate_limit.batch",
            "rate_limit.bucket"
        ]
    );
    assert!(
        serde_json::from_value::<RateLimitConfig>(serde_json::json!({
            "shared": true, "bucket": "o", "per_second": 1, "burst": 1, "rate": 3
        }))
        .is_err()
    );
}
