//! The pipeline benchmark of issue 9, in one run:
//!
//! 1. **Pipeline**: N hire events for N connected researchers through the services as
//!    separate `idbridge serve` processes (release build) — HR exchange → RabbitMQ → writer →
//!    token vault → orcid-sim, the simulator's rate limit lifted (and the writer's shared one
//!    set far above it). Prints events/s, p50 and p99 from the event's publish to its put code
//!    stored (`writer_items.written_at`), peak RSS per service process (`VmHWM`) and RSS at rest
//!    (`VmRSS` after the services idled).
//! 2. **Each part alone**, same run: RabbitMQ (confirmed persistent publish → consume),
//!    PostgreSQL (the writer's statements per event, at the writer's concurrency), orcid-sim
//!    (`POST /employment` at the writer's concurrency); pipeline ÷ slowest part.
//! 3. **Under ORCID's limit**: the simulator with `--rate-limit` (24/s, burst 40), the writer's
//!    `[orcid.rate_limit]` as deployed (shared bucket), in two rounds: a first item for each
//!    of M researchers, then a second position each; sustained writes/s past the burst,
//!    member API requests/s, and the simulator's 503 count. With the reader running (the
//!    default), its first snapshot of each record, taken when the researcher connects, tells
//!    the writer which sections hold nothing of ours to adopt, so a first item is one ORCID
//!    call; without it (`BENCH_LIMITED_SERVICES=write`) the writer reads the section before
//!    its first post there (two calls).
//!
//! ```sh
//! cargo bench -p idbridge-e2e --bench pipeline
//! ```
//!
//! Environment: `BENCH_EVENTS` (N, default 500), `BENCH_LIMITED_EVENTS` (M, researchers of
//! part 3, default 240: about 30 s at 24 requests/s), `BENCH_SERVICES` /
//! `BENCH_LIMITED_SERVICES` (`all`, `write` = token vault and writer, `write+read` = and the
//! reader, or names; defaults `all` and `write+read`), `BENCH_PARTITIONS` (the writer's
//! `writer.partitions`; default: the writer's own default), `BENCH_AMQP_MESSAGES` (default 5000), `BENCH_SIM_SECONDS`
//! (window of the simulator's raw run, default 5), `BENCH_LIMITED_RATE` / `BENCH_LIMITED_BURST`
//! (the services' `[orcid.rate_limit]` in part 3, default 24 and 30: ORCID's rate with ten
//! requests of headroom below its burst), `BENCH_MALLOC_ARENA_MAX` (`MALLOC_ARENA_MAX` of the
//! service processes, default 2; empty: unset), `BENCH_SERVICE_ENV_<NAME>` (sets `<NAME>` in
//! every service process, e.g. `BENCH_SERVICE_ENV_IDBRIDGE__VAULT__WORKERS=1` for an A/B
//! run), `BENCH_WEBHOOK_DEBOUNCE_MS` / `BENCH_SIM_WEBHOOK_INTERVAL_MS` (the webhook receiver's
//! debounce and the simulator's webhook interval; default 5000 each, as deployed and as the
//! simulator ships: with shorter ones the reads after webhooks overlap the hires),
//! `TEST_DATABASE_URL`, `TEST_AMQP_URL`,
//! `IDBRIDGE_E2E_BIN_DIR` (use these executables instead of building them).

mod amqp;
mod cpu;
mod pg;
mod pgstats;
mod pipeline;
mod rss;
mod sim;

use std::time::Duration;

use anyhow::Context;
use idbridge_e2e::Service;

/// What the run is told by the environment.
pub struct Settings {
    pub events: usize,
    pub limited_events: usize,
    pub partitions: Option<u16>,
    pub amqp_messages: usize,
    pub sim_window: Duration,
    pub database_url: String,
    pub amqp_url: String,
    pub services: Vec<Service>,
    pub limited_services: Vec<Service>,
    pub limited_rate: u32,
    pub limited_burst: u32,
    pub malloc_arena_max: String,
    pub webhook_debounce_ms: u64,
    pub sim_webhook_interval_ms: u64,
}

