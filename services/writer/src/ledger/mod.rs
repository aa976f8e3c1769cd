//! The ledger: where put codes are stored. One row per (person, position, appointment) in
//! `writer_items`, with its state, the desired content and its hash, the hash ORCID last
//! accepted, attempts and the last ORCID error; one row per attempt in
//! `writer_item_attempts`; the merged source events in `writer_events`.
//!
//! [`Ledger`] reads it (reports, tests); the writer changes it.

pub(crate) mod attempt;
pub(crate) mod clean;
pub(crate) mod event;
pub(crate) mod item;
mod report;

pub use report::{DayActivity, ItemFilter};

use std::fmt;

use chrono::{DateTime, Utc};
use orcid::model::PutCode;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::desired::put_code_from_db;

/// Where an item stands (PRODUCT.md §5.2). Serialized as [`ItemState::as_str`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting to be written (not connected yet, or not written yet).
    Pending,
    /// On the record, put code stored.
    InOrcid,
    /// Gave up: ORCID refused the content, or retries ran out. A new event (or a replay of
    /// the parked message) tries again.
    Error,
    /// The researcher revoked access; written again after the next "connection ready".
    Revoked,
    /// ORCID refused permission (403: scope missing, not the source).
    Denied,
    /// The researcher deleted the item on ORCID; not recreated unless configured.
    DeletedByUser,
    /// Removed from ORCID because the source asked (a work deleted in the repository).
    Deleted,
}

impl ItemState {
    /// Every state.
    pub const ALL: [ItemState; 7] = [
        Self::Pending,
        Self::InOrcid,
        Self::Error,
        Self::Revoked,
        Self::Denied,
        Self::DeletedByUser,
        Self::Deleted,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InOrcid => "in_orcid",
            Self::Error => "error",
            Self::Revoked => "revoked",
            Self::Denied => "denied",
            Self::DeletedByUser => "deleted_by_user",
            Self::Deleted => "deleted",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "in_orcid" => Self::InOrcid,
            "error" => Self::Error,
            "revoked" => Self::Revoked,
            "denied" => Self::Denied,
            "deleted_by_user" => Self::DeletedByUser,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ledger item, as reports show it.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerItem {
    /// Row id.
    pub id: Uuid,
    /// The institution's person id.
    pub person_id: String,
    /// The position id, or the work id.
    pub item_key: String,
    /// 1, or more after rehires into the same position.
    pub generation: i32,
    /// ORCID section (`employment`, …).
    pub section: String,
    /// The iD, once known.
    pub orcid: Option<String>,
    /// ORCID's put code, once known.
    pub put_code: Option<PutCode>,
    /// State.
    pub state: ItemState,
    /// The desired ORCID body.
    pub desired: serde_json::Value,
    /// Its hash.
    pub desired_hash: String,
    /// The source asked for the item to be removed from ORCID.
    pub delete_requested: bool,
    /// Hash of what ORCID last accepted.
    pub written_hash: Option<String>,
    /// Attempts at the current content.
    pub attempts: i32,
    /// Last failure: HTTP status.
    pub last_error_status: Option<i32>,
    /// Last failure: ORCID error code.
    pub last_error_code: Option<i32>,
    /// Last failure: message.
    pub last_error_message: Option<String>,
    /// The last source event merged.
    pub source_event_id: Option<String>,
    /// When ORCID last accepted it.
    pub written_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl LedgerItem {
    /// Whether ORCID holds exactly the desired content (or, for a deletion, no longer holds
    /// the item).
    pub fn is_current(&self) -> bool {
        matches!(self.state, ItemState::InOrcid | ItemState::Deleted)
            && self.written_hash.as_deref() == Some(self.desired_hash.as_str())
    }
}

impl TryFrom<item::Model> for LedgerItem {
    type Error = DbErr;
    fn try_from(row: item::Model) -> Result<Self, DbErr> {
        let state = ItemState::parse(&row.state).ok_or_else(|| {
            DbErr::Custom(format!(
                "writer_items {}: unknown state {:?}",
                row.id, row.state
            ))
        })?;
        let desired = serde_json::from_str(&row.desired)
            .map_err(|e| DbErr::Custom(format!("writer_items {}: desired: {e}", row.id)))?;
        Ok(Self {
            id: row.id,
            person_id: row.person_id,
            item_key: row.item_key,
            generation: row.generation,
            section: row.section,
            orcid: row.orcid,
            put_code: row.put_code.and_then(put_code_from_db),
            state,
            desired,
            desired_hash: row.desired_hash,
            delete_requested: row.delete_requested,
            written_hash: row.written_hash,
            attempts: row.attempts,
            last_error_status: row.last_error_status,
            last_error_code: row.last_error_code,
            last_error_message: row.last_error_message,
            source_event_id: row.source_event_id,
            written_at: row.written_at,
            updated_at: row.updated_at,
        })
    }
}

/// One attempt in an item's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemAttempt {
    /// When.
    pub at: DateTime<Utc>,
    /// The source event being applied.
    pub event_id: Option<String>,
    /// What was tried: `merge`, `token`, `list`, `create`, `update`, `adopt`, `give-up`.
    pub action: String,
    /// What came of it: `merged`, `stale`, `unchanged`, `pending`, `written`, `adopted`,
    /// `retry`, `outcome-unknown`, `revoked`, `denied`, `deleted-by-user`, `failed`, …
    pub outcome: String,
    /// ORCID's HTTP status.
    pub http_status: Option<i32>,
    /// ORCID's error code.
    pub orcid_error_code: Option<i32>,
    /// The put code involved.
    pub put_code: Option<PutCode>,
    /// Detail.
    pub message: Option<String>,
}

impl From<attempt::Model> for ItemAttempt {
    fn from(row: attempt::Model) -> Self {
        Self {
            at: row.at,
            event_id: row.event_id,
            action: row.action,
            outcome: row.outcome,
            http_status: row.http_status,
            orcid_error_code: row.orcid_error_code,
            put_code: row.put_code.and_then(put_code_from_db),
            message: row.message,
        }
    }
}

/// Read access to the ledger.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: DatabaseConnection,
}

impl Ledger {
    /// The ledger in `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Every item of a person, by position and appointment.
    ///
    /// # Errors
    /// Database errors.
    pub async fn items_of(&self, person_id: &str) -> Result<Vec<LedgerItem>, DbErr> {
        item::Entity::find()
            .filter(item::Column::PersonId.eq(person_id))
            .order_by_asc(item::Column::ItemKey)
            .order_by_asc(item::Column::Generation)
            .all(&self.db)
            .await?
            .into_iter()
            .map(LedgerItem::try_from)
            .collect()
    }

