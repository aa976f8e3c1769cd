//! `writer_item_attempts`: one row per attempt on a ledger item.

use sea_orm::entity::prelude::*;

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "writer_item_attempts")]
pub struct Model {
    /// Row id (UUIDv7: sorts by time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The ledger item.
    pub item_id: Uuid,
    /// Its person.
    pub person_id: String,
    /// Its key.
    pub item_key: String,
    /// Its generation.
    pub generation: i32,
    /// The source event being applied, when there was one.
    pub event_id: Option<String>,
    /// What was tried.
    pub action: String,
    /// What came of it.
    pub outcome: String,
    /// ORCID's HTTP status.
    pub http_status: Option<i32>,
    /// ORCID's error code.
    pub orcid_error_code: Option<i32>,
    /// The put code involved.
    pub put_code: Option<i64>,
    /// Detail (never a token).
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
    /// When.
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
