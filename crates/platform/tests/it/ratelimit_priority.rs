//! Priorities on the shared bucket: a yielding (reader's) permit keeps the reserve in the
//! bucket, on PostgreSQL and on SQLite; it waits while normal (writer's) permits are in debt
//! and goes after them; `max_yield` bounds its wait; and the `read_*` keys of
//! `[orcid.rate_limit]` are parsed, defaulted and validated.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use idbridge_platform::config::Sources;
use idbridge_platform::ratelimit::{
    Priority, RateLimitError, SharedRateLimiter, YieldPolicy, ensure_table, limiter_for_priority,
};
use orcid::client::RateLimiter;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use crate::orcid::{DEFAULTS, Settings};
use crate::ratelimit::{PgDb, config, unreachable_db};

fn yielding(reserve: u32, max_yield: Duration) -> Priority {
    Priority::Yield(YieldPolicy { reserve, max_yield })
}

/// A SQLite file of this test's own.
async fn sqlite() -> (DatabaseConnection, PathBuf) {
    let path = std::env::temp_dir().join(format!("ratelimit-prio-{}.sqlite", Uuid::new_v4()));
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    (db, path)
}

async fn drop_sqlite(db: DatabaseConnection, path: PathBuf) {
    db.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// The tokens stored in the bucket's row (as left by the last take, not refilled).
async fn stored_tokens(db: &DatabaseConnection, bucket: &str) -> f64 {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT tokens FROM idbridge_rate_buckets WHERE name = $1",
        _ => "SELECT tokens FROM idbridge_rate_buckets WHERE name = ?",
    };
    db.query_one_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(bucket.to_owned())],
    ))
    .await
    .unwrap()
    .expect("the bucket's row")
    .try_get::<f64>("", "tokens")
    .unwrap()
}

/// The conditional take on one backend: a fresh bucket (burst 10, 1/s) gives a yielding
/// limiter with reserve 5 exactly five free permits, the first inserting the row; the sixth
/// is refused (the row left as it was) until a second of refill, and the reserve is kept.
async fn a_yielding_take_keeps_the_reserve(db: &DatabaseConnection) {
    ensure_table(db).await.unwrap();
    let bucket = "yield-reserve";
    let reader = SharedRateLimiter::new(db.clone(), &config(bucket, 1, 10))
        .unwrap()
        .with_priority(yielding(5, Duration::from_secs(10)))
        .unwrap();
    let mut before_fifth = Instant::now();
    for i in 0..5 {
        before_fifth = Instant::now();
        assert_eq!(reader.acquire().await, Duration::ZERO, "permit {i}");
    }
    // About 5 left: 10 less five, plus what 1/s refilled meanwhile.
    let left = stored_tokens(db, bucket).await;
    assert!((5.0..5.9).contains(&left), "five permits of ten: {left}");
    let stats = reader.stats();
    assert_eq!(
        (stats.yield_refusals, stats.yield_overruns),
        (0, 0),
        "{stats:?}"
    );

    // A sixth now would leave below 5: refused, and taken only once the bucket holds 6 again,
    // (6 - left) s at 1/s after the fifth take (without the reserve it would be free).
    let start = Instant::now();
    let waited = reader.acquire().await;
    let got = Instant::now();
    let refill = Duration::from_secs_f64(6.0 - left);
    let slack = Duration::from_millis(100);
    assert!(
        got - before_fifth + slack >= refill,
        "the sixth permit came {:?} after the fifth, the bucket needs {refill:?} to hold 6",
        got - before_fifth
    );
    assert!(waited > Duration::ZERO, "{waited:?}");
    assert!(waited <= got - start, "{waited:?}");
    assert!(got - start < Duration::from_secs(3), "{:?}", got - start);
    let stats = reader.stats();
    assert!(stats.yield_refusals >= 1, "{stats:?}");
    assert_eq!(stats.yield_overruns, 0, "{stats:?}");
    assert_eq!(stats.fallback_permits, 0, "{stats:?}");
    let left = stored_tokens(db, bucket).await;
    assert!(left >= 5.0, "the reserve was not kept: {left}");
}

#[tokio::test]
async fn a_yielding_take_keeps_the_reserve_on_postgres() {
    let pg = PgDb::create().await;
    let db = pg.pool().await;
    a_yielding_take_keeps_the_reserve(&db).await;
    db.close().await.unwrap();
    pg.drop().await;
}

