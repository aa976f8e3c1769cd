//! `token_vault_audit`: append-only record of token reads and connection changes.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::NotSet, ConnectionTrait, Set};

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_vault_audit")]
pub struct Model {
    /// Sequence.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When.
    pub at: DateTimeUtc,
    /// The caller's configured name (`writer`).
    pub caller: String,
    /// What: see [`Action`].
    pub action: String,
    /// The iD concerned (none for client tokens).
    pub orcid: Option<String>,
    /// The client-credentials scope (client token reads only).
    pub scope: Option<String>,
    /// Why, as the caller stated it.
    pub purpose: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Audited actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A user's access token was handed out.
    TokenRead,
    /// A client-credentials token was handed out.
    ClientTokenRead,
    /// A connection was marked revoked.
    Revoke,
    /// A connection was disconnected.
    Disconnect,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::TokenRead => "token.read",
            Action::ClientTokenRead => "client-token.read",
            Action::Revoke => "connection.revoke",
            Action::Disconnect => "connection.disconnect",
        }
    }
}

/// A new audit row stamped now (the database assigns the id).
pub(crate) fn new_row(
    caller: &str,
    action: Action,
    orcid: Option<&str>,
    scope: Option<&str>,
    purpose: &str,
) -> ActiveModel {
    ActiveModel {
        id: NotSet,
        at: Set(chrono::Utc::now()),
        caller: Set(caller.to_owned()),
        action: Set(action.as_str().to_owned()),
        orcid: Set(orcid.map(str::to_owned)),
        scope: Set(scope.map(str::to_owned)),
        purpose: Set(purpose.to_owned()),
    }
}

/// Appends one audit row on `conn`: in a transaction, it commits with the transaction's other
/// changes. Token reads go through [`crate::audit_writer::AuditWriter`] instead, which commits
/// the rows of concurrent reads together.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    caller: &str,
    action: Action,
    orcid: Option<&str>,
    scope: Option<&str>,
    purpose: &str,
) -> Result<(), DbErr> {
    Entity::insert(new_row(caller, action, orcid, scope, purpose))
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}
