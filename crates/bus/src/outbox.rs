//! The transactional outbox.
//!
//! A service records the events it emits with [`Outbox::record`] on the *same* transaction
//! as its state change, so either both commit or neither does. [`OutboxRelay`] then
//! publishes unsent rows with publisher confirms, *mandatory* (a message no queue receives
//! is returned by the broker and stays pending; notifications, [`events::NOTIFICATIONS`],
//! are the exception: with nobody subscribed they are dropped), and marks them sent. If the broker is
//! down the rows wait; the relay backs off and drains them when it is back. A crash between
//! the confirm and the "sent" mark publishes a row twice: consumers' inboxes absorb that
//! (the message id is the row's).
//!
//! How a batch goes: the relay *leases* up to `batch_size` rows and reads them (owner and
//! expiry, in one short `UPDATE … RETURNING`; on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
//! relays in several replicas take different rows), publishes them one at a time in
//! insertion order with no database transaction open, stops at the first failure, then
//! marks what went out as sent and releases the rest (one statement when the whole batch
//! went out). No database lock is held while talking to the broker.
//!
//! The lease is short ([`RelayConfig::lease`], 5 s by default) and the relay renews it every
//! third of it while it publishes the batch, also while one publish waits for its confirm.
//! The database computes and compares `lease_until` with its own clock, so the replicas'
//! clocks need not agree. The relay starts no publish with less than half the lease known to
//! be left (renewals failed), and stops the batch when a renewal finds rows no longer its
//! own. One publish holds the batch for at most [`PUBLISH_WAIT_LIMIT`] (the bus's own
//! publish timeout, `AmqpConfig::publish_timeout`, normally ends it first): the batch then
//! stops and the rest is released, so a relay stuck on a broker connection that stopped
//! answering does not keep its rows. So the rows of a relay whose process died (SIGKILL,
//! OOM, a lost node) go to the other relays, or to the same service restarted, once its
//! lease runs out, seconds later.
//!
//! Besides a crash between the confirm and the "sent" mark, a row goes out twice when
//! marking it sent fails, and when the lease of a live relay runs out (no renewal reached
//! the database in time): another relay then takes every row of the batch not yet marked
//! sent, those already published included (a batch is marked sent at its end), so up to a
//! whole batch can go out twice. The first relay still marks the rows it published as sent
//! when its batch ends, although they are no longer its own, and the other relay stops its
//! batch at its next renewal, when it finds them gone. Consumers' inboxes absorb the copies.
//!
//! A row the broker *refuses* (no queue bound: [`BusError::Unroutable`]; a missing
//! exchange; a nack; an unreadable row) counts an attempt in its `attempts` column, keeps
//! the error in `last_error` and is held back for a growing, jittered delay, so the rows
//! behind it go out meanwhile. After [`RelayConfig::max_attempts`] refusals it is skipped
//! for good and logged as an error with its row id: [`Outbox::stuck`] lists such rows and
//! [`Outbox::retry_stuck`] puts them back. Failures that say nothing about the row (broker
//! unreachable, connection lost, confirm timeout) count no attempt: during an outage every
//! row simply waits. Rows go out in insertion order except around a refused row, so
//! consumers must not rely on ordering.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, TransactionTrait,
    sea_query::{Alias, Condition, Expr, ExprTrait, LockBehavior, LockType, Order, Query},
};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    Bus, BusError, Envelope, TraceContext, bus::PublishLane, events, message::OutgoingMessage,
    migration::TableNames, policy::jittered,
};

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Writes to one service's outbox table.
#[derive(Clone, Debug)]
pub struct Outbox {
    table: String,
}

impl Outbox {
    /// The outbox in `names.outbox`.
    #[must_use]
    pub fn new(names: &TableNames) -> Self {
        Self {
            table: names.outbox.clone(),
        }
    }

