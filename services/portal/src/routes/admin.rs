//! The administrators' view: connections with search by name or person id (never by iD),
//! reports as CSV and JSON (connections, items with put codes, a monthly summary), and a
//! server-rendered SVG chart of connections per month.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Datelike, Utc};
use orcid::OrcidId;
use serde::{Deserialize, Serialize};
use token_vault::client::Connection;

use crate::items::{Item, ItemFilter, Summary};
use crate::pages::{AdminPage, AdminRow, PageError, render};
use crate::routes::me::status_of;
use crate::session::SessionUser;
use crate::state::{AppState, see_other};

/// At most this many connections are read for a page or a report.
const MAX_CONNECTIONS: usize = 100_000;
/// At most this many items are read for a report.
const MAX_ITEMS: usize = 100_000;

pub(crate) async fn require_admin(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
) -> Result<Result<SessionUser, HttpResponse>, PageError> {
    let Some(user) = state.current_user(req, session)? else {
        return Ok(Err(see_other("/signin")));
    };
    if !user.admin {
        return Err(state.error(
            session,
            Some(&user),
            StatusCode::FORBIDDEN,
            "not_admin",
            "Administrators only",
            "This page is for administrators. Ask the service owner if you need access.",
        ));
    }
    Ok(Ok(user))
}

async fn all_connections(state: &AppState) -> Result<Vec<Connection>, String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .vault
            .connections(None, None, after.as_deref(), Some(1000))
            .await
            .map_err(|e| e.to_string())?;
        all.extend(page.connections);
        match page.next_after {
            Some(next) if all.len() < MAX_CONNECTIONS => after = Some(next),
            _ => return Ok(all),
        }
    }
}

fn unavailable(state: &AppState, session: &Session, user: &SessionUser, what: &str) -> PageError {
    state.error(
        session,
        Some(user),
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Not available right now",
        &format!("{what} cannot be read right now. Please try again later."),
    )
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
}

/// Whether `c` matches the search: person id (exact or part) or name (part), any case.
fn matches(c: &Connection, query: &str) -> bool {
    let q = query.to_lowercase();
    c.person_id.to_lowercase().contains(&q)
        || c.name
            .as_deref()
            .is_some_and(|n| n.to_lowercase().contains(&q))
}

