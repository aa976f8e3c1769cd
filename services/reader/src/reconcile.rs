//! Periodic reconciliation, for clients without webhooks: every active connection is read
//! once per `period`, the reads spaced evenly (`period / connections`, never closer than
//! `min_spacing`), oldest snapshot first, skipping a record read less than a period ago
//! (by a webhook, "connection ready" or another sweep). One replica at a time runs it: it
//! holds a lease row in `reader_leases` (expiry in the database's clock), renewed every
//! third of the lease — between steps and during a read — and stops sweeping as soon as a
//! renewal fails; a replica that stops renewing loses it after `lease` and another takes
//! over. A connection whose read failed waits a period, like one read successfully.
//!
//! [`plan`], [`spacing`] and [`last_reads`] are the pure decisions; [`Reconciler`] is the loop.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::reader::{ReadError, Reader};
use crate::snapshot::Snapshots;
use crate::tokens::ConnectionRef;

/// The lease's name in `reader_leases`.
pub const LEASE_NAME: &str = "reconcile";
const PAGE: u64 = 500;

/// The sweep's timing (from `[reader.reconcile]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Every connection is read once per period.
    pub period: Duration,
    /// The least time between two sweep reads.
    pub min_spacing: Duration,
    /// How long the lease lasts without renewal.
    pub lease: Duration,
    /// Re-list the connections at least this often.
    pub refresh: Duration,
}

/// The time between two sweep reads for `connections` connections: the period spread
/// evenly, never below `min_spacing` (the rate budget), the whole period when there are
/// none.
pub fn spacing(connections: usize, settings: &ReconcileSettings) -> Duration {
    let n = u32::try_from(connections.max(1)).unwrap_or(u32::MAX);
    (settings.period / n).max(settings.min_spacing)
}

/// Which connection to read next: the one read longest ago (never-read ones first, in
/// list order) whose last read is at least `period` old; `None` when none is due.
pub fn plan<'a>(
    connections: &'a [ConnectionRef],
    read_at: &HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    period: Duration,
) -> Option<&'a ConnectionRef> {
    let period = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
    connections
        .iter()
        .map(|c| (c, read_at.get(&c.orcid.to_string()).copied()))
        .filter(|(_, at)| at.is_none_or(|at| now - at >= period))
        .min_by_key(|(_, at)| *at)
        .map(|(c, _)| c)
}

/// The shortest lease `[reader.reconcile] lease_secs` accepts: the holder renews every
/// third of it, so a renewal (one database write) has seconds to get through.
pub const MIN_LEASE: Duration = Duration::from_secs(5);
/// The longest lease `[reader.reconcile] lease_secs` accepts: a crashed holder blocks the
/// sweep for at most this long.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

const LEASE_SQL_POSTGRES: &str = "INSERT INTO reader_leases (name, holder, until) \
     VALUES ($1, $2, CURRENT_TIMESTAMP + make_interval(secs => $3)) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
     WHERE reader_leases.until < CURRENT_TIMESTAMP OR reader_leases.holder = excluded.holder";
const LEASE_SQL_SQLITE: &str = "INSERT INTO reader_leases (name, holder, until) \
     VALUES (?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now', ?)) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
     WHERE reader_leases.until < strftime('%Y-%m-%d %H:%M:%f', 'now') \
     OR reader_leases.holder = excluded.holder";

/// Takes or renews the lease `name` for `holder` until the **database's** now plus `lease`
/// (every replica compares against the same clock); `true` when held. A `lease` longer than
/// [`MAX_LEASE`] counts as [`MAX_LEASE`].
///
/// # Errors
/// Database errors; a database other than PostgreSQL or SQLite.
pub async fn acquire_lease<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    holder: &str,
    lease: Duration,
) -> Result<bool, DbErr> {
    let secs = lease.min(MAX_LEASE).as_secs_f64();
    let statement = match conn.get_database_backend() {
        DbBackend::Postgres => Statement::from_sql_and_values(
            DbBackend::Postgres,
            LEASE_SQL_POSTGRES,
            [name.into(), holder.into(), secs.into()],
        ),
        DbBackend::Sqlite => Statement::from_sql_and_values(
            DbBackend::Sqlite,
            LEASE_SQL_SQLITE,
            [
                name.into(),
                holder.into(),
                format!("+{secs:.3} seconds").into(),
            ],
        ),
        other => {
            return Err(DbErr::Custom(format!(
                "the reader's lease needs PostgreSQL or SQLite, not {other:?}"
            )));
        }
    };
    Ok(conn.execute_raw(statement).await?.rows_affected() == 1)
}

