//! "iD connected" → a stored connection and "connection ready".
//!
//! [`store_connection`] is the decision, a plain function on a transaction; [`ConnectHandler`]
//! is the thin bus handler around it, run by the bus's inbox (`Transactional`), so the row,
//! the inbox mark and the outbox event commit together and a redelivered message changes
//! nothing.
//!
//! The latest grant wins: a connect for an iD already stored replaces its tokens (same
//! connection id), unless the stored grant is as new as the event's or newer (an old message
//! arriving late, or the same grant redelivered after a disconnect), which is acknowledged and
//! ignored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bus::events::{ConnectionReady, IdConnected};
use bus::inbox::TxHandler;
use bus::outbox::Outbox;
use bus::{Delivery, Envelope, Handler, Outcome, OutgoingMessage};
use chrono::{SubsecRound, Utc};
use idbridge_crypto::{HandoffKeys, KeyRing};
use orcid::OrcidId;
use orcid::client::{AccessToken, OrcidClient, Scopes};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use crate::api::ConnectionState;
use crate::error::error_chain;
use crate::keys::KeyRingHandle;
use crate::sealing::TokenPair;
use crate::store::connection;
use crate::vault::{backend_of, for_update, scopes_to_vec};

/// Why a connect was not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The message can never be stored as it is (bad iD, unknown hand-off key, box that does
    /// not open): park it for an operator.
    #[error("{0}")]
    Refused(String),
    /// The database failed: try again.
    #[error("database")]
    Database(#[from] DbErr),
    /// The outbox failed: try again.
    #[error("outbox")]
    Bus(#[from] bus::BusError),
}

/// What [`store_connection`] did.
#[derive(Debug)]
pub(crate) enum Stored {
    /// Stored (new or replaced); "connection ready" recorded.
    Stored {
        connection_id: Uuid,
        generation: i64,
        /// The access token of the pair this grant replaced, to revoke at ORCID once the
        /// transaction has committed (nothing stores it any more).
        replaced: Option<AccessToken>,
    },
    /// A newer grant is already stored; nothing changed.
    Superseded,
}

/// Stores the connection announced by `event` on `txn` and records "connection ready" in the
/// outbox, caused by `cause`.
pub(crate) async fn store_connection(
    txn: &DatabaseTransaction,
    ring: &KeyRing,
    handoff: &HandoffKeys,
    outbox: &Outbox,
    event: &IdConnected,
    cause: &Envelope,
) -> Result<Stored, ConnectError> {
    let orcid = event.orcid.to_string();
    let person_id = event.person_id.trim();
    if person_id.is_empty() || person_id.len() > 255 {
        return Err(ConnectError::Refused(
            "`person_id` must be 1 to 255 characters".to_owned(),
        ));
    }
    let opened =
        crate::handoff::open(handoff, event).map_err(|e| ConnectError::Refused(error_chain(&e)))?;
    if let Some(sealed_orcid) = opened
        .orcid
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        && OrcidId::parse(sealed_orcid)
            .map(|o| o.to_string())
            .as_deref()
            != Ok(orcid.as_str())
    {
        return Err(ConnectError::Refused(
            "the sealed token response names another iD than the event".to_owned(),
        ));
    }
    // What ORCID granted, as stated in its answer; the event's list otherwise.
    let scopes = match opened.scope.as_deref().map(Scopes::parse) {
        Some(scopes) if !scopes.is_empty() => scopes.to_string(),
        _ => event.scopes.join(" "),
    };
    let name = event.name.clone().or(opened.name.clone());
    // PostgreSQL keeps microseconds: compare and store at that precision, or the same grant
    // would look newer than its stored copy.
    let granted_at = event.granted_at.trunc_subsecs(6);
    let expires_at =
        granted_at + chrono::Duration::from_std(opened.expires_in).unwrap_or(chrono::Duration::MAX);
    let pair = TokenPair {
        access: opened.access_token,
        refresh: opened.refresh_token,
    };
    let now = Utc::now();

    let existing = for_update(
        connection::Entity::find().filter(connection::Column::Orcid.eq(orcid.as_str())),
        backend_of(txn),
    )
    .one(txn)
    .await?;
    let (connection_id, generation, replaced) = match existing {
        // An equal grant time is the same grant delivered again (or a replay): storing it
        // would revive an ended connection or put back tokens a refresh already replaced.
        Some(row) if row.granted_at >= granted_at => {
            tracing::info!(%orcid, "this grant or a newer one is already stored; ignoring this one");
            return Ok(Stored::Superseded);
        }
        Some(row) => {
            if row.person_id != person_id {
                tracing::warn!(%orcid, "the iD is now connected by another person id; the latest grant wins");
            }
            let sealed = pair
                .seal(ring, row.id, &orcid)
                .map_err(|e| ConnectError::Refused(format!("sealing failed: {e}")))?;
            let replaced = row.tokens_sealed.as_deref().and_then(|bytes| {
                match TokenPair::open(ring, bytes, row.id, &orcid) {
                    // The same token again is not replaced: revoking it would kill the new grant.
                    Ok(old) if old.access.expose_secret() == pair.access.expose_secret() => None,
                    Ok(old) => Some(old.access),
                    Err(e) => {
                        // The new grant is still stored; only the revocation is lost.
                        tracing::warn!(%orcid, connection_id = %row.id, error = %error_chain(&e), "the replaced tokens do not open; they cannot be revoked at ORCID");
                        None
                    }
                }
            });
            connection::Entity::update_many()
                .col_expr(connection::Column::PersonId, Expr::value(person_id))
                .col_expr(connection::Column::Name, Expr::value(name.clone()))
                .col_expr(connection::Column::Scopes, Expr::value(scopes.clone()))
                .col_expr(
                    connection::Column::State,
                    Expr::value(ConnectionState::Active.as_str()),
                )
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
                .col_expr(connection::Column::GrantedAt, Expr::value(granted_at))
                .col_expr(
                    connection::Column::RefreshedAt,
                    Expr::value(Option::<chrono::DateTime<Utc>>::None),
                )
                .col_expr(
                    connection::Column::EndedAt,
                    Expr::value(Option::<chrono::DateTime<Utc>>::None),
                )
                .col_expr(connection::Column::UpdatedAt, Expr::value(now))
                .filter(connection::Column::Id.eq(row.id))
                .exec(txn)
                .await?;
            (row.id, row.generation + 1, replaced)
        }
        None => {
            let id = Uuid::now_v7();
            let sealed = pair
                .seal(ring, id, &orcid)
                .map_err(|e| ConnectError::Refused(format!("sealing failed: {e}")))?;
            let row = connection::ActiveModel {
                id: Set(id),
                orcid: Set(orcid.clone()),
                person_id: Set(person_id.to_owned()),
                name: Set(name),
                scopes: Set(scopes.clone()),
                state: Set(ConnectionState::Active.as_str().to_owned()),
                tokens_sealed: Set(Some(sealed.to_bytes())),
                key_id: Set(Some(sealed.key_id().as_str().to_owned())),
                generation: Set(1),
                expires_at: Set(expires_at),
                granted_at: Set(granted_at),
                refreshed_at: Set(None),
                ended_at: Set(None),
                updated_at: Set(now),
            };
            connection::Entity::insert(row)
                .exec_without_returning(txn)
                .await?;
            (id, 1, None)
        }
    };
    let ready = ConnectionReady {
        orcid: event.orcid,
        person_id: person_id.to_owned(),
        scopes: scopes_to_vec(&scopes),
        connected_at: now,
    };
    outbox
        .record(
            txn,
            &OutgoingMessage::event(&ready)?.with_envelope(|e| e.caused_by(cause)),
        )
        .await?;
    tracing::info!(%orcid, %connection_id, generation, "connection stored");
    Ok(Stored::Stored {
        connection_id,
        generation,
        replaced,
    })
}

/// Access tokens replaced by a reconnect, by the id of the message that replaced them,
/// waiting for that message's transaction to commit.
pub(crate) type ReplacedTokens = Arc<Mutex<HashMap<Uuid, AccessToken>>>;

/// The bus handler for "iD connected" (wrapped in the inbox's `Transactional`, itself
/// wrapped in [`RevokeReplaced`]).
pub(crate) struct ConnectHandler {
    pub(crate) keys: KeyRingHandle,
    pub(crate) handoff: Arc<HandoffKeys>,
    pub(crate) outbox: Outbox,
    pub(crate) replaced: ReplacedTokens,
}

/// Revokes at ORCID, best effort, the access token a reconnect replaced, after the
/// transaction that replaced it committed (the inner handler answered `Ack`). Before the
/// commit the old pair may still be the stored one.
pub(crate) struct RevokeReplaced<H> {
    pub(crate) inner: H,
    pub(crate) orcid: OrcidClient,
    pub(crate) replaced: ReplacedTokens,
}

impl<H: Handler> Handler for RevokeReplaced<H> {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let message_id = delivery.envelope.message_id;
        let outcome = self.inner.handle(delivery).await;
        let replaced = self
            .replaced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&message_id);
        if let (Outcome::Ack, Some(token)) = (&outcome, replaced) {
            match self.orcid.revoke(&token).await {
                Ok(()) => {
                    tracing::info!(%message_id, "revoked the token pair a reconnect replaced")
                }
                Err(e) => {
                    tracing::warn!(%message_id, error = %error_chain(&e), "could not revoke the token pair a reconnect replaced");
                }
            }
        }
        outcome
    }
}

