//! The multi-process pipeline: the harness's [`Stack`] (each service an `idbridge serve`
//! process, release build, PostgreSQL, RabbitMQ, orcid-sim as a process), N researchers
//! connected, N hire events published to the HR exchange, and the clock read from the
//! writer's ledger (`writer_items.written_at`, set in the transaction that stores the put
//! code).
//!
//! Researchers connect through the fast path `idbridge up --demo` uses (and the portal's
//! callback ends in): the simulator's headless authorize and the code exchange, the token
//! response sealed to the vault's hand-off key, "iD connected" published on the bus. The
//! portal's own pages are not in the loop; the vault, writer, reader and webhook receiver
//! see exactly what a portal connect produces.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bus::events::{
    AffiliationSection, HrEvent, HrEventType, IdConnected, PartialDate, Person, PersonNames,
    Position, SealedToken,
};
use bus::{AmqpConfig, Bus, OutgoingMessage};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use idbridge_e2e::stack::{CLIENT_ID, CLIENT_SECRET};
use idbridge_e2e::{Binaries, RateLimit, Service, Stack, StackOptions};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::Settings;
use crate::sim::{self, SimClient};
use crate::{cpu, pgstats, rss};

/// The writer's default `writer.partitions` (`services/writer/config.default.toml`).
const WRITER_DEFAULT_PARTITIONS: u16 = 8;
/// The writer's default `database.max_connections`.
const WRITER_DEFAULT_POOL: u32 = 10;
/// The webhook receiver's default `webhooks.debounce_ms`
/// (`services/webhook-receiver/config.default.toml`).
pub const RECEIVER_DEFAULT_DEBOUNCE_MS: u64 = 5000;
/// orcid-sim's default webhook delivery interval (`--webhook-interval-ms`). ORCID itself
/// batches webhooks about every five minutes (reference §5), so this is already far tighter.
pub const SIM_DEFAULT_WEBHOOK_INTERVAL_MS: u64 = 5000;
/// How long the services idle before RSS "at rest" is read.
const REST: Duration = Duration::from_secs(5);

/// One service process's memory.
pub struct ProcessMemory {
    pub label: String,
    pub peak_kib: u64,
    pub rest_kib: u64,
    pub rest_anon_kib: u64,
    pub rest_file_kib: u64,
}

/// What one pipeline run measured.
pub struct PipelineRun {
    pub limited: bool,
    /// The services' `[orcid.rate_limit]`.
    pub limit: RateLimit,
    pub services: Vec<Service>,
    pub partitions: u16,
    pub pool: u32,
    pub events: usize,
    pub rounds: Vec<Round>,
    /// Member API requests per event (all services), from the simulator's stats.
    pub orcid_calls_per_event: f64,
    /// The writer's own member API requests per event (employments read and posted).
    pub writer_calls_per_event: f64,
    pub api_requests: u64,
    pub posts: u64,
    pub status_503: u64,
    pub stats: String,
    pub memory: Vec<ProcessMemory>,
    pub connect_seconds: f64,
    /// Member API requests while researchers connected (the reader's first snapshots).
    pub connect_requests: u64,
    /// Under the limit with the webhook receiver and the reader: the reads after webhooks,
    /// which yield to writes, once every snapshot was newer than its record's last write.
    pub catch_up: Option<CatchUp>,
}

/// The reader catching up after the rounds.
pub struct CatchUp {
    /// Member API reads after the last round's put codes.
    pub reads: u64,
    /// From the last put code stored to the last snapshot read.
    pub after_last_write: f64,
    /// 503s from the simulator, the rounds and the reads together.
    pub status_503: u64,
}

impl PipelineRun {
    /// Events/s of the first round (the pipeline figure).
    pub fn events_per_second(&self) -> f64 {
        self.rounds.first().map_or(0.0, |r| r.events_per_second)
    }
}

