//! `idbridge hr import` and `hr send`: the report, the exit codes, and the events on the
//! real RabbitMQ HR exchange exactly as the writer consumes them.

use std::collections::BTreeMap;

use bus::events::HrEvent;
use serde_json::json;

use crate::helpers::*;

/// Two good rows (a hire, then a leave of another person), two bad ones; BOM, CRLF, spaced
/// headers in another order, an unknown column.
const MIXED: &str = "\u{feff}Role Title , person_id,start-date,end-date,affiliation-section,notes\r\n\
Professor,P-1,2020-01-15,,employment,x\r\n\
Lecturer,,2021,,employment,\r\n\
Researcher,P-3,2019-05,2024-12-31,,\r\n\
Dean,P-4,2020-13-45,,job,\r\n";

#[test]
fn dry_run_reports_every_row_and_exits_3_on_bad_rows() {
    let dir = TempDir::new();
    let file = dir.write("mixed.csv", MIXED.as_bytes());
    let run = run(
        idbridge(&["hr", "import", "--dry-run", file.to_str().expect("utf-8")]),
        DEADLINE,
    );
    assert_eq!(
        run.code(),
        Some(3),
        "bad rows → exit 3; stderr: {}",
        run.stderr
    );
    let out = &run.stdout;
    assert!(
        out.contains("warning: unknown column \"notes\" ignored"),
        "{out}"
    );
    let row = |n: u32| {
        out.lines()
            .filter(|l| l.starts_with(&format!("row {n:>4}")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        row(2).contains("ok") && row(2).contains("hire") && row(2).contains("person P-1"),
        "{out}"
    );
    assert!(row(3).contains("BAD"), "{out}");
    assert!(
        row(4).contains("ok") && row(4).contains("leave") && row(4).contains("person P-3"),
        "{out}"
    );
    assert!(row(5).contains("BAD"), "{out}");
    // Each bad column of row 5 is named with its reason.
    let after5: String = out.split("row    5").nth(1).unwrap_or_default().to_owned();
    assert!(after5.contains("start-date:"), "{out}");
    assert!(after5.contains("affiliation-section:"), "{out}");
    assert!(
        out.contains("person-id:"),
        "row 3's missing person id is named: {out}"
    );
    assert!(out.contains("4 rows: 2 good, 2 bad"), "{out}");
    assert!(out.contains("dry run: nothing published"), "{out}");
}

#[test]
fn a_clean_dry_run_exits_0_without_a_broker() {
    let dir = TempDir::new();
    let file = dir.write(
        "clean.csv",
        b"person-id,role-title,start-date\nP-1,Professor,2020\n",
    );
    let run = run(
        idbridge(&["hr", "import", "--dry-run", file.to_str().expect("utf-8")]),
        DEADLINE,
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("1 rows: 1 good, 0 bad"),
        "{}",
        run.stdout
    );
}

#[test]
fn import_without_a_broker_fails_naming_the_setting() {
    let dir = TempDir::new();
    let file = dir.write(
        "clean.csv",
        b"person-id,role-title,start-date\nP-1,Professor,2020\n",
    );
    let run = run(
        idbridge(&["hr", "import", file.to_str().expect("utf-8")]),
        DEADLINE,
    );
    assert_eq!(run.code(), Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("bus.amqp_url"), "{}", run.stderr);
}

#[tokio::test]
async fn import_publishes_the_good_rows_to_the_hr_exchange() {
    let prefix = prefix();
    let mut probe = HrProbe::new(&prefix).await;
    let dir = TempDir::new();
    let file = dir.write("mixed.csv", MIXED.as_bytes());
    let mut command = idbridge(&["hr", "import", file.to_str().expect("utf-8")]);
    command
        .env("IDBRIDGE__BUS__AMQP_URL", amqp_url())
        .env("IDBRIDGE__BUS__PREFIX", &prefix);
    let run = tokio::task::spawn_blocking(move || run(command, DEADLINE))
        .await
        .expect("join");
    assert_eq!(
        run.code(),
        Some(3),
        "bad rows → exit 3 even when the good ones went: {}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("published 2 of 2 events; 2 bad rows not sent"),
        "{}",
        run.stdout
    );

    let deliveries = probe.take(2).await;
    let by_key: BTreeMap<String, _> = deliveries
        .iter()
        .map(|d| (d.routing_key.clone(), d))
        .collect();
    let hire = by_key.get("hr.hire").expect("a hire");
    let leave = by_key.get("hr.leave").expect("a leave");
    assert_eq!(hire.exchange, format!("{prefix}.hr"));
    let hire_event: HrEvent = hire.payload().expect("an hr-event v1");
    assert_eq!(hire_event.person.person_id, "P-1");
    assert_eq!(hire_event.position.role_title.as_deref(), Some("Professor"));
    assert_eq!(
        hire.partition_key.as_deref(),
        Some("P-1"),
        "partition key = person id"
    );
    let leave_event: HrEvent = leave.payload().expect("an hr-event v1");
    assert_eq!(leave_event.person.person_id, "P-3");
    assert_eq!(leave.partition_key.as_deref(), Some("P-3"));
    // The report names what was published.
    assert!(run.stdout.contains(&hire_event.event_id), "{}", run.stdout);
    assert!(run.stdout.contains(&leave_event.event_id), "{}", run.stdout);
    probe.assert_no_more().await;
    probe.finish().await;
}

#[tokio::test]
async fn send_validates_each_event_and_publishes_the_valid_ones() {
    let prefix = prefix();
    let mut probe = HrProbe::new(&prefix).await;
    let good_payload = json!({
        "event_id": "hr-send-1",
        "event_type": "hire",
        "occurred_at": "2026-03-01T09:00:00Z",
        "person": {"person_id": "P-7"},
        "position": {"position_id": "POS-7", "role_title": "Professor", "start_date": "2026-03-01"}
    });
    let envelope = json!({
        "message_id": "0193b3a0-0000-7000-8000-000000000001",
        "type": "hr-event",
        "schema_version": 1,
        "occurred_at": "2026-03-01T09:00:00Z",
        "correlation_id": "0193b3a0-0000-7000-8000-000000000001",
        "payload": good_payload,
    });
    let bad = json!({"event_id": "hr-send-2", "event_type": "promote", "person": {}});
    let dir = TempDir::new();
    let file = dir.write(
        "events.json",
        serde_json::to_string(&json!([envelope, bad]))
            .expect("json")
            .as_bytes(),
    );
    let mut command = idbridge(&["hr", "send", file.to_str().expect("utf-8")]);
    command
        .env("IDBRIDGE__BUS__AMQP_URL", amqp_url())
        .env("IDBRIDGE__BUS__PREFIX", &prefix);
    let run = tokio::task::spawn_blocking(move || run(command, DEADLINE))
        .await
        .expect("join");
    assert_eq!(run.code(), Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("event   1  published hr.hire"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("event   2  INVALID"), "{}", run.stdout);
    let deliveries = probe.take(1).await;
    assert_eq!(deliveries[0].routing_key, "hr.hire");
    assert_eq!(
        deliveries[0].envelope.message_id.to_string(),
        "0193b3a0-0000-7000-8000-000000000001",
        "the sender's envelope is kept"
    );
    assert_eq!(deliveries[0].partition_key.as_deref(), Some("P-7"));
    probe.assert_no_more().await;
    probe.finish().await;
}
