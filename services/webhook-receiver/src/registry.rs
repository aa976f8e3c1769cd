//! Registrations: one ORCID webhook per connected iD.
//!
//! - "connection ready" → [`Registry::apply_ready`]: a row in `webhook_registrations` (a new
//!   random hook id unless one is already in use), then `PUT` at ORCID (201 or 204: both
//!   fine, so a redelivery changes nothing).
//! - "connection lost" → [`Registry::apply_lost`]: `DELETE` at ORCID (404 counts as done),
//!   the row `unregistered`; callbacks of that hook id have no effect from then on.
//! - [`Registry::reregister_all`]: `PUT` again for every row not `unregistered`
//!   (`idbridge webhooks reregister`), idempotent.
//!
//! Events older than the row's last applied event (`connected_at` / `detected_at`) change
//! nothing, so a retried "ready" cannot undo a later "lost". A "lost" for an iD without a
//! row leaves a tombstone (`unregistered`, `last_event_at` = `detected_at`) for that reason.
//!
//! A `PUT` can race a "lost" (`reregister_all` runs beside the consumer): when ORCID
//! confirms a webhook whose row is no longer eligible (`unregistered`, or a newer hook id),
//! the webhook is deleted again; when a "lost" sees that a `PUT` confirmed the webhook
//! while it was deleting it, it deletes once more. So no webhook outlives its connection.

use std::sync::Arc;

use bus::events::{ConnectionLost, ConnectionReady, Event as _, OrcidId};
use bus::{Delivery, Handler, Outcome};
use chrono::{DateTime, Utc};
use orcid::client::{OrcidClient, WebhookRegistration};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::callback::CallbackKey;
use crate::tokens::{ClientTokens, TokenError};

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Stored; ORCID has not confirmed yet (or a retry is due).
    Pending,
    /// ORCID confirmed (201 or 204).
    Registered,
    /// Removed after "connection lost".
    Unregistered,
    /// ORCID refused it on its merits (see `last_error`); `reregister_all` tries again.
    Failed,
}

impl RegistrationState {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Pending => "pending",
            RegistrationState::Registered => "registered",
            RegistrationState::Unregistered => "unregistered",
            RegistrationState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => RegistrationState::Pending,
            "registered" => RegistrationState::Registered,
            "unregistered" => RegistrationState::Unregistered,
            "failed" => RegistrationState::Failed,
            _ => return None,
        })
    }
}

/// One row of `webhook_registrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The watched iD.
    pub orcid: OrcidId,
    /// The institution's person id.
    pub person_id: String,
    /// The opaque id in the callback URL (not secret on its own).
    pub hook_id: Uuid,
    /// Where it stands.
    pub state: RegistrationState,
    /// Time of the last event applied (`connected_at` / `detected_at`).
    pub last_event_at: DateTime<Utc>,
    /// When ORCID last confirmed it.
    pub registered_at: Option<DateTime<Utc>>,
    /// When it was removed.
    pub unregistered_at: Option<DateTime<Utc>>,
    /// When the last verified callback arrived.
    pub last_callback_at: Option<DateTime<Utc>>,
    /// A debounced change waiting since then.
    pub pending_since: Option<DateTime<Utc>>,
    /// The last failure, without secrets.
    pub last_error: Option<String>,
}

/// What `apply_ready` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyOutcome {
    /// ORCID created the webhook (201).
    Created,
    /// ORCID already had it (204).
    AlreadyRegistered,
    /// A later event was already applied (before or while registering); nothing is left
    /// registered.
    Stale,
}

/// What one `PUT` of a registration came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registered {
    /// ORCID has it and the row says `registered`.
    Yes(WebhookRegistration),
    /// ORCID confirmed it, but the connection was lost meanwhile: deleted again.
    Withdrawn,
}

/// What `reregister_all` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReregisterReport {
    /// Webhooks ORCID created (201).
    pub created: usize,
    /// Webhooks ORCID already had (204).
    pub already_registered: usize,
    /// Connections lost while being re-registered: the webhook ORCID confirmed was deleted
    /// again.
    pub withdrawn: usize,
    /// iDs that failed, with the reason (no secrets).
    pub failed: Vec<(OrcidId, String)>,
}

