//! Migrations on their own: idempotent, on PostgreSQL and SQLite, with the service's own
//! migration table.

use sea_orm_migration::MigratorTrait;
use token_vault::{Migrator, migrate};

use crate::helpers::{Backend, TestDb};

async fn migrate_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    migrate(&db.db).await.expect("first run");
    migrate(&db.db).await.expect("second run changes nothing");
    let applied = Migrator::get_applied_migrations(&db.db).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());
    for table in [
        "token_vault_connections",
        "token_vault_audit",
        "token_vault_client_tokens",
        "token_vault_outbox",
        "token_vault_inbox",
    ] {
        let rows = db
            .count(&format!("SELECT COUNT(*) FROM {table}"), vec![])
            .await;
        assert_eq!(rows, 0, "{table} exists and is empty");
    }
    let recorded = db
        .count("SELECT COUNT(*) FROM token_vault_migrations", vec![])
        .await;
    assert_eq!(recorded, Migrator::migrations().len() as i64);
    // The vault's history lives in its own table, not sea-orm's shared one.
    let shared = match backend {
        Backend::Postgres => db.count("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'seaql_migrations'", vec![]).await,
        Backend::Sqlite => db.count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'seaql_migrations'", vec![]).await,
    };
    assert_eq!(shared, 0);
    db.drop().await;
}

#[tokio::test]
async fn migrations_are_idempotent_postgres() {
    migrate_twice(Backend::Postgres).await;
}

#[tokio::test]
async fn migrations_are_idempotent_sqlite() {
    migrate_twice(Backend::Sqlite).await;
}
