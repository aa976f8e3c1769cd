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
//! How a batch goes: the relay *leases* up to `batch_size` rows (owner and expiry, in one
//! short statement; on PostgreSQL `FOR UPDATE SKIP LOCKED`, so relays in several replicas
//! take different rows), publishes them one at a time in insertion order with no database
//! transaction open, stops at the first failure, then marks what went out as sent and
//! releases the rest. No database lock is held while talking to the broker.
//!
//! The lease is short ([`RelayConfig::lease`], 5 s by default) and the relay renews it every
//! third of it while it publishes the batch, also while one publish waits for its confirm.
//! It starts no publish with less than half the lease known to be left (a renewal failed),
//! and stops the batch when a renewal finds rows no longer its own. So the rows of a relay
//! whose process died (SIGKILL, OOM, a lost node) go to the other relays, or to the same
//! service restarted, once its lease runs out, seconds later. Besides a crash between the
//! confirm and the "sent" mark, a row goes out twice when marking it sent fails, or when no
//! renewal reached the database in time while its publish was in flight and another relay
//! took it meanwhile; consumers' inboxes absorb that too. Replicas compare `lease_until`
//! with their own clocks: they must agree to well within half a lease.
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
    /// A relay for `outbox` in `db`, publishing through `bus` on a channel of its own.
    #[must_use]
    pub fn new(db: DatabaseConnection, bus: Bus, outbox: Outbox, config: RelayConfig) -> Self {
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

    /// `lease_until` for a lease taken or renewed now.
    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.config.lease).unwrap_or_default()
    }

    /// Leases the next rows for this round (one statement, no transaction kept open) and
    /// reads them.
    async fn lease<'a>(&self, owner: &'a str) -> Result<(Held<'a>, Vec<Row>), BusError> {
        let table = col(&self.outbox.table);
        let asked = Instant::now();
        let now = Utc::now();
        let until = self.lease_until(now);
        let mut pick = Query::select()
            .column(col("seq"))
            .from(table.clone())
            .and_where(Expr::col(col("sent_at")).is_null())
            .and_where(Expr::col(col("attempts")).lt(attempt_limit(self.config.max_attempts)))
            .cond_where(
                Condition::any()
                    .add(Expr::col(col("lease_until")).is_null())
                    .add(Expr::col(col("lease_until")).lt(now)),
            )
            .order_by(col("seq"), Order::Asc)
            .limit(self.config.batch_size)
            .to_owned();
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            // Replicas take different rows instead of waiting for each other.
            pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let lease = Query::update()
            .table(table.clone())
            .value(col("lease_owner"), owner)
            .value(col("lease_until"), until)
            .and_where(Expr::col(col("seq")).in_subquery(pick))
            .to_owned();
        let held = Held {
            owner,
            rows: 0,
            expires: asked + self.config.lease,
            renew_at: asked + self.config.lease / 3,
            lost: false,
        };
        if self.db.execute(&lease).await?.rows_affected() == 0 {
            return Ok((held, Vec::new()));
        }
        let select = Query::select()
            .columns([
                col("seq"),
                col("message_id"),
                col("attempts"),
                col("body"),
                col("traceparent"),
                col("tracestate"),
                col("exchange"),
                col("routing_key"),
                col("partition_key"),
            ])
            .from(table)
            .and_where(Expr::col(col("lease_owner")).eq(owner))
            .order_by(col("seq"), Order::Asc)
            .to_owned();
        let rows = self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(read_row)
            .collect::<Result<Vec<Row>, DbErr>>()?;
        let held = Held {
            rows: u64::try_from(rows.len()).unwrap_or(u64::MAX),
            ..held
        };
        Ok((held, rows))
    }

    /// Pushes the lease of the batch `held` describes a full `lease` further. A database
    /// error leaves it as it was (logged; tried again soon); rows missing from the renewal
    /// mark it lost.
    async fn renew(&self, held: &mut Held<'_>) {
        let asked = Instant::now();
        let renew = Query::update()
            .table(col(&self.outbox.table))
            .value(col("lease_until"), self.lease_until(Utc::now()))
            .and_where(Expr::col(col("lease_owner")).eq(held.owner))
            .and_where(Expr::col(col("sent_at")).is_null())
            .to_owned();
        match self.db.execute(&renew).await {
            Ok(result) => {
                held.expires = asked + self.config.lease;
                held.renew_at = asked + self.config.lease / 3;
                if result.rows_affected() < held.rows {
                    held.lost = true;
                    tracing::warn!(
                        table = %self.outbox.table,
                        leased = held.rows,
                        still_ours = result.rows_affected(),
                        lease = ?self.config.lease,
                        "the outbox relay's lease ran out before it could renew it and another relay took rows of its batch; stopping the batch (a row in flight meanwhile may go out twice, inboxes absorb that)"
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

    /// Publishes one leased row, renewing the batch's lease while it waits for the confirm.
    async fn publish_leased(&self, row: &Row, held: &mut Held<'_>) -> Result<(), BusError> {
        let message = match &row.message {
            Ok(message) => message,
            Err(reason) => return Err(BusError::Config(reason.clone())),
        };
        let mandatory = !events::is_notification(&message.envelope.message_type);
        let publish = self.bus.publish_on(&self.lane, message, mandatory, false);
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
        let mut sent = Vec::new();
        let mut stop = Stop::Done;
        for row in rows {
            if Instant::now() >= held.renew_at {
                self.renew(&mut held).await;
            }
            // Lost, or too little of it left to be sure nobody else takes this row while it
            // is in flight (renewals failed): the rest are released below, for the next round.
            if held.lost || Instant::now() + self.config.lease / 2 > held.expires {
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
        self.settle(&owner, &sent, &stop).await?;
        match stop {
            Stop::Done => Ok(sent.len()),
            Stop::Refused(_, e) | Stop::Failed(_, e) => Err(e),
        }
    }

    /// Marks what went out as sent, records the failure, releases the rest of the lease.
    async fn settle(&self, owner: &str, sent: &[i64], stop: &Stop) -> Result<(), BusError> {
        let table = col(&self.outbox.table);
        let ours = || Expr::col(col("lease_owner")).eq(owner);
        let no_time = Option::<DateTime<Utc>>::None;
        let no_owner = Option::<String>::None;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        if !sent.is_empty() {
            let update = Query::update()
                .table(table.clone())
                .value(col("sent_at"), now)
                .value(col("lease_owner"), no_owner.clone())
                .value(col("lease_until"), no_time)
                .and_where(Expr::col(col("seq")).is_in(sent.iter().copied()))
                .and_where(ours())
                .to_owned();
            txn.execute(&update).await?;
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
                    .value(
                        col("lease_until"),
                        now + chrono::Duration::from_std(hold).unwrap_or_default(),
                    )
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
