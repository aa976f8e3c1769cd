//! Online key rotation: re-wrap every data key not yet under the ring's active key.
//!
//! Procedure (the README has the operator's version):
//! 1. Add the new key to the ring and make it active; roll it out (or
//!    [`KeyRingHandle::replace`](crate::KeyRingHandle::replace) in a running vault). New seals
//!    use it; rows under the old key still open, because the old key stays in the ring.
//! 2. Run [`rotate`]: it walks the rows whose `key_id` is not the active one, in batches of
//!    `batch_size` per transaction, and replaces each row's wrapped data key (60 bytes; the
//!    token ciphertext is untouched). Each update is a compare-and-swap on the row's token
//!    generation and old key id, so a row refreshed meanwhile is left to the refresh (which
//!    sealed it under its own ring) and picked up by the next sweep if still old.
//! 3. When no row names the old key ([`RotationReport::remaining`] is 0), remove it from the
//!    ring. A running vault refuses (on SIGHUP) a ring that lacks a key rows still use.
//!
//! Idempotent and resumable: it only ever looks at rows not on the active key, so running it
//! twice, or again after a crash, does the remaining work and nothing else.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use idbridge_crypto::{KeyId, KeyRing, RowBinding, Sealed};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::error::error_chain;
use crate::sealing::client_binding_name;
use crate::store::{client_token, connection};

/// What a rotation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Rows re-wrapped under the active key.
    pub rewrapped: u64,
    /// Rows that changed while being re-wrapped (refreshed meanwhile); the refresh sealed
    /// them anew.
    pub changed_meanwhile: u64,
    /// Rows that could not be re-wrapped (their key is missing from the ring, or the blob is
    /// damaged). They keep their old wrap; fix the cause and run again.
    pub failed: Vec<RotationFailure>,
    /// Rows still under another key than the active one when the rotation finished (the
    /// failed ones, and any sealed meanwhile by a replica still on the old ring). Retire the
    /// old key only when this is 0.
    pub remaining: u64,
}

/// One row [`rotate`] could not re-wrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationFailure {
    /// `token_vault_connections` or `token_vault_client_tokens`.
    pub table: &'static str,
    /// The row.
    pub row_id: Uuid,
    /// The key id the row names.
    pub key_id: String,
    /// Why (never secret material).
    pub reason: String,
}

/// A rotation could not run.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// `batch_size` was 0.
    #[error("the rotation batch size must be at least 1")]
    BatchSize,
    /// The database failed; rows done so far stay done, run again to resume.
    #[error("the database failed during rotation (rows done so far stay done; run it again)")]
    Database(#[from] DbErr),
}

/// Re-wraps, under `keyring`'s active key, every data key that is under another key; see the
/// module docs.
///
/// # Errors
/// [`RotationError`]; rows that cannot be re-wrapped are reported in
/// [`RotationReport::failed`] instead.
pub async fn rotate(
    db: &DatabaseConnection,
    keyring: &KeyRing,
    batch_size: u64,
) -> Result<RotationReport, RotationError> {
    rotate_paced(db, keyring, batch_size, Duration::ZERO).await
}

/// [`rotate`], waiting `pause` after each batch (each transaction) so that a large rotation
/// leaves the database room for the vault's traffic.
///
/// # Errors
/// As [`rotate`].
#[tracing::instrument(skip_all, fields(active_key = %keyring.active_key_id(), batch_size))]
pub async fn rotate_paced(
    db: &DatabaseConnection,
    keyring: &KeyRing,
    batch_size: u64,
    pause: Duration,
) -> Result<RotationReport, RotationError> {
    if batch_size == 0 {
        return Err(RotationError::BatchSize);
    }
    let mut report = RotationReport::default();
    // Sweep until a sweep re-wraps nothing: rows refreshed under an old ring by a replica that
    // has not loaded the new one yet show up again and are taken on the next sweep.
    loop {
        let before = report.rewrapped;
        sweep_connections(db, keyring, batch_size, pause, &mut report).await?;
        sweep_client_tokens(db, keyring, batch_size, pause, &mut report).await?;
        if report.rewrapped == before {
            break;
        }
    }
    report.failed.sort_by_key(|f| (f.table, f.row_id));
    report.failed.dedup_by_key(|f| (f.table, f.row_id));
    report.remaining = remaining(db, keyring).await?;
    tracing::info!(
        rewrapped = report.rewrapped,
        changed_meanwhile = report.changed_meanwhile,
        failed = report.failed.len(),
        remaining = report.remaining,
        "rotation finished"
    );
    Ok(report)
}

/// Rows (both tables) whose key id is not `keyring`'s active one.
async fn remaining(db: &DatabaseConnection, keyring: &KeyRing) -> Result<u64, DbErr> {
    let active = keyring.active_key_id().as_str();
    let connections = connection::Entity::find()
        .filter(connection::Column::KeyId.is_not_null())
        .filter(connection::Column::KeyId.ne(active))
        .count(db)
        .await?;
    let client_tokens = client_token::Entity::find()
        .filter(client_token::Column::KeyId.ne(active))
        .count(db)
        .await?;
    Ok(connections + client_tokens)
}

