//! `idbridge migrate` and `idbridge serve writer token-vault` against real PostgreSQL,
//! RabbitMQ and orcid-sim: health, readiness, metrics, and a graceful stop on SIGTERM.

use std::time::{Duration, Instant};

use bus::Topology;
use bus::events::exchanges;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

use crate::helpers::*;

const CLIENT_ID: &str = "APP-IDBRIDGETEST0001";
const CLIENT_SECRET: &str = "idbridge-test-secret";
const WRITER_TOKEN: &str = "TEST_IDBRIDGE_WRITER_TOKEN_0001";
const READER_TOKEN: &str = "TEST_IDBRIDGE_READER_TOKEN_0001";
const RECEIVER_TOKEN: &str = "TEST_IDBRIDGE_RECEIVER_TOKEN_001";

/// One configuration file for the command and the services.
fn config_file(dir: &TempDir, db_url: &str, prefix: &str, sim_url: &str) -> std::path::PathBuf {
    ServeConfig::new(db_url, prefix, sim_url, CLIENT_ID, CLIENT_SECRET)
        .writer(WRITER_TOKEN, "127.0.0.1:0")
        .reader(READER_TOKEN)
        .webhook_receiver(RECEIVER_TOKEN, "http://127.0.0.1:9/hooks", "127.0.0.1:0")
        .write(dir)
}

/// orcid-sim with this file's client.
async fn simulator() -> orcid_sim::SimHandle {
    orcid_sim::spawn(orcid_sim::SimConfig::for_tests().with_client(
        CLIENT_ID,
        CLIENT_SECRET,
        "http://127.0.0.1:9/cb",
    ))
    .await
    .expect("simulator")
}

async fn get(url: &str) -> (u16, String) {
    let res = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

async fn table_count(db_url: &str, prefix: &str) -> i64 {
    let db = Database::connect(db_url).await.expect("connect");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name LIKE '{prefix}%'"
            ),
        ))
        .await
        .expect("query")
        .expect("row");
    let n: i64 = row.try_get("", "n").expect("n");
    let _ = db.close().await;
    n
}

#[tokio::test]
async fn migrate_creates_every_services_tables() {
    let (db_url, db_name) = create_database().await;
    let dir = TempDir::new();
    let mut command = idbridge(&["migrate"]);
    command.env("IDBRIDGE__DATABASE__URL", &db_url);
    let run = tokio::task::spawn_blocking(move || run(command, DEADLINE))
        .await
        .expect("join");
    drop(dir);
    assert_eq!(run.code(), Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("token-vault: migrations applied"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("writer: migrations applied"),
        "{}",
        run.stdout
    );
    assert!(
        table_count(&db_url, "token_vault_").await > 0,
        "vault tables"
    );
    assert!(table_count(&db_url, "writer_").await > 0, "writer tables");
    for service in ["reader", "webhook-receiver", "portal"] {
        assert!(
            run.stdout
                .contains(&format!("{service}: migrations applied")),
            "{}",
            run.stdout
        );
    }
    assert!(table_count(&db_url, "reader_").await > 0, "reader tables");
    assert!(
        table_count(&db_url, "webhook_registrations").await > 0,
        "webhook receiver tables"
    );
    // Idempotent.
    let mut again = idbridge(&["migrate"]);
    again.env("IDBRIDGE__DATABASE__URL", &db_url);
    let second = tokio::task::spawn_blocking(move || crate::helpers::run(again, DEADLINE))
        .await
        .expect("join");
    assert_eq!(second.code(), Some(0), "{}", second.stderr);
    drop_database(&db_name).await;
}

/// Replicas starting with `database.migrate = true`, or a migration Job run twice, migrate one
/// database at the same moment. Without the migration lock most of them failed
/// (`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`, or the
/// migration history's primary key).
#[tokio::test]
async fn migrate_commands_running_at_once_on_a_fresh_database_all_succeed() {
    let (db_url, db_name) = create_database().await;
    // All started before any is awaited.
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let mut command = idbridge(&["migrate"]);
            command.env("IDBRIDGE__DATABASE__URL", &db_url);
            tokio::task::spawn_blocking(move || run(command, DEADLINE))
        })
        .collect();
    for run in runs {
        let run = run.await.expect("join");
        assert_eq!(run.code(), Some(0), "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("writer: migrations applied"),
            "{}",
            run.stdout
        );
    }
    assert!(table_count(&db_url, "writer_").await > 0, "writer tables");
    assert!(
        table_count(&db_url, "token_vault_").await > 0,
        "vault tables"
    );
    drop_database(&db_name).await;
}

