//! The decision: read one record, compare it with its snapshot, store the new snapshot and
//! record "record updated" (and, for a newly deprecated record, "connection lost") in the
//! outbox in the same transaction.
//!
//! [`Reader::read_record`] is a plain async function tests call directly; [`Reader::handle`]
//! is the thin bus handler around it ("connection ready", "record changed").

use std::sync::Arc;
use std::time::Duration;

use bus::events::{
    ConnectionLost, ConnectionReady, Event, LostReason, RecordChanged, RecordStatus, RecordUpdated,
};
use bus::inbox::Inbox;
use bus::outbox::Outbox;
use bus::{Delivery, Envelope, Outcome, OutgoingMessage};
use chrono::{SubsecRound, Utc};
use orcid::OrcidId;
use orcid::client::OrcidClient;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use tokio::sync::Notify;

use crate::diff::{Diff, diff, item_ref};
use crate::snapshot::{self, Snapshot, items_from_activities, to_utc};
use crate::tokens::{TokenError, TokenSource};

/// Prefix of the advisory-lock key taken (PostgreSQL) while an iD's snapshot is stored:
/// `pg_advisory_xact_lock(hashtextextended('reader_snapshot:' || orcid, 0))`.
pub const SNAPSHOT_LOCK_PREFIX: &str = "reader_snapshot:";

/// What a read did.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadOutcome {
    /// A new snapshot was stored and "record updated" recorded (this event).
    Updated(Box<RecordUpdated>),
    /// A new snapshot was stored; nothing differed, so no event.
    Unchanged,
    /// This message was processed already (the inbox had its id): nothing done.
    Duplicate,
    /// A read that started earlier than the read of the stored snapshot: dropped (the
    /// stored one saw at least as much).
    Stale,
    /// The iD is not connected: nothing to read.
    NotConnected,
    /// The researcher revoked access (the vault was told when ORCID said 401).
    Revoked,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// May pass (ORCID 5xx or rate limited, vault or database unavailable): try again.
    #[error("{reason}")]
    Retry {
        /// At least this long (ORCID's `Retry-After`).
        after: Duration,
        /// Why.
        reason: String,
    },
    /// Will not pass as it is (record unknown at ORCID, a refusal): park for an operator.
    #[error("{0}")]
    Refused(String),
}

impl From<DbErr> for ReadError {
    fn from(e: DbErr) -> Self {
        ReadError::Retry {
            after: Duration::ZERO,
            reason: format!("database: {e}"),
        }
    }
}

