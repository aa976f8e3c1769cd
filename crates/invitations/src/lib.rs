//! Invitations for people who have not connected their ORCID iD yet.
//!
//! When the writer has something to write for a person who never connected, it keeps the
//! desired state and calls [`Invitations::invite`]: the person gets an e-mail (lettre, SMTP in
//! production, `.eml` files with the embedded defaults) explaining what the institution does
//! with ORCID and linking to the portal (`{portal_url}/connect?invitation=<link id>`; the
//! portal still requires sign-in, the link id is not a credential). Reminders follow on the
//! configured schedule (`reminder_after`, measured from the first e-mail) until the person
//! connects ([`Invitations::mark_connected`], on "connection ready") or the schedule runs out
//! (state `stopped`). An administrator can [`Invitations::resend`] at any time, which also
//! restarts the schedule, and see everything with [`Invitations::list`].
//!
//! [`Invitations::invite`] sends the first e-mail at once, inside the call; a failed send is
//! recorded (state `failed`, `last_error`) and retried by [`Invitations::run_scheduler`]
//! after `retry_after` (unless the server refused it permanently with a 5xx answer: that
//! one waits for an administrator to correct the address and resend). Every e-mail goes out under a lease on its row (`claim_owner`,
//! `claimed_until`; taken in one statement, with `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
//! several replicas running the scheduler never send the same e-mail twice.

#![warn(missing_docs)]

pub mod config;
mod error;
mod mail;
pub mod migration;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SubsecRound, Utc};
use lettre::Address;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, LockBehavior, LockType, OnConflict, Order, Query,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use config::{DEFAULTS, InvitationsConfig, TransportKind};
pub use error::InvitationError;
pub use migration::migrate;

use mail::{Kind, Letter, Mailer};

const TABLE: &str = "invitations";
/// `last_error` is cut to this many characters.
const MAX_ERROR_CHARS: usize = 1000;

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvitationState {
    /// Recorded; the first e-mail has not gone out yet.
    Pending,
    /// At least one e-mail went out; reminders may follow.
    Sent,
    /// The person connected; nothing more is sent.
    Connected,
    /// Every reminder of the schedule went out; nothing more is sent unless resent.
    Stopped,
    /// The last send failed (see `last_error`). A transient failure (server down, 4xx) is
    /// retried after `retry_after`; a permanent refusal (5xx, e.g. unknown mailbox) waits
    /// for a resend (`next_reminder_at` empty).
    Failed,
}

impl InvitationState {
    /// Every state.
    pub const ALL: [InvitationState; 5] = [
        Self::Pending,
        Self::Sent,
        Self::Connected,
        Self::Stopped,
        Self::Failed,
    ];

    /// The stored name (`pending`, `sent`, `connected`, `stopped`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Connected => "connected",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// Whether e-mails may still go out (pending, sent, failed).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Sent | Self::Failed)
    }
}

impl fmt::Display for InvitationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InvitationState {
    type Err = InvitationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                InvitationError::InvalidInput(format!(
                    "{s:?} is not an invitation state (pending, sent, connected, stopped, failed)"
                ))
            })
    }
}

fn open_states() -> [&'static str; 3] {
    [
        InvitationState::Pending.as_str(),
        InvitationState::Sent.as_str(),
        InvitationState::Failed.as_str(),
    ]
}

/// One person's invitation, as the admin page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The HR person id (unique).
    pub person_id: String,
    /// Where e-mails go (empty for a person who connected before any invitation).
    pub email: String,
    /// The name the e-mail greets.
    pub display_name: String,
    /// Where it stands.
    pub state: InvitationState,
    /// The random id in the portal link (not a credential: the portal requires sign-in).
    pub link_id: String,
    /// The portal link the e-mails carry.
    pub link: String,
    /// When the person was first invited.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// E-mails sent in all (invitation, reminders, resends).
    pub sent_count: u32,
    /// Reminders sent since the schedule (re)started.
    pub reminders_sent: u32,
    /// When the last e-mail went out.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// When the next e-mail is due (none when nothing more will be sent).
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// Why the last send failed (cleared by a successful send).
    pub last_error: Option<String>,
    /// When "connection ready" arrived.
    pub connected_at: Option<DateTime<Utc>>,
    /// The instant of the event `email` and `display_name` come from (the `as_of` of the
    /// [`Invitations::invite`] that set them; none for rows from before it was recorded).
    pub contact_as_of: Option<DateTime<Utc>>,
}

