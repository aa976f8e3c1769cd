//! `writer_item_attempts`: the history of every ledger item, one row per attempt (what was
//! tried, what ORCID answered).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum ItemAttempts {
    #[sea_orm(iden = "writer_item_attempts")]
    Table,
    Id,
    ItemId,
    PersonId,
    ItemKey,
    Generation,
    EventId,
    Action,
    Outcome,
    HttpStatus,
    OrcidErrorCode,
    PutCode,
    Message,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ItemAttempts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ItemAttempts::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ItemAttempts::ItemId).uuid().not_null())
                    .col(
                        ColumnDef::new(ItemAttempts::PersonId)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ItemAttempts::ItemKey)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ItemAttempts::Generation)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ItemAttempts::EventId).string_len(255).null())
                    .col(
                        ColumnDef::new(ItemAttempts::Action)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ItemAttempts::Outcome)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ItemAttempts::HttpStatus).integer().null())
                    .col(
                        ColumnDef::new(ItemAttempts::OrcidErrorCode)
                            .integer()
                            .null(),
                    )
                    .col(ColumnDef::new(ItemAttempts::PutCode).big_integer().null())
                    .col(ColumnDef::new(ItemAttempts::Message).text().null())
                    .col(
                        ColumnDef::new(ItemAttempts::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // An item's history in order.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("writer_item_attempts_item_at")
                    .table(ItemAttempts::Table)
                    .col(ItemAttempts::ItemId)
                    .col(ItemAttempts::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ItemAttempts::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
