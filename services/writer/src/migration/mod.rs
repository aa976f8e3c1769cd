//! The writer's migrations (PostgreSQL and SQLite), one file per migration, plus the bus's
//! outbox and inbox tables for this service. Applied migrations are recorded in
//! `writer_migrations`, not sea-orm's shared `seaql_migrations`, so services sharing one
//! database (monolithic mode) keep separate histories.

mod m20261201_000001_create_items;
mod m20261201_000002_create_item_attempts;
mod m20261201_000003_create_events;
mod m20261206_000004_attempts_at_index;
mod m20261206_000005_create_clean_sections;

use bus::migration::TableNames;
use idbridge_platform::database::with_migration_lock;
use sea_orm::DatabaseConnection;
use sea_orm_migration::sea_orm::{DbErr, DynIden};
use sea_orm_migration::sea_query::{Alias, IntoIden};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The bus's outbox and inbox tables of this service (`writer_outbox`, `writer_inbox`).
pub fn bus_tables() -> TableNames {
    TableNames {
        outbox: "writer_outbox".to_owned(),
        inbox: "writer_inbox".to_owned(),
    }
}

/// The writer's migrator: its ledger tables and its outbox/inbox.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = bus::migration::migrations(&bus_tables());
        all.push(Box::new(m20261201_000001_create_items::Migration));
        all.push(Box::new(m20261201_000002_create_item_attempts::Migration));
        all.push(Box::new(m20261201_000003_create_events::Migration));
        all.push(Box::new(m20261206_000004_attempts_at_index::Migration));
        all.push(Box::new(m20261206_000005_create_clean_sections::Migration));
        all
    }

    fn migration_table_name() -> DynIden {
        Alias::new("writer_migrations").into_iden()
    }
}

/// Applies every pending migration of the writer, and the `invitations` crate's (its table
/// `invitations`, history `invitations_migrations`; created whether or not invitations are
/// enabled, so turning them on needs no migration). Idempotent; `idbridge migrate` calls it.
///
/// Holds the database's migration lock meanwhile
/// ([`idbridge_platform::database::with_migration_lock`]), so replicas migrating at once take
/// turns.
///
/// # Errors
/// Database errors.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    with_migration_lock(db, async {
        Migrator::up(db, None).await?;
        invitations::migrate(db).await
    })
    .await
}
