//! `writer_clean_sections`: (iD, section) pairs known to hold no item of our client that
//! the ledger could adopt, so a first item there is posted without reading the section.

use sea_orm::entity::prelude::*;

/// One section of one record known clean.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "writer_clean_sections")]
pub struct Model {
    /// The ORCID iD.
    #[sea_orm(primary_key, auto_increment = false)]
    pub orcid: String,
    /// The ledger's section name (`employment`, `invited-position`, `work`, …).
    #[sea_orm(primary_key, auto_increment = false)]
    pub section: String,
    /// What showed it: `listing` (the writer read the section) or `snapshot` (the reader's
    /// first snapshot of the record).
    pub basis: String,
    /// When the listing or snapshot was read.
    pub seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
