//! The writer process killed with SIGKILL while many hires are in flight, then restarted:
//! every event is applied, none is lost, and no employment is written twice.
//!
//! The kill is made as bad as it gets: the writer is frozen (SIGSTOP) first, so the ORCID
//! writes it has in flight complete at the simulator while it never records their put
//! codes, then killed. After the restart it has to find those items instead of writing
//! them again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use idbridge_e2e::{Service, Signal, Stack, StackOptions, hr, wait_for};
use serde_json::json;
use writer::ledger::ItemState;

const RESEARCHERS: usize = 6;
const POSITIONS: usize = 4;

/// Ledger items with a put code, read from the database (the writer is down).
async fn recorded_put_codes(stack: &Stack) -> u64 {
    let db = stack.db().await.expect("database");
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM writer_items WHERE put_code IS NOT NULL",
        ))
        .await
        .expect("query")
        .expect("a row");
    let n: i64 = row.try_get("", "n").expect("n");
    let _ = db.close().await;
    u64::try_from(n).expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_run_loses_and_doubles_nothing() {
    let stack = Stack::start(
        StackOptions::new("a_writer_killed_mid_run_loses_and_doubles_nothing").services(&[
            Service::TokenVault,
            Service::Writer,
            Service::Portal,
        ]),
    )
    .await
    .expect("the stack starts");
    let sim = stack.sim().expect("sim");
    let mut people = Vec::new();
    for n in 0..RESEARCHERS {
        let user = stack
            .connect_researcher(&format!("p-crash-{n}"), "Researcher", &format!("Number{n}"))
            .await
            .expect("the researcher connects");
        people.push(user.researcher);
    }

    // Slow ORCID writes down so that the kill lands while many are in flight.
    sim.add_fault(&json!({"endpoint": "POST /v3.0/*/employment", "latency_ms": 150}))
        .await
        .expect("fault");
    let mut events = Vec::new();
    for person in &people {
        for p in 0..POSITIONS {
            events.push(
                hr::hire(
                    person,
                    &format!("pos-{p}"),
                    &format!("Role {p}"),
                    "2025-01-01",
                )
                .expect("event"),
            );
        }
    }
    let total = events.len();
    // Replica 0 takes the HR events; the intake stores them before answering.
    stack
        .writer_api()
        .expect("writer API")
        .send(&events)
        .await
        .expect("intake");

    // Once a few items reached ORCID: freeze the writer, let its in-flight writes finish at
    // ORCID, then kill it.
    let key = "POST /v3.0/{orcid}/employment";
    wait_for(
        "the first employments at ORCID",
        crate::DEADLINE,
        Duration::from_millis(20),
        || async { Ok((sim.stat(key, Some(201)).await? >= 3).then_some(())) },
    )
    .await
    .expect("writes started");
    let pid = stack.pid(Service::Writer, 0).expect("pid");
    stack
        .kill(Service::Writer, 0, Signal::Stop)
        .expect("SIGSTOP the writer");
    tokio::time::sleep(Duration::from_millis(600)).await;
    stack
        .kill(Service::Writer, 0, Signal::Kill)
        .expect("SIGKILL the writer");
    let written_at_kill = sim.stat(key, Some(201)).await.expect("stats");
    let recorded_at_kill = recorded_put_codes(&stack).await;
    assert!(
        written_at_kill < total as u64,
        "the kill came too late to test anything ({written_at_kill} of {total} written)"
    );
    assert!(
        written_at_kill > recorded_at_kill,
        "no write was in flight at the kill ({written_at_kill} at ORCID, {recorded_at_kill} recorded)"
    );
    sim.clear_faults().await.expect("faults");
    stack
        .restart(Service::Writer, 0)
        .await
        .expect("the writer restarts");
    assert_ne!(stack.pid(Service::Writer, 0).expect("pid"), pid);

    // Every event applied.
    let api = stack.writer_api().expect("writer API");
    let items = wait_for(
        "every hire written",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || async {
            let items = api.items(None).await?;
            let done = items
                .iter()
                .filter(|i| i.state == ItemState::InOrcid && i.put_code.is_some())
                .count();
            Ok((done == total).then_some(items))
        },
    )
    .await
    .expect("nothing lost");
    assert_eq!(items.len(), total, "one ledger item per position");
    for event in &events {
        let item = items
            .iter()
            .find(|i| i.person_id == event.person.person_id && i.key == event.position.position_id)
            .expect("an item per event");
        assert_eq!(
            item.source_event_id.as_deref(),
            Some(event.event_id.as_str())
        );
    }

    // At ORCID: exactly one employment per position, with the put codes the writer stored.
    for person in &people {
        let at_orcid: BTreeSet<u64> = sim
            .items(&person.orcid, "employments")
            .await
            .expect("record")
            .iter()
            .map(|e| e["put-code"].as_u64().expect("put code"))
            .collect();
        let employments = sim
            .items(&person.orcid, "employments")
            .await
            .expect("record");
        assert_eq!(
            employments.len(),
            POSITIONS,
            "{}: duplicate or missing employments: {employments:#?}",
            person.person_id
        );
        let stored: BTreeSet<u64> = items
            .iter()
            .filter(|i| i.person_id == person.person_id)
            .filter_map(|i| i.put_code)
            .collect();
        assert_eq!(at_orcid, stored, "{}: put codes", person.person_id);
        let roles: BTreeMap<String, u64> = employments
            .iter()
            .map(|e| {
                (
                    e["role-title"].as_str().unwrap_or_default().to_owned(),
                    e["put-code"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(roles.len(), POSITIONS, "one per role: {roles:?}");
    }
    eprintln!(
        "killed the writer with {written_at_kill} of {total} employments at ORCID, {recorded_at_kill} of them recorded; {} POSTs in all",
        sim.stat(key, None).await.expect("stats")
    );

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}
