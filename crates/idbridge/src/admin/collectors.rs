//! The gauges `idbridge serve` samples for `/metrics`: queue depth and consumers (a passive
//! queue declare per work, retry and parking queue), outbox backlog per service, token-vault
//! connections by state and writer items by state.
//!
//! One task samples every [`INTERVAL`], and when a scrape finds the last sample older than
//! [`WAKE_AFTER`] (or none yet); never two samples less than [`WAKE_AFTER`] apart, so
//! scrapes (anyone who can reach the admin port) cannot load the database and the broker.
//! The scrape itself never waits for it (it renders the values of the last sample), and
//! neither does `/readyz`. Each source has its own timeout, the broker connection its own. A
//! source that fails logs one warning until it works again, counts
//! `idbridge_collector_errors_total{collector}` and leaves its gauges as they were.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use idbridge_platform::metrics::names;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the gauges are sampled without scrapes, unless `[admin] sample_seconds` says
/// otherwise ([`Collector::set_interval`]).
pub const INTERVAL: Duration = Duration::from_secs(15);

/// A scrape wakes the sampler when the last sample is older than the interval; the interval
/// is also the shortest time between two samples.
pub const WAKE_AFTER: Duration = INTERVAL;

/// How long one source may take (not counting a broker connection being opened).
const SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening the collectors' broker connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing a broker connection may take at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Something to sample.
pub enum Source {
    /// Queues on one broker: `idbridge_queue_messages{queue}`, `idbridge_queue_consumers{queue}`.
    Queues {
        /// The broker (the service's `bus.amqp_url`). Never logged.
        url: SecretString,
        /// Full queue names.
        queues: Vec<String>,
    },
    /// One service's outbox: `idbridge_outbox_pending{service}`,
    /// `idbridge_outbox_oldest_age_seconds{service}`.
    Outbox {
        /// The service.
        service: &'static str,
        /// Its database.
        db: DatabaseConnection,
        /// Its outbox table.
        table: &'static str,
    },
    /// Rows by state (`gauge{state}`): every `known` state is set, 0 when it has no row.
    States {
        /// `connections` or `items`, the collector label.
        collector: &'static str,
        /// The gauge.
        gauge: &'static str,
        /// Its database.
        db: DatabaseConnection,
        /// The table, with a `state` column.
        table: &'static str,
        /// Every state the table may hold.
        known: Vec<&'static str>,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queues { queues, .. } => f
                .debug_struct("Queues")
                .field("queues", &queues.len())
                .finish_non_exhaustive(),
            Self::Outbox { service, table, .. } => f
                .debug_struct("Outbox")
                .field("service", service)
                .field("table", table)
                .finish_non_exhaustive(),
            Self::States {
                collector, table, ..
            } => f
                .debug_struct("States")
                .field("collector", collector)
                .field("table", table)
                .finish_non_exhaustive(),
        }
    }
}

impl Source {
    fn collector(&self) -> &'static str {
        match self {
            Self::Queues { .. } => "queues",
            Self::Outbox { .. } => "outbox",
            Self::States { collector, .. } => collector,
        }
    }
}

/// A source with what sampling it needs to remember.
struct Sampled {
    source: Source,
    /// Failing since the last warning (no more warnings until it works again).
    failing: bool,
    /// The broker connection of a queue source, kept between samples.
    connection: Option<Connection>,
    /// States seen in the table that are not in `known` (set to 0 once they are gone).
    extra_states: BTreeSet<String>,
}

/// The sampler: sources are added as services start.
#[derive(Default)]
pub struct Collector {
    sources: tokio::sync::Mutex<Vec<Sampled>>,
    /// Added and not yet taken by a sample (adding never waits for a sample in progress).
    pending: Mutex<Vec<Source>>,
    wake: Notify,
    last: Mutex<Option<Instant>>,
    /// The sampling interval in milliseconds; 0: [`INTERVAL`].
    interval_ms: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl Collector {
    /// Samples every `interval` (and never more often); at least 100 ms.
    pub fn set_interval(&self, interval: Duration) {
        let ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(100);
        self.interval_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        match self.interval_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => INTERVAL,
            ms => Duration::from_millis(ms),
        }
    }

