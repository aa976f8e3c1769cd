//! CSV import of HR events: per-row outcomes, tolerant input, stable ids, schema-valid events.

use bus::events::{AffiliationSection, Event, HrEvent, HrEventType};
use bus::schemas;
use chrono::{TimeZone, Utc};
use writer::csv_import::{FileError, ImportOptions, ImportReport, ImportWarning, parse_hr_csv};

fn options() -> ImportOptions {
    ImportOptions {
        occurred_at: Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).single(),
    }
}

fn parse(text: &str) -> ImportReport {
    parse_hr_csv(text.as_bytes(), &options())
}

fn assert_valid(report: &ImportReport) {
    for event in report.events() {
        let value = serde_json::to_value(event).unwrap_or_else(|e| panic!("serialise: {e}"));
        schemas::validate(HrEvent::TYPE, HrEvent::VERSION, &value)
            .unwrap_or_else(|e| panic!("{} invalid: {e}\n{value:#}", event.event_id));
    }
}

fn error_columns(report: &ImportReport, row: u64) -> Vec<String> {
    let entry = report
        .rows
        .iter()
        .find(|r| r.row == row)
        .unwrap_or_else(|| panic!("no row {row} in {report:?}"));
    let mut columns: Vec<String> = entry.errors().iter().map(|e| e.column.clone()).collect();
    columns.sort();
    columns
}

const MIXED: &str = "\
person-id,email,affiliation-section,department-name,role-title,start-date,end-date,org-name,org-country,org-city,org-region,disambiguated-organization-identifier,disambiguation-source,url,external-id,external-id-type,external-id-url
P-1,a@example.edu,employment,Physics,Professor,2020-09-01,,,,,,,,,,,
P-2,b@example.edu,education,Graduate School,Doctoral candidate,2019,2024-06,,,,,,,https://example.edu/phd,GS-1,grant_number,https://example.edu/grants/GS-1
,c@example.edu,employment,,,2020,,,,,,,,,,,
P-4,,stardust,,,2020-13,,,,,,,,,,,
P-5,,employment,,,2021-05,2020,,,,,,,,,,
P-6,,invited-position,,Visitor,2022,,Other University,Germany,Berlin,,https://ror.org/00example,WIKIDATA,,,,
P-7,,service,,Reviewer,2023,,Other University,de,Berlin,,https://ror.org/00example,ror,,X-9,,
P-8,not-an-email,employment,,,,,,,,,,,not a url,,,
";

#[test]
fn mixed_rows_get_a_correct_per_row_report() {
    let report = parse(MIXED);
    assert_eq!(report.file_error, None);
    assert!(report.warnings.is_empty());
    let rows: Vec<u64> = report.rows.iter().map(|r| r.row).collect();
    assert_eq!(rows, [2, 3, 4, 5, 6, 7, 8, 9]);

    let hire = report.rows[0].event().unwrap();
    assert_eq!(hire.event_type, HrEventType::Hire);
    assert_eq!(hire.person.person_id, "P-1");
    assert_eq!(hire.person.email.as_deref(), Some("a@example.edu"));
    assert_eq!(hire.position.department.as_deref(), Some("Physics"));
    assert_eq!(
        hire.position.start_date.as_ref().unwrap().as_str(),
        "2020-09-01"
    );
    assert!(hire.position.organization.is_none());
    assert!(hire.event_id.starts_with("csv-"));
    assert!(hire.position.position_id.starts_with("csv-pos-"));

    let leave = report.rows[1].event().unwrap();
    assert_eq!(leave.event_type, HrEventType::Leave);
    assert_eq!(leave.position.section, AffiliationSection::Education);
    assert_eq!(
        leave.position.end_date.as_ref().unwrap().as_str(),
        "2024-06"
    );
    assert_eq!(
        leave.position.url.as_deref(),
        Some("https://example.edu/phd")
    );
    let ext = &leave.position.external_ids[0];
    assert_eq!(
        (ext.id_type.as_str(), ext.value.as_str()),
        ("grant_number", "GS-1")
    );

    assert_eq!(error_columns(&report, 4), ["person-id"]);
    assert_eq!(
        error_columns(&report, 5),
        ["affiliation-section", "start-date"]
    );
    assert_eq!(error_columns(&report, 6), ["end-date"]);
    assert_eq!(
        error_columns(&report, 7),
        ["disambiguation-source", "org-country"]
    );
    // Lowercase country and source are accepted; an id without a type is not.
    assert_eq!(error_columns(&report, 8), ["external-id-type"]);
    assert_eq!(error_columns(&report, 9), ["email", "url"]);
    let message = &report.rows[3].errors()[0].message;
    assert!(message.contains("stardust"), "{message}");

    assert_eq!((report.good(), report.bad()), (2, 6));
    assert!(!report.is_clean());
    assert_valid(&report);
}

#[test]
fn organization_override_is_checked_and_normalised() {
    let report = parse(
        "person-id,role-title,start-date,org-name,org-country,org-city,disambiguated-organization-identifier,disambiguation-source\n\
         P-1,Visitor,2022,Other University,de,Berlin,https://ror.org/00example,ror\n\
         P-2,Visitor,2022,Other University,,,,\n",
    );
    let org = report.rows[0]
        .event()
        .unwrap()
        .position
        .organization
        .clone()
        .unwrap();
    assert_eq!(org.country, "DE");
    assert_eq!(org.disambiguation_source.as_deref(), Some("ROR"));
    assert_eq!(error_columns(&report, 3), ["org-city", "org-country"]);
    assert_valid(&report);
}

