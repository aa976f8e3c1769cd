//! The decision: what an HR event, a work event or a "connection ready" does to ORCID and
//! to the ledger.
//!
//! Two steps, each idempotent:
//!
//! 1. **Merge** ([`Writer::apply_hr_event`]): the event becomes the item's desired content in
//!    the ledger, once per `event_id`, in one transaction. Events older than the last one
//!    merged into the item (same instant: a lesser event id) are recorded as stale and change nothing, so retries that overtake
//!    each other cannot undo a later leave.
//! 2. **Sync**: the ledger item is brought onto ORCID. Nothing to do when ORCID already has
//!    the desired content (hash). Without a put code the section is *read first* and an item
//!    of ours for this appointment is adopted (a crash after ORCID's 201); only then is
//!    anything posted. The body carries our `self` external id, so ORCID itself refuses a
//!    second item for the appointment (409, 9021) and names the first, which is adopted.
//!    With a put code the item is updated in place.
//!
//! Every attempt leaves a history row; every terminal result (written, failed) updates the
//! item and records "item written" / "item failed" in the outbox in one transaction.
//! Answers are the bus's [`Outcome`]s, so the consumer around this is thin and tests call
//! these functions directly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bus::events::{
    ConnectionReady, Event, HrEvent, HrEventType, ItemAction, ItemError, ItemFailed, ItemWritten,
    RecordUpdated, WorkEvent, WorkEventType,
};
use bus::inbox::Inbox;
use bus::outbox::Outbox;
use bus::{Delivery, Envelope, Outcome, OutgoingMessage};
use chrono::Utc;
use invitations::{InvitationError, Invitations};
use orcid::OrcidId;
use orcid::client::OrcidClient;
use orcid::model::{AffiliationType, FuzzyDate, Organization, PutCode};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set, TransactionTrait, sea_query::Expr,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::body::{Body, Kind, Listed, WORK_SECTION};
use crate::desired::{self, CheckedHrEvent, put_code_from_db, put_code_to_db, self_external_id};
use crate::ledger::{ItemState, Ledger, attempt, event, item};
use crate::locks::PersonLocks;
use crate::tokens::{PersonToken, TokenError, TokenSource};

mod clean;
mod merge;
mod record;
mod sync;

/// The source name of HR events in `writer_events`.
const HR_SOURCE: &str = "hr";
/// The source name of work events in `writer_events`.
const WORK_SOURCE: &str = "work";

/// Choices the configuration makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritePolicy {
    /// Whether an item the researcher deleted on ORCID is written again (default: no; the
    /// researcher's choice wins).
    pub recreate_deleted: bool,
    /// Deliveries before the bus parks a message; on the last one a retryable failure
    /// becomes "item failed" (`retries-exhausted`).
    pub max_attempts: u32,
}

impl Default for WritePolicy {
    fn default() -> Self {
        Self {
            recreate_deleted: false,
            max_attempts: bus::RetryPolicy::default().max_attempts,
        }
    }
}

/// What caused a write: the message being handled, when there is one. Events the writer
/// emits continue its correlation and trace.
#[derive(Clone, Debug, Default)]
pub struct Cause {
    /// The envelope being handled.
    pub envelope: Option<Envelope>,
}

impl Cause {
    /// No message (a direct call).
    pub fn none() -> Self {
        Self::default()
    }

    /// The message of `delivery`.
    pub fn of(delivery: &Delivery) -> Self {
        Self {
            envelope: Some(delivery.envelope.clone()),
        }
    }
}

/// Everything a [`Writer`] needs.
#[derive(Clone)]
pub struct WriterParts {
    /// The writer's database (ledger, outbox, inbox), migrated.
    pub db: DatabaseConnection,
    /// The ORCID client (its client id decides which items are ours).
    pub orcid: OrcidClient,
    /// Where tokens come from.
    pub tokens: Arc<dyn TokenSource>,
    /// The institution, as ORCID's organization block (name, address, disambiguated id).
    pub institution: Organization,
    /// Policy.
    pub policy: WritePolicy,
    /// Notified after events are committed to the outbox, so its relay publishes at once.
    pub relay_waker: Option<Arc<Notify>>,
}