/// `GET /admin`.
pub(crate) async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let all = all_connections(&state).await.map_err(|e| {
        tracing::warn!(error = %e, "the vault did not answer the admin listing");
        unavailable(&state, &session, &user, "The connections")
    })?;
    let q = query.q.as_deref().map(str::trim).unwrap_or("").to_owned();
    let chart = connections_chart(&all, Utc::now());
    let rows: Vec<AdminRow> = all
        .iter()
        .filter(|c| q.is_empty() || matches(c, &q))
        .take(500)
        .map(|c| AdminRow {
            person_id: c.person_id.clone(),
            name: c.name.clone().unwrap_or_default(),
            uri: display_uri(&state, &c.orcid),
            state: status_of(c.state).0.to_owned(),
            status_class: status_of(c.state).1,
            scopes: c.scopes.join(" "),
            granted_at: c.granted_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    let (writes, items_note) = match &state.items {
        None => (
            None,
            Some(
                "Items and writes are not available: portal.writer.url is not configured."
                    .to_owned(),
            ),
        ),
        Some(source) => match source.summary(30).await {
            Ok(summary) => (Some(writes_chart(&summary)), None),
            Err(e) => {
                tracing::warn!(error = %e, "the writer did not answer the summary");
                (
                    None,
                    Some("Writes per day cannot be shown right now.".to_owned()),
                )
            }
        },
    };
    let total = if q.is_empty() {
        all.len()
    } else {
        all.iter().filter(|c| matches(c, &q)).count()
    };
    Ok(render(
        StatusCode::OK,
        &AdminPage {
            layout: state.layout("Administration", &session, Some(&user)),
            query: q,
            rows,
            total,
            chart,
            writes_chart: writes,
            items_note,
        },
    ))
}

fn display_uri(state: &AppState, orcid: &str) -> String {
    OrcidId::parse(orcid)
        .map(|id| state.orcid_uri(&id))
        .unwrap_or_else(|_| orcid.to_owned())
}

/// One row of the connections report.
#[derive(Serialize)]
struct ConnectionRow {
    person_id: String,
    orcid: String,
    name: String,
    state: String,
    scopes: String,
    granted_at: String,
    ended_at: String,
}

fn connection_rows(state: &AppState, all: &[Connection]) -> Vec<ConnectionRow> {
    all.iter()
        .map(|c| ConnectionRow {
            person_id: c.person_id.clone(),
            orcid: display_uri(state, &c.orcid),
            name: c.name.clone().unwrap_or_default(),
            state: c.state.as_str().to_owned(),
            scopes: c.scopes.join(" "),
            granted_at: c.granted_at.to_rfc3339(),
            ended_at: c.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        })
        .collect()
}

/// Neutralises one CSV cell against formula injection (OWASP "CSV Injection"): a cell
/// whose first non-whitespace character is `=`, `+`, `-` or `@`, or that starts with a
/// tab or carriage return, gets a leading `'` so a spreadsheet shows it as text instead
/// of evaluating it. Applied to every cell of every report, so a negative number would
/// also gain the prefix; no report column holds one (counts are unsigned, times are
/// RFC 3339).
pub(crate) fn neutralise_csv_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    let dangerous = cell.starts_with(['\t', '\r'])
        || cell
            .trim_start()
            .starts_with(['=', '+', '-', '@', '\t', '\r']);
    if dangerous {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Serialises `rows` as CSV (header row first) with every cell passed through
/// [`neutralise_csv_cell`]. The one CSV writer behind every report.
pub(crate) fn safe_csv<T: Serialize>(rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    // Serialise with serde first (headers and field order come from the row type),
    // then re-read the records and write them out cell by cell, neutralised.
    let mut raw = csv::Writer::from_writer(Vec::new());
    for row in rows {
        raw.serialize(row)?;
    }
    let raw = raw.into_inner().map_err(|e| e.into_error())?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw.as_slice());
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for record in reader.records() {
        let record = record?;
        out.write_record(
            record
                .iter()
                .map(neutralise_csv_cell)
                .map(|c| c.into_owned()),
        )?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

fn csv_response<T: Serialize>(name: &str, rows: &[T]) -> HttpResponse {
    match safe_csv(rows) {
        Ok(bytes) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.csv\""),
            ))
            .body(bytes),
        Err(e) => {
            tracing::error!(error = %e, "a report could not be written");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn json_response<T: Serialize>(name: &str, value: &T) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.json\""),
        ))
        .json(value)
}

#[derive(Clone, Copy)]
enum Format {
    Csv,
    Json,
}

fn format_of(ext: &str) -> Option<Format> {
    match ext {
        "csv" => Some(Format::Csv),
        "json" => Some(Format::Json),
        _ => None,
    }
}