/// `all` (every service), `write` (token vault and writer), `write+read` (token vault,
/// writer and reader), or names separated by commas.
fn services(key: &str, default: &str) -> Vec<Service> {
    let value = std::env::var(key).unwrap_or_else(|_| default.to_owned());
    match value.trim() {
        "all" => Service::ALL.to_vec(),
        "write" => vec![Service::TokenVault, Service::Writer],
        "write+read" => vec![Service::TokenVault, Service::Writer, Service::Reader],
        list => Service::ALL
            .into_iter()
            .filter(|s| list.split(',').any(|n| n.trim() == s.as_str()))
            .collect(),
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        Self {
            events: env_or("BENCH_EVENTS", 500),
            limited_events: env_or("BENCH_LIMITED_EVENTS", 240),
            partitions: std::env::var("BENCH_PARTITIONS")
                .ok()
                .and_then(|v| v.parse().ok()),
            amqp_messages: env_or("BENCH_AMQP_MESSAGES", 5000),
            sim_window: Duration::from_secs(env_or("BENCH_SIM_SECONDS", 5)),
            database_url: std::env::var("TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            amqp_url: std::env::var("TEST_AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            services: services("BENCH_SERVICES", "all"),
            limited_services: services("BENCH_LIMITED_SERVICES", "write+read"),
            limited_rate: env_or("BENCH_LIMITED_RATE", 24),
            limited_burst: env_or("BENCH_LIMITED_BURST", 30),
            malloc_arena_max: std::env::var("BENCH_MALLOC_ARENA_MAX")
                .unwrap_or_else(|_| "2".to_owned()),
            webhook_debounce_ms: env_or(
                "BENCH_WEBHOOK_DEBOUNCE_MS",
                pipeline::RECEIVER_DEFAULT_DEBOUNCE_MS,
            ),
            sim_webhook_interval_ms: env_or(
                "BENCH_SIM_WEBHOOK_INTERVAL_MS",
                pipeline::SIM_DEFAULT_WEBHOOK_INTERVAL_MS,
            ),
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{cores} cores ({cpu}), load average {}", load())
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A diagnostic beside the ratio, not the target. The backends serving the writer in the
/// pipeline's window and those serving PostgreSQL alone's connections run close to the same
/// statements per event, so the quotient of their CPU per event says how much slower the host
/// ran in the one window than in the other, plus what the pipeline's other processes cost
/// PostgreSQL (the two cannot be told apart). The ratio times that quotient, "at equal
/// cost", is the share of a core the writer's backends used in the pipeline over the share
/// PostgreSQL alone's used: it divides out the drift, and that real cost with it.
fn print_host_check(run: &pipeline::PipelineRun, alone: &pg::PgCapacity, ratio: f64) {
    let Some(round) = run.rounds.first() else {
        return;
    };
    let in_pipeline = cpu::owner_ms_per_event(&round.postgres_cpu, "idbridge-writer", round.events);
    let by_itself = alone.own_backends_ms_per_event;
    if let (Some(in_pipeline), Some(by_itself)) = (in_pipeline, by_itself)
        && by_itself > 0.0
    {
        let slower = in_pipeline / by_itself;
        println!(
            "  host check (diagnostic, not the target): PostgreSQL's backends for the writer used {in_pipeline:.2} ms per event in the pipeline, those for PostgreSQL alone {by_itself:.2} (x {slower:.2}: the host's drift between the windows and the other processes' cost to PostgreSQL); at equal cost the ratio would be {:.2}",
            ratio * slower
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    println!("pipeline benchmark (issue 9) — machine: {}", machine());
    let bins = tokio::task::spawn_blocking(|| {
        idbridge_e2e::binaries::binaries(idbridge_e2e::Profile::Release)
    })
    .await?
    .context("building the release executables")?;

    // 1. The pipeline.
    let run = pipeline::run(&settings, &bins, false, settings.events)
        .await
        .context("the pipeline run")?;
    run.print();
    let concurrency = usize::from(run.partitions);

    // 2. Each part alone.
    println!("\n== each part alone (load average {})", load());
    let rabbit = amqp::capacity(&settings.amqp_url, settings.amqp_messages)
        .await
        .context("RabbitMQ alone")?;
    println!(
        "RabbitMQ: {rabbit:.0} messages/s (confirmed persistent publish -> consume -> ack through the bus, quorum queue, 256 in flight, prefetch 256, {} messages)",
        settings.amqp_messages
    );
    let postgres = pg::capacity(
        &settings.database_url,
        settings.events.max(200),
        concurrency,
        run.pool,
        run.writer_calls_per_event.round().max(1.0) as u32,
    )
    .await
    .context("PostgreSQL alone")?;
    println!(
        "PostgreSQL: {:.0} events/s of the writer's statements ({:.0} commits/s), {concurrency} at once, pool {}",
        postgres.events_per_second, postgres.commits_per_second, run.pool
    );
    let cpu: Vec<String> = postgres
        .cpu_ms_per_event
        .iter()
        .map(|(label, ms)| format!("{label} {ms:.2}"))
        .collect();
    let own = postgres
        .own_backends_ms_per_event
        .map(|ms| format!(" (PostgreSQL for the pattern's connections {ms:.2})"))
        .unwrap_or_default();
    println!("  CPU per event, ms: {}{own}", cpu.join(", "));
    let client = sim::SimClient {
        id: "APP-PIPELINEBENCH001".to_owned(),
        secret: "pipeline-bench-secret".to_owned(),
        redirect: "http://127.0.0.1:9/callback".to_owned(),
    };
    let simulator = sim::SimProcess::start(&bins.orcid_sim, &client, false)?;
    let users = sim::connect_users(&simulator.base, &client, 200, "raw").await?;
    let orcid = sim::raw_post_capacity(&simulator.base, &users, concurrency, settings.sim_window)
        .await
        .context("orcid-sim alone")?;
    drop(simulator);
    println!(
        "orcid-sim: {orcid:.0} writes/s (POST /v3.0/{{orcid}}/employment, 201, {concurrency} in flight, 200 records, {} s)",
        settings.sim_window.as_secs()
    );
    let parts = [
        ("RabbitMQ", rabbit),
        ("PostgreSQL", postgres.events_per_second),
        ("orcid-sim", orcid),
    ];
    let (slowest, capacity) = parts
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("none", 0.0));
    println!(
        "pipeline / slowest part ({slowest}, {capacity:.0}/s): {:.0} / {capacity:.0} = {:.2} (target >= 0.5)",
        run.events_per_second(),
        run.events_per_second() / capacity
    );
    if slowest == "PostgreSQL" {
        print_host_check(&run, &postgres, run.events_per_second() / capacity);
    }

    // 3. Under ORCID's limit.
    let limited = pipeline::run(&settings, &bins, true, settings.limited_events)
        .await
        .context("the rate-limited run")?;
    limited.print();
    Ok(())
}