    /// Records `message` for publication. Call it with the transaction that changes the
    /// service's state. An envelope without a trace context gets the current span's, so the
    /// relay's publish, later, joins the trace of the request that recorded it.
    ///
    /// # Errors
    /// Database errors (the caller's transaction should then roll back).
    pub async fn record<C: ConnectionTrait>(
        &self,
        conn: &C,
        message: &OutgoingMessage,
    ) -> Result<(), BusError> {
        let mut envelope = std::borrow::Cow::Borrowed(&message.envelope);
        if envelope.trace.is_empty() {
            let current = TraceContext::current();
            if !current.is_empty() {
                envelope.to_mut().trace = current;
            }
        }
        let envelope = envelope.as_ref();
        let body = String::from_utf8(envelope.to_json()?)
            .map_err(|e| BusError::Config(format!("envelope is not UTF-8: {e}")))?;
        let mut insert = Query::insert();
        insert
            .into_table(col(&self.table))
            .columns([
                col("message_id"),
                col("message_type"),
                col("exchange"),
                col("routing_key"),
                col("partition_key"),
                col("traceparent"),
                col("tracestate"),
                col("body"),
                col("created_at"),
                col("attempts"),
            ])
            .values([
                envelope.message_id.to_string().into(),
                envelope.message_type.clone().into(),
                message.exchange.clone().into(),
                message.routing_key.clone().into(),
                message.partition_key.clone().into(),
                envelope.trace.traceparent.clone().into(),
                envelope.trace.tracestate.clone().into(),
                body.into(),
                Utc::now().into(),
                0i32.into(),
            ])
            .map_err(|e| BusError::Config(format!("outbox insert: {e}")))?;
        conn.execute(&insert).await?;
        Ok(())
    }

