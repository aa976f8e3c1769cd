//! `token_vault_connections`: one row per connected ORCID iD.

use sea_orm::entity::prelude::*;

/// A connection. `tokens_sealed` is `None` once the connection ended (revoked, expired,
/// disconnected): the tokens are deleted, the row stays for reports.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_vault_connections")]
pub struct Model {
    /// The connection id; part of the sealed blob's associated data.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The iD, hyphenated (`0000-0002-1825-0097`); unique.
    #[sea_orm(unique)]
    pub orcid: String,
    /// The institution's person id.
    pub person_id: String,
    /// The name ORCID returned with the grant.
    pub name: Option<String>,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// `active`, `revoked`, `expired` or `disconnected`.
    pub state: String,
    /// The sealed token pair (`Sealed::to_bytes`).
    pub tokens_sealed: Option<Vec<u8>>,
    /// The id of the key-encryption key that wrapped `tokens_sealed`'s data key; copied out of
    /// the blob so rotation can find the rows still on an old key.
    pub key_id: Option<String>,
    /// Bumped each time the tokens are replaced (connect, refresh), not by rotation; a
    /// worker's "revoked" report names the generation it saw.
    pub generation: i64,
    /// When the access token expires.
    pub expires_at: DateTimeUtc,
    /// When the researcher granted access (the latest grant).
    pub granted_at: DateTimeUtc,
    /// When the vault last refreshed the token at ORCID.
    pub refreshed_at: Option<DateTimeUtc>,
    /// When the connection ended.
    pub ended_at: Option<DateTimeUtc>,
    /// Last change of the row.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
