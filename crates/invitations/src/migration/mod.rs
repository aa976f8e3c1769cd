//! The invitations table (PostgreSQL and SQLite), one file per migration. Applied migrations
//! are recorded in `invitations_migrations`, not sea-orm's shared `seaql_migrations`, so the
//! services sharing one database keep separate histories.

mod m20261205_000001_create_invitations;
mod m20261206_000001_add_contact_as_of;

use sea_orm::DatabaseConnection;
use sea_orm_migration::sea_orm::{DbErr, DynIden};
use sea_orm_migration::sea_query::{Alias, IntoIden};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The invitations migrator.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261205_000001_create_invitations::Migration),
            Box::new(m20261206_000001_add_contact_as_of::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("invitations_migrations").into_iden()
    }
}

/// Applies every pending migration of the invitations table. Idempotent. Takes no migration
/// lock of its own: `writer::migrate` calls it while holding the writer's.
///
/// # Errors
/// Database errors.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}
