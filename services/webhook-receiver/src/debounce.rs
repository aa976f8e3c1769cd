//! From verified callbacks to one "record changed" per iD per window.
//!
//! 1. The HTTP handler only [`Marks::mark`]s the hook id in memory and answers 204 at once.
//! 2. [`Debouncer::store_marks`] (a task woken by the marks) writes them to the database:
//!    `pending_since` is set if it was empty (the window opens at the first callback) and
//!    `last_callback_at` is updated, for a registration not `unregistered`. From here a
//!    restart loses nothing.
//! 3. [`Debouncer::flush_due`] (every `flush_interval`) takes the rows whose window has
//!    passed (`FOR UPDATE SKIP LOCKED`, so replicas share the work), records one
//!    `RecordChanged` per iD in the outbox and clears `pending_since`, in one transaction;
//!    the relay publishes it. A callback arriving after that opens a new window.
//!
//! A steady stream of callbacks thus gives one event per window, never none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bus::OutgoingMessage;
use bus::events::{OrcidId, RecordChanged};
use bus::outbox::Outbox;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Verified callbacks not yet written to the database: hook id → first arrival and last
/// arrival. Only verified hook ids get here, so its size is bounded by the registrations.
#[derive(Clone, Default)]
pub struct Marks {
    inner: Arc<MarksInner>,
}

/// Hook id → (first, last) arrival.
type MarkMap = HashMap<Uuid, (DateTime<Utc>, DateTime<Utc>)>;

#[derive(Default)]
struct MarksInner {
    map: Mutex<MarkMap>,
    notify: Notify,
}

impl std::fmt::Debug for Marks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marks")
            .field("waiting", &self.len())
            .finish()
    }
}

impl Marks {
    /// Records a verified callback of `hook_id` now.
    pub fn mark(&self, hook_id: Uuid) {
        let now = Utc::now();
        self.inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(hook_id)
            .and_modify(|(_, last)| *last = now)
            .or_insert((now, now));
        self.inner.notify.notify_one();
    }

    /// Marks waiting to be stored.
    pub fn len(&self) -> usize {
        self.inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self) -> MarkMap {
        std::mem::take(
            &mut *self
                .inner
                .map
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn put_back(&self, marks: MarkMap) {
        let mut map = self
            .inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (id, (first, last)) in marks {
            map.entry(id)
                .and_modify(|(f, l)| {
                    *f = (*f).min(first);
                    *l = (*l).max(last);
                })
                .or_insert((first, last));
        }
    }
}

/// Stores marks and publishes due changes.
#[derive(Clone)]
pub struct Debouncer {
    db: DatabaseConnection,
    outbox: Outbox,
    marks: Marks,
    window: Duration,
    relay: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Debouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Debouncer")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn stmt(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Most rows one flush takes.
const FLUSH_BATCH: i64 = 200;

impl Debouncer {
    /// A debouncer over `db` (migrated), recording into `outbox`, with `window`; `relay` is
    /// woken after events were recorded.
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        marks: Marks,
        window: Duration,
        relay: Option<Arc<Notify>>,
    ) -> Self {
        Self {
            db,
            outbox,
            marks,
            window,
            relay,
        }
    }

    /// The marks the HTTP handler fills.
    pub fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Writes the waiting marks to the database; returns how many registrations they
    /// touched (hook ids of unregistered connections touch none).
    ///
    /// # Errors
    /// Database errors (the marks are kept for the next call).
    pub async fn store_marks(&self) -> Result<u64, DbErr> {
        let marks = self.marks.take();
        let mut touched = 0;
        let mut left = marks.clone();
        for (hook_id, (first, last)) in marks {
            let result = self
                .db
                .execute_raw(stmt(
                    "UPDATE webhook_registrations
                     SET pending_since = COALESCE(pending_since, $2),
                         last_callback_at = GREATEST(last_callback_at, $3),
                         updated_at = now()
                     WHERE hook_id = $1 AND state <> 'unregistered'",
                    [hook_id.into(), first.into(), last.into()],
                ))
                .await;
            match result {
                Ok(r) => {
                    touched += r.rows_affected();
                    left.remove(&hook_id);
                }
                Err(e) => {
                    self.marks.put_back(left);
                    return Err(e);
                }
            }
        }
        Ok(touched)
    }

    /// Publishes (through the outbox) one `RecordChanged` per iD whose window has passed
    /// by `now`; returns the iDs.
    ///
    /// # Errors
    /// Database or outbox errors (nothing is cleared then).
    pub async fn flush_due(&self, now: DateTime<Utc>) -> Result<Vec<OrcidId>, DbErr> {
        let cutoff = now
            - chrono::Duration::from_std(self.window).unwrap_or_else(|_| chrono::Duration::zero());
        let txn = self.db.begin().await?;
        let rows = txn
            .query_all_raw(stmt(
                "SELECT orcid, pending_since, last_callback_at FROM webhook_registrations
                 WHERE pending_since IS NOT NULL AND pending_since <= $1
                 ORDER BY pending_since
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED",
                [cutoff.into(), FLUSH_BATCH.into()],
            ))
            .await?;
        let mut published = Vec::with_capacity(rows.len());
        for row in rows {
            let text: String = row.try_get("", "orcid")?;
            let pending_since: DateTime<Utc> = row.try_get("", "pending_since")?;
            let last: Option<DateTime<Utc>> = row.try_get("", "last_callback_at")?;
            match OrcidId::parse(&text) {
                Ok(orcid) => {
                    let event = RecordChanged {
                        orcid,
                        received_at: last.unwrap_or(pending_since),
                    };
                    let message = OutgoingMessage::event(&event)
                        .map_err(|e| DbErr::Custom(format!("record-changed message: {e}")))?;
                    self.outbox
                        .record(&txn, &message)
                        .await
                        .map_err(|e| DbErr::Custom(format!("outbox: {e}")))?;
                    published.push(orcid);
                }
                Err(e) => {
                    tracing::error!(orcid = %text, error = %e, "an unreadable iD in webhook_registrations; its change is dropped");
                }
            }
            txn.execute_raw(stmt(
                "UPDATE webhook_registrations SET pending_since = NULL, updated_at = now()
                 WHERE orcid = $1",
                [text.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        if !published.is_empty() {
            if let Some(relay) = &self.relay {
                relay.notify_one();
            }
            tracing::info!(count = published.len(), "record changed recorded");
        }
        Ok(published)
    }

    /// Stores marks as they come (and at least every `interval`) and flushes due changes
    /// every `interval`, until `shutdown`; then stores the last marks. Cancel `shutdown`
    /// only once nothing marks any more (the HTTP server has stopped), or the marks made
    /// after it are lost.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            let tick = tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.marks.inner.notify.notified() => false,
                _ = ticker.tick() => true,
            };
            let stored = self.store_marks().await;
            let flushed = if tick {
                self.flush_due(Utc::now()).await.map(|_| ())
            } else {
                Ok(())
            };
            match stored.and(flushed) {
                Ok(()) => {
                    if failing {
                        tracing::info!("the debounce table is reachable again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "debounce: the database failed; callbacks wait in memory");
                    }
                    failing = true;
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(interval) => {}
                    }
                }
            }
        }
        if let Err(e) = self.store_marks().await {
            tracing::warn!(error = %e, waiting = self.marks.len(), "callbacks not stored at shutdown");
        }
    }
}
