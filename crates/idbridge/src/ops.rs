//! Operator commands: `migrate`, `keys rotate`, `dlq list|replay`.

use std::io::Write;
use std::path::Path;

use bus::parking::Selection;
use idbridge_platform::database;
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::cli::ServiceName;
use crate::config::{DatabaseOnly, IdbridgeConfig};
use crate::error::{Error, chain, exit};

async fn connect_db(
    service: &'static str,
    defaults: &'static str,
    file: Option<&Path>,
) -> Result<sea_orm::DatabaseConnection, Error> {
    let config = DatabaseOnly::load(defaults, file).map_err(|source| Error::Config {
        what: service,
        source,
    })?;
    database::connect(&config.database, "idbridge-migrate")
        .await
        .map_err(|source| Error::Database { service, source })
}

/// One service's migrations on the database its configuration names.
async fn migrate_one(service: ServiceName, file: Option<&Path>) -> Result<(), Error> {
    let name = service.as_str();
    let defaults = match service {
        ServiceName::TokenVault => token_vault::config::DEFAULTS,
        ServiceName::Writer => writer::config::DEFAULTS,
        ServiceName::Reader => reader::config::DEFAULTS,
        ServiceName::WebhookReceiver => webhook_receiver::config::DEFAULTS,
        ServiceName::Portal => portal::config::DEFAULTS,
    };
    let db = connect_db(name, defaults, file).await?;
    // The span names the service in what the migrations log (the lock's wait among them).
    let span = tracing::info_span!("migrate", service = name);
    let result = async {
        match service {
            ServiceName::TokenVault => token_vault::migrate(&db).await,
            ServiceName::Writer => writer::migrate(&db).await,
            ServiceName::Reader => reader::migrate(&db).await,
            ServiceName::WebhookReceiver => webhook_receiver::migrate(&db).await,
            ServiceName::Portal => portal::migrate(&db).await,
        }
    }
    .instrument(span)
    .await;
    let _ = db.close().await;
    result.map_err(|source| Error::Migrate {
        service: name,
        source,
    })
}

/// Whether `service`'s configured database is SQLite.
fn on_sqlite(
    service: &'static str,
    defaults: &'static str,
    file: Option<&Path>,
) -> Result<bool, Error> {
    let config = DatabaseOnly::load(defaults, file).map_err(|source| Error::Config {
        what: service,
        source,
    })?;
    Ok(config
        .database
        .url
        .expose_secret()
        .trim_start()
        .starts_with("sqlite:"))
}

/// `idbridge migrate [SERVICE…]`: each service's migrations on the database its
/// configuration names (every service when none is named). The webhook receiver is
/// PostgreSQL-only: on SQLite it is skipped with a line saying so, unless it is named.
///
/// # Errors
/// A configuration, a connection or a migration failed (the services before it are done).
pub async fn migrate(
    services: &[ServiceName],
    file: Option<&Path>,
    out: &mut impl Write,
) -> Result<u8, Error> {
    // Warnings, and the wait for another process's migrations, go to stderr (a migration
    // Job's log); stdout keeps one line per service. `RUST_LOG` overrides the filter.
    let _telemetry = idbridge_platform::telemetry::init_with_writer(
        &idbridge_platform::telemetry::TelemetryConfig {
            format: idbridge_platform::telemetry::LogFormat::Compact,
            filter: "warn,idbridge::ops=info,idbridge_platform::database=info".to_owned(),
            ..Default::default()
        },
        std::io::stderr,
    )?;
    let explicit = !services.is_empty();
    let all = [
        ServiceName::TokenVault,
        ServiceName::Writer,
        ServiceName::Reader,
        ServiceName::WebhookReceiver,
        ServiceName::Portal,
    ];
    let mut names: Vec<ServiceName> = Vec::new();
    for s in if explicit { services } else { &all[..] } {
        if !names.contains(s) {
            names.push(*s);
        }
    }
    for service in names {
        if service == ServiceName::WebhookReceiver
            && on_sqlite(service.as_str(), webhook_receiver::config::DEFAULTS, file)?
        {
            if explicit {
                return Err(Error::NeedsPostgres {
                    service: service.as_str(),
                });
            }
            let _ = writeln!(
                out,
                "webhook-receiver: skipped (it needs PostgreSQL and database.url is SQLite)"
            );
            continue;
        }
        migrate_one(service, file).await?;
        let _ = writeln!(out, "{}: migrations applied", service.as_str());
    }
    Ok(exit::OK)
}

