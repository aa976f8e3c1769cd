//! `writer_clean_sections`: the (iD, section) pairs known to hold no item of our client
//! without one of our `self` ids, from the writer's own listing or from the reader's first
//! snapshot of the record. A first item in such a section is posted at once (one ORCID call
//! instead of two), by any replica and after restarts.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum CleanSections {
    #[sea_orm(iden = "writer_clean_sections")]
    Table,
    Orcid,
    Section,
    Basis,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CleanSections::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(CleanSections::Orcid)
                            .string_len(19)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CleanSections::Section)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CleanSections::Basis)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CleanSections::SeenAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(CleanSections::Orcid)
                            .col(CleanSections::Section),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(CleanSections::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
