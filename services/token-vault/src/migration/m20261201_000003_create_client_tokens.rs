//! `token_vault_client_tokens`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum ClientTokens {
    #[sea_orm(iden = "token_vault_client_tokens")]
    Table,
    Id,
    Scope,
    TokenSealed,
    KeyId,
    Generation,
    ExpiresAt,
    ObtainedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClientTokens::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ClientTokens::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ClientTokens::Scope)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ClientTokens::TokenSealed).blob().not_null())
                    .col(
                        ColumnDef::new(ClientTokens::KeyId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientTokens::Generation)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(ClientTokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientTokens::ObtainedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ClientTokens::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