impl From<bus::BusError> for ReadError {
    fn from(e: bus::BusError) -> Self {
        ReadError::Retry {
            after: Duration::ZERO,
            reason: format!("outbox: {e}"),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What the reader needs.
pub struct ReaderParts {
    /// The reader's database (snapshots, inbox, outbox).
    pub db: DatabaseConnection,
    /// The ORCID client (its client id says which items are ours; its limiter is the
    /// client's rate budget).
    pub orcid: OrcidClient,
    /// Where tokens come from.
    pub tokens: Arc<dyn TokenSource>,
    /// Woken after a commit that recorded events.
    pub relay_waker: Option<Arc<Notify>>,
}

/// Reads records and keeps their snapshots. Cheap to clone.
#[derive(Clone)]
pub struct Reader {
    db: DatabaseConnection,
    orcid: OrcidClient,
    tokens: Arc<dyn TokenSource>,
    outbox: Outbox,
    inbox: Inbox,
    relay_waker: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("client_id", &self.orcid.client_id())
            .finish_non_exhaustive()
    }
}

/// The record as ORCID answered.
enum Read {
    Active {
        items: Vec<snapshot::SnapshotItem>,
        last_modified: Option<chrono::DateTime<Utc>>,
    },
    Deprecated {
        primary: Option<OrcidId>,
    },
    Deactivated,
}

impl Reader {
    /// A reader over `parts`.
    pub fn new(parts: ReaderParts) -> Self {
        let tables = crate::bus_tables();
        Self {
            db: parts.db,
            orcid: parts.orcid,
            tokens: parts.tokens,
            outbox: Outbox::new(&tables),
            inbox: Inbox::new(&tables),
            relay_waker: parts.relay_waker,
        }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The token source.
    pub fn tokens(&self) -> &Arc<dyn TokenSource> {
        &self.tokens
    }

    /// Reads `orcid`'s activities summary, compares them with the stored snapshot, stores
    /// the new one and records "record updated" when anything differs (always for the
    /// first snapshot, every item then being `added`). `person_id` is used when the token
    /// source does not say; `message` (the delivery being handled) is claimed in the inbox
    /// in the same transaction, and caused the events.
    ///
    /// # Errors
    /// [`ReadError`].
    #[tracing::instrument(skip_all, fields(orcid = %orcid))]
    pub async fn read_record(
        &self,
        orcid: &OrcidId,
        person_id: Option<&str>,
        message: Option<&Envelope>,
    ) -> Result<ReadOutcome, ReadError> {
        // The snapshot's time is when the read STARTED: everything the researcher did
        // before this instant is in what ORCID answers next. PostgreSQL keeps microseconds,
        // so the time is truncated before it is compared or stored.
        let started = Utc::now().trunc_subsecs(6);
        let token = match self.tokens.token(orcid).await {
            Ok(token) => token,
            Err(TokenError::NotConnected) => return Ok(ReadOutcome::NotConnected),
            Err(TokenError::Revoked) => return Ok(ReadOutcome::Revoked),
            Err(e) => {
                return Err(ReadError::Retry {
                    after: Duration::ZERO,
                    reason: e.to_string(),
                });
            }
        };
        let read = match self.orcid.activities(&token.access_token, orcid).await {
            Ok(activities) => Read::Active {
                items: items_from_activities(&activities),
                last_modified: activities.last_modified_date.and_then(to_utc),
            },
            Err(orcid::Error::RecordDeprecated { primary, .. }) => Read::Deprecated { primary },
            Err(orcid::Error::RecordDeactivated { .. }) => Read::Deactivated,
            Err(orcid::Error::InvalidToken) => {
                return match self
                    .tokens
                    .mark_revoked(&token, "401 on GET /activities (reader)")
                    .await
                {
                    Ok(()) => {
                        tracing::info!("ORCID refused the token: reported revoked to the vault");
                        Ok(ReadOutcome::Revoked)
                    }
                    Err(TokenError::Superseded(m)) => Err(ReadError::Retry {
                        after: Duration::ZERO,
                        reason: format!("the token was replaced meanwhile: {m}"),
                    }),
                    Err(e) => Err(ReadError::Retry {
                        after: Duration::ZERO,
                        reason: format!("could not report the revoked token: {e}"),
                    }),
                };
            }
            Err(e @ orcid::Error::RateLimited { retry_after, .. }) => {
                return Err(ReadError::Retry {
                    after: retry_after.unwrap_or_default(),
                    reason: chain(&e),
                });
            }
            Err(e) if e.is_retryable() => {
                return Err(ReadError::Retry {
                    after: Duration::ZERO,
                    reason: chain(&e),
                });
            }
            Err(e) => return Err(ReadError::Refused(chain(&e))),
        };
        let person_id = token
            .person_id
            .clone()
            .or_else(|| person_id.map(str::to_owned));
        self.store(orcid, person_id, read, started, message).await
    }

    async fn store(
        &self,
        orcid: &OrcidId,
        person_id: Option<String>,
        read: Read,
        started: chrono::DateTime<Utc>,
        message: Option<&Envelope>,
    ) -> Result<ReadOutcome, ReadError> {
        let txn = self.db.begin().await?;
        let key = orcid.to_string();
        // Two reads of one iD may run at once (two partitions, the sweep). The snapshot row
        // alone cannot serialize them when there is no row yet (a first read locks
        // nothing), so on PostgreSQL a transaction-scoped advisory lock on the iD comes
        // first. SQLite serializes writers on its own.
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                [format!("{SNAPSHOT_LOCK_PREFIX}{key}").into()],
            ))
            .await?;
        }
        if let Some(message) = message
            && !self.inbox.claim(&txn, message).await?
        {
            txn.rollback().await?;
            return Ok(ReadOutcome::Duplicate);
        }
        let previous = snapshot::load(&txn, &key, true).await?;
        if let Some(prev) = &previous
            && prev.read_at > started
        {
            // The stored snapshot comes from a read that STARTED after this one (another
            // key's partition, the sweep): it saw everything this one saw, and maybe more.
            txn.commit().await?;
            return Ok(ReadOutcome::Stale);
        }
        let now = Utc::now().trunc_subsecs(6);
        let person_id = person_id.or_else(|| previous.as_ref().and_then(|p| p.person_id.clone()));
        let previous_status = previous.as_ref().map(|p| p.status);
        let (status, primary, items, last_modified, changes) = match read {
            Read::Active {
                items,
                last_modified,
            } => {
                let changes = diff(previous.as_ref().map(|p| p.items.as_slice()), &items);
                (RecordStatus::Active, None, items, last_modified, changes)
            }
            Read::Deprecated { primary } => (
                RecordStatus::Deprecated,
                primary,
                previous
                    .as_ref()
                    .map(|p| p.items.clone())
                    .unwrap_or_default(),
                previous.as_ref().and_then(|p| p.last_modified),
                Diff::default(),
            ),
            Read::Deactivated => (
                RecordStatus::Deactivated,
                None,
                previous
                    .as_ref()
                    .map(|p| p.items.clone())
                    .unwrap_or_default(),
                previous.as_ref().and_then(|p| p.last_modified),
                Diff::default(),
            ),
        };
        let status_changed = previous_status.unwrap_or(RecordStatus::Active) != status;
        let publish = previous.is_none() || !changes.is_empty() || status_changed;
        snapshot::save(
            &txn,
            &Snapshot {
                orcid: key.clone(),
                person_id: person_id.clone(),
                status,
                primary_orcid: primary.map(|p| p.to_string()),
                last_modified,
                items,
                read_at: started,
                read_count: previous.as_ref().map_or(0, |p| p.read_count) + 1,
            },
        )
        .await?;
        let outcome = if publish {
            let event = RecordUpdated {
                orcid: *orcid,
                person_id: person_id.clone(),
                last_modified,
                changed_sections: changes.changed_sections(),
                deleted_items: changes.deleted_items(self.orcid.client_id()),
                read_at: started,
                previous_read_at: previous.as_ref().map(|p| p.read_at),
                added: changes.added.iter().map(item_ref).collect(),
                changed: changes.changed.iter().map(item_ref).collect(),
                removed: changes.removed.iter().map(item_ref).collect(),
                status: Some(status),
                primary_orcid: primary,
            };
            self.record(&txn, &event, message).await?;
            if status == RecordStatus::Deprecated && status_changed {
                match &person_id {
                    Some(person_id) => {
                        let lost = ConnectionLost {
                            orcid: *orcid,
                            person_id: person_id.clone(),
                            reason: LostReason::Deprecated,
                            detected_at: now,
                            primary_orcid: primary,
                        };
                        self.record(&txn, &lost, message).await?;
                    }
                    None => tracing::warn!(
                        "the record is deprecated but no person id is known: no \"connection lost\""
                    ),
                }
            }
            tracing::info!(
                added = event.added.len(),
                changed = event.changed.len(),
                removed = event.removed.len(),
                deleted_ours = event.deleted_items.len(),
                status = ?status,
                "record updated"
            );
            ReadOutcome::Updated(Box::new(event))
        } else {
            ReadOutcome::Unchanged
        };
        txn.commit().await?;
        if publish && let Some(waker) = &self.relay_waker {
            waker.notify_one();
        }
        Ok(outcome)
    }

