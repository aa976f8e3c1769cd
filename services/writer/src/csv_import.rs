//! HR events from a CSV file in the columns of ORCID's own affiliation-upload CSV plus
//! `person-id` (PRODUCT.md §4): parsed, checked row by row, and turned into the `hr-event`
//! v1 events the import would send. Nothing here talks to the bus.
//!
//! Rules (also in the README):
//! - `event_type` is `leave` when the row has an `end-date`, otherwise `hire`.
//! - `event_id` is `csv-` + 32 hex digits of the SHA-256 of the event's content (everything
//!   but `occurred_at`), so importing the same file again yields the same ids and the writer
//!   applies each row once.
//! - `position_id` is the `position-id` column when present and filled; otherwise `csv-pos-`
//!   followed by 32 hex digits of the SHA-256 of person id, section, org name, role title
//!   and start date, so a hire row and a later leave row of the same appointment share it.

use std::collections::HashMap;
use std::fmt::Write as _;

use bus::events::{
    AffiliationSection, ExternalId, HrEvent, HrEventType, Organization, PartialDate, Person,
    Position, Relationship,
};
use chrono::{DateTime, Utc};

/// ISO 3166-1 alpha-2 codes ORCID accepts (plus `XK`, which ORCID lists).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

const DISAMBIGUATION_SOURCES: [&str; 5] = ["ROR", "RINGGOLD", "GRID", "FUNDREF", "LEI"];

/// The columns this import understands (header names after normalising).
pub const KNOWN_COLUMNS: [&str; 18] = [
    "person-id",
    "position-id",
    "email",
    "affiliation-section",
    "department-name",
    "role-title",
    "start-date",
    "end-date",
    "org-name",
    "org-country",
    "org-city",
    "org-region",
    "disambiguated-organization-identifier",
    "disambiguation-source",
    "url",
    "external-id",
    "external-id-type",
    "external-id-url",
];

/// Settings for one import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `occurred_at` of every event; `None` means the time of parsing. It is not part of
    /// the event id, so a re-import at another time still has the same ids.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Why the file as a whole cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The file has no header row (it is empty or only blank lines).
    #[error("the file has no header row")]
    NoHeader,
    /// The header has no `person-id` column.
    #[error("the header has no person-id column")]
    NoPersonIdColumn,
    /// A column name appears twice in the header.
    #[error("column {0:?} appears more than once in the header")]
    DuplicateColumn(String),
    /// The header cannot be read (e.g. not UTF-8).
    #[error("the header cannot be read: {0}")]
    Unreadable(String),
}

/// Something worth saying that does not stop a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportWarning {
    /// A header column this import does not know; its cells are ignored.
    UnknownColumn(String),
}

impl std::fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownColumn(name) => write!(f, "unknown column {name:?} ignored"),
        }
    }
}

/// One problem with one cell (or the row, when `column` is `"(row)"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellError {
    /// The column's normalised name, or `(row)`.
    pub column: String,
    /// Why the value is refused.
    pub message: String,
}

/// What a data row becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// The event the import would send.
    Event(Box<HrEvent>),
    /// Every problem found in the row.
    Invalid(Vec<CellError>),
}

/// One data row's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowReport {
    /// The line of the file the row starts on (the header is row 1; blank lines count).
    pub row: u64,
    /// Its event or its errors.
    pub outcome: RowOutcome,
}

impl RowReport {
    /// The event, when the row is good.
    #[must_use]
    pub fn event(&self) -> Option<&HrEvent> {
        match &self.outcome {
            RowOutcome::Event(event) => Some(event),
            RowOutcome::Invalid(_) => None,
        }
    }

    /// The errors (empty when the row is good).
    #[must_use]
    pub fn errors(&self) -> &[CellError] {
        match &self.outcome {
            RowOutcome::Event(_) => &[],
            RowOutcome::Invalid(errors) => errors,
        }
    }
}