/// Gives the lease up (on a clean stop), so another replica need not wait for it to expire.
///
/// # Errors
/// Database errors.
pub async fn release_lease<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    holder: &str,
) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(Alias::new("reader_leases"))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .and_where(Expr::col(Alias::new("holder")).eq(holder))
        .to_owned();
    conn.execute(&delete).await?;
    Ok(())
}

/// When each connection was last read, as the sweep plans with it: the snapshot times
/// (`stored`, from the database) merged with the sweep's own recent `attempts` (the later
/// of the two wins). A read that failed stored nothing, so without its attempt time the
/// connection would be due again at the next re-listing instead of the next period.
/// Attempts a `period` old or more no longer matter and are forgotten.
pub fn last_reads(
    stored: Vec<(String, DateTime<Utc>)>,
    attempts: &mut HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    period: Duration,
) -> HashMap<String, DateTime<Utc>> {
    let period = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
    attempts.retain(|_, at| now.signed_duration_since(*at) < period);
    let mut times: HashMap<String, DateTime<Utc>> = stored.into_iter().collect();
    for (key, at) in attempts.iter() {
        times
            .entry(key.clone())
            .and_modify(|t| *t = Ord::max(*t, *at))
            .or_insert(*at);
    }
    times
}

/// `at + d`, or a year on when that does not fit.
fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

/// The sweep loop.
#[derive(Debug)]
pub struct Reconciler {
    reader: Reader,
    settings: ReconcileSettings,
    holder: String,
}

/// The sweep's state between wake-ups.
#[derive(Debug, Default)]
struct SweepState {
    holding: bool,
    connections: Vec<ConnectionRef>,
    /// Planning times: snapshots merged with `attempts`.
    read_at: HashMap<String, DateTime<Utc>>,
    /// When this replica last tried each connection (kept across re-listings).
    attempts: HashMap<String, DateTime<Utc>>,
    listed_at: Option<Instant>,
    last_step: Option<Instant>,
}

impl Reconciler {
    /// A sweep over `reader`'s connections.
    pub fn new(reader: Reader, settings: ReconcileSettings) -> Self {
        Self {
            reader,
            settings,
            holder: Uuid::new_v4().simple().to_string(),
        }
    }

    /// Starts the loop on its own task.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// How often the lease is renewed: a third of it (so two renewals may fail before it
    /// lapses).
    fn slice(&self) -> Duration {
        (self.settings.lease / 3).max(Duration::from_millis(100))
    }

