//! The inbox: ids of messages whose effects are committed, so a redelivery is a no-op.

use sea_orm_migration::{
    SchemaManager,
    sea_orm::DbErr,
    sea_query::{ColumnDef, Index, Table},
};

use super::col;

pub(super) async fn up(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(col(table))
                .if_not_exists()
                .col(
                    ColumnDef::new(col("message_id"))
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(col("message_type"))
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(col("processed_at"))
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
    // For pruning old entries.
    manager
        .create_index(
            Index::create()
                .if_not_exists()
                .name(format!("{table}_processed_at"))
                .table(col(table))
                .col(col("processed_at"))
                .to_owned(),
        )
        .await
}
