//! What the API does, as plain async functions over the database, the key ring and ORCID:
//! hand out a usable access token (refreshing it near expiry), hand out client-credentials
//! tokens, end connections (revoked, expired, disconnected) with a "connection lost" event in
//! the same transaction, and list connections without tokens.
//!
//! Refresh, step by step (a crash at any point loses nothing):
//! 1. Only one task per connection and process refreshes at a time; the others wait and then
//!    find the new token.
//! 2. `POST /oauth/token` with `revoke_old=false`, so the old pair stays valid while the new
//!    one is not yet stored.
//! 3. Store the new pair if the row still holds the generation we read (compare-and-swap). If
//!    another replica stored one first, ours is revoked and theirs used.
//! 4. Revoke the old pair at ORCID (best effort: it is no longer stored anywhere).
//!
//! ORCID never extends a token by refreshing it: without `expires_in` the new token keeps the
//! old one's expiry. When a refresh did not move the expiry out of the refresh window, the vault
//! stops refreshing that token pair (it serves it until it expires) and the connection then
//! ends as expired. A refresh ORCID refuses (`invalid_grant`, `invalid_token`) ends the
//! connection as revoked, or as expired once the token has expired; any other failure serves
//! the current token until it actually expires, and further refreshes of that connection wait
//! [`REFRESH_RETRY_AFTER`] so that reads do not each wait on an ORCID that is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bus::OutgoingMessage;
use bus::events::{ConnectionLost, LostReason};
use bus::outbox::Outbox;
use chrono::{DateTime, Utc};
use idbridge_crypto::KeyRing;
use idbridge_platform::metrics::names;
use orcid::OrcidId;
use orcid::client::{AccessToken, OrcidClient, Refresh, Scopes};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::api::{
    ClientScope, ClientToken, Connection, ConnectionPage, ConnectionState, UserToken,
};
use crate::audit_writer::AuditWriter;
use crate::error::{VaultError, error_chain};
use crate::keys::KeyRingHandle;
use crate::sealing::{self, TokenPair};
use crate::store::audit::{self, Action};
use crate::store::{client_token, connection};

/// How many times an operation re-reads a row that changed under it before giving up.
const CONCURRENT_CHANGE_ATTEMPTS: usize = 3;

/// How long after a failed refresh (ORCID down, timeout) the vault serves the still-valid
/// token without asking ORCID again.
pub(crate) const REFRESH_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// What this process learned about refreshing one token pair (a connection at a generation).
#[derive(Clone, Copy, Debug)]
enum RefreshMemo {
    /// Refreshing does not move the expiry out of the refresh window: use the pair until it
    /// expires.
    Futile,
    /// The last refresh failed at this instant (not a refusal).
    FailedAt(std::time::Instant),
}

/// Filters of a connection listing.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListFilter {
    pub(crate) person_id: Option<String>,
    pub(crate) orcid: Option<String>,
    pub(crate) state: Option<ConnectionState>,
    pub(crate) after: Option<String>,
    pub(crate) limit: u64,
}

/// Who asked, and why (for the audit).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requester<'a> {
    pub(crate) caller: &'a str,
    pub(crate) purpose: &'a str,
}

struct CachedClientToken {
    token: AccessToken,
    expires_at: DateTime<Utc>,
}

/// The vault's state shared by every request.
pub(crate) struct Vault {
    db: DatabaseConnection,
    keys: KeyRingHandle,
    orcid: OrcidClient,
    outbox: Outbox,
    relay: Arc<Notify>,
    refresh_before_expiry: chrono::Duration,
    refresh_locks: Mutex<HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>>,
    /// Per connection: the generation the memo is about, and the memo. In memory only: a
    /// restart or another replica tries once more.
    refresh_memos: Mutex<HashMap<Uuid, (i64, RefreshMemo)>>,
    client_tokens: tokio::sync::Mutex<HashMap<ClientScope, CachedClientToken>>,
    /// Commits the token reads' audit rows (group commit).
    audit: AuditWriter,
}