#[test]
fn migrate_on_sqlite_skips_the_webhook_receiver_unless_it_is_named() {
    let dir = TempDir::new();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("all.sqlite").display()
    );
    let mut command = idbridge(&["migrate"]);
    command.env("IDBRIDGE__DATABASE__URL", &url);
    let all = run(command, DEADLINE);
    assert_eq!(all.code(), Some(0), "{}\n{}", all.stdout, all.stderr);
    for service in ["token-vault", "writer", "reader", "portal"] {
        assert!(
            all.stdout
                .contains(&format!("{service}: migrations applied")),
            "{}",
            all.stdout
        );
    }
    assert!(
        all.stdout
            .contains("webhook-receiver: skipped (it needs PostgreSQL"),
        "{}",
        all.stdout
    );

    let mut named = idbridge(&["migrate", "reader", "webhook-receiver"]);
    named.env("IDBRIDGE__DATABASE__URL", &url);
    let named = run(named, DEADLINE);
    assert_eq!(named.code(), Some(1), "{}\n{}", named.stdout, named.stderr);
    assert!(
        named.stdout.contains("reader: migrations applied"),
        "{}",
        named.stdout
    );
    assert!(
        named
            .stderr
            .contains("webhook-receiver needs PostgreSQL: set database.url"),
        "{}",
        named.stderr
    );
}

