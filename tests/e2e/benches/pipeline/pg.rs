//! PostgreSQL alone: the writer's database work for one hire event, with ORCID, the vault
//! and the broker taken away, at the writer's concurrency (one event in flight per
//! partition) on the writer's pool size.
//!
//! Per event, the statements the writer sends for a hire of a connected person whose item
//! has no put code yet (`services/writer/src/writer/{mod,merge,sync}.rs`, `bus::inbox`,
//! `bus::outbox`, the shared rate limit of `idbridge_platform::ratelimit`):
//!
//! 1. `Inbox::contains` (SELECT);
//! 2. merge, one transaction: the latest item row, the event row, INSERT item, INSERT event,
//!    INSERT history row;
//! 3. whether the section is known clean (SELECT by primary key) and, when it is not, the
//!    put codes other rows hold (SELECT);
//! 4. one rate-limit permit per ORCID call (the real [`SharedRateLimiter`] upsert; the
//!    writer makes `orcid_calls` calls per new item: one post on a section known clean,
//!    else read the section, then post);
//! 5. "written", one transaction: UPDATE item, INSERT history row, INSERT "item written"
//!    into the outbox;
//! 6. `Inbox::claim` (INSERT … ON CONFLICT DO NOTHING);
//!
//! and, concurrently, the real [`OutboxRelay`] (lease and read in one statement, settle) publishing "item
//! written" to an in-process bus. The clock stops when every event is done and the outbox is
//! empty.
//!
//! [`SharedRateLimiter`]: idbridge_platform::ratelimit::SharedRateLimiter

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bus::events::{ItemAction, ItemWritten, Section, exchanges};
use bus::outbox::{Outbox, OutboxRelay, RelayConfig};
use bus::{Bus, Envelope, OutgoingMessage, ServiceSpec, Topology};
use chrono::Utc;
use futures_util::{StreamExt, stream};
use idbridge_platform::database::{DatabaseConfig, connect};
use idbridge_platform::ratelimit::{RateLimitConfig, limiter_for};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value,
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A fresh database at the server of `admin_url`; returns its URL and name.
pub async fn create_database(admin_url: &str, prefix: &str) -> anyhow::Result<(String, String)> {
    let admin = Database::connect(admin_url)
        .await
        .with_context(|| format!("PostgreSQL at {admin_url} (set TEST_DATABASE_URL)"))?;
    let name = format!("{prefix}_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let _ = admin.close().await;
    let (base, _) = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .context("TEST_DATABASE_URL has no database path")?;
    Ok((format!("{base}/{name}"), name))
}

/// Drops the databases `names` (forcing their connections closed).
pub async fn drop_databases(admin_url: &str, names: &[String]) -> anyhow::Result<()> {
    let admin = Database::connect(admin_url).await?;
    for name in names {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    let _ = admin.close().await;
    Ok(())
}

/// The `application_name` of the pattern's connections.
const APPLICATION_NAME: &str = "idbridge-bench-postgres-alone";

/// What one run of the pattern gave.
pub struct PgCapacity {
    /// Events whose whole pattern completed, per second.
    pub events_per_second: f64,
    /// Committed transactions (explicit and single-statement writes) per second.
    pub commits_per_second: f64,
    /// CPU milliseconds per event of PostgreSQL's backends and of this process (the
    /// writer's statements issued through the services' pool), from the first event to the
    /// drained outbox.
    pub cpu_ms_per_event: Vec<(String, f64)>,
    /// The CPU milliseconds per event of the PostgreSQL backends serving this pattern's own
    /// connections (`idbridge-bench-postgres-alone`), in the same window: what the pipeline
    /// reports `for idbridge-writer`. `None` when none was found.
    pub own_backends_ms_per_event: Option<f64>,
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// A desired body the size of the writer's (an employment with the institution, role,
/// department, start date and our `self` id).
fn desired(i: usize) -> String {
    serde_json::json!({
        "department-name": "Benchmarks",
        "role-title": "Research Engineer",
        "start-date": {"year": {"value": "2024"}, "month": {"value": "01"}, "day": {"value": "01"}},
        "organization": {
            "name": "Example University",
            "address": {"city": "Boston", "region": "Massachusetts", "country": "US"},
            "disambiguated-organization": {
                "disambiguated-organization-identifier": "https://ror.org/05qwgg493",
                "disambiguation-source": "ROR"
            }
        },
        "external-ids": {"external-id": [{
            "external-id-type": "other-id",
            "external-id-value": format!("idbridge-{:032x}", i),
            "external-id-relationship": "self"
        }]}
    })
    .to_string()
}

/// Runs the writer's pattern for `events` events, `concurrency` at once, on a fresh database
/// migrated with the writer's migrations; `pool` connections (`database.max_connections`).
pub async fn capacity(
    admin_url: &str,
    events: usize,
    concurrency: usize,
    pool: u32,
    orcid_calls: u32,
) -> anyhow::Result<PgCapacity> {
    let (url, name) = create_database(admin_url, "pbench_pg").await?;
    let result = run(&url, events, concurrency, pool, orcid_calls).await;
    drop_databases(admin_url, &[name]).await?;
    result
}

async fn run(
    url: &str,
    events: usize,
    concurrency: usize,
    pool: u32,
    orcid_calls: u32,
) -> anyhow::Result<PgCapacity> {
    let db = connect(
        &DatabaseConfig {
            url: SecretString::from(url.to_owned()),
            max_connections: pool,
            migrate: false,
        },
        APPLICATION_NAME,
    )
    .await?;
    writer::migrate(&db).await?;
    // The limit lifted, as in the pipeline run; every permit is still one upsert.
    let limiter = limiter_for(
        &RateLimitConfig {
            shared: true,
            bucket: "orcid:APP-PGBENCH".to_owned(),
            per_second: 1_000_000,
            burst: 1_000_000,
            replicas_hint: 1,
            batch: 1,
        },
        &db,
    )
    .await?;

    // The relay publishes to an in-process bus where a queue takes "item written".
    let memory = Bus::in_memory("pgbench")?;
    memory
        .declare(
            &Topology::new()
                .exchange(exchanges::EVENTS)
                .service(ServiceSpec::new("sink").bind(exchanges::EVENTS, "item.written")),
        )
        .await?;
    let tables = writer::bus_tables();
    let relay = OutboxRelay::new(
        db.clone(),
        memory.clone(),
        Outbox::new(&tables),
        RelayConfig::default(),
    );
    let waker = relay.waker();
    let shutdown = CancellationToken::new();
    let relay_task = relay.spawn(shutdown.clone());

    let commits = Arc::new(AtomicU64::new(0));
    let cpu_before = crate::cpu::sample(&[]);
    let start = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(0..events)
        .map(|i| {
            let (db, limiter, waker, commits) =
                (db.clone(), limiter.clone(), waker.clone(), commits.clone());
            let tables = tables.clone();
            async move {
                one_event(&db, &tables, limiter.as_ref(), orcid_calls, i).await?;
                waker.notify_one();
                commits.fetch_add(4 + u64::from(orcid_calls), Ordering::Relaxed);
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for result in results {
        result?;
    }
    let outbox = Outbox::new(&tables);
    let deadline = Instant::now() + Duration::from_secs(120);
    while outbox.pending(&db).await? > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the outbox relay did not drain in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_after = crate::cpu::sample(&[]);
    let cpu_ms_per_event = cpu_after
        .since(&cpu_before)
        .into_iter()
        .filter(|(label, _)| !label.starts_with("RabbitMQ"))
        .map(|(label, seconds)| (label, seconds * 1000.0 / events as f64))
        .collect();
    let own_backends_ms_per_event = crate::cpu::owner_ms_per_event(
        &crate::cpu::postgres_by_owner(
            &cpu_after.postgres_since(&cpu_before),
            &crate::pipeline::postgres_owners(&db).await?,
        ),
        APPLICATION_NAME,
        events,
    );
    shutdown.cancel();
    let _ = relay_task.await;
    // The relay's own commits (lease + settle per round) are counted from the table: each
    // round marks a batch sent at one instant.
    let rounds = db
        .query_one_raw(stmt(
            "SELECT count(DISTINCT sent_at) AS n FROM writer_outbox",
            Vec::new(),
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    let relay_commits = u64::try_from(rounds).unwrap_or(0) * 2;
    let _ = db.close().await;
    Ok(PgCapacity {
        events_per_second: events as f64 / elapsed,
        commits_per_second: (commits.load(Ordering::Relaxed) + relay_commits) as f64 / elapsed,
        cpu_ms_per_event,
        own_backends_ms_per_event,
    })
}

async fn one_event(
    db: &DatabaseConnection,
    tables: &bus::migration::TableNames,
    limiter: &dyn orcid::client::RateLimiter,
    orcid_calls: u32,
    i: usize,
) -> anyhow::Result<()> {
    let inbox = bus::inbox::Inbox::new(tables);
    let outbox = Outbox::new(tables);
    let person = format!("pg-{i:06}");
    let key = format!("{person}-pos");
    let event_id = format!("ev-{}", Uuid::new_v4().simple());
    let orcid_text = format!("0009-0000-{:04}-{:04}", i / 10_000, i % 10_000);
    let envelope = Envelope::raw("hr-event", 1, serde_json::json!({"event_id": event_id}));
    let now = Utc::now();

    // 1. Seen before?
    inbox.contains(db, envelope.message_id).await?;

    // 2. Merge.
    let body = desired(i);
    let hash = writer::desired::content_hash(&body);
    let item_id = Uuid::now_v7();
    let txn = db.begin().await?;
    txn.query_one_raw(stmt(
        "SELECT * FROM writer_items WHERE person_id = $1 AND item_key = $2 AND section <> $3 \
         ORDER BY generation DESC LIMIT 1",
        vec![person.clone().into(), key.clone().into(), "work".into()],
    ))
    .await?;
    txn.query_one_raw(stmt(
        "SELECT * FROM writer_events WHERE source = $1 AND event_id = $2 LIMIT 1",
        vec!["hr".into(), event_id.clone().into()],
    ))
    .await?;
    txn.query_one_raw(stmt(
        "INSERT INTO writer_items (id, person_id, item_key, generation, section, orcid, put_code, \
         state, desired, desired_hash, delete_requested, written_hash, source_event_id, \
         source_event_at, attempts, last_error_status, last_error_code, last_error_message, \
         created_at, updated_at, written_at) VALUES ($1, $2, $3, 1, 'employment', NULL, NULL, \
         'pending', $4, $5, false, NULL, $6, $7, 0, NULL, NULL, NULL, $7, $7, NULL) RETURNING *",
        vec![
            item_id.into(),
            person.clone().into(),
            key.clone().into(),
            body.into(),
            hash.clone().into(),
            event_id.clone().into(),
            now.into(),
        ],
    ))
    .await?;
    txn.query_one_raw(stmt(
        "INSERT INTO writer_events (source, event_id, message_id, person_id, item_key, \
         event_type, occurred_at, outcome, processed_at) VALUES ('hr', $1, $2, $3, $4, 'hire', \
         $5, 'merged', $5) RETURNING *",
        vec![
            event_id.clone().into(),
            envelope.message_id.to_string().into(),
            person.clone().into(),
            key.clone().into(),
            now.into(),
        ],
    ))
    .await?;
    history(
        &txn, item_id, &person, &key, &event_id, "merge", "created", None,
    )
    .await?;
    txn.commit().await?;

    // 3. Whether the section is known clean; when it is not (the run made two ORCID calls
    //    per event: read, then post), the put codes other rows hold.
    db.query_one_raw(stmt(
        "SELECT orcid, section, basis, seen_at FROM writer_clean_sections \
         WHERE orcid = $1 AND section = $2",
        vec![orcid_text.clone().into(), "employment".into()],
    ))
    .await?;
    if orcid_calls >= 2 {
        db.query_all_raw(stmt(
            "SELECT * FROM writer_items WHERE (person_id = $1 OR orcid = $2) AND section = $3 \
             AND id <> $4",
            vec![
                person.clone().into(),
                orcid_text.clone().into(),
                "employment".into(),
                item_id.into(),
            ],
        ))
        .await?;
    }

    // 4. A permit per ORCID call.
    for _ in 0..orcid_calls {
        limiter.acquire().await;
    }

    // 5. Written.
    let put_code = i64::try_from(i).unwrap_or(0) + 1000;
    let message = OutgoingMessage::event(&ItemWritten {
        orcid: orcid::OrcidId::parse("0000-0002-1825-0097")?,
        person_id: person.clone(),
        section: Section::Employment,
        source_id: key.clone(),
        put_code: u64::try_from(put_code).unwrap_or(0),
        action: ItemAction::Created,
        written_at: Utc::now(),
    })?;
    let txn = db.begin().await?;
    txn.query_one_raw(stmt(
        "UPDATE writer_items SET state = 'in_orcid', orcid = $1, put_code = $2, \
         written_hash = $3, written_at = $4, last_error_status = NULL, last_error_code = NULL, \
         last_error_message = NULL, attempts = 1, updated_at = $4 WHERE id = $5 RETURNING *",
        vec![
            orcid_text.into(),
            put_code.into(),
            hash.into(),
            Utc::now().into(),
            item_id.into(),
        ],
    ))
    .await?;
    history(
        &txn,
        item_id,
        &person,
        &key,
        &event_id,
        "create",
        "written",
        Some(put_code),
    )
    .await?;
    outbox.record(&txn, &message).await?;
    txn.commit().await?;

    // 6. Processed.
    inbox.claim(db, &envelope).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn history<C: ConnectionTrait>(
    conn: &C,
    item_id: Uuid,
    person: &str,
    key: &str,
    event_id: &str,
    action: &str,
    outcome: &str,
    put_code: Option<i64>,
) -> anyhow::Result<()> {
    conn.query_one_raw(stmt(
        "INSERT INTO writer_item_attempts (id, item_id, person_id, item_key, generation, \
         event_id, action, outcome, http_status, orcid_error_code, put_code, message, at) \
         VALUES ($1, $2, $3, $4, 1, $5, $6, $7, NULL, NULL, $8, $9, $10) RETURNING *",
        vec![
            Uuid::now_v7().into(),
            item_id.into(),
            person.into(),
            key.into(),
            event_id.into(),
            action.into(),
            outcome.into(),
            put_code.into(),
            format!("hire event recorded: {action} {outcome}").into(),
            Utc::now().into(),
        ],
    ))
    .await?;
    Ok(())
}