/// The writer's decisions. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    orcid: OrcidClient,
    tokens: Arc<dyn TokenSource>,
    institution: Organization,
    policy: WritePolicy,
    outbox: Outbox,
    inbox: Inbox,
    relay: Option<Arc<Notify>>,
    locks: PersonLocks,
    /// Per person id, the fingerprint of the token ORCID last refused (401) — kept so a
    /// retry after a failed report does not call ORCID again with it. In memory: after a
    /// restart (or on another replica) at most one more call finds out again.
    refused: Mutex<HashMap<String, String>>,
    /// Invitation e-mails, when enabled ([`Writer::with_invitations`]).
    invitations: OnceLock<Invitations>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("client_id", &self.inner.orcid.client_id())
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// A failure as the ledger keeps it (never a token: the ORCID client redacts them).
#[derive(Clone, Debug)]
struct Failure {
    status: Option<u16>,
    code: Option<u32>,
    message: String,
}

impl Failure {
    fn orcid(e: &orcid::Error) -> Self {
        Self {
            status: e.http_status(),
            code: e.error_code(),
            message: e.to_string(),
        }
    }

    fn plain(message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: None,
            message: message.into(),
        }
    }
}

/// One history row.
struct Note<'a> {
    action: &'a str,
    outcome: &'a str,
    failure: Option<&'a Failure>,
    put_code: Option<PutCode>,
    message: Option<String>,
}

impl<'a> Note<'a> {
    fn new(action: &'a str, outcome: &'a str) -> Self {
        Self {
            action,
            outcome,
            failure: None,
            put_code: None,
            message: None,
        }
    }
    fn failure(mut self, failure: &'a Failure) -> Self {
        self.failure = Some(failure);
        self
    }
    fn put_code(mut self, put_code: PutCode) -> Self {
        self.put_code = Some(put_code);
        self
    }
    fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Changes to an item row, applied with a history row (and maybe an event) in one
/// transaction.
#[derive(Default)]
struct Change {
    state: Option<ItemState>,
    orcid: Option<String>,
    put_code: Option<Option<PutCode>>,
    /// `Some(hash)`: ORCID now holds the content with this hash.
    written: Option<String>,
    /// Forget what ORCID holds (the put code is gone).
    unwritten: bool,
    failure: Option<Failure>,
    clear_failure: bool,
    count_attempt: bool,
}

/// Where a sync goes next.
enum Step {
    Create,
    Update {
        put_code: PutCode,
        action: ItemAction,
    },
    Done(Outcome),
}

/// The fixed inputs of one sync.
struct Run<'a> {
    token: &'a PersonToken,
    body: &'a Body,
    desired_hash: &'a str,
    cause: &'a Cause,
    event_id: Option<&'a str>,
}

fn db_retry(e: &DbErr) -> Outcome {
    tracing::warn!(error = %e, "database error; retrying the message");
    Outcome::retry(Duration::ZERO, format!("database: {e}"))
}

fn bus_db(e: bus::BusError) -> DbErr {
    DbErr::Custom(format!("outbox: {e}"))
}

fn state_of(row: &item::Model) -> Option<ItemState> {
    ItemState::parse(&row.state)
}

fn is_current(row: &item::Model) -> bool {
    matches!(state_of(row), Some(ItemState::InOrcid | ItemState::Deleted))
        && row.written_hash.as_deref() == Some(row.desired_hash.as_str())
}

/// The iD stored on the row (written by the writer, so valid; anything else is ignored).
fn stored_orcid(row: &item::Model) -> Option<OrcidId> {
    row.orcid.as_deref().and_then(|o| OrcidId::parse(o).ok())
}

/// Identifies a token without keeping it: SHA-256 over the iD, the source's generation and
/// the token text (the generation alone may repeat, e.g. without a vault).
fn token_fingerprint(token: &PersonToken) -> String {
    desired::content_hash(&format!(
        "{}\n{:?}\n{}",
        token.orcid,
        token.generation,
        token.access_token.expose_secret()
    ))
}

fn to_i32(n: Option<u32>) -> Option<i32> {
    n.and_then(|n| i32::try_from(n).ok())
}

impl Writer {
    /// A writer over `parts`.
    pub fn new(parts: WriterParts) -> Self {
        let tables = crate::migration::bus_tables();
        Self {
            inner: Arc::new(Inner {
                db: parts.db,
                orcid: parts.orcid,
                tokens: parts.tokens,
                institution: parts.institution,
                policy: parts.policy,
                outbox: Outbox::new(&tables),
                inbox: Inbox::new(&tables),
                relay: parts.relay_waker,
                locks: PersonLocks::default(),
                refused: Mutex::default(),
                invitations: OnceLock::new(),
            }),
        }
    }