/// A registration row as the receiver stores it.
async fn insert_registration(db_url: &str, orcid: &str, person_id: &str) {
    let db = Database::connect(db_url).await.expect("connect");
    db.execute_unprepared(&format!(
        "INSERT INTO webhook_registrations (orcid, person_id, hook_id, state, last_event_at, registered_at, updated_at)
         VALUES ('{orcid}', '{person_id}', '{}', 'registered', now(), now(), now())",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect("insert a registration");
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_is_healthy_ready_and_stops_on_sigterm() {
    let sim = simulator().await;
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let dir = TempDir::new();
    let file = config_file(&dir, &db_url, &prefix, sim.base_url());

    let mut process = Running::spawn(serve_command(
        &["writer", "token-vault", "reader", "webhook-receiver"],
        &file,
    ));
    let admin = process.admin_url();

    let (status, body) = get(&format!("{admin}/healthz")).await;
    assert_eq!(status, 200, "{body}");

    // Ready once both services are up: each database answers and the broker is reachable.
    let end = Instant::now() + DEADLINE;
    let body = loop {
        let (status, body) = get(&format!("{admin}/readyz")).await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < end,
            "not ready within {DEADLINE:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["services"]["writer"]["database"], "ok");
    assert_eq!(ready["services"]["writer"]["broker"], "ok");
    assert_eq!(ready["services"]["token-vault"]["database"], "ok");
    assert_eq!(ready["services"]["token-vault"]["broker"], "ok");
    for service in ["reader", "webhook-receiver"] {
        assert_eq!(ready["services"][service]["database"], "ok", "{body}");
        assert_eq!(ready["services"][service]["broker"], "ok", "{body}");
    }

    let (status, metrics) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("\nidbridge_up 1\n"), "{metrics}");
    assert!(
        metrics.contains("idbridge_service_running{service=\"writer\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idbridge_service_running{service=\"token-vault\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idbridge_build_info{version="),
        "{metrics}"
    );

    // The migrations ran on the configured database.
    assert!(table_count(&db_url, "writer_").await > 0);
    assert!(table_count(&db_url, "token_vault_").await > 0);
    assert!(table_count(&db_url, "reader_").await > 0);
    assert!(table_count(&db_url, "webhook_registrations").await > 0);

    // `webhooks reregister` with the same file, the vault of this process giving the
    // /webhook token: a researcher the simulator knows is registered again (created), an
    // iD it does not know fails with its reason, and the exit code says so.
    let known = sim_researcher(sim.base_url(), "jc@example.invalid").await;
    let unknown = "0000-0002-1825-0097";
    insert_registration(&db_url, &known, "p-known").await;
    insert_registration(&db_url, unknown, "p-unknown").await;
    let mut command = idbridge(&[
        "webhooks",
        "reregister",
        "--config",
        file.to_str().expect("utf-8"),
    ]);
    command.env("RUST_LOG", "error");
    let rereg = tokio::task::spawn_blocking(move || run(command, DEADLINE))
        .await
        .expect("join");
    assert_eq!(rereg.code(), Some(1), "{}\n{}", rereg.stdout, rereg.stderr);
    assert!(
        rereg
            .stdout
            .contains("webhooks: 1 created, 0 already registered, 0 withdrawn, 1 failed"),
        "{}\n{}",
        rereg.stdout,
        rereg.stderr
    );
    assert!(
        rereg.stdout.contains(&format!("  failed: {unknown}: ")),
        "{}",
        rereg.stdout
    );
    assert!(!rereg.stdout.contains(&format!("failed: {known}")));

    // SIGTERM: a graceful stop, exit 0, promptly.
    process.signal("TERM");
    let started = Instant::now();
    let status = tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(30)));
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{}",
        process.seen.join("\n")
    );
    assert!(
        process
            .seen
            .iter()
            .any(|l| l.contains("idbridge stopped cleanly")),
        "{}",
        process.seen.join("\n")
    );
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());

    // Clean up the broker objects and the database.
    let config = writer::config::WriterConfig::load(Some(&file)).expect("config");
    let bus = amqp_bus(&prefix).await;
    let _ = bus
        .delete(&writer::topology(&writer::service_spec(&config)))
        .await;
    let reader_config = reader::config::ReaderConfig::load(Some(&file)).expect("config");
    let _ = bus
        .delete(&reader::topology(&reader::service_spec(&reader_config)))
        .await;
    let receiver_config =
        webhook_receiver::config::ReceiverConfig::load(Some(&file)).expect("config");
    let _ = bus
        .delete(&webhook_receiver::topology(
            &webhook_receiver::service_spec(&receiver_config),
        ))
        .await;
    let _ = bus
        .delete(
            &Topology::new()
                .exchange(exchanges::EVENTS)
                .service(token_vault::service_spec()),
        )
        .await;
    bus.close().await;
    sim.stop().await;
    drop_database(&db_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_what_is_down() {
    let sim = simulator().await;
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let dir = TempDir::new();
    let file = config_file(&dir, &db_url, &prefix, sim.base_url());
    let mut process = Running::spawn(serve_command(&["token-vault"], &file));
    let admin = process.admin_url();
    tokio::task::block_in_place(|| process.wait_line("idbridge serving: token-vault"));
    let (status, body) = get(&format!("{admin}/readyz")).await;
    assert_eq!(status, 200, "{body}");

    // The database goes away: not ready, and the answer says why.
    drop_database(&db_name).await;
    let (status, body) = get(&format!("{admin}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["ready"], false);
    assert_ne!(ready["services"]["token-vault"]["database"], "ok", "{body}");
    assert_eq!(ready["services"]["token-vault"]["broker"], "ok", "{body}");
    assert!(
        ready["down"].as_array().expect("down").iter().any(|d| d
            .as_str()
            .is_some_and(|d| d.starts_with("token-vault: database"))),
        "{body}"
    );
    // Still alive.
    let (status, _) = get(&format!("{admin}/healthz")).await;
    assert_eq!(status, 200);

    process.signal("TERM");
    let status = tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(30)));
    assert!(status.code().is_some(), "exited, not killed");
    let bus = amqp_bus(&prefix).await;
    let _ = bus
        .delete(
            &Topology::new()
                .exchange(exchanges::EVENTS)
                .service(token_vault::service_spec()),
        )
        .await;
    bus.close().await;
    sim.stop().await;
}

/// Advisory locks of this test's database, waiting or held.
async fn advisory_locks(db: &sea_orm::DatabaseConnection, granted: bool) -> i64 {
    db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted = $1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [granted.into()],
    ))
    .await
    .expect("pg_locks")
    .expect("row")
    .try_get("", "n")
    .expect("n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_serve_while_it_waits_for_another_replicas_migrations() {
    let sim = simulator().await;
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let dir = TempDir::new();
    let file = config_file(&dir, &db_url, &prefix, sim.base_url());

    // Another replica is migrating: it holds the migration lock in an open transaction.
    let holder = Database::connect(&db_url).await.expect("connect");
    let migrating = holder.begin().await.expect("begin");
    migrating
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [idbridge_platform::database::MIGRATION_LOCK_KEY.into()],
        ))
        .await
        .expect("the migration lock");

    let mut process = Running::spawn(serve_command(&["token-vault", "writer"], &file));
    let _admin = process.admin_url();
    // The token vault's start waits inside PostgreSQL for the lock.
    let end = Instant::now() + DEADLINE;
    while advisory_locks(&holder, false).await != 1 {
        assert!(
            Instant::now() < end,
            "serve never waited for the migration lock; stdout:\n{}",
            process.seen.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM while it waits: it stops at once, cleanly, without starting anything.
    process.signal("TERM");
    let asked = Instant::now();
    let status = tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(15)));
    let stdout = process.seen.join("\n");
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}");
    assert!(stdout.contains("idbridge stopped cleanly"), "{stdout}");
    assert!(!stdout.contains("idbridge serving"), "{stdout}");
    // The wait was logged, naming the service.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("another process is migrating this database")
                && l.contains("start")
                && l.contains("token-vault")),
        "{stdout}"
    );
    eprintln!("stopped {:?} after SIGTERM", asked.elapsed());

    // The other replica's migrations are undisturbed, and nothing of ours was migrated.
    assert_eq!(advisory_locks(&holder, true).await, 1);
    migrating.rollback().await.expect("rollback");
    assert_eq!(table_count(&db_url, "token_vault_").await, 0);
    let _ = holder.close().await;
    sim.stop().await;
    drop_database(&db_name).await;
}
