//! `writer_items`: one row per ORCID item the writer keeps.

use sea_orm::entity::prelude::*;

/// A ledger row. `desired` is the ORCID write body (JSON) the item should have;
/// `written_hash` is the hash of the body ORCID last confirmed, so "ORCID already has it"
/// is `written_hash == desired_hash`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "writer_items")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The institution's person id.
    pub person_id: String,
    /// `position_id`, or the repository's `work_id`.
    pub item_key: String,
    /// 1 for the first appointment; +1 for each rehire into the same position.
    pub generation: i32,
    /// ORCID section (`employment`, `invited-position`, …, `work`).
    pub section: String,
    /// The iD the item is on, once known.
    pub orcid: Option<String>,
    /// ORCID's put code, once known.
    pub put_code: Option<i64>,
    /// `pending`, `in_orcid`, `error`, `revoked`, `denied`, `deleted_by_user` or `deleted`.
    pub state: String,
    /// The desired ORCID write body, JSON.
    #[sea_orm(column_type = "Text")]
    pub desired: String,
    /// SHA-256 (hex) of `desired`.
    pub desired_hash: String,
    /// The source asked for the item to be removed from ORCID (a work deleted in the
    /// repository); `desired` keeps the last body.
    pub delete_requested: bool,
    /// SHA-256 of the body ORCID last accepted.
    pub written_hash: Option<String>,
    /// The last source event merged into `desired`.
    pub source_event_id: Option<String>,
    /// When that event happened (older events are stale).
    pub source_event_at: DateTimeUtc,
    /// Attempts at writing the current desired content.
    pub attempts: i32,
    /// HTTP status of the last failure.
    pub last_error_status: Option<i32>,
    /// ORCID error code of the last failure.
    pub last_error_code: Option<i32>,
    /// Message of the last failure (never a token).
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error_message: Option<String>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// When ORCID last accepted the content.
    pub written_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