/// ORCID's stated expiry; when it stated none, the lifetime ORCID gives every token (about
/// 20 years), rather than treating the token as expired.
fn expiry(at: Option<std::time::SystemTime>) -> DateTime<Utc> {
    at.map(DateTime::<Utc>::from)
        .unwrap_or_else(|| Utc::now() + chrono_duration(crate::handoff::ORCID_DEFAULT_EXPIRES_IN))
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(crate) fn scopes_to_vec(scopes: &str) -> Vec<String> {
    scopes.split_whitespace().map(str::to_owned).collect()
}

fn view(row: &connection::Model) -> Result<Connection, VaultError> {
    Ok(Connection {
        person_id: row.person_id.clone(),
        orcid: row.orcid.clone(),
        name: row.name.clone(),
        scopes: scopes_to_vec(&row.scopes),
        state: state_of(row)?,
        granted_at: row.granted_at,
        expires_at: row.expires_at,
        refreshed_at: row.refreshed_at,
        ended_at: row.ended_at,
    })
}

fn state_of(row: &connection::Model) -> Result<ConnectionState, VaultError> {
    ConnectionState::parse(&row.state).ok_or_else(|| {
        VaultError::Corrupt(format!(
            "connection {} has the unknown state '{}'",
            row.id, row.state
        ))
    })
}

fn ensure_active(row: &connection::Model) -> Result<(), VaultError> {
    match state_of(row)? {
        ConnectionState::Active => Ok(()),
        state => Err(VaultError::Ended {
            orcid: row.orcid.clone(),
            state,
        }),
    }
}

fn open_pair(ring: &KeyRing, row: &connection::Model) -> Result<TokenPair, VaultError> {
    let bytes = row.tokens_sealed.as_deref().ok_or_else(|| {
        VaultError::Corrupt(format!("active connection {} holds no tokens", row.id))
    })?;
    TokenPair::open(ring, bytes, row.id, &row.orcid).map_err(|source| VaultError::Open {
        what: format!("connection {} (iD {})", row.id, row.orcid),
        source,
    })
}

impl Vault {
    pub(crate) fn new(
        db: DatabaseConnection,
        keys: KeyRingHandle,
        orcid: OrcidClient,
        outbox: Outbox,
        relay: Arc<Notify>,
        refresh_before_expiry: std::time::Duration,
        audit: AuditWriter,
    ) -> Self {
        Self {
            db,
            keys,
            orcid,
            outbox,
            relay,
            refresh_before_expiry: chrono_duration(refresh_before_expiry),
            refresh_locks: Mutex::new(HashMap::new()),
            refresh_memos: Mutex::new(HashMap::new()),
            client_tokens: tokio::sync::Mutex::new(HashMap::new()),
            audit,
        }
    }

    async fn find(&self, orcid: &str) -> Result<connection::Model, VaultError> {
        connection::Entity::find()
            .filter(connection::Column::Orcid.eq(orcid))
            .one(&self.db)
            .await?
            .ok_or_else(|| VaultError::NotConnected(orcid.to_owned()))
    }

    fn needs_refresh(&self, expires_at: DateTime<Utc>) -> bool {
        expires_at - Utc::now() <= self.refresh_before_expiry
    }

    /// A lock per connection, dropped when nobody holds it.
    fn refresh_lock(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .refresh_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = locks.get(&id).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id, Arc::downgrade(&lock));
        lock
    }

    fn memo(&self, id: Uuid, generation: i64) -> Option<RefreshMemo> {
        let memos = self
            .refresh_memos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        memos
            .get(&id)
            .filter(|(at, _)| *at == generation)
            .map(|(_, memo)| *memo)
    }

    fn remember(&self, id: Uuid, generation: i64, memo: Option<RefreshMemo>) {
        let mut memos = self
            .refresh_memos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match memo {
            Some(memo) => {
                memos.insert(id, (generation, memo));
            }
            None => {
                memos.remove(&id);
            }
        }
    }

    /// Whether `row`'s still-valid token is to be served without a refresh: refreshing it
    /// cannot extend it, or a refresh failed less than [`REFRESH_RETRY_AFTER`] ago.
    fn serve_unrefreshed(&self, row: &connection::Model) -> bool {
        if row.expires_at <= Utc::now() {
            return false;
        }
        match self.memo(row.id, row.generation) {
            Some(RefreshMemo::Futile) => true,
            Some(RefreshMemo::FailedAt(at)) => at.elapsed() < REFRESH_RETRY_AFTER,
            None => false,
        }
    }

    /// Ends the connection (see [`Self::end_connection`]) and answers `Ended`. When the row
    /// changed under us (a reconnect, another replica's refresh or end), the current row
    /// decides instead: its token when it is active, its state when it has ended.
    async fn end_or_current(
        &self,
        row: &connection::Model,
        state: ConnectionState,
        reason: LostReason,
    ) -> Result<(connection::Model, TokenPair), VaultError> {
        if self.end_connection(row, state, reason, None).await? {
            self.remember(row.id, row.generation, None);
            return Err(VaultError::Ended {
                orcid: row.orcid.clone(),
                state,
            });
        }
        let current = self.find(&row.orcid).await?;
        ensure_active(&current)?;
        let pair = open_pair(&self.keys.current(), &current)?;
        Ok((current, pair))
    }

    /// A usable access token for `orcid`, refreshed at ORCID when it expires within the
    /// threshold; the read is audited before the token is returned.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, caller = requester.caller))]
    pub(crate) async fn user_token(
        &self,
        orcid: &OrcidId,
        requester: Requester<'_>,
    ) -> Result<UserToken, VaultError> {
        let row = self.find(&orcid.to_string()).await?;
        self.serve_token(row, requester).await
    }

    /// The access token of `person_id`'s active connection, the latest granted when the
    /// person connected more than one iD: what the writer needs for an HR or work event, in
    /// one request instead of a listing and a token read. A person without an active
    /// connection is `Ended` (revoked) when one of theirs was revoked, else `PersonNotConnected`.
    #[tracing::instrument(skip_all, fields(person_id = %person_id, caller = requester.caller))]
    pub(crate) async fn person_token(
        &self,
        person_id: &str,
        requester: Requester<'_>,
    ) -> Result<UserToken, VaultError> {
        let active = connection::Entity::find()
            .filter(connection::Column::PersonId.eq(person_id))
            .filter(connection::Column::State.eq(ConnectionState::Active.as_str()))
            .order_by_desc(connection::Column::GrantedAt)
            .order_by_desc(connection::Column::Orcid)
            .one(&self.db)
            .await?;
        let Some(row) = active else {
            let revoked = connection::Entity::find()
                .filter(connection::Column::PersonId.eq(person_id))
                .filter(connection::Column::State.eq(ConnectionState::Revoked.as_str()))
                .one(&self.db)
                .await?;
            return Err(match revoked {
                Some(row) => VaultError::Ended {
                    orcid: row.orcid,
                    state: ConnectionState::Revoked,
                },
                None => VaultError::PersonNotConnected(person_id.to_owned()),
            });
        };
        self.serve_token(row, requester).await
    }

    /// `row`'s access token, refreshed first when it expires within the threshold; the read
    /// is audited before the token is returned.
    async fn serve_token(
        &self,
        row: connection::Model,
        requester: Requester<'_>,
    ) -> Result<UserToken, VaultError> {
        ensure_active(&row)?;
        let orcid = row.orcid.clone();
        let ring = self.keys.current();
        let mut pair = open_pair(&ring, &row)?;
        let mut row = row;
        // The memo check first spares the lock and a second read while a pair that cannot
        // be extended, or whose refresh just failed, is served.
        if self.needs_refresh(row.expires_at) && !self.serve_unrefreshed(&row) {
            (row, pair) = self.refresh_serialised(row).await?;
        }
        // Committed (together with concurrent reads' rows) before the token is returned.
        self.audit
            .record(
                requester.caller,
                Action::TokenRead,
                Some(&orcid),
                None,
                requester.purpose,
            )
            .await?;
        Ok(UserToken {
            orcid,
            access_token: pair.access,
            expires_at: row.expires_at,
            scopes: scopes_to_vec(&row.scopes),
            generation: row.generation,
        })
    }

    async fn refresh_serialised(
        &self,
        row: connection::Model,
    ) -> Result<(connection::Model, TokenPair), VaultError> {
        let lock = self.refresh_lock(row.id);
        let _guard = lock.lock().await;
        // Another task may have refreshed while this one waited.
        let row = self.find(&row.orcid).await?;
        ensure_active(&row)?;
        let ring = self.keys.current();
        let pair = open_pair(&ring, &row)?;
        if !self.needs_refresh(row.expires_at) {
            return Ok((row, pair));
        }
        if self.serve_unrefreshed(&row) {
            return Ok((row, pair));
        }
        if matches!(self.memo(row.id, row.generation), Some(RefreshMemo::Futile)) {
            // Expired (else it would have been served above).
            tracing::info!("token expired and refreshing cannot extend it; the connection ends");
            return self
                .end_or_current(&row, ConnectionState::Expired, LostReason::Expired)
                .await;
        }
        self.refresh(row, pair, &ring).await
    }

    async fn refresh(
        &self,
        row: connection::Model,
        pair: TokenPair,
        ring: &KeyRing,
    ) -> Result<(connection::Model, TokenPair), VaultError> {
        let now = Utc::now();
        let expired = row.expires_at <= now;
        let Some(refresh_token) = pair.refresh.clone() else {
            if !expired {
                return Ok((row, pair));
            }
            tracing::warn!("token expired and there is no refresh token; the connection ends");
            return self
                .end_or_current(&row, ConnectionState::Expired, LostReason::Expired)
                .await;
        };
        let refreshed = self
            .orcid
            .refresh(&refresh_token, &Refresh::keeping_old())
            .await;
        // Whether ORCID gave a new pair, whatever happens to it afterwards.
        let outcome = if refreshed.is_ok() { "ok" } else { "failed" };
        metrics::counter!(names::TOKEN_REFRESHES_TOTAL, "outcome" => outcome).increment(1);
        match refreshed {
            Ok(fresh) => {
                let new_pair = TokenPair {
                    access: fresh.access_token.clone(),
                    refresh: fresh.refresh_token.clone(),
                };
                let sealed = new_pair
                    .seal(ring, row.id, &row.orcid)
                    .map_err(VaultError::Seal)?;
                let expires_at = expiry(fresh.expires_at());
                let scopes = if fresh.scopes.is_empty() {
                    row.scopes.clone()
                } else {
                    fresh.scopes.to_string()
                };
                let stored = connection::Entity::update_many()
                    .col_expr(
                        connection::Column::TokensSealed,
                        Expr::value(sealed.to_bytes()),
                    )
                    .col_expr(
                        connection::Column::KeyId,
                        Expr::value(sealed.key_id().as_str().to_owned()),
                    )
                    .col_expr(
                        connection::Column::Generation,
                        Expr::value(row.generation + 1),
                    )
                    .col_expr(connection::Column::ExpiresAt, Expr::value(expires_at))
                    .col_expr(connection::Column::Scopes, Expr::value(scopes.clone()))
                    .col_expr(connection::Column::RefreshedAt, Expr::value(now))
                    .col_expr(connection::Column::UpdatedAt, Expr::value(now))
                    .filter(connection::Column::Id.eq(row.id))
                    .filter(connection::Column::Generation.eq(row.generation))
                    .filter(connection::Column::State.eq(ConnectionState::Active.as_str()))
                    .exec(&self.db)
                    .await;
                let stored = match stored {
                    Ok(stored) => stored,
                    Err(e) => {
                        // The new pair is stored nowhere: don't leave it live at ORCID.
                        if let Err(revoke) = self.orcid.revoke(&new_pair.access).await {
                            tracing::warn!(error = %error_chain(&revoke), "could not revoke a refreshed token that was not stored");
                        }
                        return Err(e.into());
                    }
                };
                if stored.rows_affected == 1 {
                    tracing::info!(generation = row.generation + 1, %expires_at, "token refreshed at ORCID");
                    if self.needs_refresh(expires_at) {
                        // ORCID kept the old expiry (it does unless asked for a shorter one):
                        // refreshing again before expiry would only churn tokens.
                        tracing::info!(%expires_at, "the refresh did not extend the token; using it until it expires");
                        self.remember(row.id, row.generation + 1, Some(RefreshMemo::Futile));
                    } else {
                        self.remember(row.id, row.generation + 1, None);
                    }
                    if let Err(e) = self.orcid.revoke(&pair.access).await {
                        tracing::warn!(error = %error_chain(&e), "could not revoke the replaced token at ORCID");
                    }
                    let row = connection::Model {
                        tokens_sealed: Some(sealed.to_bytes()),
                        key_id: Some(sealed.key_id().as_str().to_owned()),
                        generation: row.generation + 1,
                        expires_at,
                        scopes,
                        refreshed_at: Some(now),
                        updated_at: now,
                        ..row
                    };
                    Ok((row, new_pair))
                } else {
                    // Another replica stored a new pair first: keep theirs, drop ours.
                    tracing::info!(
                        "another replica refreshed first; revoking this refresh's token"
                    );
                    if let Err(e) = self.orcid.revoke(&new_pair.access).await {
                        tracing::warn!(error = %error_chain(&e), "could not revoke an unused refreshed token");
                    }
                    let row = self.find(&row.orcid).await?;
                    ensure_active(&row)?;
                    let pair = open_pair(&self.keys.current(), &row)?;
                    Ok((row, pair))
                }
            }
            Err(e) if e.needs_new_token() => {
                // Our refresh token may be one another replica already replaced.
                let current = self.find(&row.orcid).await?;
                if current.generation != row.generation {
                    ensure_active(&current)?;
                    let pair = open_pair(&self.keys.current(), &current)?;
                    return Ok((current, pair));
                }
                if expired {
                    // ORCID refuses to refresh an expired token: that is an expiry, not the
                    // researcher revoking access.
                    tracing::info!(error = %error_chain(&e), "ORCID refused to refresh the expired token; the connection expired");
                    return self
                        .end_or_current(&row, ConnectionState::Expired, LostReason::Expired)
                        .await;
                }
                tracing::warn!(error = %error_chain(&e), "ORCID refused the refresh token; the connection is revoked");
                self.end_or_current(&row, ConnectionState::Revoked, LostReason::Revoked)
                    .await
            }
            Err(e) if !expired => {
                tracing::warn!(error = %error_chain(&e), "refresh failed; serving the current token until it expires");
                self.remember(
                    row.id,
                    row.generation,
                    Some(RefreshMemo::FailedAt(std::time::Instant::now())),
                );
                Ok((row, pair))
            }
            Err(source) => Err(VaultError::Orcid {
                operation: "token refresh",
                source,
            }),
        }
    }

    /// Ends an active connection: state, tokens deleted, "connection lost" in the outbox and
    /// the audit row, in one transaction. `false` when the row changed since it was read
    /// (nothing written).
    async fn end_connection(
        &self,
        row: &connection::Model,
        state: ConnectionState,
        reason: LostReason,
        audited: Option<(Requester<'_>, Action)>,
    ) -> Result<bool, VaultError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let ended = connection::Entity::update_many()
            .col_expr(connection::Column::State, Expr::value(state.as_str()))
            .col_expr(
                connection::Column::TokensSealed,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(
                connection::Column::KeyId,
                Expr::value(Option::<String>::None),
            )
            .col_expr(connection::Column::EndedAt, Expr::value(now))
            .col_expr(connection::Column::UpdatedAt, Expr::value(now))
            .filter(connection::Column::Id.eq(row.id))
            .filter(connection::Column::Generation.eq(row.generation))
            .filter(connection::Column::State.eq(ConnectionState::Active.as_str()))
            .exec(&txn)
            .await?;
        if ended.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        let orcid = OrcidId::parse(&row.orcid).map_err(|e| {
            VaultError::Corrupt(format!("connection {} holds an invalid iD: {e}", row.id))
        })?;
        let lost = ConnectionLost {
            orcid,
            person_id: row.person_id.clone(),
            reason,
            detected_at: now,
            primary_orcid: None,
        };
        self.outbox
            .record(&txn, &OutgoingMessage::event(&lost)?)
            .await?;
        if let Some((requester, action)) = audited {
            audit::record(
                &txn,
                requester.caller,
                action,
                Some(&row.orcid),
                None,
                requester.purpose,
            )
            .await?;
        }
        txn.commit().await?;
        self.relay.notify_one();
        tracing::info!(orcid = %row.orcid, state = %state, "connection ended");
        Ok(true)
    }

    /// A worker saw ORCID answer 401 for this connection's token: the connection is
    /// revoked. Idempotent; a report about an older generation is refused.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, caller = requester.caller))]
    pub(crate) async fn mark_revoked(
        &self,
        orcid: &OrcidId,
        generation: Option<i64>,
        requester: Requester<'_>,
    ) -> Result<Connection, VaultError> {
        let orcid = orcid.to_string();
        for _ in 0..CONCURRENT_CHANGE_ATTEMPTS {
            let row = self.find(&orcid).await?;
            if state_of(&row)? != ConnectionState::Active {
                // Already ended: nothing changes, but who reported it is still audited.
                audit::record(
                    &self.db,
                    requester.caller,
                    Action::Revoke,
                    Some(&orcid),
                    None,
                    requester.purpose,
                )
                .await?;
                return view(&row);
            }
            if let Some(reported) = generation
                && reported != row.generation
            {
                return Err(VaultError::StaleGeneration {
                    reported,
                    current: row.generation,
                });
            }
            if self
                .end_connection(
                    &row,
                    ConnectionState::Revoked,
                    LostReason::Revoked,
                    Some((requester, Action::Revoke)),
                )
                .await?
            {
                return view(&self.find(&orcid).await?);
            }
        }
        Err(VaultError::Corrupt(format!(
            "connection of iD {orcid} kept changing while it was being revoked"
        )))
    }

    /// The researcher disconnects: revoke at ORCID, then delete the tokens and publish
    /// "connection lost" (disconnected). Idempotent.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, caller = requester.caller))]
    pub(crate) async fn disconnect(
        &self,
        orcid: &OrcidId,
        requester: Requester<'_>,
    ) -> Result<Connection, VaultError> {
        let orcid = orcid.to_string();
        for _ in 0..CONCURRENT_CHANGE_ATTEMPTS {
            let row = self.find(&orcid).await?;
            match state_of(&row)? {
                ConnectionState::Disconnected => return view(&row),
                ConnectionState::Revoked | ConnectionState::Expired => {
                    // Nothing left to revoke; record the researcher's decision.
                    let now = Utc::now();
                    let txn = self.db.begin().await?;
                    // Compare-and-swap: a reconnect stored since the read must win.
                    let changed = connection::Entity::update_many()
                        .col_expr(
                            connection::Column::State,
                            Expr::value(ConnectionState::Disconnected.as_str()),
                        )
                        .col_expr(connection::Column::UpdatedAt, Expr::value(now))
                        .filter(connection::Column::Id.eq(row.id))
                        .filter(connection::Column::State.eq(row.state.as_str()))
                        .filter(connection::Column::Generation.eq(row.generation))
                        .exec(&txn)
                        .await?;
                    if changed.rows_affected != 1 {
                        txn.rollback().await?;
                        continue;
                    }
                    audit::record(
                        &txn,
                        requester.caller,
                        Action::Disconnect,
                        Some(&orcid),
                        None,
                        requester.purpose,
                    )
                    .await?;
                    txn.commit().await?;
                    return view(&self.find(&orcid).await?);
                }
                ConnectionState::Active => {
                    let pair = open_pair(&self.keys.current(), &row)?;
                    match self.orcid.revoke(&pair.access).await {
                        Ok(()) => {}
                        // Already dead at ORCID: nothing more to revoke.
                        Err(e) if e.needs_new_token() => {}
                        Err(source) => {
                            return Err(VaultError::Orcid {
                                operation: "token revocation",
                                source,
                            });
                        }
                    }
                    if self
                        .end_connection(
                            &row,
                            ConnectionState::Disconnected,
                            LostReason::Disconnected,
                            Some((requester, Action::Disconnect)),
                        )
                        .await?
                    {
                        return view(&self.find(&orcid).await?);
                    }
                    // Refreshed meanwhile: revoke the new pair on the next pass.
                }
            }
        }
        Err(VaultError::Corrupt(format!(
            "connection of iD {orcid} kept changing while it was being disconnected"
        )))
    }

    /// One connection, without tokens.
    pub(crate) async fn connection(&self, orcid: &OrcidId) -> Result<Connection, VaultError> {
        view(&self.find(&orcid.to_string()).await?)
    }

    /// A page of connections ordered by iD, without tokens.
    pub(crate) async fn connections(
        &self,
        filter: &ListFilter,
    ) -> Result<ConnectionPage, VaultError> {
        let mut query = connection::Entity::find().order_by_asc(connection::Column::Orcid);
        if let Some(person_id) = &filter.person_id {
            query = query.filter(connection::Column::PersonId.eq(person_id.as_str()));
        }
        if let Some(orcid) = &filter.orcid {
            query = query.filter(connection::Column::Orcid.eq(orcid.as_str()));
        }
        if let Some(state) = filter.state {
            query = query.filter(connection::Column::State.eq(state.as_str()));
        }
        if let Some(after) = &filter.after {
            query = query.filter(connection::Column::Orcid.gt(after.as_str()));
        }
        let mut rows = query.limit(filter.limit + 1).all(&self.db).await?;
        let more = u64::try_from(rows.len()).unwrap_or(u64::MAX) > filter.limit;
        rows.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
        let next_after = if more {
            rows.last().map(|r| r.orcid.clone())
        } else {
            None
        };
        Ok(ConnectionPage {
            connections: rows.iter().map(view).collect::<Result<_, _>>()?,
            next_after,
        })
    }

    /// The client-credentials token for `scope`: from memory, else from the database, else
    /// from ORCID (then stored sealed). Audited like a user token read.
    #[tracing::instrument(skip_all, fields(scope = scope.orcid_scope(), caller = requester.caller))]
    pub(crate) async fn client_token(
        &self,
        scope: ClientScope,
        requester: Requester<'_>,
    ) -> Result<ClientToken, VaultError> {
        let (token, expires_at) = {
            // Held across the fetch so concurrent first reads ask ORCID once.
            let mut cache = self.client_tokens.lock().await;
            match cache.get(&scope) {
                Some(cached) if !self.needs_refresh(cached.expires_at) => {
                    (cached.token.clone(), cached.expires_at)
                }
                _ => {
                    let (token, expires_at) = self.load_or_obtain_client_token(scope).await?;
                    cache.insert(
                        scope,
                        CachedClientToken {
                            token: token.clone(),
                            expires_at,
                        },
                    );
                    (token, expires_at)
                }
            }
        };
        // Committed (together with concurrent reads' rows) before the token is returned.
        self.audit
            .record(
                requester.caller,
                Action::ClientTokenRead,
                None,
                Some(scope.orcid_scope()),
                requester.purpose,
            )
            .await?;
        Ok(ClientToken {
            scope: scope.orcid_scope().to_owned(),
            access_token: token,
            expires_at,
        })
    }

    async fn load_or_obtain_client_token(
        &self,
        scope: ClientScope,
    ) -> Result<(AccessToken, DateTime<Utc>), VaultError> {
        let name = scope.orcid_scope();
        let ring = self.keys.current();
        let stored = client_token::Entity::find()
            .filter(client_token::Column::Scope.eq(name))
            .one(&self.db)
            .await?;
        if let Some(row) = &stored
            && !self.needs_refresh(row.expires_at)
        {
            let token = sealing::open_client_token(&ring, &row.token_sealed, row.id, name)
                .map_err(|source| VaultError::Open {
                    what: format!("client token {} ({name})", row.id),
                    source,
                })?;
            return Ok((token, row.expires_at));
        }
        let fresh = self
            .orcid
            .client_credentials(Scopes::parse(name))
            .await
            .map_err(|source| VaultError::Orcid {
                operation: "client credentials",
                source,
            })?;
        let now = Utc::now();
        let expires_at = expiry(fresh.expires_at());
        let id = stored.as_ref().map_or_else(Uuid::now_v7, |r| r.id);
        let sealed = sealing::seal_client_token(&ring, &fresh.access_token, id, name)
            .map_err(VaultError::Seal)?;
        match &stored {
            Some(row) => {
                client_token::Entity::update_many()
                    .col_expr(
                        client_token::Column::TokenSealed,
                        Expr::value(sealed.to_bytes()),
                    )
                    .col_expr(
                        client_token::Column::KeyId,
                        Expr::value(sealed.key_id().as_str().to_owned()),
                    )
                    .col_expr(
                        client_token::Column::Generation,
                        Expr::value(row.generation + 1),
                    )
                    .col_expr(client_token::Column::ExpiresAt, Expr::value(expires_at))
                    .col_expr(client_token::Column::ObtainedAt, Expr::value(now))
                    .filter(client_token::Column::Id.eq(row.id))
                    .exec(&self.db)
                    .await?;
            }
            None => {
                let row = client_token::ActiveModel {
                    id: Set(id),
                    scope: Set(name.to_owned()),
                    token_sealed: Set(sealed.to_bytes()),
                    key_id: Set(sealed.key_id().as_str().to_owned()),
                    generation: Set(1),
                    expires_at: Set(expires_at),
                    obtained_at: Set(now),
                };
                if let Err(e) = client_token::Entity::insert(row)
                    .exec_without_returning(&self.db)
                    .await
                {
                    // Another replica stored one first (unique scope): use theirs.
                    tracing::info!(error = %e, "client token stored concurrently; using the stored one");
                    let row = client_token::Entity::find()
                        .filter(client_token::Column::Scope.eq(name))
                        .one(&self.db)
                        .await?
                        .ok_or(VaultError::Database(e))?;
                    let token = sealing::open_client_token(&ring, &row.token_sealed, row.id, name)
                        .map_err(|source| VaultError::Open {
                            what: format!("client token {} ({name})", row.id),
                            source,
                        })?;
                    return Ok((token, row.expires_at));
                }
            }
        }
        tracing::info!(scope = name, %expires_at, "client-credentials token obtained from ORCID");
        Ok((fresh.access_token, expires_at))
    }
}

/// Locks `query`'s rows for update where the database supports it (PostgreSQL); SQLite
/// serialises writers anyway.
pub(crate) fn for_update<Q: QuerySelect>(query: Q, backend: DatabaseBackend) -> Q {
    if backend == DatabaseBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}

/// The backend of a connection.
pub(crate) fn backend_of<C: ConnectionTrait>(conn: &C) -> DatabaseBackend {
    conn.get_database_backend()
}
