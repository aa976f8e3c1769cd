//! Acquire latency of the shared rate limiter with the limit lifted (so every figure is the
//! database round trip, not a wait), against the PostgreSQL at `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), in a database of its own.
//!
//! ```sh
//! cargo bench -p idbridge-platform --bench ratelimit
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use idbridge_platform::ratelimit::{RateLimitConfig, SharedRateLimiter, ensure_table};
use orcid::client::RateLimiter;
use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use tokio::time::Instant;

const PERMITS: usize = 4000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run(limiter: Arc<SharedRateLimiter>, tasks: usize) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let limiter = Arc::clone(&limiter);
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(PERMITS / tasks);
            for _ in 0..PERMITS / tasks {
                let t = Instant::now();
                limiter.acquire().await;
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut all = Vec::with_capacity(PERMITS);
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    (all, start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let admin = Database::connect(&admin_url)
        .await
        .expect("the benchmark needs PostgreSQL at TEST_DATABASE_URL");
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = admin_url
        .split('?')
        .next()
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0;
    let mut options = ConnectOptions::new(format!("{base}/{name}"));
    options.max_connections(8).sqlx_logging(false);
    let db = Database::connect(options).await.unwrap();
    ensure_table(&db).await.unwrap();

    println!(
        "shared rate limiter, limit lifted, {PERMITS} permits per row, PostgreSQL on loopback"
    );
    println!(
        "{:<34} {:>9} {:>9} {:>12}",
        "case", "p50", "p99", "permits/s"
    );
    for (tasks, batch) in [(1, 1), (8, 1), (1, 10), (8, 10)] {
        let config = RateLimitConfig {
            shared: true,
            bucket: format!("bench-{tasks}-{batch}"),
            per_second: 10_000_000,
            burst: 10_000_000,
            replicas_hint: 1,
            batch,
        };
        let limiter = Arc::new(SharedRateLimiter::new(db.clone(), &config).unwrap());
        // Warm the pool and the statement cache.
        for _ in 0..50 {
            limiter.acquire().await;
        }
        let (samples, took) = run(Arc::clone(&limiter), tasks).await;
        assert_eq!(
            limiter.stats().fallback_permits,
            0,
            "the database fell over"
        );
        println!(
            "{:<34} {:>9.3?} {:>9.3?} {:>12.0}",
            format!("{tasks} task(s), batch {batch}"),
            percentile(&samples, 0.50),
            percentile(&samples, 0.99),
            samples.len() as f64 / took.as_secs_f64()
        );
    }
    db.close().await.unwrap();
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    let _ = admin.close().await;
}