/// The result of parsing a file: a file-level error, or one entry per data row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Set when the file cannot be imported at all (then `rows` is empty).
    pub file_error: Option<FileError>,
    /// Warnings about the file (unknown columns).
    pub warnings: Vec<ImportWarning>,
    /// One entry per non-blank data row, in file order.
    pub rows: Vec<RowReport>,
}

impl ImportReport {
    /// The events of the good rows, in file order.
    pub fn events(&self) -> impl Iterator<Item = &HrEvent> {
        self.rows.iter().filter_map(RowReport::event)
    }

    /// How many rows are good.
    #[must_use]
    pub fn good(&self) -> usize {
        self.rows.iter().filter(|r| r.event().is_some()).count()
    }

    /// How many rows are bad.
    #[must_use]
    pub fn bad(&self) -> usize {
        self.rows.len() - self.good()
    }

    /// True when the file was read and every row is good.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.file_error.is_none() && self.bad() == 0
    }

    /// A readable per-row account of what would be written (for `--dry-run`), then a summary.
    #[must_use]
    pub fn render_dry_run(&self) -> String {
        let mut out = String::new();
        if let Some(error) = &self.file_error {
            let _ = writeln!(out, "file error: {error}");
            let _ = writeln!(out, "nothing would be written");
            return out;
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        for row in &self.rows {
            match &row.outcome {
                RowOutcome::Event(event) => {
                    let p = &event.position;
                    let org = p.organization.as_ref().map_or("(institution)", |o| &o.name);
                    let _ = writeln!(
                        out,
                        "row {:>4}  ok   {:<5} person {} position {} | {} | {} | {} | {} | {}..{} | event {}",
                        row.row,
                        event.event_type.as_str(),
                        event.person.person_id,
                        p.position_id,
                        section_name(p.section),
                        org,
                        p.department.as_deref().unwrap_or("-"),
                        p.role_title.as_deref().unwrap_or("-"),
                        p.start_date.as_ref().map_or("", PartialDate::as_str),
                        p.end_date.as_ref().map_or("", PartialDate::as_str),
                        event.event_id,
                    );
                }
                RowOutcome::Invalid(errors) => {
                    let _ = writeln!(out, "row {:>4}  BAD", row.row);
                    for e in errors {
                        let _ = writeln!(out, "            {}: {}", e.column, e.message);
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "{} rows: {} good, {} bad",
            self.rows.len(),
            self.good(),
            self.bad()
        );
        out
    }
}

fn section_name(section: AffiliationSection) -> &'static str {
    match section {
        AffiliationSection::Employment => "employment",
        AffiliationSection::Education => "education",
        AffiliationSection::Qualification => "qualification",
        AffiliationSection::InvitedPosition => "invited-position",
        AffiliationSection::Distinction => "distinction",
        AffiliationSection::Membership => "membership",
        AffiliationSection::Service => "service",
    }
}

/// A header name as compared: trimmed, lowercase, `_` and spaces as `-`.
fn normalise_header(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c })
        .collect()
}

