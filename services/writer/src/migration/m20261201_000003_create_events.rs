//! `writer_events`: the source events (HR `event_id`s) already merged into the ledger, so
//! the same event sent twice — in two envelopes, over two channels — is one event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Events {
    #[sea_orm(iden = "writer_events")]
    Table,
    Source,
    EventId,
    MessageId,
    PersonId,
    ItemKey,
    EventType,
    OccurredAt,
    Outcome,
    ProcessedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Events::Source).string_len(16).not_null())
                    .col(ColumnDef::new(Events::EventId).string_len(255).not_null())
                    .col(ColumnDef::new(Events::MessageId).string_len(64).null())
                    .col(ColumnDef::new(Events::PersonId).string_len(255).not_null())
                    .col(ColumnDef::new(Events::ItemKey).string_len(255).not_null())
                    .col(ColumnDef::new(Events::EventType).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Events::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Events::Outcome).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Events::ProcessedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(Events::Source).col(Events::EventId))
                    .to_owned(),
            )
            .await?;
        // Pruning old entries, and "what happened to this person".
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("writer_events_person")
                    .table(Events::Table)
                    .col(Events::PersonId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).if_exists().to_owned())
            .await
    }
}