    /// Rows not yet published (including rows the relay gave up on, see [`Outbox::stuck`]).
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending<C: ConnectionTrait>(&self, conn: &C) -> Result<u64, BusError> {
        let count = Query::select()
            .expr_as(Expr::col(col("seq")).count(), col("n"))
            .from(col(&self.table))
            .and_where(Expr::col(col("sent_at")).is_null())
            .to_owned();
        let row = conn.query_one(&count).await?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Unsent rows that were refused `max_attempts` times or more (pass the relay's
    /// [`RelayConfig::max_attempts`]): the relay no longer tries them. Oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn stuck<C: ConnectionTrait>(
        &self,
        conn: &C,
        max_attempts: u32,
    ) -> Result<Vec<StuckRow>, BusError> {
        let select = Query::select()
            .columns([
                col("seq"),
                col("message_id"),
                col("message_type"),
                col("exchange"),
                col("routing_key"),
                col("attempts"),
                col("last_error"),
                col("created_at"),
            ])
            .from(col(&self.table))
            .and_where(Expr::col(col("sent_at")).is_null())
            .and_where(Expr::col(col("attempts")).gte(attempt_limit(max_attempts)))
            .order_by(col("seq"), Order::Asc)
            .to_owned();
        conn.query_all(&select)
            .await?
            .iter()
            .map(|row| {
                let attempts: i32 = row.try_get("", "attempts")?;
                Ok(StuckRow {
                    seq: row.try_get("", "seq")?,
                    message_id: row.try_get("", "message_id")?,
                    message_type: row.try_get("", "message_type")?,
                    exchange: row.try_get("", "exchange")?,
                    routing_key: row.try_get("", "routing_key")?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    last_error: row.try_get("", "last_error")?,
                    created_at: row.try_get("", "created_at")?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()
            .map_err(BusError::from)
    }

    /// Gives the rows of [`Outbox::stuck`] a fresh start (attempts back to 0), typically
    /// after the cause was fixed; returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn retry_stuck<C: ConnectionTrait>(
        &self,
        conn: &C,
        max_attempts: u32,
    ) -> Result<u64, BusError> {
        let update = Query::update()
            .table(col(&self.table))
            .value(col("attempts"), 0i32)
            .value(col("lease_until"), Option::<DateTime<Utc>>::None)
            .and_where(Expr::col(col("sent_at")).is_null())
            .and_where(Expr::col(col("attempts")).gte(attempt_limit(max_attempts)))
            .to_owned();
        Ok(conn.execute(&update).await?.rows_affected())
    }

    /// Deletes rows published before `before`; returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_sent<C: ConnectionTrait>(
        &self,
        conn: &C,
        before: DateTime<Utc>,
    ) -> Result<u64, BusError> {
        let delete = Query::delete()
            .from_table(col(&self.table))
            .and_where(Expr::col(col("sent_at")).lt(before))
            .to_owned();
        Ok(conn.execute(&delete).await?.rows_affected())
    }
}

/// An outbox row the relay gave up on (see [`Outbox::stuck`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckRow {
    /// The row id (`seq`), as logged by the relay.
    pub seq: i64,
    /// The message's id.
    pub message_id: String,
    /// The envelope's type.
    pub message_type: String,
    /// Exchange (relative name).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Refusals so far.
    pub attempts: u32,
    /// The last refusal.
    pub last_error: Option<String>,
    /// When the row was recorded.
    pub created_at: DateTime<Utc>,
}

fn attempt_limit(max_attempts: u32) -> i32 {
    i32::try_from(max_attempts).unwrap_or(i32::MAX)
}

/// The shortest [`RelayConfig::lease`]: a shorter one counts as this (a renewal, one
/// database write every third of the lease, needs a few hundred milliseconds to get through).
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// The longest one publish holds a batch, renewing its lease, before the relay gives up on
/// it (the row counts no attempt) and releases the rest of the batch. The bus's own limit,
/// `AmqpConfig::publish_timeout` (30 s by default), normally ends a hung publish first.
pub const PUBLISH_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// SQLite stores times as text: this format sorts like the RFC 3339 text sqlx writes for a
/// `DateTime<Utc>` (`...T05:01:45.123456+00:00`), so both compare as times.
const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";

/// The database's current time, so that every replica compares leases against one clock.
fn db_now(backend: DatabaseBackend) -> Result<Expr, BusError> {
    match backend {
        DatabaseBackend::Postgres => Ok(Expr::cust("CURRENT_TIMESTAMP")),
        DatabaseBackend::Sqlite => Ok(Expr::cust(SQLITE_NOW)),
        other => Err(unsupported(other)),
    }
}

/// The database's current time plus `after`.
fn db_now_plus(backend: DatabaseBackend, after: Duration) -> Result<Expr, BusError> {
    let secs = after.as_secs_f64();
    match backend {
        DatabaseBackend::Postgres => Ok(Expr::cust_with_values(
            "CURRENT_TIMESTAMP + make_interval(secs => $1)",
            [secs],
        )),
        DatabaseBackend::Sqlite => Ok(Expr::cust_with_values(
            "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', ?)",
            [format!("+{secs:.3} seconds")],
        )),
        other => Err(unsupported(other)),
    }
}

fn unsupported(backend: DatabaseBackend) -> BusError {
    BusError::Config(format!(
        "the outbox relay supports PostgreSQL and SQLite, not {backend:?}"
    ))
}

/// How the relay polls, backs off and gives up.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Rows leased and published per round.
    pub batch_size: u64,
    /// Pause between rounds when idle (a [`OutboxRelay::waker`] notification cuts it short);
    /// also the first hold of a refused row.
    pub poll_interval: Duration,
    /// Longest pause after failures (broker down); pauses are jittered.
    pub max_backoff: Duration,
    /// Refusals by the broker after which a row is skipped and left for an operator
    /// ([`Outbox::stuck`]). Failures to reach the broker do not count.
    pub max_attempts: u32,
    /// Longest hold of a refused row before its next try (holds double from
    /// `poll_interval`, jittered).
    pub max_row_delay: Duration,
    /// How long the rows of a batch belong to this relay without a renewal. The relay
    /// renews the lease every third of it while it publishes the batch and starts no publish
    /// with less than half of it left, so another relay does not take rows this one is
    /// still sending; rows leased by a relay that died wait this long for another relay.
    /// At least [`MIN_LEASE`] (a shorter one counts as that).
    pub lease: Duration,
}

impl Default for RelayConfig {
    /// 100 rows, 250 ms, back-off up to 10 s; a refused row is retried with holds doubling
    /// up to 5 min and skipped after 20 refusals (about an hour); leases of 5 s, renewed
    /// while a batch is being published.
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_attempts: 20,
            max_row_delay: Duration::from_secs(300),
            lease: Duration::from_secs(5),
        }
    }
}

