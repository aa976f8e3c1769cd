//! The inbox: processed message ids, committed with the handler's effects.
//!
//! Two ways to use it:
//!
//! * [`Transactional`] wraps a [`TxHandler`]: it opens a transaction, claims the message id
//!   in the inbox (a redelivered message finds its id there and is acknowledged without
//!   running the handler), runs the handler on the transaction and commits only when the
//!   handler answers `Ack`. Effects, the inbox row and any events recorded in the outbox
//!   on that transaction commit together or not at all.
//! * [`Inbox::claim`] by hand, on a transaction of your own, when the handler needs more
//!   control.
//!
//! Claiming inserts first: a duplicate delivered concurrently waits on the row lock (on
//! PostgreSQL) and then sees the id, so two copies never both run their effects.

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use tokio::sync::Notify;

use crate::{BusError, Delivery, Envelope, Handler, Outcome, migration::TableNames};

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// One service's inbox table.
#[derive(Clone, Debug)]
pub struct Inbox {
    table: String,
}

impl Inbox {
    /// The inbox in `names.inbox`.
    #[must_use]
    pub fn new(names: &TableNames) -> Self {
        Self {
            table: names.inbox.clone(),
        }
    }

    /// Marks `envelope` processed on `conn` (a transaction); `false` when it already was.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim<C: ConnectionTrait>(
        &self,
        conn: &C,
        envelope: &Envelope,
    ) -> Result<bool, BusError> {
        let mut insert = Query::insert();
        insert
            .into_table(col(&self.table))
            .columns([col("message_id"), col("message_type"), col("processed_at")])
            .values([
                envelope.message_id.to_string().into(),
                envelope.message_type.clone().into(),
                Utc::now().into(),
            ])
            .map_err(|e| BusError::Config(format!("inbox insert: {e}")))?
            .on_conflict(
                OnConflict::column(col("message_id"))
                    .do_nothing()
                    .to_owned(),
            );
        Ok(conn.execute(&insert).await?.rows_affected() == 1)
    }

    /// Whether `message_id` was processed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn contains<C: ConnectionTrait>(
        &self,
        conn: &C,
        message_id: uuid::Uuid,
    ) -> Result<bool, BusError> {
        let select = Query::select()
            .column(col("message_id"))
            .from(col(&self.table))
            .and_where(Expr::col(col("message_id")).eq(message_id.to_string()))
            .to_owned();
        Ok(conn.query_one(&select).await?.is_some())
    }

    /// Forgets ids processed before `before`; returns how many. Keep them longer than any
    /// message can take to be redelivered (the longest retry path plus parking time).
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune<C: ConnectionTrait>(
        &self,
        conn: &C,
        before: DateTime<Utc>,
    ) -> Result<u64, BusError> {
        let delete = Query::delete()
            .from_table(col(&self.table))
            .and_where(Expr::col(col("processed_at")).lt(before))
            .to_owned();
        Ok(conn.execute(&delete).await?.rows_affected())
    }
}

/// A handler whose effects are database writes on the transaction it is given.
///
/// Answer `Ack` to commit them (with the inbox row and any outbox rows); `Retry` or `Park`
/// roll everything back.
pub trait TxHandler: Send + Sync + 'static {
    /// Handles one delivery on `txn`. Do not commit or roll back: the answer decides.
    fn handle(
        &self,
        txn: &DatabaseTransaction,
        delivery: &Delivery,
    ) -> impl Future<Output = Outcome> + Send;
}

/// Runs a [`TxHandler`] exactly once per message id (see the module docs).
///
/// The transaction is a *write* transaction from the inbox insert to the commit, and it
/// stays open while the handler runs, ORCID calls included. On PostgreSQL that holds one
/// pooled connection and the inbox row lock per message in flight; on SQLite, which has a
/// single writer, it serialises every handler that writes (and every other writer of the
/// file) behind the one in flight: keep such handlers short, or claim the id with
/// [`Inbox::claim`] in a transaction of your own after the slow part.
///
/// Partitioned services should use this (or be idempotent in another way): the
/// one-message-per-key guarantee holds only while the consumer's connection is alive, and
/// a message whose connection dropped mid-handler is redelivered, possibly to another
/// replica, while the first handler may not have noticed yet.
#[derive(Debug)]
pub struct Transactional<H> {
    db: DatabaseConnection,
    inbox: Inbox,
    handler: H,
    wake: Option<Arc<Notify>>,
}

impl<H: TxHandler> Transactional<H> {
    /// Wraps `handler` with the inbox in `db`.
    #[must_use]
    pub fn new(db: DatabaseConnection, inbox: Inbox, handler: H) -> Self {
        Self {
            db,
            inbox,
            handler,
            wake: None,
        }
    }

    /// Wakes an outbox relay after each commit, so events the handler recorded go out
    /// at once.
    #[must_use]
    pub fn wake_relay(mut self, waker: Arc<Notify>) -> Self {
        self.wake = Some(waker);
        self
    }
}

impl<H: TxHandler> Handler for Transactional<H> {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let message_id = delivery.envelope.message_id;
        let txn = match self.db.begin().await {
            Ok(txn) => txn,
            Err(e) => return Outcome::retry(std::time::Duration::ZERO, format!("database: {e}")),
        };
        match self.inbox.claim(&txn, &delivery.envelope).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(%message_id, "already processed; acknowledging the duplicate");
                let _ = txn.rollback().await;
                return Outcome::Ack;
            }
            Err(e) => return Outcome::retry(std::time::Duration::ZERO, format!("inbox: {e}")),
        }
        let outcome = self.handler.handle(&txn, &delivery).await;
        match outcome {
            Outcome::Ack => match txn.commit().await {
                Ok(()) => {
                    if let Some(wake) = &self.wake {
                        wake.notify_one();
                    }
                    Outcome::Ack
                }
                Err(e) => Outcome::retry(std::time::Duration::ZERO, format!("commit: {e}")),
            },
            other => {
                let _ = txn.rollback().await;
                other
            }
        }
    }
}