/// Parses a CSV file of HR affiliation rows. Never fails as a whole: problems are in the
/// report (a file-level error, or errors per row).
#[must_use]
pub fn parse_hr_csv(input: &[u8], options: &ImportOptions) -> ImportReport {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    // Lone CRs become LFs so that line numbers count CR-only files too; CRLF stays a line end.
    let mut normalised = Vec::with_capacity(input.len());
    let mut bytes = input.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' {
            if bytes.peek() != Some(&&b'\n') {
                normalised.push(b'\n');
            }
        } else {
            normalised.push(b);
        }
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(normalised.as_slice());
    let occurred_at = options.occurred_at.unwrap_or_else(Utc::now);
    let mut report = ImportReport::default();
    let mut columns: Option<Vec<String>> = None;
    for result in reader.records() {
        let record = match result {
            Ok(record) => record,
            Err(error) => {
                let row = error.position().map_or(0, |p| line_of(&normalised, p));
                if columns.is_none() {
                    report.file_error = Some(FileError::Unreadable(error.to_string()));
                    return report;
                }
                report.rows.push(RowReport {
                    row,
                    outcome: RowOutcome::Invalid(vec![CellError {
                        column: "(row)".into(),
                        message: format!("cannot be read: {error}"),
                    }]),
                });
                continue;
            }
        };
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let row = record.position().map_or(0, |p| line_of(&normalised, p));
        let Some(header) = &columns else {
            let names: Vec<String> = record.iter().map(normalise_header).collect();
            for (i, name) in names.iter().enumerate() {
                if !name.is_empty() && names[..i].contains(name) {
                    report.file_error = Some(FileError::DuplicateColumn(name.clone()));
                    return report;
                }
                if !name.is_empty() && !KNOWN_COLUMNS.contains(&name.as_str()) {
                    report
                        .warnings
                        .push(ImportWarning::UnknownColumn(name.clone()));
                }
            }
            if !names.iter().any(|n| n == "person-id") {
                report.file_error = Some(FileError::NoPersonIdColumn);
                return report;
            }
            columns = Some(names);
            continue;
        };
        let mut cells = HashMap::new();
        let mut errors = Vec::new();
        for (i, value) in record.iter().enumerate() {
            match header.get(i) {
                Some(name) if KNOWN_COLUMNS.contains(&name.as_str()) => {
                    let value = value.trim();
                    if !value.is_empty() {
                        cells.insert(name.as_str(), value);
                    }
                }
                Some(_) => {}
                None if value.trim().is_empty() => {}
                None => errors.push(CellError {
                    column: "(row)".into(),
                    message: format!(
                        "cell {} ({value:?}) is beyond the header's {} columns",
                        i + 1,
                        header.len()
                    ),
                }),
            }
        }
        let outcome = match row_event(&cells, occurred_at, errors) {
            Ok(event) => RowOutcome::Event(Box::new(event)),
            Err(errors) => RowOutcome::Invalid(errors),
        };
        report.rows.push(RowReport { row, outcome });
    }
    if columns.is_none() {
        report.file_error = Some(FileError::NoHeader);
    }
    report
}

/// The 1-based line a record starts on, counted from its byte offset: the csv crate's own
/// line count leaves out the blank lines it skips.
fn line_of(input: &[u8], position: &csv::Position) -> u64 {
    let mut end = usize::try_from(position.byte()).map_or(input.len(), |b| b.min(input.len()));
    // The offset is where the previous record ended; blank lines skipped since come first.
    while matches!(input.get(end), Some(b'\r' | b'\n')) {
        end += 1;
    }
    1 + input[..end].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Collects errors while a row is checked.
struct Checker<'a> {
    cells: &'a HashMap<&'a str, &'a str>,
    errors: Vec<CellError>,
}

impl<'a> Checker<'a> {
    fn get(&self, column: &str) -> Option<&'a str> {
        self.cells.get(column).copied()
    }

    fn fail(&mut self, column: &str, message: impl Into<String>) {
        self.errors.push(CellError {
            column: column.to_owned(),
            message: message.into(),
        });
    }

    /// The cell, when present and not longer than `max` characters.
    fn text(&mut self, column: &str, max: usize) -> Option<String> {
        let value = self.get(column)?;
        let len = value.chars().count();
        if len > max {
            self.fail(
                column,
                format!("is {len} characters long, at most {max} allowed"),
            );
            return None;
        }
        Some(value.to_owned())
    }

    fn date(&mut self, column: &str) -> Option<PartialDate> {
        let value = self.get(column)?;
        match PartialDate::parse(value) {
            Ok(date) => Some(date),
            Err(message) => {
                self.fail(column, message);
                None
            }
        }
    }

    fn url(&mut self, column: &str) -> Option<String> {
        let value = self.text(column, 2000)?;
        match url::Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(value),
            Ok(_) => {
                self.fail(column, format!("{value:?} is not an http(s) URL"));
                None
            }
            Err(e) => {
                self.fail(column, format!("{value:?} is not a URL: {e}"));
                None
            }
        }
    }
}