    /// Renews (or takes) the lease; `false` when this replica does not hold it.
    async fn renew(&self) -> bool {
        match acquire_lease(
            self.reader.db(),
            LEASE_NAME,
            &self.holder,
            self.settings.lease,
        )
        .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the reconciliation lease");
                false
            }
        }
    }

    /// Runs `work` while renewing the lease every slice; `None` (and `work` dropped) as soon
    /// as a renewal fails, so a long read or listing never outlives the lease.
    async fn while_holding<F: Future>(&self, work: F) -> Option<F::Output> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return Some(output),
                () = tokio::time::sleep(self.slice()) => {
                    if !self.renew().await {
                        return None;
                    }
                }
            }
        }
    }

    async fn list(&self) -> Result<Vec<ConnectionRef>, String> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .reader
                .tokens()
                .connections(after.as_deref(), PAGE)
                .await
                .map_err(|e| e.to_string())?;
            all.extend(page.connections);
            match page.next_after {
                Some(next) if Some(&next) != after.as_ref() => after = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// Runs until `shutdown`. Wakes at least every third of the lease to renew it; while it
    /// holds the lease, re-lists the connections every `refresh` and reads one due
    /// connection each time its spacing has passed.
    pub async fn run(self, shutdown: CancellationToken) {
        let snapshots = Snapshots::new(self.reader.db().clone());
        let refresh = self.settings.refresh.min(self.settings.period);
        let mut state = SweepState::default();
        loop {
            let held = self.renew().await;
            if held != state.holding {
                if held {
                    tracing::info!(holder = %self.holder, "holding the reconciliation lease");
                    state.listed_at = None;
                    state.last_step = None;
                } else {
                    tracing::info!("lost the reconciliation lease");
                }
                state.holding = held;
            }
            if state.holding {
                self.wake(&mut state, &snapshots, refresh).await;
            }
            let now = Instant::now();
            let mut wait = self.slice();
            if state.holding
                && let Some(listed_at) = state.listed_at
            {
                let next_step = state.last_step.map_or(now, |at| {
                    after(at, spacing(state.connections.len(), &self.settings))
                });
                let next_list = after(listed_at, refresh);
                wait = wait
                    .min(next_step.saturating_duration_since(now))
                    .min(next_list.saturating_duration_since(now))
                    .max(Duration::from_millis(10));
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if state.holding
            && let Err(e) = release_lease(self.reader.db(), LEASE_NAME, &self.holder).await
        {
            tracing::warn!(error = %e, "could not release the reconciliation lease");
        }
    }

    /// One wake-up while holding the lease: re-list when due, step when due.
    async fn wake(&self, state: &mut SweepState, snapshots: &Snapshots, refresh: Duration) {
        if state.listed_at.is_none_or(|at| at.elapsed() >= refresh) {
            let listing = self
                .while_holding(async { (self.list().await, snapshots.read_times().await) })
                .await;
            match listing {
                None => {
                    state.holding = false;
                    tracing::info!("lost the reconciliation lease while listing");
                    return;
                }
                Some((Ok(list), Ok(times))) => {
                    state.connections = list;
                    state.read_at =
                        last_reads(times, &mut state.attempts, Utc::now(), self.settings.period);
                    state.listed_at = Some(Instant::now());
                }
                Some((Err(e), _)) => {
                    tracing::warn!(error = %e, "cannot list connections for the sweep");
                }
                Some((_, Err(e))) => {
                    tracing::warn!(error = %e, "cannot read snapshot times for the sweep");
                }
            }
        }
        if state.listed_at.is_none() {
            return;
        }
        let due = state
            .last_step
            .is_none_or(|at| at.elapsed() >= spacing(state.connections.len(), &self.settings));
        if due {
            state.last_step = Some(Instant::now());
            if !self.step(state, snapshots).await {
                state.holding = false;
                tracing::info!("lost the reconciliation lease during a read");
            }
        }
    }

    /// Reads the next due connection, if any. A record another path read meanwhile is
    /// skipped (its time is refreshed from the database first). `false` when the lease was
    /// lost during the read (the read was abandoned).
    async fn step(&self, state: &mut SweepState, snapshots: &Snapshots) -> bool {
        // A few candidates at most per step, so a step stays short.
        for _ in 0..8 {
            let Some(next) = plan(
                &state.connections,
                &state.read_at,
                Utc::now(),
                self.settings.period,
            ) else {
                return true;
            };
            let next = next.clone();
            let key = next.orcid.to_string();
            match snapshots.get(&next.orcid).await {
                Ok(Some(s))
                    if state
                        .read_at
                        .get(&key)
                        .is_none_or(|known| s.read_at > *known) =>
                {
                    // Read by another path since the list was made: re-plan with its time.
                    state.read_at.insert(key, s.read_at);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a snapshot time");
                    return true;
                }
            }
            let attempt = Utc::now();
            let result = self
                .while_holding(
                    self.reader
                        .read_record(&next.orcid, Some(&next.person_id), None),
                )
                .await;
            // Whatever happened, this connection waits for its next turn (kept across
            // re-listings, so a failing read is retried once per period).
            state.attempts.insert(key.clone(), attempt);
            state.read_at.insert(key, attempt);
            match result {
                None => return false,
                Some(Ok(outcome)) => {
                    tracing::debug!(orcid = %next.orcid, ?outcome, "reconciled");
                }
                Some(Err(ReadError::Retry { reason, .. } | ReadError::Refused(reason))) => {
                    tracing::warn!(orcid = %next.orcid, %reason, "reconciliation read failed; next period");
                }
            }
            return true;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orcid::OrcidId;

    fn conn(id: &str) -> ConnectionRef {
        ConnectionRef {
            orcid: OrcidId::parse(id).unwrap(),
            person_id: format!("P-{id}"),
        }
    }

    fn settings(period_secs: u64) -> ReconcileSettings {
        ReconcileSettings {
            period: Duration::from_secs(period_secs),
            min_spacing: Duration::from_millis(250),
            lease: Duration::from_secs(60),
            refresh: Duration::from_secs(600),
        }
    }

    #[test]
    fn spacing_spreads_the_period_within_the_budget() {
        let s = settings(86_400);
        assert_eq!(spacing(86_400, &s), Duration::from_secs(1));
        assert_eq!(spacing(0, &s), Duration::from_secs(86_400));
        assert_eq!(
            spacing(1_000_000, &s),
            Duration::from_millis(250),
            "never faster than min_spacing"
        );
    }

    #[test]
    fn plan_picks_never_read_then_oldest_and_skips_recent_reads() {
        let a = conn("0000-0002-1825-0097");
        let b = conn("0000-0001-5109-3700");
        let c = conn("0000-0002-1694-233X");
        let list = vec![a.clone(), b.clone(), c.clone()];
        let now = Utc::now();
        let day = Duration::from_secs(86_400);
        let mut read_at = HashMap::new();
        read_at.insert(a.orcid.to_string(), now - chrono::Duration::hours(30));
        read_at.insert(b.orcid.to_string(), now - chrono::Duration::hours(1));
        assert_eq!(
            plan(&list, &read_at, now, day),
            Some(&c),
            "never read first"
        );
        read_at.insert(c.orcid.to_string(), now - chrono::Duration::hours(25));
        assert_eq!(plan(&list, &read_at, now, day), Some(&a), "then the oldest");
        read_at.insert(a.orcid.to_string(), now);
        read_at.insert(c.orcid.to_string(), now);
        assert_eq!(
            plan(&list, &read_at, now, day),
            None,
            "b was read an hour ago (e.g. by a webhook): not due"
        );
    }

    #[test]
    fn a_failed_read_stays_remembered_across_re_listings_for_a_period() {
        let a = conn("0000-0002-1825-0097");
        let list = vec![a.clone()];
        let key = a.orcid.to_string();
        let now = Utc::now();
        let day = Duration::from_secs(86_400);
        let stored_long_ago = vec![(key.clone(), now - chrono::Duration::hours(30))];
        // The sweep tried it a minute ago and the read failed (no snapshot stored).
        let mut attempts = HashMap::from([(key.clone(), now - chrono::Duration::minutes(1))]);
        let times = last_reads(stored_long_ago.clone(), &mut attempts, now, day);
        assert_eq!(
            plan(&list, &times, now, day),
            None,
            "not due again on re-listing"
        );
        // A period later it is due again, and the old attempt is forgotten.
        let later = now + chrono::Duration::hours(24);
        let times = last_reads(stored_long_ago, &mut attempts, later, day);
        assert_eq!(plan(&list, &times, later, day), Some(&a));
        assert!(attempts.is_empty());
        // A newer stored read wins over an older attempt.
        let mut attempts = HashMap::from([(key.clone(), now - chrono::Duration::hours(2))]);
        let times = last_reads(vec![(key.clone(), now)], &mut attempts, now, day);
        assert_eq!(times.get(&key), Some(&now));
    }
}