    /// Adds sources, sampled from the next sample on. Never waits for a sample in progress.
    pub fn add(&self, sources: Vec<Source>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.extend(sources);
        }
        self.wake.notify_one();
    }

    /// Moves the added sources in; a queue source on a broker already sampled adds its
    /// queues there.
    fn take_pending(&self, all: &mut Vec<Sampled>) {
        let added = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        for source in added {
            if let Source::Queues { url, queues } = &source
                && let Some(Sampled {
                    source: Source::Queues { queues: known, .. },
                    ..
                }) = all.iter_mut().find(|s| {
                    matches!(&s.source, Source::Queues { url: u, .. }
                        if u.expose_secret() == url.expose_secret())
                })
            {
                for q in queues {
                    if !known.contains(q) {
                        known.push(q.clone());
                    }
                }
                continue;
            }
            all.push(Sampled {
                source,
                failing: false,
                connection: None,
                extra_states: BTreeSet::new(),
            });
        }
    }

    /// A scrape: wakes the sampler when the last sample is stale. Never waits.
    pub fn scraped(&self) {
        if self.stale() {
            self.wake.notify_one();
        }
    }

    /// No sample yet, or the last one is at least the interval old.
    fn stale(&self) -> bool {
        self.last.lock().map_or(true, |last| {
            last.is_none_or(|t| t.elapsed() >= self.interval())
        })
    }

    /// Samples every source now.
    pub async fn sample(&self) {
        let mut sources = self.sources.lock().await;
        self.take_pending(&mut sources);
        for sampled in sources.iter_mut() {
            let collector = sampled.source.collector();
            let result = match connected(sampled).await {
                Err(error) => Err(error),
                Ok(()) => match tokio::time::timeout(SOURCE_TIMEOUT, sample_one(sampled)).await {
                    Ok(result) => result,
                    Err(_) => {
                        // A broker that stopped answering: a new connection next time.
                        sampled.connection = None;
                        Err(format!("no answer within {SOURCE_TIMEOUT:?}"))
                    }
                },
            };
            match result {
                Ok(()) => {
                    if sampled.failing {
                        sampled.failing = false;
                        tracing::info!(collector, "metrics collector works again");
                    }
                }
                Err(error) => {
                    metrics::counter!(names::COLLECTOR_ERRORS_TOTAL, "collector" => collector)
                        .increment(1);
                    if sampled
                        .connection
                        .as_ref()
                        .is_some_and(|c| !c.status().connected())
                    {
                        // Reconnect next time (a missing queue leaves it connected).
                        sampled.connection = None;
                    }
                    if !sampled.failing {
                        sampled.failing = true;
                        tracing::warn!(collector, %error, "metrics collector failed; its gauges keep their last values (logged once until it works again)");
                    }
                }
            }
        }
        drop(sources);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Instant::now());
        }
    }

    /// Samples every interval and when woken, until `shutdown`; then closes the broker
    /// connections.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = this.wake.notified() => {
                        // A wake stored while the last sample ran: not again so soon.
                        if !this.stale() {
                            continue;
                        }
                    }
                    () = tokio::time::sleep(this.interval()) => {}
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = this.sample() => {}
                }
            }
            let mut sources = this.sources.lock().await;
            for sampled in sources.iter_mut() {
                if let Some(connection) = sampled.connection.take() {
                    let _ = tokio::time::timeout(
                        CLOSE_TIMEOUT,
                        connection.close(200, "stopping".into()),
                    )
                    .await;
                }
            }
        })
    }
}

/// Opens the broker connection of a queue source when it has none that is connected, within
/// [`CONNECT_TIMEOUT`] (outside the source's [`SOURCE_TIMEOUT`]). Other sources: nothing to do.
async fn connected(sampled: &mut Sampled) -> Result<(), String> {
    if let Source::Queues { url, .. } = &sampled.source
        && !sampled
            .connection
            .as_ref()
            .is_some_and(|c| c.status().connected())
    {
        sampled.connection = Some(connect(url).await?);
    }
    Ok(())
}

async fn sample_one(sampled: &mut Sampled) -> Result<(), String> {
    match &sampled.source {
        Source::Queues { queues, .. } => {
            let Some(connection) = &sampled.connection else {
                return Err("no connection".to_owned());
            };
            sample_queues(connection, queues).await
        }
        Source::Outbox { service, db, table } => sample_outbox(service, db, table).await,
        Source::States {
            gauge,
            db,
            table,
            known,
            ..
        } => sample_states(gauge, db, table, known, &mut sampled.extra_states).await,
    }
}

/// The URL parsed the way the bus does: `amq-protocol-uri` puts `localhost` for an IP host,
/// and its errors quote the URL (password included), so none of them is shown.
fn amqp_uri(url: &str) -> Result<AMQPUri, String> {
    let bad = || format!("invalid AMQP URL {}", bus::redact_url(url));
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => None,
        Some(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Some(ip.to_string()),
        _ => return Err(bad()),
    };
    let mut uri: AMQPUri = url.parse().map_err(|_| bad())?;
    if let Some(host) = host {
        uri.authority.host = host;
    }
    Ok(uri)
}