fn parse_section(value: &str) -> Option<AffiliationSection> {
    match normalise_header(value).as_str() {
        "employment" => Some(AffiliationSection::Employment),
        "education" => Some(AffiliationSection::Education),
        "qualification" => Some(AffiliationSection::Qualification),
        "invited-position" => Some(AffiliationSection::InvitedPosition),
        "distinction" => Some(AffiliationSection::Distinction),
        "membership" => Some(AffiliationSection::Membership),
        "service" => Some(AffiliationSection::Service),
        _ => None,
    }
}

/// A plain check of the shape `local@domain.tld`, enough to keep the schema's `email`
/// format from refusing what we accepted.
fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !value.chars().any(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// `end` earlier than `start`, compared at the precision both have (`2020` vs `2020-05`
/// compares years only). The fixed-width forms make a prefix comparison exact.
fn ends_before_start(start: &PartialDate, end: &PartialDate) -> bool {
    let (s, e) = (start.as_str(), end.as_str());
    let n = s.len().min(e.len());
    e[..n] < s[..n]
}

fn organization(c: &mut Checker<'_>) -> Option<Organization> {
    const ORG_COLUMNS: [&str; 6] = [
        "org-name",
        "org-country",
        "org-city",
        "org-region",
        "disambiguated-organization-identifier",
        "disambiguation-source",
    ];
    if ORG_COLUMNS.iter().all(|col| c.get(col).is_none()) {
        return None;
    }
    let name = c.text("org-name", 1000);
    let city = c.text("org-city", 1000);
    let region = c.text("org-region", 1000);
    for (col, value) in [("org-name", &name), ("org-city", &city)] {
        if value.is_none() && c.get(col).is_none() {
            c.fail(col, "is required when any org- column is filled");
        }
    }
    let country = match c.get("org-country") {
        None => {
            c.fail("org-country", "is required when any org- column is filled");
            None
        }
        Some(value) => {
            let code = value.to_ascii_uppercase();
            if code.len() == 2 && COUNTRIES.split(' ').any(|known| known == code) {
                Some(code)
            } else {
                c.fail(
                    "org-country",
                    format!("{value:?} is not an ISO 3166-1 alpha-2 country code"),
                );
                None
            }
        }
    };
    let source = c.get("disambiguation-source").and_then(|value| {
        let upper = value.to_ascii_uppercase();
        if DISAMBIGUATION_SOURCES.contains(&upper.as_str()) {
            Some(upper)
        } else {
            c.fail(
                "disambiguation-source",
                format!("{value:?} is not one of ROR, RINGGOLD, GRID, FUNDREF, LEI"),
            );
            None
        }
    });
    let disambiguated_id = c.text("disambiguated-organization-identifier", 255);
    match (
        c.get("disambiguated-organization-identifier"),
        c.get("disambiguation-source"),
    ) {
        (Some(_), None) => c.fail(
            "disambiguation-source",
            "is required with disambiguated-organization-identifier",
        ),
        (None, Some(_)) => c.fail(
            "disambiguated-organization-identifier",
            "is required with disambiguation-source",
        ),
        _ => {}
    }
    Some(Organization {
        name: name?,
        city: city?,
        region,
        country: country?,
        disambiguated_id,
        disambiguation_source: source,
    })
}

fn external_ids(c: &mut Checker<'_>) -> Vec<ExternalId> {
    let value = c.text("external-id", 2000);
    let id_type = c.get("external-id-type").and_then(|raw| {
        let lower = raw.to_ascii_lowercase();
        if lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            Some(lower)
        } else {
            c.fail(
                "external-id-type",
                format!("{raw:?} is not an ORCID identifier type (e.g. grant_number, doi)"),
            );
            None
        }
    });
    let url = c.url("external-id-url");
    match (
        c.get("external-id"),
        c.get("external-id-type"),
        c.get("external-id-url"),
    ) {
        (Some(_), None, _) => c.fail("external-id-type", "is required with external-id"),
        (None, Some(_), _) => c.fail("external-id", "is required with external-id-type"),
        (None, None, Some(_)) => c.fail("external-id", "is required with external-id-url"),
        _ => {}
    }
    match (value, id_type) {
        (Some(value), Some(id_type)) => vec![ExternalId {
            id_type,
            value,
            url,
            relationship: Relationship::SelfId,
        }],
        _ => Vec::new(),
    }
}