/// What [`Invitations::invite`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteOutcome {
    /// A new invitation; its first e-mail went out.
    Sent,
    /// A new invitation; its first e-mail failed (recorded, retried by the scheduler).
    SendFailed {
        /// What the transport said.
        reason: String,
    },
    /// A new invitation another replica's scheduler is sending right now.
    Queued,
    /// An invitation is already open: nothing sent (the address and name were updated,
    /// unless the invitation holds them from a newer event).
    AlreadyInvited,
    /// The schedule ran out earlier: nothing sent (an administrator may resend).
    RemindersStopped,
    /// The person has connected: nothing to do.
    AlreadyConnected,
}

/// Which invitations [`Invitations::list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this state.
    pub state: Option<InvitationState>,
    /// Only this person.
    pub person_id: Option<String>,
    /// At most this many (all when `None`).
    pub limit: Option<u64>,
    /// Skip this many first (paging).
    pub offset: u64,
}

/// The invitations service: cheap to clone (one database pool, one mail transport).
#[derive(Clone)]
pub struct Invitations {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    mailer: Mailer,
    portal_url: String,
    schedule: Vec<Duration>,
    tick: Duration,
    retry_after: Duration,
    batch_size: u64,
    lease: Duration,
}

impl fmt::Debug for Invitations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitations")
            .field("mailer", &self.inner.mailer)
            .field("portal_url", &self.inner.portal_url)
            .field("schedule", &self.inner.schedule)
            .field("tick", &self.inner.tick)
            .finish_non_exhaustive()
    }
}

/// Why one person's row is leased.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClaimFor {
    /// Its e-mail is due.
    Due,
    /// An administrator resends: any state but connected, schedule restarted.
    Resend,
}