#[test]
fn bom_and_crlf() {
    let text = "\u{feff}person-id,role-title,start-date\r\nP-1,Professor,2020\r\n\r\nP-2,Lecturer,2021-01\r\n";
    let report = parse(text);
    assert_eq!(report.file_error, None);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let rows: Vec<(u64, &str)> = report
        .rows
        .iter()
        .map(|r| (r.row, r.event().unwrap().person.person_id.as_str()))
        .collect();
    assert_eq!(rows, [(2, "P-1"), (4, "P-2")]);
    assert_valid(&report);
}

#[test]
fn cr_only_line_ends() {
    let report = parse("person-id,start-date\rP-1,2020\rP-2,bad\r");
    assert_eq!(report.rows.len(), 2);
    assert_eq!(report.rows[0].row, 2);
    assert_eq!(report.rows[0].event().unwrap().person.person_id, "P-1");
    assert_eq!(error_columns(&report, 3), ["start-date"]);
}

#[test]
fn whitespace_case_and_shuffled_columns() {
    let plain =
        parse("person-id,role-title,start-date,department-name\nP-1,Professor,2020,Physics\n");
    let messy = parse(
        "  Start-Date , DEPARTMENT-NAME,Role-Title ,  Person-ID  , favourite-colour\n   \n  2020 ,  Physics , Professor ,P-1 , blue\n",
    );
    assert_eq!(messy.file_error, None);
    assert_eq!(
        messy.warnings,
        [ImportWarning::UnknownColumn("favourite-colour".into())]
    );
    assert_eq!(messy.rows.len(), 1);
    assert_eq!(messy.rows[0].row, 3);
    assert_eq!(messy.rows[0].event(), plain.rows[0].event());
}

#[test]
fn quoted_fields_with_commas_quotes_and_newlines() {
    let report = parse(
        "person-id,department-name,role-title,start-date\n\
         P-1,\"Physics, Astronomy\",\"Professor \"\"emeritus\"\"\",2020\n\
         P-2,\"Line one\nline two\",Lecturer,2021\n\
         P-3,Chemistry,Lecturer,20x\n",
    );
    let first = report.rows[0].event().unwrap();
    assert_eq!(
        first.position.department.as_deref(),
        Some("Physics, Astronomy")
    );
    assert_eq!(
        first.position.role_title.as_deref(),
        Some("Professor \"emeritus\"")
    );
    let second = report.rows[1].event().unwrap();
    assert_eq!(
        second.position.department.as_deref(),
        Some("Line one\nline two")
    );
    // The row numbers are the file's lines: the quoted newline pushes the next row down.
    assert_eq!(report.rows[1].row, 3);
    assert_eq!(error_columns(&report, 5), ["start-date"]);
    assert_valid(&report);
}

#[test]
fn ids_are_stable_across_imports_and_a_leave_keeps_the_position() {
    let first = parse(MIXED);
    let later = parse_hr_csv(MIXED.as_bytes(), &ImportOptions::default());
    let ids = |r: &ImportReport| {
        r.events()
            .map(|e| (e.event_id.clone(), e.position.position_id.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&later));
    assert_ne!(first.rows[0].event(), None);

    let hire_then_leave = parse(
        "person-id,role-title,start-date,end-date\nP-1,Professor,2020,\nP-1,Professor,2020,2025\nP-1,Professor,2021,\n",
    );
    let events: Vec<&HrEvent> = hire_then_leave.events().collect();
    assert_eq!(
        events[0].position.position_id,
        events[1].position.position_id
    );
    assert_ne!(events[0].event_id, events[1].event_id);
    assert_eq!(events[1].event_type, HrEventType::Leave);
    assert_ne!(
        events[0].position.position_id,
        events[2].position.position_id
    );

    let explicit = parse("position-id,person-id,start-date\nPOS-9,P-1,2020\n");
    assert_eq!(
        explicit.rows[0].event().unwrap().position.position_id,
        "POS-9"
    );
    assert_valid(&explicit);
}

#[test]
fn malformed_files_are_file_level_errors() {
    assert_eq!(parse("").file_error, Some(FileError::NoHeader));
    assert_eq!(parse("\n \n").file_error, Some(FileError::NoHeader));
    assert_eq!(
        parse("email,role-title\na@example.edu,Professor\n").file_error,
        Some(FileError::NoPersonIdColumn)
    );
    assert_eq!(
        parse("person-id,Person_ID\nP-1,P-1\n").file_error,
        Some(FileError::DuplicateColumn("person-id".into()))
    );
    let rendered = parse("email\n").render_dry_run();
    assert!(rendered.contains("person-id"), "{rendered}");
}

#[test]
fn dry_run_lists_every_row_and_a_summary() {
    let report = parse(MIXED);
    let rendered = report.render_dry_run();
    for row in &report.rows {
        assert!(
            rendered.contains(&format!("row {:>4}", row.row)),
            "row {} missing:\n{rendered}",
            row.row
        );
    }
    for event in report.events() {
        assert!(rendered.contains(&event.event_id), "{rendered}");
    }
    assert!(rendered.contains("stardust"), "{rendered}");
    assert!(rendered.contains("8 rows: 2 good, 6 bad"), "{rendered}");
}