impl TxHandler for ConnectHandler {
    async fn handle(&self, txn: &DatabaseTransaction, delivery: &Delivery) -> Outcome {
        let event: IdConnected = match delivery.payload() {
            Ok(event) => event,
            Err(e) => {
                let reason = format!("not an id-connected v1 message: {}", error_chain(&e));
                tracing::warn!(message_id = %delivery.envelope.message_id, %reason, "parking");
                return Outcome::park(reason);
            }
        };
        let ring = self.keys.current();
        match store_connection(
            txn,
            &ring,
            &self.handoff,
            &self.outbox,
            &event,
            &delivery.envelope,
        )
        .await
        {
            Ok(Stored::Stored {
                connection_id,
                generation,
                replaced,
            }) => {
                tracing::debug!(%connection_id, generation, "connect handled");
                if let Some(token) = replaced {
                    self.replaced
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(delivery.envelope.message_id, token);
                }
                Outcome::Ack
            }
            Ok(Stored::Superseded) => Outcome::Ack,
            Err(ConnectError::Refused(reason)) => {
                tracing::warn!(orcid = %event.orcid, %reason, "connect refused; parking the message");
                Outcome::park(reason)
            }
            Err(e) => {
                let reason = error_chain(&e);
                tracing::warn!(orcid = %event.orcid, %reason, "connect failed; will retry");
                Outcome::retry(std::time::Duration::ZERO, reason)
            }
        }
    }
}