/// A registration step failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database failed.
    #[error("the registrations table failed")]
    Database(#[from] DbErr),
    /// No `/webhook` token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// ORCID refused or failed (the callback URL is never in the message).
    #[error("ORCID: {0}")]
    Orcid(#[from] orcid::Error),
    /// A stored row is unreadable.
    #[error("webhook_registrations holds an unreadable row: {0}")]
    Corrupt(String),
}

impl RegistryError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Database(_) => true,
            RegistryError::Token(e) => e.is_retryable(),
            RegistryError::Orcid(e) => e.is_retryable() || e.needs_new_token(),
            RegistryError::Corrupt(_) => false,
        }
    }
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

struct RegistryInner {
    db: DatabaseConnection,
    orcid: OrcidClient,
    tokens: Arc<dyn ClientTokens>,
    key: CallbackKey,
    public_url: String,
}

/// Registers and unregisters ORCID webhooks and keeps `webhook_registrations`. Cheap to
/// clone; also the bus [`Handler`] of "connection ready" / "connection lost".
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "orcid, person_id, hook_id, state, last_event_at, registered_at, \
    unregistered_at, last_callback_at, pending_since, last_error";

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

impl Registry {
    /// A registry over `db` (migrated), registering with `orcid` and the `/webhook` token of
    /// `tokens`, callback URLs under `public_url` with secrets derived by `key`.
    pub fn new(
        db: DatabaseConnection,
        orcid: OrcidClient,
        tokens: Arc<dyn ClientTokens>,
        key: CallbackKey,
        public_url: &str,
    ) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                db,
                orcid,
                tokens,
                key,
                public_url: public_url.trim().trim_end_matches('/').to_owned(),
            }),
        }
    }

    /// The callback URL of `hook_id` (a secret: never log it).
    pub fn callback_url(&self, hook_id: Uuid) -> SecretString {
        self.inner.key.callback_url(&self.inner.public_url, hook_id)
    }

    /// The registration of `orcid`, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn registration(
        &self,
        orcid: &OrcidId,
    ) -> Result<Option<Registration>, RegistryError> {
        let row = self
            .inner
            .db
            .query_one_raw(stmt(
                &format!("SELECT {COLUMNS} FROM webhook_registrations WHERE orcid = $1"),
                [orcid.to_string().into()],
            ))
            .await?;
        row.map(|r| read_row(&r)).transpose()
    }

    /// Every registration, by iD.
    ///
    /// # Errors
    /// Database errors.
    pub async fn registrations(&self) -> Result<Vec<Registration>, RegistryError> {
        let rows = self
            .inner
            .db
            .query_all_raw(stmt(
                &format!("SELECT {COLUMNS} FROM webhook_registrations ORDER BY orcid"),
                [],
            ))
            .await?;
        rows.iter().map(read_row).collect()
    }

    /// "Connection ready": store the registration and register the webhook at ORCID.
    ///
    /// # Errors
    /// [`RegistryError`]; [`RegistryError::is_retryable`] says whether to try again (the row
    /// then stays `pending`; refused on the merits it is `failed`).
    pub async fn apply_ready(
        &self,
        event: &ConnectionReady,
    ) -> Result<ReadyOutcome, RegistryError> {
        let row = self
            .inner
            .db
            .query_one_raw(stmt(
                "INSERT INTO webhook_registrations
                     (orcid, person_id, hook_id, state, last_event_at, updated_at)
                 VALUES ($1, $2, $3, 'pending', $4, now())
                 ON CONFLICT (orcid) DO UPDATE SET
                     person_id = EXCLUDED.person_id,
                     hook_id = CASE WHEN webhook_registrations.state = 'unregistered'
                                    THEN EXCLUDED.hook_id ELSE webhook_registrations.hook_id END,
                     state = CASE WHEN webhook_registrations.state = 'registered'
                                  THEN 'registered' ELSE 'pending' END,
                     last_event_at = EXCLUDED.last_event_at,
                     updated_at = now()
                 WHERE webhook_registrations.last_event_at <= EXCLUDED.last_event_at
                 RETURNING hook_id",
                [
                    event.orcid.to_string().into(),
                    event.person_id.clone().into(),
                    Uuid::new_v4().into(),
                    event.connected_at.into(),
                ],
            ))
            .await?;
        let Some(row) = row else {
            tracing::info!(orcid = %event.orcid, "a later event was already applied; \"connection ready\" ignored");
            return Ok(ReadyOutcome::Stale);
        };
        let hook_id: Uuid = row.try_get("", "hook_id")?;
        self.register(&event.orcid, hook_id, "connection ready")
            .await
            .map(|r| match r {
                Registered::Yes(WebhookRegistration::Created) => ReadyOutcome::Created,
                Registered::Yes(WebhookRegistration::AlreadyRegistered) => {
                    ReadyOutcome::AlreadyRegistered
                }
                Registered::Withdrawn => ReadyOutcome::Stale,
            })
    }

    /// `PUT` at ORCID and the row's outcome. When the row is no longer eligible once ORCID
    /// confirmed (the connection was lost meanwhile), the webhook is deleted again.
    async fn register(
        &self,
        orcid: &OrcidId,
        hook_id: Uuid,
        purpose: &str,
    ) -> Result<Registered, RegistryError> {
        let result = self.put(orcid, hook_id, purpose).await;
        match &result {
            Ok(outcome) => {
                let updated = self
                    .inner
                    .db
                    .execute_raw(stmt(
                        "UPDATE webhook_registrations
                         SET state = 'registered', registered_at = clock_timestamp(),
                             last_error = NULL, updated_at = now()
                         WHERE orcid = $1 AND hook_id = $2 AND state <> 'unregistered'",
                        [orcid.to_string().into(), hook_id.into()],
                    ))
                    .await?;
                if updated.rows_affected() == 0 {
                    // A "lost" got there first (its DELETE may have preceded this PUT, which
                    // then re-created the webhook): remove it again, or ORCID would call a
                    // dead URL for ever.
                    tracing::info!(%orcid, "the connection was lost while registering; the webhook is deleted again");
                    self.unregister(orcid, hook_id, "withdraw")
                        .await
                        .inspect_err(|e| {
                            tracing::error!(%orcid, error = %error_text(e), "a webhook of a lost connection could not be deleted; ORCID keeps calling a URL answered 204 without effect until it is removed there by hand");
                        })?;
                    return Ok(Registered::Withdrawn);
                }
                tracing::info!(%orcid, outcome = ?outcome, "webhook registered");
            }
            Err(e) => {
                let state = if e.is_retryable() {
                    RegistrationState::Pending
                } else {
                    RegistrationState::Failed
                };
                let message = error_text(e);
                tracing::warn!(%orcid, error = %message, state = state.as_str(), "webhook registration failed");
                self.inner
                    .db
                    .execute_raw(stmt(
                        "UPDATE webhook_registrations
                         SET state = CASE WHEN state = 'registered' THEN state ELSE $3 END,
                             last_error = $4, updated_at = now()
                         WHERE orcid = $1 AND hook_id = $2 AND state <> 'unregistered'",
                        [
                            orcid.to_string().into(),
                            hook_id.into(),
                            state.as_str().into(),
                            message.into(),
                        ],
                    ))
                    .await?;
            }
        }
        result.map(Registered::Yes)
    }

    /// `DELETE` of `hook_id`'s webhook at ORCID; absent (404 / 9028) counts as done.
    async fn unregister(
        &self,
        orcid: &OrcidId,
        hook_id: Uuid,
        purpose: &str,
    ) -> Result<(), RegistryError> {
        let token = self
            .inner
            .tokens
            .webhook_token(&format!("{purpose} {orcid}"))
            .await?;
        let url = self.callback_url(hook_id);
        match self
            .inner
            .orcid
            .unregister_webhook(&token, orcid, url.expose_secret())
            .await
        {
            Ok(()) | Err(orcid::Error::NotFound { .. }) => Ok(()),
            Err(e) => {
                if e.needs_new_token() {
                    self.inner.tokens.invalidate().await;
                }
                Err(e.into())
            }
        }
    }

    async fn put(
        &self,
        orcid: &OrcidId,
        hook_id: Uuid,
        purpose: &str,
    ) -> Result<WebhookRegistration, RegistryError> {
        let token = self
            .inner
            .tokens
            .webhook_token(&format!("{purpose} {orcid}"))
            .await?;
        let url = self.callback_url(hook_id);
        let result = self
            .inner
            .orcid
            .register_webhook(&token, orcid, url.expose_secret())
            .await;
        if let Err(e) = &result
            && e.needs_new_token()
        {
            self.inner.tokens.invalidate().await;
        }
        Ok(result?)
    }

    /// "Connection lost": unregister at ORCID (absent counts as done) and mark the row
    /// `unregistered`. Returns whether anything was registered. Without a row, a tombstone
    /// row (`unregistered`, `last_event_at` = `detected_at`) is written, so an older
    /// "connection ready" retried later changes nothing.
    ///
    /// # Errors
    /// [`RegistryError`]; retry when [`RegistryError::is_retryable`].
    pub async fn apply_lost(&self, event: &ConnectionLost) -> Result<bool, RegistryError> {
        let orcid = event.orcid.to_string();
        let row = self
            .inner
            .db
            .query_one_raw(stmt(
                "UPDATE webhook_registrations
                 SET last_event_at = $2, updated_at = now()
                 WHERE orcid = $1 AND last_event_at <= $2 AND state <> 'unregistered'
                 RETURNING hook_id, registered_at",
                [orcid.clone().into(), event.detected_at.into()],
            ))
            .await?;
        let Some(row) = row else {
            self.tombstone(event).await?;
            return Ok(false);
        };
        let hook_id: Uuid = row.try_get("", "hook_id")?;
        let registered_at: Option<DateTime<Utc>> = row.try_get("", "registered_at")?;
        let last_error = match self
            .unregister(&event.orcid, hook_id, "connection lost")
            .await
        {
            Ok(()) => None,
            Err(e) if e.is_retryable() => {
                self.inner
                    .db
                    .execute_raw(stmt(
                        "UPDATE webhook_registrations SET last_error = $2, updated_at = now()
                         WHERE orcid = $1",
                        [orcid.clone().into(), error_text(&e).into()],
                    ))
                    .await?;
                return Err(e);
            }
            // Refused on its merits (e.g. another client's hook): it is not ours to keep.
            Err(RegistryError::Orcid(e)) => Some(error_text(&e)),
            Err(e) => return Err(e),
        };
        if let Some(error) = &last_error {
            tracing::warn!(orcid = %event.orcid, %error, "ORCID refused the unregistration; the registration is dropped");
        }
        let row = self
            .inner
            .db
            .query_one_raw(stmt(
                "UPDATE webhook_registrations
                 SET state = 'unregistered', unregistered_at = now(), pending_since = NULL,
                     last_error = $3, updated_at = now()
                 WHERE orcid = $1 AND hook_id = $2
                 RETURNING registered_at",
                [orcid.into(), hook_id.into(), last_error.clone().into()],
            ))
            .await?;
        let confirmed_meanwhile = match row {
            Some(row) => {
                row.try_get::<Option<DateTime<Utc>>>("", "registered_at")? != registered_at
            }
            None => false,
        };
        if confirmed_meanwhile && last_error.is_none() {
            // A concurrent PUT (`reregister_all`) was confirmed while we deleted: its PUT may
            // have come after our DELETE and re-created the webhook. Delete once more.
            tracing::info!(orcid = %event.orcid, "a re-registration raced the unregistration; the webhook is deleted again");
            // A retry of this message would find the row `unregistered` and do nothing, so
            // a failure here is reported, not retried.
            if let Err(e) = self
                .unregister(&event.orcid, hook_id, "connection lost")
                .await
            {
                tracing::error!(orcid = %event.orcid, error = %error_text(&e), "a webhook of a lost connection could not be deleted; ORCID keeps calling a URL answered 204 without effect until it is removed there by hand");
            }
        }
        tracing::info!(orcid = %event.orcid, "webhook unregistered");
        Ok(true)
    }

    /// The row of a "lost" for an iD without a (newer or live) row: `unregistered` at
    /// `detected_at`, with a hook id never registered, so an older "ready" is stale.
    async fn tombstone(&self, event: &ConnectionLost) -> Result<(), RegistryError> {
        let result = self
            .inner
            .db
            .execute_raw(stmt(
                "INSERT INTO webhook_registrations
                     (orcid, person_id, hook_id, state, last_event_at, unregistered_at, updated_at)
                 VALUES ($1, $2, $3, 'unregistered', $4, now(), now())
                 ON CONFLICT (orcid) DO UPDATE SET
                     last_event_at = EXCLUDED.last_event_at, updated_at = now()
                 WHERE webhook_registrations.state = 'unregistered'
                   AND webhook_registrations.last_event_at < EXCLUDED.last_event_at",
                [
                    event.orcid.to_string().into(),
                    event.person_id.clone().into(),
                    Uuid::new_v4().into(),
                    event.detected_at.into(),
                ],
            ))
            .await?;
        if result.rows_affected() > 0 {
            tracing::info!(orcid = %event.orcid, "\"connection lost\" without a registration; recorded so an older \"connection ready\" is ignored");
        }
        Ok(())
    }

    /// Registers every webhook not `unregistered` again (idempotent: ORCID answers 204 for
    /// those it has). For `idbridge webhooks reregister`, e.g. after changing
    /// `webhooks.public_url` or `webhooks.callback_key`.
    ///
    /// # Errors
    /// Database errors reading the table; each iD's failure is in the report instead.
    pub async fn reregister_all(&self) -> Result<ReregisterReport, RegistryError> {
        let mut report = ReregisterReport::default();
        for registration in self.registrations().await? {
            if registration.state == RegistrationState::Unregistered {
                continue;
            }
            match self
                .register(&registration.orcid, registration.hook_id, "reregister")
                .await
            {
                Ok(Registered::Yes(WebhookRegistration::Created)) => report.created += 1,
                Ok(Registered::Yes(WebhookRegistration::AlreadyRegistered)) => {
                    report.already_registered += 1;
                }
                Ok(Registered::Withdrawn) => report.withdrawn += 1,
                Err(e) => report.failed.push((registration.orcid, error_text(&e))),
            }
        }
        tracing::info!(
            created = report.created,
            already_registered = report.already_registered,
            withdrawn = report.withdrawn,
            failed = report.failed.len(),
            "webhooks re-registered"
        );
        Ok(report)
    }
}

