//! `invitations.contact_as_of`: the instant of the event the address and name come from, so
//! an older event (a redelivery, a retry overtaken by a newer one) cannot replace them.
//! Rows from before this column hold NULL: "unknown", replaced by the next invite.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    #[sea_orm(iden = "invitations")]
    Table,
    ContactAsOf,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("invitations", "contact_as_of").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(
                        ColumnDef::new(Invitations::ContactAsOf)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .drop_column(Invitations::ContactAsOf)
                    .to_owned(),
            )
            .await
    }
}
