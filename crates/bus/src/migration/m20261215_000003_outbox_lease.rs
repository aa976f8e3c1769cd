//! Leases on outbox rows: a relay marks the rows it is about to publish (owner, expiry) in a
//! short transaction, publishes without holding any database lock, then marks them sent.
//! `lease_until` without an owner holds back a row the broker refused, until its retry.

use sea_orm_migration::{
    SchemaManager,
    sea_orm::DbErr,
    sea_query::{ColumnDef, Table},
};

use super::col;

pub(super) async fn up(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    // One column per statement: SQLite's ALTER TABLE adds one at a time.
    if !manager.has_column(table, "lease_owner").await? {
        manager
            .alter_table(
                Table::alter()
                    .table(col(table))
                    .add_column(ColumnDef::new(col("lease_owner")).string_len(64).null())
                    .to_owned(),
            )
            .await?;
    }
    if !manager.has_column(table, "lease_until").await? {
        manager
            .alter_table(
                Table::alter()
                    .table(col(table))
                    .add_column(
                        ColumnDef::new(col("lease_until"))
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn down(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    for column in ["lease_until", "lease_owner"] {
        manager
            .alter_table(
                Table::alter()
                    .table(col(table))
                    .drop_column(col(column))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}
