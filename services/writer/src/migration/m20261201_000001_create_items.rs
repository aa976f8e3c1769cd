//! `writer_items`: the ledger, one row per ORCID item the writer keeps (a person's position,
//! one row per appointment after rehires; a work of the repository).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Items {
    #[sea_orm(iden = "writer_items")]
    Table,
    Id,
    PersonId,
    ItemKey,
    Generation,
    Section,
    Orcid,
    PutCode,
    State,
    Desired,
    DesiredHash,
    DeleteRequested,
    WrittenHash,
    SourceEventId,
    SourceEventAt,
    Attempts,
    LastErrorStatus,
    LastErrorCode,
    LastErrorMessage,
    CreatedAt,
    UpdatedAt,
    WrittenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Items::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Items::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Items::PersonId).string_len(255).not_null())
                    .col(ColumnDef::new(Items::ItemKey).string_len(255).not_null())
                    .col(ColumnDef::new(Items::Generation).integer().not_null())
                    .col(ColumnDef::new(Items::Section).string_len(32).not_null())
                    .col(ColumnDef::new(Items::Orcid).string_len(19).null())
                    .col(ColumnDef::new(Items::PutCode).big_integer().null())
                    .col(ColumnDef::new(Items::State).string_len(32).not_null())
                    .col(ColumnDef::new(Items::Desired).text().not_null())
                    .col(ColumnDef::new(Items::DesiredHash).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Items::DeleteRequested)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Items::WrittenHash).string_len(64).null())
                    .col(ColumnDef::new(Items::SourceEventId).string_len(255).null())
                    .col(
                        ColumnDef::new(Items::SourceEventAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Items::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Items::LastErrorStatus).integer().null())
                    .col(ColumnDef::new(Items::LastErrorCode).integer().null())
                    .col(ColumnDef::new(Items::LastErrorMessage).text().null())
                    .col(
                        ColumnDef::new(Items::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Items::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Items::WrittenAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per appointment (or work): two deliveries racing to create it cannot both
        // succeed. The section keeps a position id and a work id that happen to be equal apart.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("writer_items_person_item_generation")
                    .table(Items::Table)
                    .col(Items::PersonId)
                    .col(Items::ItemKey)
                    .col(Items::Section)
                    .col(Items::Generation)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Reports and "connection ready": the items of an iD, and items by state.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("writer_items_orcid")
                    .table(Items::Table)
                    .col(Items::Orcid)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("writer_items_state")
                    .table(Items::Table)
                    .col(Items::State)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Items::Table).if_exists().to_owned())
            .await
    }
}
