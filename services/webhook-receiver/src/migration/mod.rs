//! The receiver's migrations (PostgreSQL), one file per migration, plus the bus's outbox and
//! inbox tables for this service. Applied migrations are recorded in
//! `webhook_receiver_migrations`, so services sharing one database keep separate histories.

mod m20261206_000001_create_registrations;

use bus::migration::TableNames;
use idbridge_platform::database::with_migration_lock;
use sea_orm::DatabaseConnection;
use sea_orm_migration::sea_orm::{DbErr, DynIden};
use sea_orm_migration::sea_query::{Alias, IntoIden};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// The bus's outbox and inbox tables of this service (`webhook_outbox`, `webhook_inbox`).
pub fn bus_tables() -> TableNames {
    TableNames {
        outbox: "webhook_outbox".to_owned(),
        inbox: "webhook_inbox".to_owned(),
    }
}

/// The receiver's migrator: `webhook_registrations` and its outbox/inbox.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = bus::migration::migrations(&bus_tables());
        all.push(Box::new(m20261206_000001_create_registrations::Migration));
        all
    }

    fn migration_table_name() -> DynIden {
        Alias::new("webhook_receiver_migrations").into_iden()
    }
}

/// Applies every pending migration of the receiver. Idempotent.
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