/// A row leased for sending.
struct Claimed {
    person_id: String,
    email: String,
    display_name: String,
    link_id: String,
    reminders_sent: u32,
    schedule_started_at: Option<DateTime<Utc>>,
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn new_link_id() -> Result<String, InvitationError> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| InvitationError::Config("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

impl Invitations {
    /// The service over `db` (migrated with [`migrate`]) and `config` (validated; the file
    /// transport's directory is created here).
    ///
    /// # Errors
    /// [`InvitationError::Config`] for a configuration that validation would have refused;
    /// [`InvitationError::MailDirectory`] when `file_dir` cannot be created.
    pub fn new(db: DatabaseConnection, config: InvitationsConfig) -> Result<Self, InvitationError> {
        let bad = |what: &'static str| move |_| InvitationError::Config(what);
        let schedule = config
            .reminder_schedule()
            .map_err(bad("invitations.reminder_after is not a list of durations"))?;
        let tick = config
            .tick_interval()
            .map_err(bad("invitations.tick is not a duration"))?;
        let retry_after = config
            .retry_delay()
            .map_err(bad("invitations.retry_after is not a duration"))?;
        if tick.is_zero() {
            return Err(InvitationError::Config("invitations.tick is zero"));
        }
        let mailer = Mailer::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                mailer,
                portal_url: config.portal_url.trim().trim_end_matches('/').to_owned(),
                schedule,
                tick,
                retry_after,
                batch_size: u64::from(Ord::max(config.batch_size, 1)),
                // Longer than any SMTP conversation can take, so a lease never runs out
                // while its e-mail is still being sent.
                lease: Duration::from_secs(
                    config
                        .smtp_timeout_secs
                        .saturating_mul(2)
                        .saturating_add(60),
                ),
            }),
        })
    }

    /// The portal link for `link_id`.
    pub fn link_for(&self, link_id: &str) -> String {
        format!("{}/connect?invitation={link_id}", self.inner.portal_url)
    }

    fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Invites `person_id` at `email`, greeting them as `display_name`, as known at `as_of`
    /// (the instant of the event that carries them, e.g. an HR event's `occurred_at`; `now`
    /// for a correction by hand). Idempotent: when an invitation exists nothing is sent (an
    /// open one takes the new address and name for its reminders, unless it holds them from
    /// a newer event: a redelivered or overtaken older event cannot bring an outdated
    /// address back; at the same instant the later call wins); a new one is recorded and its
    /// first e-mail sent before returning.
    ///
    /// # Errors
    /// [`InvitationError::InvalidInput`] for an empty person id or an invalid address;
    /// database errors. A failed send is not an error here: see
    /// [`InviteOutcome::SendFailed`].
    pub async fn invite(
        &self,
        person_id: &str,
        email: &str,
        display_name: &str,
        as_of: DateTime<Utc>,
    ) -> Result<InviteOutcome, InvitationError> {
        check_person_id(person_id)?;
        let email = email.trim();
        email.parse::<Address>().map_err(|e| {
            InvitationError::InvalidInput(format!(
                "the e-mail address of person {person_id} is not valid ({e})"
            ))
        })?;
        if email.len() > 320 {
            return Err(InvitationError::InvalidInput(format!(
                "the e-mail address of person {person_id} is longer than 320 bytes"
            )));
        }
        // No line breaks or other control characters in a header.
        let display_name: String = display_name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let display_name = display_name.as_str();
        // As stored (PostgreSQL keeps microseconds), so equal instants compare equal.
        let as_of = as_of.trunc_subsecs(6);
        let now = Utc::now();
        let mut insert = Query::insert();
        insert
            .into_table(col(TABLE))
            .columns([
                col("person_id"),
                col("email"),
                col("display_name"),
                col("state"),
                col("link_id"),
                col("created_at"),
                col("updated_at"),
                col("next_reminder_at"),
                col("contact_as_of"),
            ])
            .values([
                person_id.into(),
                email.into(),
                display_name.into(),
                InvitationState::Pending.as_str().into(),
                new_link_id()?.into(),
                now.into(),
                now.into(),
                now.into(),
                as_of.into(),
            ])
            .map_err(|e| InvitationError::InvalidInput(format!("invitation insert: {e}")))?
            .on_conflict(OnConflict::column(col("person_id")).do_nothing().to_owned());
        if self.db().execute(&insert).await?.rows_affected() == 1 {
            tracing::info!(person_id, "invitation recorded");
            let owner = new_owner();
            let Some(claimed) = self.claim_person(person_id, &owner, ClaimFor::Due).await? else {
                return Ok(InviteOutcome::Queued);
            };
            return Ok(match self.deliver(claimed, &owner).await? {
                Ok(()) => InviteOutcome::Sent,
                Err(reason) => InviteOutcome::SendFailed { reason },
            });
        }
        let existing =
            self.get(person_id)
                .await?
                .ok_or_else(|| InvitationError::UnknownPerson {
                    person_id: person_id.to_owned(),
                })?;
        Ok(match existing.state {
            InvitationState::Connected => InviteOutcome::AlreadyConnected,
            InvitationState::Stopped => InviteOutcome::RemindersStopped,
            _ => {
                let changed = existing.email != email || existing.display_name != display_name;
                let newer = existing.contact_as_of.is_none_or(|held| held < as_of);
                if changed || newer {
                    let mut update = Query::update();
                    update
                        .table(col(TABLE))
                        .value(col("email"), email)
                        .value(col("display_name"), display_name)
                        // Also when only the instant moves on: an event older than this
                        // one must not bring back an address it replaced.
                        .value(col("contact_as_of"), as_of)
                        .and_where(Expr::col(col("person_id")).eq(person_id))
                        .and_where(Expr::col(col("state")).is_in(open_states()))
                        // Checked in the statement, so concurrent invites cannot reorder.
                        .cond_where(
                            Condition::any()
                                .add(Expr::col(col("contact_as_of")).is_null())
                                .add(Expr::col(col("contact_as_of")).lte(as_of)),
                        );
                    if changed {
                        update.value(col("updated_at"), now);
                    }
                    if self.db().execute(&update).await?.rows_affected() == 0 && changed {
                        tracing::info!(
                            person_id,
                            "invitation keeps the address and name of a newer event"
                        );
                    }
                }
                InviteOutcome::AlreadyInvited
            }
        })
    }

    /// "Connection ready" for `person_id`: no more e-mails. A person never invited is
    /// recorded as connected, so a late [`Invitations::invite`] sends nothing. Returns
    /// whether anything changed.
    ///
    /// # Errors
    /// [`InvitationError::InvalidInput`] for an empty person id; database errors.
    pub async fn mark_connected(&self, person_id: &str) -> Result<bool, InvitationError> {
        check_person_id(person_id)?;
        let now = Utc::now();
        let connected = InvitationState::Connected.as_str();
        let update = Query::update()
            .table(col(TABLE))
            .value(col("state"), connected)
            .value(col("connected_at"), now)
            .value(col("updated_at"), now)
            .value(col("next_reminder_at"), Option::<DateTime<Utc>>::None)
            .and_where(Expr::col(col("person_id")).eq(person_id))
            .and_where(Expr::col(col("state")).ne(connected))
            .to_owned();
        if self.db().execute(&update).await?.rows_affected() > 0 {
            tracing::info!(person_id, "invitation closed: connected");
            return Ok(true);
        }
        let mut insert = Query::insert();
        insert
            .into_table(col(TABLE))
            .columns([
                col("person_id"),
                col("email"),
                col("display_name"),
                col("state"),
                col("link_id"),
                col("created_at"),
                col("updated_at"),
                col("connected_at"),
            ])
            .values([
                person_id.into(),
                "".into(),
                "".into(),
                connected.into(),
                new_link_id()?.into(),
                now.into(),
                now.into(),
                now.into(),
            ])
            .map_err(|e| InvitationError::InvalidInput(format!("invitation insert: {e}")))?
            .on_conflict(OnConflict::column(col("person_id")).do_nothing().to_owned());
        Ok(self.db().execute(&insert).await?.rows_affected() == 1)
    }

    /// Sends `person_id` the invitation again now and restarts the reminder schedule from
    /// this e-mail (also for a stopped or failed invitation). Returns the invitation after
    /// the send.
    ///
    /// # Errors
    /// [`InvitationError::UnknownPerson`], [`InvitationError::AlreadyConnected`],
    /// [`InvitationError::Busy`] (another replica is sending to them this very moment),
    /// [`InvitationError::SendFailed`] (recorded as failed, retried by the scheduler),
    /// database errors.
    pub async fn resend(&self, person_id: &str) -> Result<Invitation, InvitationError> {
        check_person_id(person_id)?;
        let owner = new_owner();
        let claimed = match self
            .claim_person(person_id, &owner, ClaimFor::Resend)
            .await?
        {
            Some(claimed) => claimed,
            None => {
                let who = person_id.to_owned();
                return Err(match self.get(person_id).await? {
                    None => InvitationError::UnknownPerson { person_id: who },
                    Some(i) if i.state == InvitationState::Connected => {
                        InvitationError::AlreadyConnected { person_id: who }
                    }
                    Some(_) => InvitationError::Busy { person_id: who },
                });
            }
        };
        tracing::info!(person_id, "invitation resend requested");
        if let Err(reason) = self.deliver(claimed, &owner).await? {
            return Err(InvitationError::SendFailed {
                person_id: person_id.to_owned(),
                reason,
            });
        }
        self.get(person_id)
            .await?
            .ok_or_else(|| InvitationError::UnknownPerson {
                person_id: person_id.to_owned(),
            })
    }

    /// One person's invitation.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get(&self, person_id: &str) -> Result<Option<Invitation>, InvitationError> {
        let select = select_all()
            .and_where(Expr::col(col("person_id")).eq(person_id))
            .to_owned();
        match self.db().query_one(&select).await? {
            Some(row) => Ok(Some(self.read(&row)?)),
            None => Ok(None),
        }
    }

    /// Invitations for the admin page, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Invitation>, InvitationError> {
        let mut select = select_all();
        if let Some(state) = filter.state {
            select.and_where(Expr::col(col("state")).eq(state.as_str()));
        }
        if let Some(person_id) = &filter.person_id {
            select.and_where(Expr::col(col("person_id")).eq(person_id.as_str()));
        }
        select
            .order_by(col("created_at"), Order::Desc)
            .order_by(col("person_id"), Order::Asc);
        if let Some(limit) = filter.limit {
            select.limit(limit);
        }
        if filter.offset > 0 {
            if filter.limit.is_none() {
                select.limit(i64::MAX.unsigned_abs());
            }
            select.offset(filter.offset);
        }
        self.db()
            .query_all(&select)
            .await?
            .iter()
            .map(|row| self.read(row))
            .collect()
    }

    /// How many invitations are in each state (states without any are left out).
    ///
    /// # Errors
    /// Database errors.
    pub async fn counts(&self) -> Result<Vec<(InvitationState, u64)>, InvitationError> {
        let select = Query::select()
            .column(col("state"))
            .expr_as(Expr::col(col("person_id")).count(), col("n"))
            .from(col(TABLE))
            .group_by_col(col("state"))
            .to_owned();
        let mut counts = self
            .db()
            .query_all(&select)
            .await?
            .iter()
            .map(|row| {
                let state: String = row.try_get("", "state")?;
                let n: i64 = row.try_get("", "n")?;
                Ok((state.parse()?, u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<Vec<_>, InvitationError>>()?;
        counts.sort();
        Ok(counts)
    }

    /// Sends every e-mail due now (up to `batch_size`), each under a lease so no other
    /// replica sends it too. Returns how many sends were attempted (sent or failed).
    ///
    /// # Errors
    /// Database errors (a failed send is recorded on its row, not returned).
    pub async fn run_due_once(&self) -> Result<usize, InvitationError> {
        let owner = new_owner();
        let claimed = self.claim_due(&owner).await?;
        let mut attempted = 0;
        for row in claimed {
            // A failed send is recorded on the row; keep going with the others.
            self.deliver(row, &owner).await?.ok();
            attempted += 1;
        }
        Ok(attempted)
    }

    /// Sends due e-mails every `tick` until `shutdown` is cancelled. Database errors are
    /// logged and the next tick tries again. Run it in every replica that should send.
    pub async fn run_scheduler(&self, shutdown: CancellationToken) {
        tracing::info!(tick = ?self.inner.tick, "invitation scheduler started");
        loop {
            match self.run_due_once().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(attempted = n, "invitation e-mails due were sent"),
                Err(e) => tracing::warn!(error = %e, "invitation scheduler round failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.inner.tick) => {}
            }
        }
        tracing::info!("invitation scheduler stopped");
    }

    /// Leases up to `batch_size` due rows for `owner` in one statement and reads them.
    async fn claim_due(&self, owner: &str) -> Result<Vec<Claimed>, InvitationError> {
        let now = Utc::now();
        let until = now + chrono_of(self.inner.lease);
        let mut pick = Query::select()
            .column(col("person_id"))
            .from(col(TABLE))
            .and_where(Expr::col(col("state")).is_in(open_states()))
            .and_where(Expr::col(col("next_reminder_at")).lte(now))
            .cond_where(lease_free(now))
            .order_by(col("next_reminder_at"), Order::Asc)
            .limit(self.inner.batch_size)
            .to_owned();
        if self.db().get_database_backend() == DatabaseBackend::Postgres {
            // Replicas take different rows instead of waiting for each other.
            pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let lease = Query::update()
            .table(col(TABLE))
            .value(col("claim_owner"), owner)
            .value(col("claimed_until"), until)
            .and_where(Expr::col(col("person_id")).in_subquery(pick))
            .cond_where(lease_free(now))
            .to_owned();
        if self.db().execute(&lease).await?.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        self.claimed_by(owner).await
    }

    /// Leases `person_id`'s row for `owner`: when due (`invite`), or whenever not connected,
    /// with the schedule reset (`resend`).
    async fn claim_person(
        &self,
        person_id: &str,
        owner: &str,
        purpose: ClaimFor,
    ) -> Result<Option<Claimed>, InvitationError> {
        let now = Utc::now();
        let until = now + chrono_of(self.inner.lease);
        let mut update = Query::update();
        update
            .table(col(TABLE))
            .value(col("claim_owner"), owner)
            .value(col("claimed_until"), until)
            .and_where(Expr::col(col("person_id")).eq(person_id))
            .cond_where(lease_free(now));
        if purpose == ClaimFor::Resend {
            update
                .value(col("state"), InvitationState::Pending.as_str())
                .value(col("reminders_sent"), 0i32)
                .value(col("schedule_started_at"), Option::<DateTime<Utc>>::None)
                .value(col("next_reminder_at"), now)
                .value(col("updated_at"), now)
                .and_where(Expr::col(col("state")).ne(InvitationState::Connected.as_str()));
        } else {
            update
                .and_where(Expr::col(col("state")).is_in(open_states()))
                .and_where(Expr::col(col("next_reminder_at")).lte(now));
        }
        if self.db().execute(&update).await?.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(self.claimed_by(owner).await?.into_iter().next())
    }

    async fn claimed_by(&self, owner: &str) -> Result<Vec<Claimed>, InvitationError> {
        let select = Query::select()
            .columns([
                col("person_id"),
                col("email"),
                col("display_name"),
                col("link_id"),
                col("reminders_sent"),
                col("schedule_started_at"),
            ])
            .from(col(TABLE))
            .and_where(Expr::col(col("claim_owner")).eq(owner))
            .order_by(col("next_reminder_at"), Order::Asc)
            .to_owned();
        self.db()
            .query_all(&select)
            .await?
            .iter()
            .map(|row| {
                Ok(Claimed {
                    person_id: row.try_get("", "person_id")?,
                    email: row.try_get("", "email")?,
                    display_name: row.try_get("", "display_name")?,
                    link_id: row.try_get("", "link_id")?,
                    reminders_sent: to_u32(row.try_get("", "reminders_sent")?),
                    schedule_started_at: row.try_get("", "schedule_started_at")?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()
            .map_err(InvitationError::from)
    }

    /// Sends the e-mail of a leased row and records the outcome (releasing the lease).
    /// The outer `Result` is the database; the inner one the send.
    async fn deliver(
        &self,
        row: Claimed,
        owner: &str,
    ) -> Result<Result<(), String>, InvitationError> {
        let kind = if row.schedule_started_at.is_some() {
            Kind::Reminder
        } else {
            Kind::Invitation
        };
        let link = self.link_for(&row.link_id);
        let sent = self
            .inner
            .mailer
            .send(&Letter {
                email: &row.email,
                display_name: &row.display_name,
                link: &link,
                kind,
            })
            .await;
        let now = Utc::now();
        let mut update = Query::update();
        update
            .table(col(TABLE))
            .value(col("claim_owner"), Option::<String>::None)
            .value(col("claimed_until"), Option::<DateTime<Utc>>::None)
            .value(col("updated_at"), now)
            .and_where(Expr::col(col("person_id")).eq(row.person_id.as_str()))
            .and_where(Expr::col(col("claim_owner")).eq(owner))
            .and_where(Expr::col(col("state")).is_in(open_states()));
        match &sent {
            Ok(()) => {
                let (anchor, reminders) = match row.schedule_started_at {
                    None => (now, 0),
                    Some(anchor) => (anchor, row.reminders_sent.saturating_add(1)),
                };
                let next = usize::try_from(reminders)
                    .ok()
                    .and_then(|i| self.inner.schedule.get(i))
                    .map(|after| anchor + chrono_of(*after));
                let state = match (kind, next) {
                    (Kind::Reminder, None) => InvitationState::Stopped,
                    _ => InvitationState::Sent,
                };
                update
                    .value(col("state"), state.as_str())
                    .value(col("sent_count"), Expr::col(col("sent_count")).add(1i32))
                    .value(
                        col("reminders_sent"),
                        i32::try_from(reminders).unwrap_or(i32::MAX),
                    )
                    .value(col("schedule_started_at"), anchor)
                    .value(col("last_sent_at"), now)
                    .value(col("next_reminder_at"), next)
                    .value(col("last_error"), Option::<String>::None);
                tracing::info!(
                    person_id = row.person_id,
                    kind = ?kind,
                    state = %state,
                    "invitation e-mail sent"
                );
            }
            Err(failure) => {
                // Transient failures are retried; a permanent refusal waits for a resend.
                let retry = (!failure.permanent).then(|| now + chrono_of(self.inner.retry_after));
                update
                    .value(col("state"), InvitationState::Failed.as_str())
                    .value(col("last_error"), truncate(&failure.reason))
                    .value(col("next_reminder_at"), retry);
                tracing::warn!(
                    person_id = row.person_id,
                    kind = ?kind,
                    error = %failure.reason,
                    permanent = failure.permanent,
                    "invitation e-mail failed"
                );
            }
        }
        if self.db().execute(&update).await?.rows_affected() == 0 {
            // Connected meanwhile (or the lease was lost): just let go of the row.
            let release = Query::update()
                .table(col(TABLE))
                .value(col("claim_owner"), Option::<String>::None)
                .value(col("claimed_until"), Option::<DateTime<Utc>>::None)
                .and_where(Expr::col(col("person_id")).eq(row.person_id.as_str()))
                .and_where(Expr::col(col("claim_owner")).eq(owner))
                .to_owned();
            self.db().execute(&release).await?;
        }
        Ok(sent.map_err(|failure| failure.reason))
    }

    fn read(&self, row: &QueryResult) -> Result<Invitation, InvitationError> {
        let state: String = row.try_get("", "state")?;
        let link_id: String = row.try_get("", "link_id")?;
        Ok(Invitation {
            person_id: row.try_get("", "person_id")?,
            email: row.try_get("", "email")?,
            display_name: row.try_get("", "display_name")?,
            state: state.parse()?,
            link: self.link_for(&link_id),
            link_id,
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
            sent_count: to_u32(row.try_get("", "sent_count")?),
            reminders_sent: to_u32(row.try_get("", "reminders_sent")?),
            last_sent_at: row.try_get("", "last_sent_at")?,
            next_reminder_at: row.try_get("", "next_reminder_at")?,
            last_error: row.try_get("", "last_error")?,
            connected_at: row.try_get("", "connected_at")?,
            contact_as_of: row.try_get("", "contact_as_of")?,
        })
    }
}

fn select_all() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            col("person_id"),
            col("email"),
            col("display_name"),
            col("state"),
            col("link_id"),
            col("created_at"),
            col("updated_at"),
            col("sent_count"),
            col("reminders_sent"),
            col("last_sent_at"),
            col("next_reminder_at"),
            col("last_error"),
            col("connected_at"),
            col("contact_as_of"),
        ])
        .from(col(TABLE))
        .to_owned()
}

fn lease_free(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(Expr::col(col("claimed_until")).is_null())
        .add(Expr::col(col("claimed_until")).lt(now))
}

fn new_owner() -> String {
    Uuid::new_v4().simple().to_string()
}

fn check_person_id(person_id: &str) -> Result<(), InvitationError> {
    if person_id.trim().is_empty() || person_id.len() > 255 {
        return Err(InvitationError::InvalidInput(
            "the person id is empty or longer than 255 bytes".to_owned(),
        ));
    }
    Ok(())
}
