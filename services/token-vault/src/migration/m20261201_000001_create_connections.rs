//! `token_vault_connections`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Connections {
    #[sea_orm(iden = "token_vault_connections")]
    Table,
    Id,
    Orcid,
    PersonId,
    Name,
    Scopes,
    State,
    TokensSealed,
    KeyId,
    Generation,
    ExpiresAt,
    GrantedAt,
    RefreshedAt,
    EndedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Connections::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Connections::Orcid)
                            .string_len(19)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Connections::PersonId)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Connections::Name).string_len(500).null())
                    .col(ColumnDef::new(Connections::Scopes).text().not_null())
                    .col(ColumnDef::new(Connections::State).string_len(16).not_null())
                    .col(ColumnDef::new(Connections::TokensSealed).blob().null())
                    .col(ColumnDef::new(Connections::KeyId).string_len(64).null())
                    .col(
                        ColumnDef::new(Connections::Generation)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(Connections::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::GrantedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::RefreshedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Connections::EndedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Connections::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Listings by person (the portal's "my ORCID" page).
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("token_vault_connections_person_id")
                    .table(Connections::Table)
                    .col(Connections::PersonId)
                    .to_owned(),
            )
            .await?;
        // Rotation: rows still wrapped by a key other than the active one.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("token_vault_connections_key_id")
                    .table(Connections::Table)
                    .col(Connections::KeyId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Connections::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
