//! `idbridge report`: the writer's ledger — items by state, writes and failures per day —
//! or every item as CSV (`--csv`).

use std::io::Write;
use std::path::Path;

use chrono::{Duration, Utc};
use idbridge_platform::database;
use writer::ledger::{ItemFilter, Ledger};

use crate::config::DatabaseOnly;
use crate::error::{Error, exit};

const PAGE: u64 = 500;

fn read_error(e: &dyn std::fmt::Display) -> Error {
    Error::Service {
        service: "writer",
        message: format!("reading the ledger failed: {e} (run `idbridge migrate` first?)"),
    }
}

/// `idbridge report [--days N] [--csv]` on the writer's configured database.
///
/// # Errors
/// The configuration, the database or a query failed.
pub async fn report(
    file: Option<&Path>,
    days: u32,
    csv_out: bool,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let config =
        DatabaseOnly::load(writer::config::DEFAULTS, file).map_err(|source| Error::Config {
            what: "writer",
            source,
        })?;
    let db = database::connect(&config.database, "idbridge-report")
        .await
        .map_err(|source| Error::Database {
            service: "writer",
            source,
        })?;
    let ledger = Ledger::new(db.clone());
    let result = if csv_out {
        export(&ledger, out).await
    } else {
        summary(&ledger, days, out).await
    };
    let _ = db.close().await;
    result
}

async fn summary(ledger: &Ledger, days: u32, out: &mut impl Write) -> Result<u8, Error> {
    let counts = ledger.count_by_state().await.map_err(|e| read_error(&e))?;
    let total: u64 = counts.values().sum();
    let _ = writeln!(out, "items: {total}");
    for (state, n) in &counts {
        let _ = writeln!(out, "  {:<16} {n}", state.as_str());
    }
    let since = Utc::now() - Duration::days(i64::from(days));
    let activity = ledger
        .activity_since(since)
        .await
        .map_err(|e| read_error(&e))?;
    let _ = writeln!(out, "writes and failures per day (UTC), last {days} days:");
    if activity.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (day, a) in &activity {
        let _ = writeln!(
            out,
            "  {day}  written {:>6}  failed {:>6}",
            a.written, a.failed
        );
    }
    Ok(exit::OK)
}

async fn export(ledger: &Ledger, out: &mut impl Write) -> Result<u8, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "person-id",
        "orcid",
        "section",
        "key",
        "generation",
        "put-code",
        "state",
        "written-at",
        "last-error-status",
        "last-error-code",
        "last-error-message",
    ];
    let csv_error = |e: csv::Error| read_error(&e);
    writer.write_record(header).map_err(csv_error)?;
    let mut after = None;
    loop {
        let page = ledger
            .list(&ItemFilter {
                after,
                limit: PAGE,
                ..ItemFilter::default()
            })
            .await
            .map_err(|e| read_error(&e))?;
        for item in &page {
            let opt = |v: Option<String>| v.unwrap_or_default();
            writer
                .write_record([
                    item.person_id.clone(),
                    opt(item.orcid.clone()),
                    item.section.clone(),
                    item.item_key.clone(),
                    item.generation.to_string(),
                    opt(item.put_code.map(|p| p.get().to_string())),
                    item.state.as_str().to_owned(),
                    opt(item.written_at.map(|t| t.to_rfc3339())),
                    opt(item.last_error_status.map(|s| s.to_string())),
                    opt(item.last_error_code.map(|s| s.to_string())),
                    opt(item.last_error_message.clone()),
                ])
                .map_err(csv_error)?;
        }
        match page.last() {
            Some(last) if page.len() as u64 == PAGE => after = Some(last.id),
            _ => break,
        }
    }
    let bytes = writer.into_inner().map_err(|e| read_error(&e))?;
    let _ = out.write_all(&bytes);
    Ok(exit::OK)
}