    /// The latest appointment of a position (not works).
    ///
    /// # Errors
    /// Database errors.
    pub async fn item(&self, person_id: &str, item_key: &str) -> Result<Option<LedgerItem>, DbErr> {
        item::Entity::find()
            .filter(item::Column::PersonId.eq(person_id))
            .filter(item::Column::ItemKey.eq(item_key))
            .filter(item::Column::Section.ne(crate::body::WORK_SECTION))
            .order_by_desc(item::Column::Generation)
            .one(&self.db)
            .await?
            .map(LedgerItem::try_from)
            .transpose()
    }

    /// The ledger row of a work.
    ///
    /// # Errors
    /// Database errors.
    pub async fn work(&self, person_id: &str, work_id: &str) -> Result<Option<LedgerItem>, DbErr> {
        item::Entity::find()
            .filter(item::Column::PersonId.eq(person_id))
            .filter(item::Column::ItemKey.eq(work_id))
            .filter(item::Column::Section.eq(crate::body::WORK_SECTION))
            .one(&self.db)
            .await?
            .map(LedgerItem::try_from)
            .transpose()
    }

    /// Every item, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn all(&self) -> Result<Vec<LedgerItem>, DbErr> {
        item::Entity::find()
            .order_by_asc(item::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(LedgerItem::try_from)
            .collect()
    }

    /// An item's history, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn history(&self, item_id: Uuid) -> Result<Vec<ItemAttempt>, DbErr> {
        Ok(attempt::Entity::find()
            .filter(attempt::Column::ItemId.eq(item_id))
            .order_by_asc(attempt::Column::At)
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ItemAttempt::from)
            .collect())
    }
}