/// One round of hires (one per person).
pub struct Round {
    pub round: usize,
    pub events: usize,
    pub seconds: f64,
    pub events_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Writes/s after the first [`SUSTAIN_AFTER`] of the round (the burst spent).
    pub sustained_per_second: f64,
    pub sustained_window: Duration,
    /// Member API requests (all services) during the round.
    pub requests: u64,
    /// CPU seconds per process from the first publish to the last put code stored.
    pub cpu: Vec<(String, f64)>,
    /// PostgreSQL's share of `cpu` per client or background process.
    pub postgres_cpu: Vec<(String, f64)>,
    /// When 90 % of the round's put codes were stored, from the first publish.
    pub ninety: Duration,
    /// The database's work for the round, read after the services idled.
    pub database: pgstats::Counts,
}

/// Writes counted as "sustained" start this long after the first event.
const SUSTAIN_AFTER: Duration = Duration::from_secs(5);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl PipelineRun {
    /// Prints the run's figures.
    pub fn print(&self) {
        let services: Vec<&str> = self.services.iter().map(|s| s.as_str()).collect();
        if self.limited {
            println!(
                "\n== under ORCID's limit: simulator --rate-limit (24/s, burst 40), [orcid.rate_limit] shared {}/s burst {}; {} researchers, writer partitions {}, services: {}",
                self.limit.per_second,
                self.limit.burst,
                self.events,
                self.partitions,
                services.join(", ")
            );
        } else {
            println!(
                "\n== pipeline: {} hire events for {} connected researchers, simulator limit lifted, writer partitions {}, pool {}, services: {}",
                self.events,
                self.events,
                self.partitions,
                self.pool,
                services.join(", ")
            );
        }
        println!(
            "connected {} researchers in {:.1} s (simulator OAuth + sealed hand-off + \"iD connected\"); {} member API requests meanwhile (the reader's first snapshots, webhook registrations), not counted below",
            self.events, self.connect_seconds, self.connect_requests
        );
        for r in &self.rounds {
            let what = match (self.limited, r.round) {
                (false, _) => "hires",
                (true, 1) if self.services.contains(&Service::Reader) => {
                    "round 1, first item of each researcher (sections known clean from the reader's first snapshot)"
                }
                (true, 1) => {
                    "round 1, first item of each researcher (no reader: section read first)"
                }
                (true, _) => "round 2, a second position each",
            };
            println!(
                "{what}: {} events in {:.1} s = {:.1} events/s end to end; publish -> put code stored: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                r.events,
                r.seconds,
                r.events_per_second,
                r.p50.as_secs_f64() * 1000.0,
                r.p99.as_secs_f64() * 1000.0,
                r.max.as_secs_f64() * 1000.0
            );
            let ninety = (r.events * 9 / 10) as f64;
            println!(
                "  90 % of the put codes stored after {:.2} s ({:.1} events/s); the last 10 % took {:.2} s",
                r.ninety.as_secs_f64(),
                ninety / r.ninety.as_secs_f64().max(1e-9),
                r.seconds - r.ninety.as_secs_f64()
            );
            let total: f64 = r.cpu.iter().map(|(_, s)| s).sum();
            println!(
                "  CPU from first publish to last put code: {total:.2} s in all = {:.2} ms per event, {:.0} % of the machine's {} cores",
                total * 1000.0 / r.events.max(1) as f64,
                total * 100.0 / r.seconds.max(1e-9) / cores() as f64,
                cores()
            );
            for (label, seconds) in r.cpu.iter().filter(|(_, s)| *s > 0.0) {
                println!(
                    "    {label:<28} {seconds:>7.2} s  {:>6.2} ms/event  {:>4.0} % of a core",
                    seconds * 1000.0 / r.events.max(1) as f64,
                    seconds * 100.0 / r.seconds.max(1e-9)
                );
                if label.starts_with("PostgreSQL") {
                    for (owner, seconds) in r.postgres_cpu.iter().filter(|(_, s)| *s >= 0.005) {
                        println!(
                            "      for {owner:<30} {:>6.2} ms/event",
                            seconds * 1000.0 / r.events.max(1) as f64
                        );
                    }
                }
            }
            if !self.limited {
                r.database.print(r.events);
                continue;
            }
            println!(
                "  sustained after the first {} s: {:.1} writes/s over {:.1} s; {} member API requests ({:.1}/s, {:.2} per event)",
                SUSTAIN_AFTER.as_secs(),
                r.sustained_per_second,
                r.sustained_window.as_secs_f64(),
                r.requests,
                r.requests as f64 / r.seconds.max(1e-9),
                r.requests as f64 / r.events.max(1) as f64
            );
        }
        println!(
            "simulator: {} member API requests ({:.2} per event), {} POST employment, {} answered 503",
            self.api_requests, self.orcid_calls_per_event, self.posts, self.status_503
        );
        if let Some(c) = &self.catch_up {
            println!(
                "reads after webhooks (low priority, after the rounds): {} member API reads; every record's snapshot newer than its last write {:.1} s after the last put code; 503s in all: {}",
                c.reads, c.after_last_write, c.status_503
            );
        }
        println!("simulator stats: {}", self.stats);
        println!(
            "process               peak RSS (VmHWM)   RSS at rest (VmRSS, {} s idle) = anonymous + file-backed",
            REST.as_secs()
        );
        for m in &self.memory {
            println!(
                "{:<21} {:>10} MiB {:>16} MiB = {} + {} MiB",
                m.label,
                rss::mib(m.peak_kib),
                rss::mib(m.rest_kib),
                rss::mib(m.rest_anon_kib),
                rss::mib(m.rest_file_kib)
            );
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Polls `sql` (a `count(*) AS n`) until it reaches `at_least`, at most `limit`.
async fn wait_count(
    db: &DatabaseConnection,
    sql: &str,
    at_least: usize,
    limit: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let n = count(db, sql).await?;
        if usize::try_from(n).unwrap_or(0) >= at_least {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what}: {n} of {at_least} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

fn handoff_key(
    config: &std::path::Path,
) -> anyhow::Result<(idbridge_crypto::VaultPublicKey, String)> {
    let text = std::fs::read_to_string(config)?;
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("handoff_key = \""))
        .and_then(|v| v.strip_suffix('"'))
        .context("no [portal.vault] handoff_key in the harness's configuration")?;
    let (id, key) = value.split_once(':').context("handoff_key is id:key")?;
    Ok((key.parse()?, id.to_owned()))
}

fn hire(person: &str, index: usize, round: usize) -> HrEvent {
    HrEvent {
        event_id: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        event_type: HrEventType::Hire,
        occurred_at: Utc::now(),
        person: Person {
            person_id: person.to_owned(),
            names: Some(PersonNames {
                given_names: Some("Bench".to_owned()),
                family_name: Some(format!("Person {index}")),
            }),
            email: None,
        },
        position: Position {
            position_id: format!("{person}-pos{round}"),
            section: AffiliationSection::Employment,
            department: Some("Benchmarks".to_owned()),
            role_title: Some("Research Engineer".to_owned()),
            start_date: PartialDate::parse(&format!("20{:02}-01-01", 10 + round)).ok(),
            end_date: None,
            organization: None,
            url: None,
            external_ids: Vec::new(),
        },
    }
}

/// Waits until the simulator has answered no request for `quiet` (at most `limit`).
async fn settle(base: &str, quiet: Duration, limit: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + limit;
    let total = |s: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, u64>,
    >| { s.values().flat_map(|m| m.values()).sum::<u64>() };
    let mut last = total(&sim::stats(base).await?);
    let mut since = Instant::now();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = total(&sim::stats(base).await?);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(());
        }
    }
    Ok(())
}

/// One run: a fresh stack, `events` researchers connected, one hire each.
pub async fn run(
    settings: &Settings,
    _bins: &Binaries,
    limited: bool,
    events: usize,
) -> anyhow::Result<PipelineRun> {
    let partitions = settings.partitions.unwrap_or(WRITER_DEFAULT_PARTITIONS);
    let services = if limited {
        settings.limited_services.clone()
    } else {
        settings.services.clone()
    };
    let mut options = StackOptions::new(if limited {
        "pipeline-bench-limited"
    } else {
        "pipeline-bench"
    })
    .services(&services)
    .profile(idbridge_e2e::Profile::Release)
    .sim_rate_limit(limited)
    .client_rate_limit(if limited {
        RateLimit {
            per_second: settings.limited_rate,
            burst: settings.limited_burst,
        }
    } else {
        RateLimit::LIFTED
    });
    if !settings.malloc_arena_max.is_empty() {
        options = options.env("MALLOC_ARENA_MAX", &settings.malloc_arena_max);
    }
    for (key, value) in std::env::vars() {
        if let Some(name) = key.strip_prefix("BENCH_SERVICE_ENV_") {
            options = options.env(name, &value);
        }
    }
    options.writer_partitions = partitions;
    options.db_max_connections = WRITER_DEFAULT_POOL;
    // As deployed, not the harness's quick test settings (300 ms, 200 ms), unless asked.
    options.webhook_debounce_ms = settings.webhook_debounce_ms;
    options.sim_webhook_interval_ms = settings.sim_webhook_interval_ms;
    let stack = Stack::start(options).await?;
    let result = measure(settings, &stack, limited, events, partitions, services).await;
    if let Err(e) = &result {
        eprintln!("{e:#}\n{}", stack.log_tails(20));
    }
    stack.stop().await?;
    result
}

async fn measure(
    settings: &Settings,
    stack: &Stack,
    limited: bool,
    events: usize,
    partitions: u16,
    services: Vec<Service>,
) -> anyhow::Result<PipelineRun> {
    let base = stack.sim_url().to_owned();
    let db = Database::connect(stack.database_url()).await?;
    let bus = Bus::amqp(
        AmqpConfig::new(&settings.amqp_url).connection_name("pipeline-bench"),
        stack.prefix(),
    )
    .await?;
    let client = SimClient {
        id: CLIENT_ID.to_owned(),
        secret: CLIENT_SECRET.to_owned(),
        redirect: "http://127.0.0.1:9/callback".to_owned(),
    };
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let (handoff, key_id) = handoff_key(stack.config_path())?;

    // Connect everyone.
    let connect_started = Instant::now();
    let users = sim::connect_users(&base, &client, events, &format!("p{tag}")).await?;
    let people: Vec<String> = (0..events).map(|i| format!("b{tag}-{i:05}")).collect();
    for (person, user) in people.iter().zip(&users) {
        let tokens: idbridge_crypto::handoff::HandoffTokens =
            serde_json::from_value(user.token_response.clone())?;
        let sealed = idbridge_crypto::handoff::seal_tokens(&handoff, &user.orcid, person, &tokens)?;
        let connected = IdConnected {
            orcid: orcid::OrcidId::parse(&user.orcid)?,
            person_id: person.clone(),
            name: None,
            scopes: vec!["/read-limited".to_owned(), "/activities/update".to_owned()],
            sealed_token: SealedToken::from_sealed_bytes(&sealed),
            key_id: key_id.clone(),
            granted_at: Utc::now(),
        };
        bus.publish(&OutgoingMessage::event(&connected)?).await?;
    }
    wait_count(
        &db,
        "SELECT count(*) AS n FROM token_vault_connections",
        events,
        Duration::from_secs(300),
        "connections the vault stored",
    )
    .await?;
    // Let the reader's first snapshots and the webhook registrations finish, and the writer
    // learn from those snapshots which sections are clean.
    settle(&base, Duration::from_secs(2), Duration::from_secs(300)).await?;
    if services.contains(&Service::Reader) && services.contains(&Service::Writer) {
        wait_count(
            &db,
            "SELECT count(DISTINCT orcid) AS n FROM writer_clean_sections WHERE basis = 'snapshot'",
            events,
            Duration::from_secs(120),
            "records whose clean sections the writer learnt from the reader's snapshots",
        )
        .await?;
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    // The reader's first reads (and webhook registrations) spend the same rate limit, at
    // connection time: counted here, before the rounds.
    let connect_requests = sim::api_requests(&sim::stats(&base).await?);
    sim::clear_stats(&base).await?;

    let mut processes: Vec<(String, u32)> = stack
        .processes()
        .into_iter()
        .map(|(_, _, label, pid)| (label, pid))
        .collect();
    processes.push(("orcid-sim (not ours)".to_owned(), stack.sim_pid()));
    let mut rounds = Vec::new();
    for round in 1..=if limited { 2 } else { 1 } {
        // Quiet for longer than the simulator's webhook interval plus the debounce: the
        // reads after webhooks have happened.
        let quiet = Duration::from_millis(
            settings.sim_webhook_interval_ms + settings.webhook_debounce_ms + 2000,
        );
        rounds.push(one_round(&db, &bus, &base, &people, round, limited, &processes, quiet).await?);
    }
    let stats = sim::stats(&base).await?;
    let api_requests = sim::api_requests(&stats);
    let posts = stats
        .get("POST /v3.0/{orcid}/employment")
        .and_then(|s| s.get("201"))
        .copied()
        .unwrap_or(0);
    let status_503 = sim::count(&stats, "503");
    let writer_calls: u64 = stats
        .iter()
        .filter(|(key, _)| key.contains("/employment"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    let written_events = events * rounds.len();
    let catch_up = if limited
        && services.contains(&Service::Reader)
        && services.contains(&Service::WebhookReceiver)
    {
        Some(catch_up(&db, &base, events, api_requests).await?)
    } else {
        None
    };

    // Memory: peak over the run, then resident after the services idled.
    settle(&base, REST, Duration::from_secs(60)).await?;
    let mut memory = Vec::new();
    for (label, pid) in processes {
        if let Some((peak_kib, rest_kib, rest_anon_kib, rest_file_kib)) = rss::of(pid) {
            memory.push(ProcessMemory {
                label,
                peak_kib,
                rest_kib,
                rest_anon_kib,
                rest_file_kib,
            });
        }
    }
    bus.close().await;
    let _ = db.close().await;
    Ok(PipelineRun {
        limited,
        limit: stack.options().client_rate_limit,
        services,
        partitions,
        pool: WRITER_DEFAULT_POOL,
        events,
        rounds,
        orcid_calls_per_event: api_requests as f64 / written_events.max(1) as f64,
        writer_calls_per_event: writer_calls as f64 / written_events.max(1) as f64,
        api_requests,
        posts,
        status_503,
        stats: serde_json::to_string(&stats)?,
        memory,
        connect_seconds,
        connect_requests,
        catch_up,
    })
}

/// Waits until every record's snapshot is newer than its last write (the reads after the
/// webhooks of the rounds' writes, which yield to writes while they are queued).
async fn catch_up(
    db: &DatabaseConnection,
    base: &str,
    records: usize,
    requests_after_rounds: u64,
) -> anyhow::Result<CatchUp> {
    wait_count(
        db,
        "SELECT count(*) AS n FROM reader_snapshots s WHERE s.read_at >= \
         (SELECT max(w.written_at) FROM writer_items w WHERE w.orcid = s.orcid)",
        records,
        Duration::from_secs(300),
        "records whose snapshot the reader read after their last write",
    )
    .await?;
    let after_last_write = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT EXTRACT(EPOCH FROM (max(s.read_at) - \
             (SELECT max(written_at) FROM writer_items)))::float8 AS n FROM reader_snapshots s",
        ))
        .await?
        .map(|row| row.try_get::<f64>("", "n"))
        .transpose()?
        .unwrap_or(0.0);
    let stats = sim::stats(base).await?;
    Ok(CatchUp {
        reads: sim::api_requests(&stats).saturating_sub(requests_after_rounds),
        after_last_write,
        status_503: sim::count(&stats, "503"),
    })
}

/// One round: a hire into position `round` for every person, published as HR would
/// (confirmed, partition key = person id); done when every put code of the round is stored.
#[allow(clippy::too_many_arguments)]
async fn one_round(
    db: &DatabaseConnection,
    bus: &Bus,
    base: &str,
    people: &[String],
    round: usize,
    limited: bool,
    processes: &[(String, u32)],
    quiet: Duration,
) -> anyhow::Result<Round> {
    let events = people.len();
    let before = sim::api_requests(&sim::stats(base).await?);
    let database_before = pgstats::read(db).await?;
    let cpu_before = cpu::sample(processes);
    let started = Utc::now();
    let sent: Vec<anyhow::Result<(String, DateTime<Utc>)>> =
        stream::iter(people.iter().enumerate())
            .map(|(index, person)| {
                let bus = bus.clone();
                async move {
                    let message = OutgoingMessage::event(&hire(person, index, round))?;
                    let at = Utc::now();
                    bus.publish(&message).await?;
                    Ok((person.clone(), at))
                }
            })
            .buffered(32)
            .collect()
            .await;
    let sent: HashMap<String, DateTime<Utc>> = sent.into_iter().collect::<anyhow::Result<_>>()?;
    let key = format!("%-pos{round}");
    let deadline = Instant::now() + Duration::from_secs(if limited { 900 } else { 300 });
    loop {
        let n = count_where(db, &key).await?;
        if usize::try_from(n).unwrap_or(0) >= events {
            break;
        }
        if Instant::now() >= deadline {
            bail!("round {round}: {n} of {events} put codes stored before the deadline");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu_after = cpu::sample(processes);
    let cpu_used = cpu_after.since(&cpu_before);
    let postgres_cpu = cpu::postgres_by_owner(
        &cpu_after.postgres_since(&cpu_before),
        &postgres_owners(db).await?,
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT person_id, written_at FROM writer_items WHERE put_code IS NOT NULL AND item_key LIKE $1",
            vec![key.into()],
        ))
        .await?;
    let mut latencies = Vec::with_capacity(events);
    let mut written = Vec::with_capacity(events);
    for row in rows {
        let person: String = row.try_get("", "person_id")?;
        let at: DateTime<Utc> = row.try_get("", "written_at")?;
        let Some(sent_at) = sent.get(&person) else {
            continue;
        };
        latencies.push((at - *sent_at).to_std().unwrap_or_default());
        written.push(at);
    }
    latencies.sort();
    written.sort();
    let last = written.last().copied().unwrap_or(started);
    let ninety = written
        .get((written.len() * 9 / 10).saturating_sub(1))
        .map_or(Duration::ZERO, |t| {
            (*t - started).to_std().unwrap_or_default()
        });
    let elapsed = (last - started).to_std().unwrap_or_default();
    let sustain_from = started + chrono::Duration::from_std(SUSTAIN_AFTER)?;
    let after = written.iter().filter(|t| **t >= sustain_from).count();
    let sustained_window = (last - sustain_from).to_std().unwrap_or_default();
    let requests = sim::api_requests(&sim::stats(base).await?).saturating_sub(before);
    // Everything the round caused, the reads after webhooks included: after a quiet period
    // (not under the limit, where the next round follows at once).
    let database = if limited {
        pgstats::Counts::default()
    } else {
        settle(base, quiet, Duration::from_secs(180)).await?;
        pgstats::read(db).await?.since(&database_before)
    };
    Ok(Round {
        round,
        events: written.len(),
        seconds: elapsed.as_secs_f64(),
        events_per_second: written.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or_default(),
        sustained_per_second: after as f64 / sustained_window.as_secs_f64().max(1e-9),
        sustained_window,
        requests,
        cpu: cpu_used,
        postgres_cpu,
        ninety,
        database,
    })
}

/// Who each PostgreSQL server process works for: the client's `application_name` (`(none)`
/// when it set none: this benchmark's own checks), or the background process's type.
pub async fn postgres_owners(
    db: &DatabaseConnection,
) -> anyhow::Result<std::collections::BTreeMap<u32, String>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pid, CASE WHEN backend_type = 'client backend' \
             THEN coalesce(nullif(application_name, ''), '(none)') ELSE backend_type END AS owner \
             FROM pg_stat_activity",
        ))
        .await?;
    let mut owners = std::collections::BTreeMap::new();
    for row in rows {
        let pid: i32 = row.try_get("", "pid")?;
        let owner: String = row.try_get("", "owner")?;
        owners.insert(u32::try_from(pid)?, owner);
    }
    Ok(owners)
}

async fn count_where(db: &DatabaseConnection, key: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM writer_items WHERE put_code IS NOT NULL AND item_key LIKE $1",
            vec![key.into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}