#[tokio::test]
async fn a_yielding_take_keeps_the_reserve_on_sqlite() {
    let (db, path) = sqlite().await;
    a_yielding_take_keeps_the_reserve(&db).await;
    drop_sqlite(db, path).await;
}

/// A writer with three tasks taking permits one after the other (so the bucket stays in
/// debt once the burst is spent, even when a round trip is slow): it tells `started` after
/// `signal_after` permits, stops after `permits` permits, when `stop` is set, or at
/// `deadline`; returns when its last permit came and how many it took.
fn spawn_writer(
    writer: Arc<SharedRateLimiter>,
    permits: usize,
    signal_after: usize,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> (
    oneshot::Receiver<()>,
    tokio::task::JoinHandle<(Instant, usize)>,
) {
    let (started, receiver) = oneshot::channel();
    let started = Arc::new(std::sync::Mutex::new(Some(started)));
    let asked = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = (0..3)
        .map(|_| {
            let (writer, stop, started) =
                (Arc::clone(&writer), Arc::clone(&stop), Arc::clone(&started));
            let (asked, taken) = (Arc::clone(&asked), Arc::clone(&taken));
            tokio::spawn(async move {
                let mut last = None;
                while !stop.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                    && asked.fetch_add(1, Ordering::Relaxed) < permits
                {
                    writer.acquire().await;
                    last = Some(Instant::now());
                    if taken.fetch_add(1, Ordering::Relaxed) + 1 == signal_after
                        && let Some(started) = started.lock().unwrap().take()
                    {
                        let _ = started.send(());
                    }
                }
                last
            })
        })
        .collect();
    let task = tokio::spawn(async move {
        let mut last = None;
        for one in loops {
            last = last.max(one.await.unwrap());
        }
        (last.unwrap(), taken.load(Ordering::Relaxed))
    });
    (receiver, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yielding_permit_waits_for_queued_writes_and_the_reserve() {
    let pg = PgDb::create().await;
    let (writer_db, reader_db) = (pg.pool().await, pg.pool().await);
    ensure_table(&writer_db).await.unwrap();
    let (rate, burst, reserve) = (20u32, 10u32, 5u32);
    let bucket = "yield-debt";
    let writer =
        Arc::new(SharedRateLimiter::new(writer_db.clone(), &config(bucket, rate, burst)).unwrap());
    let reader = SharedRateLimiter::new(reader_db.clone(), &config(bucket, rate, burst))
        .unwrap()
        .with_priority(yielding(reserve, Duration::from_secs(10)))
        .unwrap();

    // The writer spends the burst (10) and 20 more permits in debt: 1 s at 20/s. The read
    // asks once the writer is 5 permits into debt.
    let stop = Arc::new(AtomicBool::new(false));
    let (started, writer_task) = spawn_writer(
        Arc::clone(&writer),
        30,
        15,
        stop,
        Instant::now() + Duration::from_secs(10),
    );
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the writer took 15 permits")
        .unwrap();
    let asked = Instant::now();
    let waited = reader.acquire().await;
    let got = Instant::now();
    let (writer_done, written) = writer_task.await.unwrap();
    assert_eq!(written, 30);

    // Every queued write went first.
    assert!(
        got > writer_done,
        "the read came {:?} before the writer's last permit",
        writer_done - got
    );
    // After the writer's last permit the bucket held about 0; the read needs reserve + 1 = 6
    // tokens, 0.3 s at 20/s.
    let after_writes = got - writer_done;
    assert!(
        after_writes >= Duration::from_millis(250),
        "the read came {after_writes:?} after the last write; the bucket needs 0.3 s to hold \
         its reserve again"
    );
    // 15 writes left when it asked (0.75 s) plus the refill to the reserve (0.3 s).
    assert!(
        waited >= Duration::from_millis(900),
        "the read waited {waited:?}"
    );
    assert!(waited <= got - asked, "{waited:?} > {:?}", got - asked);
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    let stats = reader.stats();
    assert!(stats.yield_refusals >= 1, "{stats:?}");
    assert_eq!(
        (stats.yield_overruns, stats.fallback_permits),
        (0, 0),
        "{stats:?}"
    );
    // The writer went into debt (about 20 waits: a few permits come from the refill while
    // the burst is spent, more on a slow database).
    assert!(writer.stats().waits >= 10, "{:?}", writer.stats());
    let left = stored_tokens(&reader_db, bucket).await;
    assert!(left >= f64::from(reserve), "the read left {left}");

    writer_db.close().await.unwrap();
    reader_db.close().await.unwrap();
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_yield_bounds_the_wait_with_a_debt_permit() {
    let pg = PgDb::create().await;
    let (writer_db, reader_db) = (pg.pool().await, pg.pool().await);
    ensure_table(&writer_db).await.unwrap();
    let bucket = "yield-bounded";
    let max_yield = Duration::from_millis(300);
    let writer =
        Arc::new(SharedRateLimiter::new(writer_db.clone(), &config(bucket, 20, 10)).unwrap());
    let reader = SharedRateLimiter::new(reader_db.clone(), &config(bucket, 20, 10))
        .unwrap()
        .with_priority(yielding(5, max_yield))
        .unwrap();

    // A writer that never stops draining the bucket (until told, or 10 s).
    let stop = Arc::new(AtomicBool::new(false));
    let (started, writer_task) = spawn_writer(
        Arc::clone(&writer),
        usize::MAX,
        12,
        Arc::clone(&stop),
        Instant::now() + Duration::from_secs(10),
    );
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the writer took 12 permits")
        .unwrap();
    let asked = Instant::now();
    let waited = reader.acquire().await;
    let took = asked.elapsed();
    let still_writing = !writer_task.is_finished();
    stop.store(true, Ordering::Relaxed);
    let (_, written) = writer_task.await.unwrap();
    assert!(still_writing, "the writer stopped draining the bucket");

    // It yielded max_yield, then took a normal permit in debt: one or two writers' turns.
    assert!(took >= max_yield, "the read came after {took:?}");
    assert!(waited >= max_yield, "{waited:?}");
    assert!(
        took < Duration::from_millis(1500),
        "the read came after {took:?}, max_yield is {max_yield:?}"
    );
    let stats = reader.stats();
    assert_eq!(stats.yield_overruns, 1, "{stats:?}");
    assert!(stats.yield_refusals >= 1, "{stats:?}");
    assert_eq!(stats.permits, 1, "{stats:?}");
    assert!(written > 12, "{written}");

    writer_db.close().await.unwrap();
    reader_db.close().await.unwrap();
    pg.drop().await;
}

#[tokio::test]
async fn a_reserve_not_below_the_burst_is_refused_by_the_limiter() {
    let (db, path) = sqlite().await;
    let error = SharedRateLimiter::new(db.clone(), &config("refused", 20, 10))
        .unwrap()
        .with_priority(yielding(10, Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(error, RateLimitError::Config(_)), "{error:?}");
    assert!(error.to_string().contains("read_reserve"), "{error}");
    let error = limiter_for_priority(
        &config("refused", 20, 10),
        &db,
        yielding(12, Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("burst"), "{error}");
    // Below the burst it is fine, and the limiter says its priority.
    let limiter = limiter_for_priority(
        &config("fine", 20, 10),
        &db,
        yielding(9, Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(format!("{limiter:?}").contains("Yield"), "{limiter:?}");
    drop_sqlite(db, path).await;
}

#[test]
fn the_read_keys_default_to_half_the_burst_and_30_seconds() {
    let settings: Settings = Sources::new(DEFAULTS).load().unwrap();
    assert_eq!(
        settings.orcid.read_priority(),
        yielding(20, Duration::from_secs(30))
    );
    let settings: Settings = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__ORCID__RATE_LIMIT__BURST", "31")])
        .load()
        .unwrap();
    assert_eq!(
        settings.orcid.read_priority(),
        yielding(15, Duration::from_secs(30))
    );
    let settings: Settings = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__ORCID__RATE_LIMIT__BURST", "1")])
        .load()
        .unwrap();
    assert_eq!(
        settings.orcid.read_priority(),
        yielding(0, Duration::from_secs(30)),
        "a burst of 1 leaves no room for a reserve"
    );
    let settings: Settings = Sources::new(format!(
        "{DEFAULTS}\n[orcid.rate_limit]\nburst = 30\nread_reserve = 7\nread_max_yield_ms = 250\n"
    ))
    .load()
    .unwrap();
    assert_eq!(
        settings.orcid.read_priority(),
        yielding(7, Duration::from_millis(250))
    );
    assert_eq!(settings.orcid.rate_limit.burst, 30);
}

#[test]
fn a_read_reserve_not_below_the_burst_is_refused_naming_the_key() {
    let error = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__ORCID__RATE_LIMIT__READ_RESERVE", "40")])
        .load::<Settings>()
        .unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 1, "{error}");
    assert_eq!(problems[0].key, "orcid.rate_limit.read_reserve", "{error}");
    let message = error.to_string();
    assert!(
        message.contains("is 40, not below orcid.rate_limit.burst (40)"),
        "the problem quotes both numbers: {message}"
    );

    let error = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__ORCID__RATE_LIMIT__READ_MAX_YIELD_MS", "3600001")])
        .load::<Settings>()
        .unwrap_err();
    assert_eq!(
        error.problems()[0].key,
        "orcid.rate_limit.read_max_yield_ms",
        "{error}"
    );

    // Unknown keys are still refused, next to the new ones.
    let error = Sources::new(format!(
        "{DEFAULTS}\n[orcid.rate_limit]\nread_reserve = 3\nread_reserv = 3\n"
    ))
    .load::<Settings>()
    .unwrap_err();
    assert!(error.to_string().contains("read_reserv"), "{error}");
    let error = Sources::new(format!("{DEFAULTS}\nclient_secrte = \"x\"\n"))
        .load::<Settings>()
        .unwrap_err();
    assert!(error.to_string().contains("client_secrte"), "{error}");
}

#[tokio::test]
async fn the_reader_client_takes_yielding_permits_from_the_same_bucket() {
    let (db, path) = sqlite().await;
    let settings: Settings = Sources::new(DEFAULTS).load().unwrap();
    let writer = settings.orcid.client(&db).await.unwrap();
    let reader = settings
        .orcid
        .client_with_priority(&db, settings.orcid.read_priority())
        .await
        .unwrap();
    assert!(
        format!("{:?}", reader.rate_limiter()).contains("Yield"),
        "{:?}",
        reader.rate_limiter()
    );
    assert!(
        format!("{:?}", writer.rate_limiter()).contains("Normal"),
        "{:?}",
        writer.rate_limiter()
    );
    writer.rate_limiter().acquire().await;
    reader.rate_limiter().acquire().await;
    let left = stored_tokens(&db, "orcid:APP-ABCDEFGHIJKLMNOP").await;
    // 40 less two, plus what 24/s refilled between them (at most the one taken).
    assert!((38.0..=39.0).contains(&left), "two permits of 40: {left}");
    drop_sqlite(db, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yielding_callers_queue_behind_one_another_and_keep_the_reserve() {
    let pg = PgDb::create().await;
    let (writer_db, reader_db) = (pg.pool().await, pg.pool().await);
    ensure_table(&writer_db).await.unwrap();
    let bucket = "yield-queue";
    let writer =
        Arc::new(SharedRateLimiter::new(writer_db.clone(), &config(bucket, 20, 10)).unwrap());
    let reader = Arc::new(
        SharedRateLimiter::new(reader_db.clone(), &config(bucket, 20, 10))
            .unwrap()
            .with_priority(yielding(5, Duration::from_secs(10)))
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (started, writer_task) = spawn_writer(
        Arc::clone(&writer),
        20,
        12,
        stop,
        Instant::now() + Duration::from_secs(10),
    );
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the writer took 12 permits")
        .unwrap();
    // Three reads at once, while the writer is in debt.
    let reads: Vec<_> = (0..3)
        .map(|_| {
            let reader = Arc::clone(&reader);
            tokio::spawn(async move {
                let waited = reader.acquire().await;
                (Instant::now(), waited)
            })
        })
        .collect();
    let (writer_done, _) = writer_task.await.unwrap();
    for read in reads {
        let (got, waited) = read.await.unwrap();
        assert!(got > writer_done, "a read went before the queued writes");
        assert!(waited > Duration::ZERO, "{waited:?}");
    }
    let stats = reader.stats();
    assert_eq!(stats.permits, 3, "{stats:?}");
    assert_eq!(stats.yield_overruns, 0, "{stats:?}");
    let left = stored_tokens(&reader_db, bucket).await;
    assert!(left >= 5.0, "the reads left {left}");
    writer_db.close().await.unwrap();
    reader_db.close().await.unwrap();
    pg.drop().await;
}

#[tokio::test]
async fn yielding_callers_fall_back_like_the_others_when_the_database_is_gone() {
    let db = unreachable_db().await;
    let limiter = SharedRateLimiter::new(db, &config("unreachable-yield", 10, 4))
        .unwrap()
        .with_priority(yielding(2, Duration::from_secs(10)))
        .unwrap()
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(60));
    let start = Instant::now();
    for _ in 0..3 {
        limiter.acquire().await;
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(limiter.in_outage());
    let stats = limiter.stats();
    assert_eq!((stats.outages, stats.fallback_permits), (1, 3), "{stats:?}");
}