    async fn record<E: Event>(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        event: &E,
        cause: Option<&Envelope>,
    ) -> Result<(), ReadError> {
        let mut message = OutgoingMessage::event(event)?;
        if let Some(cause) = cause {
            message = message.with_envelope(|e| e.caused_by(cause));
        }
        self.outbox.record(txn, &message).await?;
        Ok(())
    }

    /// Handles one delivery: "connection ready" or "record changed".
    pub async fn handle(&self, delivery: &Delivery) -> Outcome {
        let envelope = &delivery.envelope;
        match self.inbox.contains(&self.db, envelope.message_id).await {
            Ok(true) => return Outcome::Ack,
            Ok(false) => {}
            Err(e) => return Outcome::retry(Duration::ZERO, format!("inbox: {e}")),
        }
        let target = match envelope.message_type.as_str() {
            ConnectionReady::TYPE => delivery
                .payload::<ConnectionReady>()
                .map(|e| (e.orcid, Some(e.person_id))),
            RecordChanged::TYPE => delivery.payload::<RecordChanged>().map(|e| (e.orcid, None)),
            other => {
                return Outcome::park(format!(
                    "the reader does not handle `{other}` messages (only connection-ready and record-changed)"
                ));
            }
        };
        let (orcid, person_id) = match target {
            Ok(target) => target,
            Err(e) => return Outcome::park(format!("unreadable payload: {}", chain(&e))),
        };
        match self
            .read_record(&orcid, person_id.as_deref(), Some(envelope))
            .await
        {
            Ok(outcome) => {
                tracing::debug!(%orcid, ?outcome, "read handled");
                Outcome::Ack
            }
            Err(ReadError::Retry { after, reason }) => {
                tracing::warn!(%orcid, %reason, "read failed; will retry");
                Outcome::retry(after, reason)
            }
            Err(ReadError::Refused(reason)) => {
                tracing::warn!(%orcid, %reason, "read refused; parking");
                Outcome::park(reason)
            }
        }
    }
}

impl bus::Handler for Reader {
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Outcome> + Send {
        let reader = self.clone();
        async move { Reader::handle(&reader, &delivery).await }
    }
}