/// Publishes the outbox.
#[derive(Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Bus,
    outbox: Outbox,
    config: RelayConfig,
    wake: Arc<Notify>,
    /// A publishing channel of this relay's own: a row that makes the broker close the
    /// channel (a missing exchange) cannot fail anybody else's publishes.
    lane: PublishLane,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("outbox", &self.outbox)
            .field("config", &self.config)
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

struct Row {
    seq: i64,
    message_id: String,
    attempts: i32,
    /// The message, or why the row cannot be read as one.
    message: Result<OutgoingMessage, String>,
}

fn read_row(row: &QueryResult) -> Result<Row, DbErr> {
    let seq: i64 = row.try_get("", "seq")?;
    let message_id: String = row.try_get("", "message_id")?;
    let attempts: i32 = row.try_get("", "attempts")?;
    let body: String = row.try_get("", "body")?;
    let traceparent: Option<String> = row.try_get("", "traceparent")?;
    let tracestate: Option<String> = row.try_get("", "tracestate")?;
    let exchange: String = row.try_get("", "exchange")?;
    let routing_key: String = row.try_get("", "routing_key")?;
    let partition_key: Option<String> = row.try_get("", "partition_key")?;
    let trace = TraceContext::from_headers(traceparent.as_deref(), tracestate.as_deref());
    let message = Envelope::from_json(body.as_bytes(), trace)
        .map(|envelope| OutgoingMessage {
            exchange,
            routing_key,
            partition_key,
            envelope,
        })
        .map_err(|e| format!("unreadable outbox row: {e}"));
    Ok(Row {
        seq,
        message_id,
        attempts,
        message,
    })
}

/// Whether the broker refused this message (so trying it again as it is may never work),
/// as opposed to not being reachable at all.
fn refused(error: &BusError) -> bool {
    match error {
        BusError::Unroutable { .. }
        | BusError::Nacked { .. }
        | BusError::Config(_)
        | BusError::Json(_)
        | BusError::WrongType { .. } => true,
        // A channel-level error (404 for a missing exchange) answers this publish.
        BusError::Amqp(e) => e.is_amqp_soft_error(),
        _ => false,
    }
}

/// The lease on the rows of one batch, as far as this relay knows.
struct Held<'a> {
    owner: &'a str,
    /// Rows leased: they stay this relay's (owner set, not sent) until `settle`.
    rows: u64,
    /// When the lease runs out at the latest (counted from before the statement that set it).
    expires: Instant,
    /// When to renew it next.
    renew_at: Instant,
    /// A renewal found fewer rows than leased: their lease ran out and another relay took
    /// them.
    lost: bool,
}

/// How a round ended.
enum Stop {
    /// Every leased row went out (or the lease ran short or was lost, and the rest were
    /// released).
    Done,
    /// The broker refused `row`.
    Refused(Row, BusError),
    /// Publishing failed for a reason unrelated to `row`.
    Failed(Row, BusError),
}

impl OutboxRelay {
    /// A relay for `outbox` in `db`, publishing through `bus` on a channel of its own. A
    /// lease shorter than [`MIN_LEASE`] counts as [`MIN_LEASE`].
    #[must_use]
    pub fn new(db: DatabaseConnection, bus: Bus, outbox: Outbox, mut config: RelayConfig) -> Self {
        config.lease = config.lease.max(MIN_LEASE);
        let lane = bus.dedicated_lane("outbox-relay");
        Self {
            db,
            bus,
            outbox,
            config,
            wake: Arc::new(Notify::new()),
            lane,
        }
    }