    /// Invites people the writer waits for: a hire stored as `pending` (not connected)
    /// whose event carries `person.email` calls [`Invitations::invite`], and "connection
    /// ready" calls [`Invitations::mark_connected`]. Set once, before the writer is cloned
    /// or used; a second call is ignored.
    #[must_use]
    pub fn with_invitations(self, invitations: Invitations) -> Self {
        if self.inner.invitations.set(invitations).is_err() {
            tracing::warn!("the writer already has invitations; the second set is ignored");
        }
        self
    }

    /// The invitations the writer sends, when enabled (for resend and the admin list).
    pub fn invitations(&self) -> Option<&Invitations> {
        self.inner.invitations.get()
    }

    /// Read access to the ledger.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.inner.db.clone())
    }

    /// Handles one message of the writer's queue: an HR event, a work event, "connection
    /// ready" or "record updated" (items the researcher deleted).
    /// Malformed messages are parked with the reason; a message already processed (same
    /// message id) is acknowledged without effect.
    pub async fn handle(&self, delivery: &Delivery) -> Outcome {
        let inner = &self.inner;
        let message_id = delivery.envelope.message_id;
        match inner.inbox.contains(&inner.db, message_id).await {
            Ok(true) => return Outcome::Ack,
            Ok(false) => {}
            Err(e) => return Outcome::retry(Duration::ZERO, format!("inbox: {e}")),
        }
        let cause = Cause::of(delivery);
        let outcome = match delivery.envelope.message_type.as_str() {
            HrEvent::TYPE => match decode::<HrEvent>(delivery) {
                Ok(event) => {
                    let outcome = self.apply_hr_event(&event, &cause).await;
                    if let Outcome::Retry { reason, .. } = &outcome
                        && delivery.attempt >= inner.policy.max_attempts
                    {
                        self.give_up(
                            &event.person.person_id,
                            &event.position.position_id,
                            false,
                            reason,
                            &cause,
                        )
                        .await;
                    }
                    outcome
                }
                Err(reason) => Outcome::park(reason),
            },
            WorkEvent::TYPE => match decode::<WorkEvent>(delivery) {
                Ok(event) => {
                    let outcome = self.apply_work_event(&event, &cause).await;
                    if let Outcome::Retry { reason, .. } = &outcome
                        && delivery.attempt >= inner.policy.max_attempts
                    {
                        self.give_up(&event.person_id, &event.work.work_id, true, reason, &cause)
                            .await;
                    }
                    outcome
                }
                Err(reason) => Outcome::park(reason),
            },
            ConnectionReady::TYPE => match decode::<ConnectionReady>(delivery) {
                Ok(ready) => self.apply_connection_ready(&ready, &cause).await,
                Err(reason) => Outcome::park(reason),
            },
            RecordUpdated::TYPE => match decode::<RecordUpdated>(delivery) {
                Ok(update) => self.apply_record_updated(&update, &cause).await,
                Err(reason) => Outcome::park(reason),
            },
            other => Outcome::park(format!(
                "the writer does not take {other:?} messages (routing key {:?}); expected hr-event, work-event, connection-ready or record-updated",
                delivery.routing_key
            )),
        };
        if outcome == Outcome::Ack
            && let Err(e) = inner.inbox.claim(&inner.db, &delivery.envelope).await
        {
            // Harmless: the effects are committed and idempotent; a redelivery finds nothing
            // to do.
            tracing::warn!(%message_id, error = %e, "could not record the message as processed");
        }
        outcome
    }

    /// Applies an HR event: merges it into the ledger, then writes the item to ORCID.
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, person_id = %event.person.person_id, position_id = %event.position.position_id, event_type = event.event_type.as_str()))]
    pub async fn apply_hr_event(&self, event: &HrEvent, cause: &Cause) -> Outcome {
        let checked = match CheckedHrEvent::check(event) {
            Ok(checked) => checked,
            Err(e) => {
                return Outcome::park(format!("HR event {:?} is invalid: {e}", event.event_id));
            }
        };
        let person = self.inner.locks.lock(&event.person.person_id).await;
        let row = match self.merge(event, &checked, cause).await {
            Ok(Ok(row)) => row,
            Ok(Err(reason)) => {
                return Outcome::park(format!(
                    "HR event {:?} cannot be applied: {reason}",
                    event.event_id
                ));
            }
            Err(e) => return db_retry(&e),
        };
        let (item_id, key) = (row.id, row.item_key.clone());
        let outcome = match self.sync(row, cause, Some(&event.event_id)).await {
            Ok(outcome) => outcome,
            Err(e) => db_retry(&e),
        };
        // The e-mail may take a while (SMTP): not under the person's lock.
        drop(person);
        if outcome == Outcome::Ack {
            return self.invite_if_pending(event, item_id, &key).await;
        }
        outcome
    }

    /// After an HR event: when its item waits as `pending` and the event names an e-mail
    /// address, invites the person as of the event's `occurred_at` (idempotent; the first
    /// e-mail goes out now; an invitation holding a newer event's address, e.g. from another
    /// position, keeps it). An event older than the one its item holds (stale, or overtaken
    /// since it was merged) only invites when no invitation exists yet. A database error
    /// retries the event (which then changes nothing but this); anything else is logged and
    /// the event stays done.
    async fn invite_if_pending(&self, event: &HrEvent, item_id: Uuid, key: &str) -> Outcome {
        let Some(invitations) = self.invitations() else {
            return Outcome::Ack;
        };
        let Some(email) = event
            .person
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Outcome::Ack;
        };
        let row = match item::Entity::find_by_id(item_id).one(&self.inner.db).await {
            Ok(row) => row,
            Err(e) => return db_retry(&e),
        };
        let Some(row) = row.filter(|row| state_of(row) == Some(ItemState::Pending)) else {
            return Outcome::Ack;
        };
        let person_id = event.person.person_id.as_str();
        if row.source_event_id.as_deref() != Some(event.event_id.as_str()) {
            // Older than the event the item holds (stale, or overtaken since): its address
            // may be outdated, so it does not touch an invitation that exists. When none
            // exists (say the newer event named no address, or its invite failed and this
            // one is a retry), this address is the best known one and the person is invited.
            match invitations.get(person_id).await {
                Ok(Some(_)) => return Outcome::Ack,
                Ok(None) => {}
                Err(InvitationError::Database(e)) => return db_retry(&e),
                Err(e) => {
                    tracing::warn!(person_id, item_key = key, error = %e, "could not read the invitation");
                    return Outcome::Ack;
                }
            }
        }
        let name = event
            .person
            .names
            .as_ref()
            .map(|n| {
                [n.given_names.as_deref(), n.family_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        match invitations
            .invite(person_id, email, &name, event.occurred_at)
            .await
        {
            Ok(outcome) => {
                tracing::info!(person_id, item_key = key, outcome = ?outcome, "invitation");
                Outcome::Ack
            }
            Err(InvitationError::Database(e)) => db_retry(&e),
            Err(e) => {
                tracing::warn!(person_id, item_key = key, error = %e, "could not invite the person");
                Outcome::Ack
            }
        }
    }

    /// Applies a work event from the repository: `upsert` creates the work on the record or
    /// updates it in place; `delete` removes the one the writer wrote.
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, person_id = %event.person_id, work_id = %event.work.work_id))]
    pub async fn apply_work_event(&self, event: &WorkEvent, cause: &Cause) -> Outcome {
        let body = match desired::work_body(event, self.inner.orcid.endpoints().oauth_base()) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::park(format!("work event {:?} is invalid: {e}", event.event_id));
            }
        };
        let _person = self.inner.locks.lock(&event.person_id).await;
        let row = match self.merge_work(event, &body, cause).await {
            Ok(Some(row)) => row,
            Ok(None) => return Outcome::Ack,
            Err(e) => return db_retry(&e),
        };
        match self.sync(row, cause, Some(&event.event_id)).await {
            Ok(outcome) => outcome,
            Err(e) => db_retry(&e),
        }
    }

    /// A person connected (again): writes every item of theirs that ORCID does not hold yet
    /// (pending, revoked, denied, failed (`error`, e.g. retries ran out), or changed since
    /// written). Items ORCID refuses on their
    /// merits are marked failed without failing this message; a transient failure retries it.
    #[tracing::instrument(skip_all, fields(person_id = %ready.person_id, orcid = %ready.orcid))]
    pub async fn apply_connection_ready(&self, ready: &ConnectionReady, cause: &Cause) -> Outcome {
        if ready.person_id.trim().is_empty() {
            return Outcome::park("connection-ready without person_id");
        }
        if let Some(invitations) = self.invitations() {
            match invitations.mark_connected(&ready.person_id).await {
                Ok(_) => {}
                Err(InvitationError::Database(e)) => return db_retry(&e),
                Err(e) => {
                    tracing::warn!(person_id = %ready.person_id, error = %e, "could not mark the invitation connected");
                }
            }
        }
        let _person = self.inner.locks.lock(&ready.person_id).await;
        let rows = match item::Entity::find()
            .filter(item::Column::PersonId.eq(ready.person_id.as_str()))
            .order_by_asc(item::Column::ItemKey)
            .order_by_asc(item::Column::Generation)
            .all(&self.inner.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => return db_retry(&e),
        };
        for row in rows {
            let waiting = matches!(
                state_of(&row),
                Some(
                    ItemState::Pending
                        | ItemState::Revoked
                        | ItemState::Denied
                        | ItemState::Error
                        | ItemState::InOrcid
                )
            ) && !is_current(&row);
            if !waiting {
                continue;
            }
            match self.sync(row, cause, None).await {
                Ok(Outcome::Ack | Outcome::Park { .. }) => {}
                Ok(retry @ Outcome::Retry { .. }) => return retry,
                Err(e) => return db_retry(&e),
            }
        }
        Outcome::Ack
    }

    /// The last delivery of an event failed for a reason that might have passed: the item
    /// is marked `error` and "item failed" (`retries-exhausted`) is published.
    pub async fn give_up(
        &self,
        person_id: &str,
        item_key: &str,
        work: bool,
        reason: &str,
        cause: &Cause,
    ) {
        let result = async {
            let section = item::Column::Section;
            let Some(mut row) = item::Entity::find()
                .filter(item::Column::PersonId.eq(person_id))
                .filter(item::Column::ItemKey.eq(item_key))
                .filter(if work {
                    section.eq(WORK_SECTION)
                } else {
                    section.ne(WORK_SECTION)
                })
                .order_by_desc(item::Column::Generation)
                .one(&self.inner.db)
                .await?
            else {
                return Ok(());
            };
            if is_current(&row) {
                return Ok(());
            }
            let failure = Failure {
                status: row.last_error_status.and_then(|s| u16::try_from(s).ok()),
                code: row.last_error_code.and_then(|c| u32::try_from(c).ok()),
                message: format!("gave up after the last attempt: {reason}"),
            };
            let message = self.failed_event(
                &row,
                stored_orcid(&row),
                "retries-exhausted",
                &failure,
                cause,
            )?;
            self.apply(
                &mut row,
                Change {
                    state: Some(ItemState::Error),
                    failure: Some(failure.clone()),
                    ..Change::default()
                },
                None,
                Note::new("give-up", "failed").failure(&failure),
                Some(message),
            )
            .await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, person_id, item_key, "could not record giving up");
        }
    }

    // ---------------------------------------------------------------------------------
    // Ledger writes and events

    /// Applies `change` to the item with a history row and, when given, an event in the
    /// outbox, in one transaction.
    async fn apply(
        &self,
        row: &mut item::Model,
        change: Change,
        event_id: Option<&str>,
        note: Note<'_>,
        event: Option<OutgoingMessage>,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let mut active = row.clone().into_active_model();
        if let Some(state) = change.state {
            active.state = Set(state.as_str().to_owned());
        }
        if let Some(orcid) = change.orcid {
            active.orcid = Set(Some(orcid));
        }
        if let Some(put_code) = change.put_code {
            active.put_code = Set(put_code.and_then(put_code_to_db));
        }
        if let Some(hash) = change.written {
            active.written_hash = Set(Some(hash));
            active.written_at = Set(Some(now));
        }
        if change.unwritten {
            active.written_hash = Set(None);
        }
        if let Some(failure) = &change.failure {
            active.last_error_status = Set(failure.status.map(i32::from));
            active.last_error_code = Set(to_i32(failure.code));
            active.last_error_message = Set(Some(failure.message.clone()));
        } else if change.clear_failure {
            active.last_error_status = Set(None);
            active.last_error_code = Set(None);
            active.last_error_message = Set(None);
        }
        if change.count_attempt {
            active.attempts = Set(row.attempts.saturating_add(1));
        }
        active.updated_at = Set(now);
        let has_event = event.is_some();
        let txn = self.inner.db.begin().await?;
        *row = active.update(&txn).await?;
        insert_note(&txn, row, event_id, note).await?;
        if let Some(event) = &event {
            self.inner
                .outbox
                .record(&txn, event)
                .await
                .map_err(bus_db)?;
        }
        txn.commit().await?;
        if has_event {
            self.wake_relay();
        }
        Ok(())
    }

    /// Remembers that ORCID refused `token` (401) for `person_id`.
    fn remember_refused(&self, person_id: &str, token: &PersonToken) {
        self.inner
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(person_id.to_owned(), token_fingerprint(token));
    }

    /// Whether ORCID already refused this very token (same iD, generation and token) for
    /// `person_id`. Another token forgets the refused one.
    fn refused_before(&self, person_id: &str, token: &PersonToken) -> bool {
        let mut refused = self
            .inner
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match refused.get(person_id) {
            Some(fingerprint) if *fingerprint == token_fingerprint(token) => true,
            Some(_) => {
                refused.remove(person_id);
                false
            }
            None => false,
        }
    }

    fn wake_relay(&self) {
        if let Some(relay) = &self.inner.relay {
            relay.notify_one();
        }
    }

    fn written_event(
        &self,
        row: &item::Model,
        run: &Run<'_>,
        put_code: PutCode,
        action: ItemAction,
    ) -> Result<OutgoingMessage, DbErr> {
        message(
            &ItemWritten {
                orcid: run.token.orcid,
                person_id: row.person_id.clone(),
                section: run.body.kind().event_section(),
                source_id: row.item_key.clone(),
                put_code: put_code.get(),
                action,
                written_at: Utc::now(),
            },
            run.cause,
        )
    }

    fn failed_event(
        &self,
        row: &item::Model,
        orcid: Option<OrcidId>,
        kind: &str,
        failure: &Failure,
        cause: &Cause,
    ) -> Result<OutgoingMessage, DbErr> {
        message(
            &ItemFailed {
                orcid,
                person_id: row.person_id.clone(),
                section: Kind::of(row)?.event_section(),
                source_id: row.item_key.clone(),
                error: ItemError {
                    kind: kind.to_owned(),
                    orcid_error_code: failure.code,
                    message: failure.message.clone(),
                },
                attempts: u32::try_from(row.attempts.saturating_add(1)).unwrap_or(0),
                failed_at: Utc::now(),
            },
            cause,
        )
    }
}