fn row_event(
    cells: &HashMap<&str, &str>,
    occurred_at: DateTime<Utc>,
    earlier: Vec<CellError>,
) -> Result<HrEvent, Vec<CellError>> {
    let mut c = Checker {
        cells,
        errors: earlier,
    };
    let person_id = c.text("person-id", 255);
    if c.get("person-id").is_none() {
        c.fail("person-id", "is required");
    }
    let email = c.get("email").and_then(|value| {
        if looks_like_email(value) {
            Some(value.to_owned())
        } else {
            c.fail("email", format!("{value:?} is not an e-mail address"));
            None
        }
    });
    let section = match c.get("affiliation-section") {
        None => AffiliationSection::Employment,
        Some(value) => parse_section(value).unwrap_or_else(|| {
            c.fail(
                "affiliation-section",
                format!(
                    "{value:?} is not one of employment, education, qualification, \
                     invited-position, distinction, membership, service"
                ),
            );
            AffiliationSection::Employment
        }),
    };
    let department = c.text("department-name", 1000);
    let role_title = c.text("role-title", 1000);
    let start_date = c.date("start-date");
    let end_date = c.date("end-date");
    if let (Some(start), Some(end)) = (&start_date, &end_date)
        && ends_before_start(start, end)
    {
        c.fail(
            "end-date",
            format!("{} is before start-date {}", end.as_str(), start.as_str()),
        );
    }
    let organization = organization(&mut c);
    let url = c.url("url");
    let external_ids = external_ids(&mut c);
    let explicit_position = c.text("position-id", 255);
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let Some(person_id) = person_id else {
        // Unreachable in practice: a missing person-id was recorded as an error above.
        return Err(vec![CellError {
            column: "person-id".into(),
            message: "is required".into(),
        }]);
    };
    let position_id = explicit_position.unwrap_or_else(|| {
        let org = organization.as_ref().map_or("", |o| o.name.as_str());
        let parts = [
            person_id.as_str(),
            section_name(section),
            org,
            role_title.as_deref().unwrap_or(""),
            start_date.as_ref().map_or("", PartialDate::as_str),
        ];
        format!("csv-pos-{}", short_hash(&parts))
    });
    let event_type = if end_date.is_some() {
        HrEventType::Leave
    } else {
        HrEventType::Hire
    };
    let mut event = HrEvent {
        event_id: String::new(),
        event_type,
        occurred_at,
        person: Person {
            person_id,
            names: None,
            email,
        },
        position: Position {
            position_id,
            section,
            department,
            role_title,
            start_date,
            end_date,
            organization,
            url,
            external_ids,
        },
    };
    // The id covers the event type, person and position exactly as sent, not the time.
    let content = serde_json::to_string(&(&event.event_type, &event.person, &event.position))
        .map_err(|e| {
            vec![CellError {
                column: "(row)".to_owned(),
                message: format!("could not build the event id: {e}"),
            }]
        })?;
    event.event_id = format!("csv-{}", short_hash(&[content.as_str()]));
    Ok(event)
}

/// 32 hex digits of the SHA-256 of the parts, each length-prefixed so that no two
/// different lists of parts hash alike.
fn short_hash(parts: &[&str]) -> String {
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    digest.as_ref()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
