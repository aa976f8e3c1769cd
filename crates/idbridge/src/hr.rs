//! `idbridge hr import` and `idbridge hr send`: HR events onto the bus, exactly as the writer
//! consumes them (the HR exchange, routing key `hr.<type>`, partition key = person id, the
//! bus envelope, persistent, publisher confirms, mandatory so an unbound exchange is an
//! error rather than a silent drop).

use std::io::Write;
use std::path::Path;

use bus::events::{Event, HrEvent, exchanges};
use bus::{Bus, BusError, Envelope, OutgoingMessage, Topology};
use serde_json::Value;
use writer::csv_import::{ImportOptions, RowOutcome, parse_hr_csv};

use crate::config::IdbridgeConfig;
use crate::error::{Error, exit};

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// Connects to RabbitMQ from `[bus]` and declares the HR exchange (idempotent; the writer
/// declares it too).
async fn hr_bus(config: &IdbridgeConfig, command: &'static str) -> Result<Bus, Error> {
    if config.bus.amqp_url.is_none() {
        return Err(Error::NoBroker { command });
    }
    let bus = idbridge_platform::bus::connect(&config.bus).await?;
    bus.declare(&Topology::new().exchange(exchanges::HR))
        .await?;
    Ok(bus)
}

fn publish_error(error: &BusError) -> String {
    match error {
        BusError::Unroutable { .. } => {
            format!("{error} (no queue is bound: start the writer once so it declares its queues)")
        }
        other => crate::error::chain(other),
    }
}

/// `idbridge hr import FILE [--dry-run]`: the per-row report, then (without `--dry-run`) the
/// good rows published. Returns the exit code.
///
/// # Errors
/// The file cannot be read, the configuration does not load, or the broker is unreachable.
pub async fn import(
    config: &IdbridgeConfig,
    file: &Path,
    dry_run: bool,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let bytes = read(file)?;
    let report = parse_hr_csv(&bytes, &ImportOptions::default());
    let _ = write!(out, "{}", report.render_dry_run());
    if report.file_error.is_some() {
        return Ok(exit::BAD_INPUT);
    }
    let bad_input = if report.is_clean() {
        exit::OK
    } else {
        exit::BAD_INPUT
    };
    if dry_run {
        let _ = writeln!(
            out,
            "dry run: nothing published ({} events would be)",
            report.good()
        );
        return Ok(bad_input);
    }
    if report.good() == 0 {
        let _ = writeln!(out, "nothing to publish");
        return Ok(bad_input);
    }
    let bus = hr_bus(config, "hr import").await?;
    let exchange = bus.names().exchange(exchanges::HR);
    let _ = writeln!(out, "publishing {} events to {exchange}", report.good());
    let mut published = 0usize;
    let mut failed = 0usize;
    for row in &report.rows {
        let RowOutcome::Event(event) = &row.outcome else {
            continue;
        };
        match publish_event(&bus, event).await {
            Ok(message_id) => {
                published += 1;
                let _ = writeln!(
                    out,
                    "row {:>4}  published {} person {} position {} event {} message {message_id}",
                    row.row,
                    event.routing_key(),
                    event.person.person_id,
                    event.position.position_id,
                    event.event_id,
                );
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "row {:>4}  NOT published: {}",
                    row.row,
                    publish_error(&e)
                );
            }
        }
    }
    bus.close().await;
    let _ = writeln!(
        out,
        "published {published} of {} events; {} bad rows not sent{}",
        report.good(),
        report.bad(),
        if failed > 0 {
            format!("; {failed} publishes failed")
        } else {
            String::new()
        }
    );
    Ok(if failed > 0 { exit::FAILED } else { bad_input })
}

async fn publish_event(bus: &Bus, event: &HrEvent) -> Result<uuid::Uuid, BusError> {
    let message = OutgoingMessage::event(event)?;
    let id = message.envelope.message_id;
    bus.publish_mandatory(&message).await?;
    Ok(id)
}

