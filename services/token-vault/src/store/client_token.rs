//! `token_vault_client_tokens`: one client-credentials token per scope.

use sea_orm::entity::prelude::*;

/// A client-credentials token, sealed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_vault_client_tokens")]
pub struct Model {
    /// Row id; part of the sealed blob's associated data.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `/webhook` or `/read-public`; unique.
    #[sea_orm(unique)]
    pub scope: String,
    /// The sealed token (`Sealed::to_bytes`).
    pub token_sealed: Vec<u8>,
    /// Key id of the wrap, for rotation.
    pub key_id: String,
    /// Bumped when the token is replaced.
    pub generation: i64,
    /// When the token expires.
    pub expires_at: DateTimeUtc,
    /// When ORCID issued it.
    pub obtained_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
