//! `reader_snapshots`: one row per iD, the latest snapshot of its record.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Snapshots {
    #[sea_orm(iden = "reader_snapshots")]
    Table,
    Orcid,
    PersonId,
    Status,
    PrimaryOrcid,
    LastModified,
    Items,
    ReadAt,
    ReadCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Snapshots::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Snapshots::Orcid)
                            .string_len(19)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Snapshots::PersonId).string_len(255).null())
                    .col(ColumnDef::new(Snapshots::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Snapshots::PrimaryOrcid)
                            .string_len(19)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Snapshots::LastModified)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Snapshots::Items).text().not_null())
                    .col(
                        ColumnDef::new(Snapshots::ReadAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Snapshots::ReadCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("reader_snapshots_read_at")
                    .table(Snapshots::Table)
                    .col(Snapshots::ReadAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Snapshots::Table).to_owned())
            .await
    }
}
