//! `writer_events`: source events already merged into the ledger.

use sea_orm::entity::prelude::*;

/// One merged (or ignored as stale) source event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "writer_events")]
pub struct Model {
    /// `hr` (later `work`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    /// The source system's event id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// The envelope it came in first.
    pub message_id: Option<String>,
    /// Person.
    pub person_id: String,
    /// Item key.
    pub item_key: String,
    /// `hire`, `leave`, `change`.
    pub event_type: String,
    /// When it happened at the source.
    pub occurred_at: DateTimeUtc,
    /// `merged` or `stale`.
    pub outcome: String,
    /// When the writer took it.
    pub processed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
