//! The shared `[database]` section: its validation messages and the pool it opens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use idbridge_platform::config::{Problems, Validate};
use idbridge_platform::database::{DatabaseConfig, connect, with_migration_lock};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use secrecy::SecretString;
use tokio::sync::oneshot;

use crate::ratelimit::PgDb;

fn config(url: &str, max_connections: u32) -> DatabaseConfig {
    DatabaseConfig {
        url: SecretString::from(url.to_owned()),
        max_connections,
        migrate: false,
    }
}

fn problem_keys(config: &DatabaseConfig) -> Vec<String> {
    let mut problems = Problems::default();
    config.validate(&mut problems);
    problems.as_slice().iter().map(|p| p.key.clone()).collect()
}

#[test]
fn postgres_and_sqlite_urls_are_accepted() {
    for url in [
        "postgres://u@h:5432/idbridge",
        "postgresql://u@h/idbridge",
        "sqlite://x.sqlite?mode=rwc",
        "sqlite::memory:",
    ] {
        assert!(problem_keys(&config(url, 5)).is_empty(), "{url}");
    }
}

#[test]
fn a_foreign_url_and_an_empty_pool_are_both_reported_with_their_fix() {
    let mut problems = Problems::default();
    config("mysql://root:TEST_DB_PASSWORD@h/db", 0).validate(&mut problems);
    let problems = problems.as_slice();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].key, "database.url");
    assert_eq!(
        problems[0].problem,
        "is neither a PostgreSQL nor a SQLite URL"
    );
    assert!(!problems[0].problem.contains("TEST_DB_PASSWORD"));
    assert!(!problems[0].fix.contains("TEST_DB_PASSWORD"));
    assert_eq!(problems[1].key, "database.max_connections");
    assert_eq!(problems[1].fix, "use at least 1");
}

#[test]
fn the_section_keeps_its_toml_keys_and_rejects_unknown_ones() {
    let parsed: DatabaseConfig = serde_json::from_value(serde_json::json!({
        "url": "sqlite::memory:", "max_connections": 3, "migrate": true
    }))
    .unwrap();
    assert_eq!(parsed.max_connections, 3);
    assert!(parsed.migrate);
    let unknown = serde_json::from_value::<DatabaseConfig>(serde_json::json!({
        "url": "sqlite::memory:", "max_connections": 3, "migrate": true, "pool": 1
    }));
    assert!(unknown.is_err());
}