/// `idbridge webhooks reregister`: [`webhook_receiver::reregister_all`] with the receiver's
/// configuration. Exit 1 when any iD failed.
///
/// # Errors
/// The receiver's configuration, its database, the ORCID client or the vault client failed.
pub async fn reregister_webhooks(file: Option<&Path>, out: &mut impl Write) -> Result<u8, Error> {
    let service = ServiceName::WebhookReceiver.as_str();
    let config =
        webhook_receiver::config::ReceiverConfig::load(file).map_err(|source| Error::Config {
            what: service,
            source,
        })?;
    let report =
        webhook_receiver::reregister_all(&config, webhook_receiver::Dependencies::default())
            .await
            .map_err(|e| Error::Service {
                service,
                message: chain(&e),
            })?;
    let _ = writeln!(
        out,
        "webhooks: {} created, {} already registered, {} withdrawn, {} failed",
        report.created,
        report.already_registered,
        report.withdrawn,
        report.failed.len()
    );
    for (orcid, reason) in &report.failed {
        let _ = writeln!(out, "  failed: {orcid}: {reason}");
    }
    if report.failed.is_empty() {
        Ok(exit::OK)
    } else {
        let _ = writeln!(
            out,
            "some webhooks are not registered: fix the causes above and run again"
        );
        Ok(exit::FAILED)
    }
}

/// `idbridge keys rotate`: [`token_vault::rotate`] with the vault's configured key ring.
///
/// # Errors
/// The vault's configuration, its database or the rotation failed.
pub async fn rotate_keys(file: Option<&Path>, out: &mut impl Write) -> Result<u8, Error> {
    let config = token_vault::config::VaultConfig::load(file).map_err(|source| Error::Config {
        what: "token-vault",
        source,
    })?;
    let ring = config.key_ring().map_err(|e| Error::Keys(e.to_string()))?;
    let db = database::connect(&config.database, "idbridge-keys-rotate")
        .await
        .map_err(|source| Error::Database {
            service: "token-vault",
            source,
        })?;
    let report = token_vault::rotate(&db, &ring, config.vault.rotation_batch_size.max(1)).await?;
    let _ = db.close().await;
    let _ = writeln!(
        out,
        "active key {}: {} rows re-wrapped, {} changed meanwhile, {} failed, {} remaining",
        ring.active_key_id().as_str(),
        report.rewrapped,
        report.changed_meanwhile,
        report.failed.len(),
        report.remaining
    );
    for failure in &report.failed {
        let _ = writeln!(
            out,
            "  failed: {} {} (key {}): {}",
            failure.table, failure.row_id, failure.key_id, failure.reason
        );
    }
    if report.remaining == 0 {
        let _ = writeln!(
            out,
            "every row is on the active key: older keys can be retired"
        );
        Ok(exit::OK)
    } else {
        let _ = writeln!(
            out,
            "rows remain on older keys: fix the failed rows and run again before retiring a key"
        );
        Ok(exit::FAILED)
    }
}

fn bus_service(service: ServiceName) -> &'static str {
    match service {
        ServiceName::TokenVault => token_vault::SERVICE_NAME,
        ServiceName::Writer => writer::SERVICE_NAME,
        ServiceName::Reader => reader::SERVICE_NAME,
        ServiceName::WebhookReceiver => webhook_receiver::SERVICE_NAME,
        ServiceName::Portal => portal::SERVICE_NAME,
    }
}

async fn broker(config: &IdbridgeConfig, command: &'static str) -> Result<bus::Bus, Error> {
    if config.bus.amqp_url.is_none() {
        return Err(Error::NoBroker { command });
    }
    Ok(idbridge_platform::bus::connect(&config.bus).await?)
}

/// `idbridge dlq list SERVICE`.
///
/// # Errors
/// The broker is unreachable.
pub async fn dlq_list(
    config: &IdbridgeConfig,
    service: ServiceName,
    limit: usize,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let bus = broker(config, "dlq list").await?;
    let parked = bus.parked(bus_service(service), limit).await;
    bus.close().await;
    let parked = parked?;
    for m in &parked {
        let _ = writeln!(
            out,
            "{}  {}  {}  attempts {}  parked {}  reason: {}",
            m.message_id.as_deref().unwrap_or("-"),
            m.message_type.as_deref().unwrap_or("-"),
            m.routing_key.as_deref().unwrap_or("-"),
            m.attempts,
            m.parked_at
                .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
            m.reason
        );
    }
    let _ = writeln!(
        out,
        "{} parked messages of {}",
        parked.len(),
        service.as_str()
    );
    Ok(exit::OK)
}

/// `idbridge dlq replay SERVICE [--id ID…]`.
///
/// # Errors
/// The broker is unreachable.
pub async fn dlq_replay(
    config: &IdbridgeConfig,
    service: ServiceName,
    ids: Vec<String>,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let bus = broker(config, "dlq replay").await?;
    let selection = if ids.is_empty() {
        Selection::All
    } else {
        Selection::Ids(ids)
    };
    let replayed = bus.replay_parked(bus_service(service), &selection).await;
    bus.close().await;
    let _ = writeln!(
        out,
        "{} messages replayed to {}",
        replayed?,
        service.as_str()
    );
    Ok(exit::OK)
}
