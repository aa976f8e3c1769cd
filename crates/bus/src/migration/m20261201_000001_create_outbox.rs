//! The outbox: events a service committed together with its state, waiting for the relay.

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
                    ColumnDef::new(col("seq"))
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(col("message_id"))
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(
                    ColumnDef::new(col("message_type"))
                        .string_len(255)
                        .not_null(),
                )
                .col(ColumnDef::new(col("exchange")).string_len(255).not_null())
                .col(
                    ColumnDef::new(col("routing_key"))
                        .string_len(255)
                        .not_null(),
                )
                .col(ColumnDef::new(col("partition_key")).string_len(255).null())
                .col(ColumnDef::new(col("traceparent")).string_len(255).null())
                .col(ColumnDef::new(col("tracestate")).text().null())
                .col(ColumnDef::new(col("body")).text().not_null())
                .col(
                    ColumnDef::new(col("created_at"))
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(col("sent_at"))
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(col("attempts"))
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(ColumnDef::new(col("last_error")).text().null())
                .to_owned(),
        )
        .await?;
    // The relay's query: unsent rows in order.
    manager
        .create_index(
            Index::create()
                .if_not_exists()
                .name(format!("{table}_pending"))
                .table(col(table))
                .col(col("sent_at"))
                .col(col("seq"))
                .to_owned(),
        )
        .await
}