/// `GET /admin/reports/{report}.{ext}`: `connections`, `items`, `failures`, `summary`,
/// `invitations` as `csv` or `json`.
pub(crate) async fn report(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let (name, ext) = path.into_inner();
    let not_found = || {
        state.error(
            &session,
            Some(&user),
            StatusCode::NOT_FOUND,
            "not_found",
            "No such report",
            "The reports are connections, items, failures, summary and invitations, as .csv or .json.",
        )
    };
    let Some(format) = format_of(&ext) else {
        return Err(not_found());
    };
    match name.as_str() {
        "connections" => {
            let all = all_connections(&state)
                .await
                .map_err(|_| unavailable(&state, &session, &user, "The connections"))?;
            let rows = connection_rows(&state, &all);
            Ok(match format {
                Format::Csv => csv_response("connections", &rows),
                Format::Json => json_response("connections", &rows),
            })
        }
        "items" => {
            let Some(source) = &state.items else {
                return Err(unavailable(
                    &state,
                    &session,
                    &user,
                    "The items (portal.writer.url is not configured)",
                ));
            };
            let mut items: Vec<Item> = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = source
                    .items(ItemFilter {
                        after: after.as_deref(),
                        limit: 1000,
                        ..ItemFilter::default()
                    })
                    .await
                    .map_err(|_| unavailable(&state, &session, &user, "The items"))?;
                items.extend(page.items);
                match page.next_after {
                    Some(next) if items.len() < MAX_ITEMS => after = Some(next),
                    _ => break,
                }
            }
            let rows: Vec<ItemReportRow> = items.iter().map(ItemReportRow::from).collect();
            Ok(match format {
                Format::Csv => csv_response("items", &rows),
                Format::Json => json_response("items", &rows),
            })
        }
        "summary" => {
            let all = all_connections(&state)
                .await
                .map_err(|_| unavailable(&state, &session, &user, "The connections"))?;
            let writes = match &state.items {
                Some(source) => source.summary(366).await.ok(),
                None => None,
            };
            let rows = monthly_summary(&all, writes.as_ref());
            Ok(match format {
                Format::Csv => csv_response("summary", &rows),
                Format::Json => json_response("summary", &rows),
            })
        }
        "failures" => {
            let rows = crate::routes::failures::report_rows(&state)
                .await
                .map_err(|_| unavailable(&state, &session, &user, "The failures"))?;
            Ok(match format {
                Format::Csv => csv_response("failures", &rows),
                Format::Json => json_response("failures", &rows),
            })
        }
        "invitations" => {
            let rows = crate::routes::invitations::report_rows(&state)
                .await
                .map_err(|what| unavailable(&state, &session, &user, &what))?;
            Ok(match format {
                Format::Csv => csv_response("invitations", &rows),
                Format::Json => json_response("invitations", &rows),
            })
        }
        _ => Err(not_found()),
    }
}

#[derive(Serialize)]
struct ItemReportRow {
    id: String,
    person_id: String,
    section: String,
    orcid: String,
    put_code: String,
    state: String,
    attempts: i64,
    written_at: String,
    updated_at: String,
}

impl From<&Item> for ItemReportRow {
    fn from(i: &Item) -> Self {
        Self {
            id: i.id.clone(),
            person_id: i.person_id.clone(),
            section: i.section.clone(),
            orcid: i.orcid.clone().unwrap_or_default(),
            put_code: i.put_code.map(|p| p.to_string()).unwrap_or_default(),
            state: i.state.clone(),
            attempts: i.attempts,
            written_at: i.written_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            updated_at: i.updated_at.to_rfc3339(),
        }
    }
}

/// One month of the summary report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MonthRow {
    pub month: String,
    pub connections_made: u64,
    pub connections_ended: u64,
    pub active_at_end: u64,
    /// Empty when the writer is not reachable.
    pub items_written: Option<u64>,
    pub writes_failed: Option<u64>,
}