/// Every key id the stored rows name (both tables), for checking a new ring holds them all.
///
/// # Errors
/// Database errors.
pub(crate) async fn key_ids_in_use(db: &DatabaseConnection) -> Result<BTreeSet<String>, DbErr> {
    let mut ids: BTreeSet<String> = connection::Entity::find()
        .select_only()
        .column(connection::Column::KeyId)
        .distinct()
        .filter(connection::Column::KeyId.is_not_null())
        .into_tuple::<Option<String>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    ids.extend(
        client_token::Entity::find()
            .select_only()
            .column(client_token::Column::KeyId)
            .distinct()
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    Ok(ids)
}

/// The key ids rows use that `ring` does not hold (a ring that would leave rows unreadable).
pub(crate) fn missing_key_ids(ring: &KeyRing, in_use: &BTreeSet<String>) -> Vec<String> {
    in_use
        .iter()
        .filter(|id| !KeyId::parse(id).is_some_and(|id| ring.contains(&id)))
        .cloned()
        .collect()
}

fn failure(table: &'static str, row_id: Uuid, key_id: &str, reason: String) -> RotationFailure {
    tracing::warn!(table, %row_id, key_id, %reason, "row could not be re-wrapped");
    RotationFailure {
        table,
        row_id,
        key_id: key_id.to_owned(),
        reason,
    }
}

/// Re-wraps `sealed` unless the blob itself says it is already under the active key (then
/// only the row's `key_id` column was behind, and the update puts it right).
fn rewrap_if_needed(
    keyring: &KeyRing,
    sealed: Sealed,
    binding: &RowBinding,
) -> Result<Sealed, idbridge_crypto::CryptoError> {
    if keyring.needs_rewrap(&sealed) {
        keyring.rewrap(&sealed, binding)
    } else {
        Ok(sealed)
    }
}

async fn sweep_connections(
    db: &DatabaseConnection,
    keyring: &KeyRing,
    batch_size: u64,
    pause: Duration,
    report: &mut RotationReport,
) -> Result<(), RotationError> {
    const TABLE: &str = "token_vault_connections";
    let active = keyring.active_key_id().as_str().to_owned();
    let mut cursor: Option<Uuid> = None;
    loop {
        let mut query = connection::Entity::find()
            .filter(connection::Column::KeyId.is_not_null())
            .filter(connection::Column::KeyId.ne(active.as_str()))
            .order_by_asc(connection::Column::Id)
            .limit(batch_size);
        if let Some(after) = cursor {
            query = query.filter(connection::Column::Id.gt(after));
        }
        let rows = query.all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        cursor = Some(last.id);
        let txn = db.begin().await?;
        for row in &rows {
            let (Some(bytes), Some(old_key)) = (&row.tokens_sealed, &row.key_id) else {
                continue;
            };
            let rewrapped = Sealed::from_bytes(bytes)
                .and_then(|s| rewrap_if_needed(keyring, s, &RowBinding::new(row.id, &row.orcid)));
            let sealed = match rewrapped {
                Ok(sealed) => sealed,
                Err(e) => {
                    report
                        .failed
                        .push(failure(TABLE, row.id, old_key, error_chain(&e)));
                    continue;
                }
            };
            let updated = connection::Entity::update_many()
                .col_expr(
                    connection::Column::TokensSealed,
                    Expr::value(sealed.to_bytes()),
                )
                .col_expr(connection::Column::KeyId, Expr::value(active.clone()))
                .col_expr(connection::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(connection::Column::Id.eq(row.id))
                .filter(connection::Column::Generation.eq(row.generation))
                .filter(connection::Column::KeyId.eq(old_key.as_str()))
                .exec(&txn)
                .await?;
            if updated.rows_affected == 1 {
                report.rewrapped += 1;
            } else {
                report.changed_meanwhile += 1;
            }
        }
        txn.commit().await?;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

async fn sweep_client_tokens(
    db: &DatabaseConnection,
    keyring: &KeyRing,
    batch_size: u64,
    pause: Duration,
    report: &mut RotationReport,
) -> Result<(), RotationError> {
    const TABLE: &str = "token_vault_client_tokens";
    let active = keyring.active_key_id().as_str().to_owned();
    let mut cursor: Option<Uuid> = None;
    loop {
        let mut query = client_token::Entity::find()
            .filter(client_token::Column::KeyId.ne(active.as_str()))
            .order_by_asc(client_token::Column::Id)
            .limit(batch_size);
        if let Some(after) = cursor {
            query = query.filter(client_token::Column::Id.gt(after));
        }
        let rows = query.all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        cursor = Some(last.id);
        let txn = db.begin().await?;
        for row in &rows {
            let binding_name = client_binding_name(&row.scope);
            let rewrapped = Sealed::from_bytes(&row.token_sealed).and_then(|s| {
                rewrap_if_needed(keyring, s, &RowBinding::new(row.id, &binding_name))
            });
            let sealed = match rewrapped {
                Ok(sealed) => sealed,
                Err(e) => {
                    report
                        .failed
                        .push(failure(TABLE, row.id, &row.key_id, error_chain(&e)));
                    continue;
                }
            };
            let updated = client_token::Entity::update_many()
                .col_expr(
                    client_token::Column::TokenSealed,
                    Expr::value(sealed.to_bytes()),
                )
                .col_expr(client_token::Column::KeyId, Expr::value(active.clone()))
                .filter(client_token::Column::Id.eq(row.id))
                .filter(client_token::Column::Generation.eq(row.generation))
                .filter(client_token::Column::KeyId.eq(row.key_id.as_str()))
                .exec(&txn)
                .await?;
            if updated.rows_affected == 1 {
                report.rewrapped += 1;
            } else {
                report.changed_meanwhile += 1;
            }
        }
        txn.commit().await?;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