    /// Notify this after committing rows to have them published without waiting for the
    /// next poll.
    #[must_use]
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// When to renew a lease renewed (or taken) by a statement sent at `asked`: a third of
    /// the lease later, but not at once when the statement took that long.
    fn next_renewal(&self, asked: Instant) -> Instant {
        let lease = self.config.lease;
        (asked + lease / 3).max(Instant::now() + (lease / 10).max(Duration::from_millis(50)))
    }

    /// Leases the next rows for this round and reads them, in one statement (`UPDATE …
    /// RETURNING`), no transaction kept open.
    async fn lease<'a>(&self, owner: &'a str) -> Result<(Held<'a>, Vec<Row>), BusError> {
        let table = col(&self.outbox.table);
        let backend = self.db.get_database_backend();
        let asked = Instant::now();
        let mut pick = Query::select()
            .column(col("seq"))
            .from(table.clone())
            .and_where(Expr::col(col("sent_at")).is_null())
            .and_where(Expr::col(col("attempts")).lt(attempt_limit(self.config.max_attempts)))
            .cond_where(
                Condition::any()
                    .add(Expr::col(col("lease_until")).is_null())
                    .add(Expr::col(col("lease_until")).lt(db_now(backend)?)),
            )
            .order_by(col("seq"), Order::Asc)
            .limit(self.config.batch_size)
            .to_owned();
        if backend == DatabaseBackend::Postgres {
            // Replicas take different rows instead of waiting for each other.
            pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let lease = Query::update()
            .table(table)
            .value(col("lease_owner"), owner)
            .value(col("lease_until"), db_now_plus(backend, self.config.lease)?)
            .and_where(Expr::col(col("seq")).in_subquery(pick))
            .returning(Query::returning().columns([
                col("seq"),
                col("message_id"),
                col("attempts"),
                col("body"),
                col("traceparent"),
                col("tracestate"),
                col("exchange"),
                col("routing_key"),
                col("partition_key"),
            ]))
            .to_owned();
        let mut rows = self
            .db
            .query_all(&lease)
            .await?
            .iter()
            .map(read_row)
            .collect::<Result<Vec<Row>, DbErr>>()?;
        // RETURNING gives no order: publish in insertion order.
        rows.sort_by_key(|row| row.seq);
        // The database counts the lease from when it ran the statement, after `asked`.
        let held = Held {
            owner,
            rows: u64::try_from(rows.len()).unwrap_or(u64::MAX),
            expires: asked + self.config.lease,
            renew_at: self.next_renewal(asked),
            lost: false,
        };
        Ok((held, rows))
    }

    /// Pushes the lease of the batch `held` describes to a full `lease` from the database's
    /// now. A database error, or no answer within a third of the lease, leaves it as it was
    /// (logged; tried again soon); rows missing from the renewal mark it lost.
    async fn renew(&self, held: &mut Held<'_>) {
        let asked = Instant::now();
        let lease = self.config.lease;
        let renewed = match db_now_plus(self.db.get_database_backend(), lease) {
            Ok(until) => {
                let renew = Query::update()
                    .table(col(&self.outbox.table))
                    .value(col("lease_until"), until)
                    .and_where(Expr::col(col("lease_owner")).eq(held.owner))
                    .and_where(Expr::col(col("sent_at")).is_null())
                    .to_owned();
                tokio::time::timeout(lease / 3, self.db.execute(&renew))
                    .await
                    .unwrap_or_else(|_| {
                        Err(DbErr::Custom(format!(
                            "no answer from the database within {:?}",
                            lease / 3
                        )))
                    })
                    .map_err(BusError::from)
            }
            Err(e) => Err(e),
        };
        match renewed {
            Ok(result) => {
                held.expires = asked + lease;
                held.renew_at = self.next_renewal(asked);
                if result.rows_affected() < held.rows {
                    held.lost = true;
                    tracing::warn!(
                        table = %self.outbox.table,
                        leased = held.rows,
                        still_ours = result.rows_affected(),
                        lease = ?self.config.lease,
                        "the outbox relay's lease ran out before it could renew it: another relay took rows of its batch, or the relay that leased them before marked them sent; stopping the batch (rows taken may go out twice, up to the whole batch; inboxes absorb that)"
                    );
                }
            }
            Err(e) => {
                // Try again soon; the batch stops once less than half the lease is left.
                held.renew_at = Instant::now() + self.config.lease / 10;
                tracing::warn!(
                    table = %self.outbox.table,
                    error = %e,
                    "could not renew the outbox relay's lease; retrying"
                );
            }
        }
    }

    /// Publishes one leased row, renewing the batch's lease while it waits for the confirm,
    /// for at most [`PUBLISH_WAIT_LIMIT`] (then [`BusError::PublishTimeout`], which counts no
    /// attempt and stops the batch).
    async fn publish_leased(&self, row: &Row, held: &mut Held<'_>) -> Result<(), BusError> {
        let message = match &row.message {
            Ok(message) => message,
            Err(reason) => return Err(BusError::Config(reason.clone())),
        };
        let mandatory = !events::is_notification(&message.envelope.message_type);
        let publish = self.bus.publish_on(&self.lane, message, mandatory, false);
        let renewing = async {
            tokio::pin!(publish);
            loop {
                tokio::select! {
                    biased;
                    result = &mut publish => return result,
                    // The publish is not polled during the renewal (a short statement): its
                    // confirm is picked up right after.
                    () = tokio::time::sleep_until(held.renew_at) => self.renew(held).await,
                }
            }
        };
        tokio::time::timeout(PUBLISH_WAIT_LIMIT, renewing)
            .await
            .unwrap_or(Err(BusError::PublishTimeout(PUBLISH_WAIT_LIMIT)))
    }

    /// Publishes one batch; returns how many rows were published and marked sent.
    ///
    /// # Errors
    /// Database errors, or the publish error that stopped the batch (rows published before
    /// it are still marked sent; a refused row counts an attempt and is held back).
    pub async fn relay_once(&self) -> Result<usize, BusError> {
        let owner = Uuid::new_v4().simple().to_string();
        let (mut held, rows) = self.lease(&owner).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let leased = rows.len();
        let mut sent = Vec::new();
        let mut stop = Stop::Done;
        for row in rows {
            if Instant::now() >= held.renew_at {
                self.renew(&mut held).await;
            }
            // Lost, or too little of it left to be sure nobody else takes this row while it
            // is in flight (renewals failed): the rest are released below, for the next round.
            if held.lost {
                break;
            }
            if Instant::now() + self.config.lease / 2 > held.expires {
                tracing::warn!(
                    table = %self.outbox.table,
                    published = sent.len(),
                    lease = ?self.config.lease,
                    "the outbox relay could not renew its lease in time; releasing the rest of its batch for the next round"
                );
                break;
            }
            let result = self.publish_leased(&row, &mut held).await;
            match result {
                Ok(()) => sent.push(row.seq),
                Err(e) if refused(&e) => {
                    stop = Stop::Refused(row, e);
                    break;
                }
                Err(e) => {
                    stop = Stop::Failed(row, e);
                    break;
                }
            }
        }
        self.settle(&owner, &sent, leased, &stop).await?;
        match stop {
            Stop::Done => Ok(sent.len()),
            Stop::Refused(_, e) | Stop::Failed(_, e) => Err(e),
        }
    }

    /// Marks what went out as sent, records the failure, releases the rest of the lease.
    /// Rows this relay published are marked sent even when their lease ran out and another
    /// relay took them: that one then stops its batch at its next renewal instead of
    /// publishing them again.
    async fn settle(
        &self,
        owner: &str,
        sent: &[i64],
        all: usize,
        stop: &Stop,
    ) -> Result<(), BusError> {
        let table = col(&self.outbox.table);
        let backend = self.db.get_database_backend();
        let ours = || Expr::col(col("lease_owner")).eq(owner);
        let no_time = Option::<DateTime<Utc>>::None;
        let no_owner = Option::<String>::None;
        let now = Utc::now();
        let mark_sent = Query::update()
            .table(table.clone())
            .value(col("sent_at"), now)
            .value(col("lease_owner"), no_owner.clone())
            .value(col("lease_until"), no_time)
            .and_where(Expr::col(col("seq")).is_in(sent.iter().copied()))
            .and_where(Expr::col(col("sent_at")).is_null())
            .to_owned();
        if matches!(stop, Stop::Done) && sent.len() == all {
            // Every leased row went out: marking them sent releases the whole lease, in one
            // statement. (No row can carry this relay's owner id but the leased ones.)
            self.db.execute(&mark_sent).await?;
            return Ok(());
        }
        let txn = self.db.begin().await?;
        if !sent.is_empty() {
            txn.execute(&mark_sent).await?;
        }
        match stop {
            Stop::Done => {}
            Stop::Refused(row, e) => {
                let attempts = row.attempts.saturating_add(1);
                let hold = jittered(
                    self.config
                        .poll_interval
                        .saturating_mul(
                            2u32.saturating_pow(u32::try_from(row.attempts).unwrap_or(0)),
                        )
                        .min(self.config.max_row_delay),
                );
                let update = Query::update()
                    .table(table.clone())
                    .value(col("attempts"), attempts)
                    .value(col("last_error"), e.to_string())
                    .value(col("lease_owner"), no_owner.clone())
                    .value(col("lease_until"), db_now_plus(backend, hold)?)
                    .and_where(Expr::col(col("seq")).eq(row.seq))
                    .and_where(ours())
                    .to_owned();
                txn.execute(&update).await?;
                if attempts >= attempt_limit(self.config.max_attempts) {
                    tracing::error!(
                        table = %self.outbox.table,
                        seq = row.seq,
                        message_id = %row.message_id,
                        attempts,
                        error = %e,
                        "outbox row refused too often; the relay skips it from now on, it stays unsent for an operator (Outbox::stuck / Outbox::retry_stuck)"
                    );
                } else {
                    tracing::warn!(
                        table = %self.outbox.table,
                        seq = row.seq,
                        message_id = %row.message_id,
                        attempts,
                        retry_in = ?hold,
                        error = %e,
                        "the broker refused an outbox row; holding it back"
                    );
                }
            }
            Stop::Failed(row, e) => {
                let update = Query::update()
                    .table(table.clone())
                    .value(col("last_error"), e.to_string())
                    .and_where(Expr::col(col("seq")).eq(row.seq))
                    .and_where(ours())
                    .to_owned();
                txn.execute(&update).await?;
            }
        }
        let release = Query::update()
            .table(table)
            .value(col("lease_owner"), no_owner)
            .value(col("lease_until"), no_time)
            .and_where(ours())
            .to_owned();
        txn.execute(&release).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Publishes until `shutdown` is cancelled: full batches back to back, then a poll
    /// every `poll_interval` (or on the waker); jittered exponential back-off while the
    /// broker or the database is unavailable. A refused row does not pause the relay: it is
    /// held back and the next round takes the rows behind it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.config.poll_interval;
        while !shutdown.is_cancelled() {
            let pause = match self.relay_once().await {
                Ok(n) if u64::try_from(n).unwrap_or(u64::MAX) >= self.config.batch_size => {
                    backoff = self.config.poll_interval;
                    continue;
                }
                Ok(_) => {
                    backoff = self.config.poll_interval;
                    self.config.poll_interval
                }
                // The refused row is held back (and logged by `settle`): go on at once
                // with the rows behind it.
                Err(e) if refused(&e) => continue,
                Err(e) => {
                    let pause = jittered(backoff);
                    tracing::warn!(error = %e, retry_in = ?pause, "outbox relay failed");
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    pause
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Runs [`OutboxRelay::run`] on a task.
    #[must_use]
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }
}
