//! `invitations`: one row per person invited to connect their ORCID iD.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    #[sea_orm(iden = "invitations")]
    Table,
    PersonId,
    Email,
    DisplayName,
    State,
    LinkId,
    CreatedAt,
    UpdatedAt,
    SentCount,
    RemindersSent,
    ScheduleStartedAt,
    LastSentAt,
    NextReminderAt,
    LastError,
    ConnectedAt,
    ClaimOwner,
    ClaimedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ts = |c: Invitations| ColumnDef::new(c).timestamp_with_time_zone().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Invitations::PersonId)
                            .string_len(255)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Invitations::Email)
                            .string_len(320)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Invitations::DisplayName)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Invitations::State).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Invitations::LinkId)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ts(Invitations::CreatedAt).not_null())
                    .col(ts(Invitations::UpdatedAt).not_null())
                    .col(
                        ColumnDef::new(Invitations::SentCount)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Invitations::RemindersSent)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ts(Invitations::ScheduleStartedAt).null())
                    .col(ts(Invitations::LastSentAt).null())
                    .col(ts(Invitations::NextReminderAt).null())
                    .col(ColumnDef::new(Invitations::LastError).text().null())
                    .col(ts(Invitations::ConnectedAt).null())
                    .col(
                        ColumnDef::new(Invitations::ClaimOwner)
                            .string_len(64)
                            .null(),
                    )
                    .col(ts(Invitations::ClaimedUntil).null())
                    .to_owned(),
            )
            .await?;
        // The scheduler's question: what is due now?
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("invitations_due")
                    .table(Invitations::Table)
                    .col(Invitations::NextReminderAt)
                    .to_owned(),
            )
            .await?;
        // The admin page filters by state.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("invitations_state")
                    .table(Invitations::Table)
                    .col(Invitations::State)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Invitations::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