fn message<E: Event>(event: &E, cause: &Cause) -> Result<OutgoingMessage, DbErr> {
    let message = OutgoingMessage::event(event).map_err(bus_db)?;
    Ok(match &cause.envelope {
        Some(parent) => message.with_envelope(|e| e.caused_by(parent)),
        None => message,
    })
}

/// Decodes the payload, naming what is wrong when it cannot.
fn decode<E: Event>(delivery: &Delivery) -> Result<E, String> {
    delivery.payload::<E>().map_err(|e| match e {
        bus::BusError::Json(serde) => {
            let schema =
                match bus::schemas::validate(E::TYPE, E::VERSION, &delivery.envelope.payload) {
                    Err(bus::schemas::SchemaError::Invalid { errors, .. }) => {
                        format!("; against the schema: {}", errors.join("; "))
                    }
                    _ => String::new(),
                };
            format!("invalid {} payload: {serde}{schema}", E::TYPE)
        }
        other => format!("cannot read the message: {other}"),
    })
}

async fn insert_note<C: ConnectionTrait>(
    conn: &C,
    row: &item::Model,
    event_id: Option<&str>,
    note: Note<'_>,
) -> Result<(), DbErr> {
    let (status, code, failure_message) = match note.failure {
        Some(f) => (
            f.status.map(i32::from),
            to_i32(f.code),
            Some(f.message.clone()),
        ),
        None => (None, None, None),
    };
    let message = match (note.message, failure_message) {
        (Some(m), Some(f)) => Some(format!("{m} ({f})")),
        (m, f) => m.or(f),
    };
    // One log line per history row: the ledger and the log tell the same story.
    tracing::info!(
        person_id = %row.person_id,
        item_key = %row.item_key,
        generation = row.generation,
        event_id = event_id.unwrap_or(""),
        action = note.action,
        outcome = note.outcome,
        http_status = status,
        orcid_error_code = code,
        put_code = note.put_code.map(PutCode::get),
        message = message.as_deref().unwrap_or(""),
        "ledger"
    );
    attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        item_id: Set(row.id),
        person_id: Set(row.person_id.clone()),
        item_key: Set(row.item_key.clone()),
        generation: Set(row.generation),
        event_id: Set(event_id.map(str::to_owned)),
        action: Set(note.action.to_owned()),
        outcome: Set(note.outcome.to_owned()),
        http_status: Set(status),
        orcid_error_code: Set(code),
        put_code: Set(note.put_code.and_then(put_code_to_db)),
        message: Set(message),
        at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}
