//! The vault's migrations (PostgreSQL and SQLite), one file per migration, plus the bus's
//! outbox and inbox tables for this service. Applied migrations are recorded in
//! `token_vault_migrations`, not sea-orm's shared `seaql_migrations`, so services sharing a
//! database (monolithic mode) keep separate migration histories.

mod m20261201_000001_create_connections;
mod m20261201_000002_create_audit;
mod m20261201_000003_create_client_tokens;

use bus::migration::TableNames;
use idbridge_platform::database::with_migration_lock;
use sea_orm::DatabaseConnection;
use sea_orm_migration::sea_orm::{DbErr, DynIden};
use sea_orm_migration::sea_query::{Alias, IntoIden};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The bus's outbox and inbox tables of this service (`token_vault_outbox`, `token_vault_inbox`).
pub(crate) fn bus_tables() -> TableNames {
    TableNames {
        outbox: "token_vault_outbox".to_owned(),
        inbox: "token_vault_inbox".to_owned(),
    }
}

/// The vault's migrator.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = bus::migration::migrations(&bus_tables());
        all.push(Box::new(m20261201_000001_create_connections::Migration));
        all.push(Box::new(m20261201_000002_create_audit::Migration));
        all.push(Box::new(m20261201_000003_create_client_tokens::Migration));
        all
    }

    fn migration_table_name() -> DynIden {
        Alias::new("token_vault_migrations").into_iden()
    }
}

/// Applies every pending migration of the vault (its tables and its outbox/inbox).
/// Idempotent; `idbridge migrate` calls it.
///
/// Holds the database's migration lock meanwhile
/// ([`idbridge_platform::database::with_migration_lock`]), so replicas migrating at once take
/// turns.
///
/// # Errors
/// Database errors.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    with_migration_lock(db, Migrator::up(db, None)).await
}
