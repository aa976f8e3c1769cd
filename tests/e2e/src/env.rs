//! The machine's PostgreSQL and RabbitMQ: `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Missing services are errors, never skips.

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// The administrative PostgreSQL URL.
pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The RabbitMQ URL.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Fails unless RabbitMQ answers an AMQP handshake.
///
/// # Errors
/// RabbitMQ is unreachable.
pub async fn require_rabbitmq() -> anyhow::Result<()> {
    let url = amqp_url();
    let bus = bus::Bus::amqp(bus::AmqpConfig::new(&url), "e2eprobe")
        .await
        .with_context(|| {
            format!(
                "the end-to-end tests need RabbitMQ at {} (TEST_AMQP_URL; ./scripts/test.sh starts it)",
                bus::redact_url(&url)
            )
        })?;
    bus.close().await;
    Ok(())
}

/// A fresh, empty PostgreSQL database, dropped by [`TestDatabase::drop`].
#[derive(Clone, Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
}

impl TestDatabase {
    /// Creates `<prefix>_<uuid>`.
    ///
    /// # Errors
    /// PostgreSQL is unreachable or refused.
    pub async fn create(prefix: &str) -> anyhow::Result<Self> {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.with_context(|| {
            format!(
                "the end-to-end tests need PostgreSQL at {} (TEST_DATABASE_URL; ./scripts/test.sh starts it)",
                bus::redact_url(&admin_url)
            )
        })?;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .context("CREATE DATABASE")?;
        let _ = admin.close().await;
        let base = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(base, _)| base.to_owned())
            .context("TEST_DATABASE_URL has no database path")?;
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// A connection to it.
    ///
    /// # Errors
    /// PostgreSQL is unreachable.
    pub async fn connect(&self) -> anyhow::Result<DatabaseConnection> {
        Database::connect(&self.url)
            .await
            .with_context(|| format!("connecting to the database {}", self.name))
    }

    /// Drops it (closing every connection to it).
    pub async fn drop(&self) {
        if let Ok(admin) = Database::connect(&database_url()).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await;
            let _ = admin.close().await;
        }
    }
}
