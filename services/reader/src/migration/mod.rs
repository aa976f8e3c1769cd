//! The reader's migrations (PostgreSQL and SQLite), plus the bus's outbox and inbox tables
//! for this service. Applied migrations are recorded in `reader_migrations`.

mod m20261206_000001_create_snapshots;
mod m20261206_000002_create_leases;

use bus::migration::TableNames;
use idbridge_platform::database::with_migration_lock;
use sea_orm::DatabaseConnection;
use sea_orm_migration::sea_orm::{DbErr, DynIden};
use sea_orm_migration::sea_query::{Alias, IntoIden};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The bus's outbox and inbox tables of this service (`reader_outbox`, `reader_inbox`).
pub fn bus_tables() -> TableNames {
    TableNames {
        outbox: "reader_outbox".to_owned(),
        inbox: "reader_inbox".to_owned(),
    }
}

/// The reader's migrator: snapshots, the sweep's lease, its outbox/inbox.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = bus::migration::migrations(&bus_tables());
        all.push(Box::new(m20261206_000001_create_snapshots::Migration));
        all.push(Box::new(m20261206_000002_create_leases::Migration));
        all
    }

    fn migration_table_name() -> DynIden {
        Alias::new("reader_migrations").into_iden()
    }
}

/// Applies every pending migration of the reader. Idempotent.
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
