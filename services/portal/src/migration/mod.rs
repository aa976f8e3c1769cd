//! The portal's migrations: the bus's outbox (and inbox) tables of this service. Applied
//! migrations are recorded in `portal_migrations`, so services sharing a database
//! (monolithic mode) keep separate histories.

use bus::migration::TableNames;
use idbridge_platform::database::with_migration_lock;
use sea_orm::DatabaseConnection;
use sea_orm_migration::sea_orm::{DbErr, DynIden};
use sea_orm_migration::sea_query::{Alias, IntoIden};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The bus tables of this service (`portal_outbox`, `portal_inbox`).
pub fn bus_tables() -> TableNames {
    TableNames {
        outbox: "portal_outbox".to_owned(),
        inbox: "portal_inbox".to_owned(),
    }
}

/// The portal's migrator.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        bus::migration::migrations(&bus_tables())
    }

    fn migration_table_name() -> DynIden {
        Alias::new("portal_migrations").into_iden()
    }
}

/// Applies every pending migration of the portal. Idempotent.
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
