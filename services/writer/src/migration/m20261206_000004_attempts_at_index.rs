//! An index on `writer_item_attempts.at`, for the writes-per-day summary
//! (`GET /api/v1/summary`), which reads the history of the last N days.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum ItemAttempts {
    #[sea_orm(iden = "writer_item_attempts")]
    Table,
    At,
}

const NAME: &str = "writer_item_attempts_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name(NAME)
                    .table(ItemAttempts::Table)
                    .col(ItemAttempts::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .if_exists()
                    .name(NAME)
                    .table(ItemAttempts::Table)
                    .to_owned(),
            )
            .await
    }
}
