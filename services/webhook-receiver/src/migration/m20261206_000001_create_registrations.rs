//! `webhook_registrations`: one row per watched iD. No secret is stored: a callback's secret
//! is derived from `hook_id` with the configured key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS webhook_registrations (
                orcid            TEXT PRIMARY KEY,
                person_id        TEXT NOT NULL,
                hook_id          UUID NOT NULL UNIQUE,
                state            TEXT NOT NULL
                                 CHECK (state IN ('pending', 'registered', 'unregistered', 'failed')),
                last_event_at    TIMESTAMPTZ NOT NULL,
                registered_at    TIMESTAMPTZ,
                unregistered_at  TIMESTAMPTZ,
                last_callback_at TIMESTAMPTZ,
                pending_since    TIMESTAMPTZ,
                last_error       TEXT,
                updated_at       TIMESTAMPTZ NOT NULL
            )",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS webhook_registrations_pending
                 ON webhook_registrations (pending_since) WHERE pending_since IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS webhook_registrations")
            .await?;
        Ok(())
    }
}