fn read_row(row: &sea_orm::QueryResult) -> Result<Registration, RegistryError> {
    let orcid: String = row.try_get("", "orcid")?;
    let state: String = row.try_get("", "state")?;
    Ok(Registration {
        orcid: OrcidId::parse(&orcid)
            .map_err(|e| RegistryError::Corrupt(format!("iD {orcid:?}: {e}")))?,
        person_id: row.try_get("", "person_id")?,
        hook_id: row.try_get("", "hook_id")?,
        state: RegistrationState::parse(&state)
            .ok_or_else(|| RegistryError::Corrupt(format!("state {state:?}")))?,
        last_event_at: row.try_get("", "last_event_at")?,
        registered_at: row.try_get("", "registered_at")?,
        unregistered_at: row.try_get("", "unregistered_at")?,
        last_callback_at: row.try_get("", "last_callback_at")?,
        pending_since: row.try_get("", "pending_since")?,
        last_error: row.try_get("", "last_error")?,
    })
}

impl Handler for Registry {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let result = match delivery.envelope.message_type.as_str() {
            ConnectionReady::TYPE => match delivery.payload::<ConnectionReady>() {
                Ok(event) => self.apply_ready(&event).await.map(|_| ()),
                Err(e) => {
                    return Outcome::park(format!(
                        "not a connection-ready v1 message: {}",
                        error_text(&e)
                    ));
                }
            },
            ConnectionLost::TYPE => match delivery.payload::<ConnectionLost>() {
                Ok(event) => self.apply_lost(&event).await.map(|_| ()),
                Err(e) => {
                    return Outcome::park(format!(
                        "not a connection-lost v1 message: {}",
                        error_text(&e)
                    ));
                }
            },
            other => return Outcome::park(format!("unexpected message type {other:?}")),
        };
        match result {
            Ok(()) => Outcome::Ack,
            Err(e) if e.is_retryable() => {
                let after = match &e {
                    RegistryError::Orcid(orcid::Error::RateLimited { retry_after, .. }) => {
                        retry_after.unwrap_or_default()
                    }
                    _ => std::time::Duration::ZERO,
                };
                Outcome::retry(after, error_text(&e))
            }
            Err(e) => Outcome::park(error_text(&e)),
        }
    }
}