/// One entry of an `hr send` file, checked.
enum Entry {
    Good(Box<OutgoingMessage>),
    Bad(String),
}

/// Reads one JSON value as an HR event envelope (or a bare `hr-event` v1 payload, which
/// gets a new envelope) valid against the schemas.
fn entry(value: Value) -> Entry {
    let is_envelope = value.get("payload").is_some() && value.get("type").is_some();
    let envelope = if is_envelope {
        if let Err(e) = bus::schemas::validate_message(&value) {
            return Entry::Bad(e.to_string());
        }
        match serde_json::from_value::<Envelope>(value) {
            Ok(envelope) => envelope,
            Err(e) => return Entry::Bad(format!("not an envelope: {e}")),
        }
    } else {
        if let Err(e) = bus::schemas::validate(HrEvent::TYPE, HrEvent::VERSION, &value) {
            return Entry::Bad(e.to_string());
        }
        Envelope::raw(HrEvent::TYPE, HrEvent::VERSION, value)
    };
    let event = match envelope.payload::<HrEvent>() {
        Ok(event) => event,
        Err(e) => {
            return Entry::Bad(format!(
                "not an HR event ({e}); only hr-event v1 can be sent here"
            ));
        }
    };
    if is_envelope {
        // Keep the sender's envelope (its message id is the inbox key).
        Entry::Good(Box::new(
            OutgoingMessage::new(exchanges::HR, &event.routing_key(), envelope)
                .partition_key(event.person.person_id.clone()),
        ))
    } else {
        Entry::Good(Box::new(
            OutgoingMessage::new(exchanges::HR, &event.routing_key(), envelope)
                .partition_key(event.person.person_id.clone())
                .with_envelope(|e| e.occurred_at(event.occurred_at)),
        ))
    }
}

/// `idbridge hr send FILE.json`: every entry validated, then the valid ones published, with
/// a result per entry. Returns the exit code.
///
/// # Errors
/// The file cannot be read, or the broker is unreachable.
pub async fn send(config: &IdbridgeConfig, file: &Path, out: &mut impl Write) -> Result<u8, Error> {
    let bytes = read(file)?;
    let values = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(values)) => values,
        Ok(value) => vec![value],
        Err(e) => {
            let _ = writeln!(out, "{}: not JSON: {e}", file.display());
            return Ok(exit::BAD_INPUT);
        }
    };
    let entries: Vec<Entry> = values.into_iter().map(entry).collect();
    let good = entries
        .iter()
        .filter(|e| matches!(e, Entry::Good(_)))
        .count();
    let bad = entries.len() - good;
    let bus = if good > 0 {
        Some(hr_bus(config, "hr send").await?)
    } else {
        None
    };
    let mut failed = 0usize;
    for (index, entry) in entries.iter().enumerate() {
        let n = index + 1;
        match (entry, &bus) {
            (Entry::Bad(reason), _) => {
                let _ = writeln!(out, "event {n:>3}  INVALID: {reason}");
            }
            (Entry::Good(message), Some(bus)) => match bus.publish_mandatory(message).await {
                Ok(()) => {
                    let _ = writeln!(
                        out,
                        "event {n:>3}  published {} message {}",
                        message.routing_key, message.envelope.message_id
                    );
                }
                Err(e) => {
                    failed += 1;
                    let _ = writeln!(out, "event {n:>3}  NOT published: {}", publish_error(&e));
                }
            },
            (Entry::Good(_), None) => {}
        }
    }
    if let Some(bus) = bus {
        bus.close().await;
    }
    let _ = writeln!(
        out,
        "{} events: {} published, {bad} invalid, {failed} failed",
        entries.len(),
        good - failed
    );
    Ok(if failed > 0 {
        exit::FAILED
    } else if bad > 0 {
        exit::BAD_INPUT
    } else {
        exit::OK
    })
}