async fn connect(url: &SecretString) -> Result<Connection, String> {
    let uri = amqp_uri(url.expose_secret())?;
    let properties =
        ConnectionProperties::default().with_connection_name("idbridge-serve:metrics".into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri, properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(format!(
            "cannot connect to {}: {e}",
            bus::redact_url(url.expose_secret())
        )),
        Err(_) => Err(format!(
            "cannot connect to {} within {CONNECT_TIMEOUT:?}",
            bus::redact_url(url.expose_secret())
        )),
    }
}

/// A passive declare per queue (it creates nothing). A missing queue closes the channel:
/// the next queue gets a new one, and the error names the missing queue after the others
/// were sampled.
async fn sample_queues(connection: &Connection, queues: &[String]) -> Result<(), String> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let mut channel = None;
    let mut missing = Vec::new();
    for queue in queues {
        let ch = match channel.take() {
            Some(ch) => ch,
            None => connection
                .create_channel()
                .await
                .map_err(|e| format!("cannot open a channel: {e}"))?,
        };
        match ch
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
        {
            Ok(q) => {
                metrics::gauge!(names::QUEUE_MESSAGES, "queue" => queue.clone())
                    .set(f64::from(q.message_count()));
                metrics::gauge!(names::QUEUE_CONSUMERS, "queue" => queue.clone())
                    .set(f64::from(q.consumer_count()));
                channel = Some(ch);
            }
            Err(e) => missing.push(format!("{queue}: {e}")),
        }
    }
    if let Some(ch) = channel {
        let _ = ch.close(200, "sampled".into()).await;
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("queues not sampled: {}", missing.join("; ")))
    }
}

async fn sample_outbox(
    service: &'static str,
    db: &DatabaseConnection,
    table: &str,
) -> Result<(), String> {
    // `table` is a constant of the service (a plain identifier), never input.
    let sql = format!(
        "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM {table} WHERE sent_at IS NULL"
    );
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map_err(|e| format!("{table}: {e}"))?
        .ok_or_else(|| format!("{table}: no row"))?;
    let pending: i64 = row
        .try_get("", "pending")
        .map_err(|e| format!("{table}: {e}"))?;
    let oldest: Option<DateTime<Utc>> = row
        .try_get("", "oldest")
        .map_err(|e| format!("{table}: {e}"))?;
    let age = oldest.map_or(0.0, |t| {
        (Utc::now() - t).to_std().map_or(0.0, |d| d.as_secs_f64())
    });
    metrics::gauge!(names::OUTBOX_PENDING, "service" => service).set(pending as f64);
    metrics::gauge!(names::OUTBOX_OLDEST_AGE_SECONDS, "service" => service).set(age);
    Ok(())
}

async fn sample_states(
    gauge: &'static str,
    db: &DatabaseConnection,
    table: &str,
    known: &[&'static str],
    extra: &mut BTreeSet<String>,
) -> Result<(), String> {
    let sql = format!("SELECT state, COUNT(*) AS n FROM {table} GROUP BY state");
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map_err(|e| format!("{table}: {e}"))?;
    let mut counts = Vec::with_capacity(rows.len());
    for row in rows {
        let state: String = row
            .try_get("", "state")
            .map_err(|e| format!("{table}: {e}"))?;
        let n: i64 = row.try_get("", "n").map_err(|e| format!("{table}: {e}"))?;
        counts.push((state, n));
    }
    let count_of = |state: &str| {
        counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    };
    for state in known {
        metrics::gauge!(gauge, "state" => *state).set(count_of(state) as f64);
    }
    // A state the code does not know (a newer replica's): shown while it has rows.
    let now_extra: BTreeSet<String> = counts
        .iter()
        .map(|(s, _)| s.clone())
        .filter(|s| !known.contains(&s.as_str()))
        .collect();
    for state in extra.iter().chain(now_extra.iter()) {
        metrics::gauge!(gauge, "state" => state.clone()).set(count_of(state) as f64);
    }
    extra.extend(now_extra);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqp_urls_keep_ip_hosts_and_errors_hide_the_password() {
        let uri = amqp_uri("amqp://guest:guest@127.0.0.1:5672/%2f").expect("parses");
        assert_eq!(uri.authority.host, "127.0.0.1");
        let uri = amqp_uri("amqp://u:p@rabbit.internal:5672/vh").expect("parses");
        assert_eq!(uri.authority.host, "rabbit.internal");
        let err = amqp_uri("amqp://user:s3cret@/").expect_err("no host");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
