//! `token_vault_audit`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Audit {
    #[sea_orm(iden = "token_vault_audit")]
    Table,
    Id,
    At,
    Caller,
    Action,
    Orcid,
    Scope,
    Purpose,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Audit::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Audit::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Audit::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Audit::Caller).string_len(64).not_null())
                    .col(ColumnDef::new(Audit::Action).string_len(32).not_null())
                    .col(ColumnDef::new(Audit::Orcid).string_len(19).null())
                    .col(ColumnDef::new(Audit::Scope).string_len(64).null())
                    .col(ColumnDef::new(Audit::Purpose).string_len(255).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("token_vault_audit_orcid")
                    .table(Audit::Table)
                    .col(Audit::Orcid)
                    .col(Audit::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Audit::Table).if_exists().to_owned())
            .await
    }
}