fn month_of(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

/// Connections made and ended per month, how many were active at each month's end, and
/// (when the writer answered) writes and failures per month.
pub(crate) fn monthly_summary(all: &[Connection], writes: Option<&Summary>) -> Vec<MonthRow> {
    let mut made: BTreeMap<String, u64> = BTreeMap::new();
    let mut ended: BTreeMap<String, u64> = BTreeMap::new();
    for c in all {
        *made.entry(month_of(c.granted_at)).or_default() += 1;
        if let Some(at) = c.ended_at {
            *ended.entry(month_of(at)).or_default() += 1;
        }
    }
    let mut written: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    if let Some(summary) = writes {
        for day in &summary.per_day {
            let m = format!("{:04}-{:02}", day.day.year(), day.day.month());
            let entry = written.entry(m).or_default();
            entry.0 += day.written;
            entry.1 += day.failed;
        }
    }
    let keys: std::collections::BTreeSet<String> = made
        .keys()
        .chain(ended.keys())
        .chain(written.keys())
        .cloned()
        .collect();
    let mut active: i64 = 0;
    keys.into_iter()
        .map(|m| {
            let made_n = made.get(&m).copied().unwrap_or(0);
            let ended_n = ended.get(&m).copied().unwrap_or(0);
            active += i64::try_from(made_n).unwrap_or(0) - i64::try_from(ended_n).unwrap_or(0);
            let w = written.get(&m).copied();
            MonthRow {
                month: m,
                connections_made: made_n,
                connections_ended: ended_n,
                active_at_end: u64::try_from(active.max(0)).unwrap_or(0),
                items_written: writes.map(|_| w.map_or(0, |w| w.0)),
                writes_failed: writes.map(|_| w.map_or(0, |w| w.1)),
            }
        })
        .collect()
}

/// Connections made per month over the twelve months up to `now`, as an accessible SVG bar
/// chart (a `<title>`, a `<desc>`, one labelled bar per month).
pub(crate) fn connections_chart(all: &[Connection], now: DateTime<Utc>) -> String {
    let mut months: Vec<(i32, u32)> = Vec::with_capacity(12);
    let (mut y, mut m) = (now.year(), now.month());
    for _ in 0..12 {
        months.push((y, m));
        if m == 1 {
            y -= 1;
            m = 12;
        } else {
            m -= 1;
        }
    }
    months.reverse();
    let counts: Vec<u64> = months
        .iter()
        .map(|&(y, m)| {
            all.iter()
                .filter(|c| c.granted_at.year() == y && c.granted_at.month() == m)
                .count() as u64
        })
        .collect();
    bar_chart(
        "connections-chart",
        "Connections per month",
        &months
            .iter()
            .map(|(y, m)| format!("{y:04}-{m:02}"))
            .collect::<Vec<_>>(),
        &counts,
    )
}

/// Items written per day (the writer's summary) as a bar chart.
pub(crate) fn writes_chart(summary: &Summary) -> String {
    let labels: Vec<String> = summary
        .per_day
        .iter()
        .map(|d| d.day.format("%m-%d").to_string())
        .collect();
    let values: Vec<u64> = summary.per_day.iter().map(|d| d.written).collect();
    bar_chart("writes-chart", "Items written per day", &labels, &values)
}

/// A bar chart: `labels[i]` under a bar of height `values[i]`.
pub(crate) fn bar_chart(id: &str, title: &str, labels: &[String], values: &[u64]) -> String {
    let (width, height, base) = (600u64, 220u64, 180u64);
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let n = values.len().max(1) as u64;
    let slot = (width - 20) / n;
    let bar = slot.saturating_sub(8).max(2);
    let mut svg = String::new();
    let desc = labels
        .iter()
        .zip(values)
        .map(|(l, v)| format!("{l}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        svg,
        "<svg class=\"chart\" id=\"{id}\" data-testid=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\"><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(title),
        escape(&desc)
    );
    let _ = write!(
        svg,
        "<line x1=\"10\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#595959\"/>",
        width - 10
    );
    // At most about twelve axis labels; every bar keeps its label in `data-label`.
    let every = usize::try_from(n / 12).unwrap_or(1).max(1);
    for (i, (label, value)) in labels.iter().zip(values).enumerate() {
        let x = 10 + i as u64 * slot + 4;
        let h = value.saturating_mul(base - 30) / max;
        let centre = x + bar / 2;
        let _ = write!(
            svg,
            "<g data-label=\"{}\" data-value=\"{value}\"><rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{h}\" fill=\"#2e7d32\"/>",
            escape(label),
            base - h,
        );
        if *value > 0 {
            let _ = write!(
                svg,
                "<text x=\"{centre}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#1b1b1b\">{value}</text>",
                base - h - 4
            );
        }
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{centre}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#1b1b1b\">{}</text>",
                base + 14,
                escape(label)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_prefixed_and_plain_text_is_not() {
        for bad in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "  =1",
        ] {
            assert_eq!(neutralise_csv_cell(bad), format!("'{bad}"), "{bad:?}");
        }
        for good in ["Mia Wong", "2026-12-01T00:00:00+00:00", "42", "", "a=b"] {
            assert_eq!(neutralise_csv_cell(good), good, "{good:?}");
        }
    }

    #[test]
    fn every_report_cell_goes_through_the_neutraliser() {
        #[derive(Serialize)]
        struct Row {
            name: String,
            count: u64,
        }
        let bytes = safe_csv(&[Row {
            name: "=HYPERLINK(\"http://x\")".to_owned(),
            count: 3,
        }])
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text, "name,count\n\"'=HYPERLINK(\"\"http://x\"\")\",3\n");
    }

    #[test]
    fn the_chart_survives_huge_values() {
        let svg = bar_chart("c", "t", &["a".to_owned()], &[u64::MAX]);
        assert!(svg.contains("data-value=\"18446744073709551615\""));
    }
}