#[tokio::test]
async fn a_sqlite_file_is_opened_in_wal_mode_with_a_busy_timeout() {
    let path = std::env::temp_dir().join(format!(
        "idbridge-platform-{}-{}.sqlite",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let db = connect(
        &config(&format!("sqlite://{}?mode=rwc", path.display()), 2),
        "idbridge-test",
    )
    .await
    .unwrap();
    let pragma = |sql: &'static str| {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let mode: String = pragma("PRAGMA journal_mode")
        .await
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let timeout: i64 = pragma("PRAGMA busy_timeout")
        .await
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(timeout, 30_000);
    db.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens, so the refusal is immediate.
    let error = connect(
        &config(
            "postgres://idbridge:TEST_DB_PASSWORD@127.0.0.1:1/idbridge",
            1,
        ),
        "idbridge-test",
    )
    .await
    .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
    assert!(!shown.contains("TEST_DB_PASSWORD"), "{shown}");
}

/// `application_name` of a fresh connection from `db`'s pool.
async fn application_name(db: &DatabaseConnection) -> String {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT current_setting('application_name') AS name",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "name")
    .unwrap()
}

#[tokio::test]
async fn a_postgres_connection_names_its_service_unless_the_url_names_one() {
    let url = crate::ratelimit::admin_url();
    let db = connect(&config(&url, 1), "idbridge-writer")
        .await
        .unwrap_or_else(|e| {
            panic!("this test needs PostgreSQL at {url} (set TEST_DATABASE_URL): {e}")
        });
    // `PGAPPNAME` in the environment wins over the service's name (and this test cannot
    // unset it without racing the other tests' threads).
    let expected = std::env::var("PGAPPNAME").unwrap_or_else(|_| "idbridge-writer".to_owned());
    assert_eq!(application_name(&db).await, expected);
    db.close().await.unwrap();

    let separator = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{separator}application_name=ops-console");
    let db = connect(&config(&named, 1), "idbridge-writer")
        .await
        .unwrap();
    assert_eq!(application_name(&db).await, "ops-console");
    db.close().await.unwrap();
}

/// Sessions of `db`'s database holding (`granted`) or waiting for an advisory lock.
async fn advisory_locks(db: &DatabaseConnection, granted: bool) -> i64 {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted = $1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [granted.into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "n")
    .unwrap()
}

/// Polls until `advisory_locks(db, granted)` is `n` (10 s at most).
async fn until_advisory_locks(db: &DatabaseConnection, granted: bool, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = advisory_locks(db, granted).await;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} advisory lock(s) with granted = {granted}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn migrations_of_two_processes_take_turns_and_the_lock_is_released_however_they_end() {
    let pg = PgDb::create().await;
    // Two pools of one connection each, as two replicas would open them.
    let first = connect(&config(pg.url(), 1), "idbridge-test-first")
        .await
        .unwrap();
    let second = connect(&config(pg.url(), 1), "idbridge-test-second")
        .await
        .unwrap();
    let observer = pg.pool().await;

    let (entered, entered_rx) = oneshot::channel();
    let (finish, finish_rx) = oneshot::channel::<()>();
    let first_run = tokio::spawn({
        let first = first.clone();
        async move {
            with_migration_lock(&first, async {
                // A pool of one still serves the migrations: the lock's connection left it.
                first
                    .execute_unprepared("CREATE TABLE first_service (id INTEGER)")
                    .await?;
                let _ = entered.send(());
                let _ = finish_rx.await;
                Ok::<_, DbErr>("first")
            })
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(10), entered_rx)
        .await
        .expect("the first migrations start")
        .expect("the first migrations run");
    assert_eq!(
        advisory_locks(&observer, true).await,
        1,
        "the first holds it"
    );

    let second_ran = Arc::new(AtomicBool::new(false));
    let second_run = tokio::spawn({
        let (second, ran) = (second.clone(), second_ran.clone());
        async move {
            with_migration_lock(&second, async {
                ran.store(true, Ordering::SeqCst);
                second
                    .execute_unprepared("CREATE TABLE second_service (id INTEGER)")
                    .await?;
                Ok::<_, DbErr>("second")
            })
            .await
        }
    });
    // The second waits inside PostgreSQL, its migrations not started.
    until_advisory_locks(&observer, false, 1).await;
    assert!(
        !second_ran.load(Ordering::SeqCst),
        "ran while the first held the lock"
    );

    finish.send(()).unwrap();
    assert_eq!(first_run.await.unwrap().unwrap(), "first");
    assert_eq!(second_run.await.unwrap().unwrap(), "second");
    until_advisory_locks(&observer, true, 0).await;

    // Failed migrations release it, and so do migrations whose future is dropped.
    let failed = with_migration_lock(&first, async {
        Err::<(), _>(DbErr::Custom("TEST migration failure".to_owned()))
    })
    .await;
    assert!(
        matches!(&failed, Err(DbErr::Custom(m)) if m == "TEST migration failure"),
        "{failed:?}"
    );
    until_advisory_locks(&observer, true, 0).await;
    let (entered, entered_rx) = oneshot::channel();
    let abandoned = tokio::spawn({
        let first = first.clone();
        async move {
            with_migration_lock(&first, async {
                let _ = entered.send(());
                std::future::pending::<()>().await;
                Ok::<_, DbErr>(())
            })
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(10), entered_rx)
        .await
        .expect("the abandoned migrations start: the lock is free")
        .expect("the abandoned migrations run");
    abandoned.abort();
    tokio::time::timeout(
        Duration::from_secs(10),
        with_migration_lock(&second, async { Ok::<_, DbErr>(()) }),
    )
    .await
    .expect("the lock of dropped migrations is released")
    .unwrap();

    for db in [first, second, observer] {
        let _ = db.close().await;
    }
    pg.drop().await;
}

#[tokio::test]
async fn on_sqlite_the_migrations_simply_run() {
    let db = connect(&config("sqlite::memory:", 1), "idbridge-test")
        .await
        .unwrap();
    let result = with_migration_lock(&db, async {
        db.execute_unprepared("CREATE TABLE t (id INTEGER)").await?;
        Ok::<_, DbErr>(7)
    })
    .await;
    assert_eq!(result.unwrap(), 7);
}
