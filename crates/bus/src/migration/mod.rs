//! sea-orm migrations for the outbox and inbox tables (PostgreSQL and SQLite).
//!
//! Table names are per service, so services sharing one database (monolithic mode on one
//! SQLite file) keep their own tables; the migration names carry the table names for the
//! same reason. A service lists them in its own migrator:
//!
//! ```text
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         let mut all = bus::migration::migrations(&TableNames::for_service("writer")?);
//!         all.push(Box::new(m20261201_000001_create_ledger::Migration));
//!         all
//!     }
//! }
//! ```

mod m20261201_000001_create_outbox;
mod m20261201_000002_create_inbox;
mod m20261215_000003_outbox_lease;

use sea_orm_migration::{
    MigrationName, MigrationTrait, SchemaManager, async_trait::async_trait, sea_orm::DbErr,
    sea_query::Alias,
};

use crate::BusError;

/// Names of one service's outbox and inbox tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    /// Outbox table.
    pub outbox: String,
    /// Inbox table.
    pub inbox: String,
}

impl TableNames {
    /// `{service}_outbox` and `{service}_inbox` (`-` in the service name becomes `_`).
    ///
    /// # Errors
    /// [`BusError::Config`] when the result is not a plain SQL identifier.
    pub fn for_service(service: &str) -> Result<Self, BusError> {
        let base = service.replace('-', "_");
        Self::new(&format!("{base}_outbox"), &format!("{base}_inbox"))
    }

    /// Explicit names.
    ///
    /// # Errors
    /// [`BusError::Config`] unless both are 1–50 characters of `a-z`, `0-9`, `_`, starting
    /// with a letter.
    pub fn new(outbox: &str, inbox: &str) -> Result<Self, BusError> {
        for name in [outbox, inbox] {
            let ok = (1..=50).contains(&name.len())
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(BusError::Config(format!(
                    "table name {name:?} must be 1-50 characters of a-z, 0-9, '_', starting with a letter"
                )));
            }
        }
        Ok(Self {
            outbox: outbox.to_owned(),
            inbox: inbox.to_owned(),
        })
    }
}

/// The migrations creating these tables, in order.
#[must_use]
pub fn migrations(names: &TableNames) -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(TableMigration::new(
            "m20261201_000001_create_outbox",
            &names.outbox,
            Step::CreateOutbox,
        )),
        Box::new(TableMigration::new(
            "m20261201_000002_create_inbox",
            &names.inbox,
            Step::CreateInbox,
        )),
        Box::new(TableMigration::new(
            "m20261215_000003_outbox_lease",
            &names.outbox,
            Step::OutboxLease,
        )),
    ]
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Which migration; its `up`/`down` live in the file of the same name.
#[derive(Clone, Copy, Debug)]
enum Step {
    CreateOutbox,
    CreateInbox,
    OutboxLease,
}

/// One migration of one service's table: `{name}_{table}`, so that services sharing a
/// database each run their own.
struct TableMigration {
    name: String,
    table: String,
    step: Step,
}

impl TableMigration {
    fn new(name: &str, table: &str, step: Step) -> Self {
        Self {
            name: format!("{name}_{table}"),
            table: table.to_owned(),
            step,
        }
    }
}

impl MigrationName for TableMigration {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl MigrationTrait for TableMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match self.step {
            Step::CreateOutbox => m20261201_000001_create_outbox::up(manager, &self.table).await,
            Step::CreateInbox => m20261201_000002_create_inbox::up(manager, &self.table).await,
            Step::OutboxLease => m20261215_000003_outbox_lease::up(manager, &self.table).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match self.step {
            Step::CreateOutbox | Step::CreateInbox => {
                manager
                    .drop_table(
                        sea_orm_migration::sea_query::Table::drop()
                            .table(col(&self.table))
                            .if_exists()
                            .to_owned(),
                    )
                    .await
            }
            Step::OutboxLease => m20261215_000003_outbox_lease::down(manager, &self.table).await,
        }
    }
}
