//! The writer process stopped in the middle of a run, then restarted: every event is applied,
//! none is lost, and no employment is written twice.
//!
//! SIGKILL is made as bad as it gets: the simulator holds one employment POST for seconds,
//! the writer is frozen (SIGSTOP) while that POST is held, so the write completes at the
//! simulator while the writer never records its put code, then killed. After the restart it
//! has to find that item instead of writing it again. SIGTERM is the graceful case: the
//! writer finishes the POST it has in flight, records it and exits 0.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use bus::events::HrEvent;
use idbridge_e2e::{Researcher, Service, Signal, Stack, StackOptions, hr, wait_for};
use serde_json::{Value, json};
use writer::ledger::ItemState;

const RESEARCHERS: usize = 6;
const POSITIONS: usize = 4;
/// The route the writer posts employments to, as the simulator's stats name it.
const KEY: &str = "POST /v3.0/{orcid}/employment";
/// How long the simulator holds the one employment POST the stop has to land on: far longer
/// than it takes the test to notice that POST and signal the writer, even on a loaded runner.
const HOLD_MS: u64 = 5_000;

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

/// A stack with the vault, the writer and the portal, and `researchers` connected people.
async fn connected_stack(name: &str, researchers: usize) -> (Stack, Vec<Researcher>) {
    let stack = Stack::start(StackOptions::new(name).services(&[
        Service::TokenVault,
        Service::Writer,
        Service::Portal,
    ]))
    .await
    .expect("the stack starts");
    let mut people = Vec::new();
    for n in 0..researchers {
        let user = stack
            .connect_researcher(&format!("p-crash-{n}"), "Researcher", &format!("Number{n}"))
            .await
            .expect("the researcher connects");
        people.push(user.researcher);
    }
    (stack, people)
}

/// One hire per position for every person.
fn hires(people: &[Researcher]) -> Vec<HrEvent> {
    let mut events = Vec::new();
    for person in people {
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
    events
}

/// Makes the simulator hold the next employment POST for [`HOLD_MS`] before it writes it,
/// and waits until a POST from the writer is being held. Returns the time it took to see it.
async fn hold_next_post(stack: &Stack) -> Duration {
    let sim = stack.sim().expect("sim");
    let tag = uuid::Uuid::new_v4().simple().to_string();
    // `{name}` matches like `*`: a unique name tells this rule apart in the listing.
    let endpoint = format!("POST /v3.0/{{orcid-{tag}}}/employment");
    sim.add_fault(&json!({"endpoint": endpoint, "latency_ms": HOLD_MS, "count": 1}))
        .await
        .expect("the holding fault");
    let started = std::time::Instant::now();
    wait_for(
        "the simulator to hold an employment POST",
        crate::DEADLINE,
        Duration::from_millis(5),
        || async {
            let rules = sim.faults().await?;
            Ok(rules
                .iter()
                .any(|r| {
                    r["endpoint"].as_str() == Some(endpoint.as_str())
                        && r["remaining"].as_u64() == Some(0)
                })
                .then_some(()))
        },
    )
    .await
    .expect("a POST is held");
    started.elapsed()
}

/// Every hire `in_orcid` from its own event, exactly one employment per position at the
/// simulator, and the simulator's put codes equal the ledger's.
async fn assert_applied_once(stack: &Stack, people: &[Researcher], events: &[HrEvent]) {
    let sim = stack.sim().expect("sim");
    let api = stack.writer_api().expect("writer API");
    let total = events.len();
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
    for event in events {
        let item = items
            .iter()
            .find(|i| i.person_id == event.person.person_id && i.key == event.position.position_id)
            .expect("an item per event");
        assert_eq!(
            item.source_event_id.as_deref(),
            Some(event.event_id.as_str())
        );
    }
    for person in people {
        let employments: Vec<Value> = sim
            .items(&person.orcid, "employments")
            .await
            .expect("record");
        assert_eq!(
            employments.len(),
            POSITIONS,
            "{}: duplicate or missing employments: {employments:#?}",
            person.person_id
        );
        let at_orcid: BTreeSet<u64> = employments
            .iter()
            .map(|e| e["put-code"].as_u64().expect("put code"))
            .collect();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_run_loses_and_doubles_nothing() {
    let (stack, people) = connected_stack(
        "a_writer_killed_mid_run_loses_and_doubles_nothing",
        RESEARCHERS,
    )
    .await;
    let sim = stack.sim().expect("sim");

    // Slow ORCID writes down so that several are in flight at the kill.
    sim.add_fault(&json!({"endpoint": "POST /v3.0/*/employment", "latency_ms": 150}))
        .await
        .expect("fault");
    let events = hires(&people);
    let total = events.len();
    let pid = stack.pid(Service::Writer, 0).expect("pid");
    // Replica 0 takes the HR events; the intake stores them before answering.
    stack
        .writer_api()
        .expect("writer API")
        .send(&events)
        .await
        .expect("intake");

    // Freeze the writer while the simulator holds one of its POSTs; the POST completes at
    // ORCID (the frozen writer's socket stays open) and is never recorded; then kill it. On
    // a runner so loaded that the freeze came after the hold ended (the writer recorded the
    // POST), let it go on and try again with the next POST.
    let mut tries = 0;
    let (written_at_kill, recorded_at_kill) = loop {
        tries += 1;
        let noticed = hold_next_post(&stack).await;
        stack
            .signal(Service::Writer, 0, Signal::Stop)
            .expect("SIGSTOP the writer");
        // The held POST ends at the simulator HOLD_MS after it came in.
        let landed = wait_for(
            "the held POST to complete at ORCID, unrecorded",
            Duration::from_millis(HOLD_MS * 2),
            Duration::from_millis(50),
            || async {
                let written = sim.stat(KEY, Some(201)).await?;
                let recorded = recorded_put_codes(&stack).await;
                Ok((written > recorded).then_some(()))
            },
        )
        .await;
        if landed.is_ok() {
            stack
                .kill_and_reap(Service::Writer, 0)
                .await
                .expect("SIGKILL the writer");
            let written = sim.stat(KEY, Some(201)).await.expect("stats");
            let recorded = recorded_put_codes(&stack).await;
            if written > recorded {
                break (written, recorded);
            }
            panic!(
                "the writer recorded the held POST after all ({written} at ORCID, {recorded} recorded)"
            );
        }
        assert!(
            tries < 3,
            "the freeze never landed inside a {HOLD_MS} ms hold in {tries} tries (last seen after {noticed:?})"
        );
        stack
            .signal(Service::Writer, 0, Signal::Cont)
            .expect("SIGCONT the writer");
    };
    assert!(
        written_at_kill < total as u64,
        "the kill came too late to test anything ({written_at_kill} of {total} written)"
    );
    sim.clear_faults().await.expect("faults");
    stack
        .restart(Service::Writer, 0)
        .await
        .expect("the writer restarts");
    assert_ne!(stack.pid(Service::Writer, 0).expect("pid"), pid);

    assert_applied_once(&stack, &people, &events).await;
    eprintln!(
        "killed the writer with {written_at_kill} of {total} employments at ORCID, {recorded_at_kill} of them recorded ({tries} tries); {} POSTs in all",
        sim.stat(KEY, None).await.expect("stats")
    );

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_stopped_with_sigterm_finishes_its_work_in_flight() {
    let (stack, people) = connected_stack(
        "a_writer_stopped_with_sigterm_finishes_its_work_in_flight",
        2,
    )
    .await;
    let sim = stack.sim().expect("sim");
    sim.add_fault(&json!({"endpoint": "POST /v3.0/*/employment", "latency_ms": 100}))
        .await
        .expect("fault");
    let events = hires(&people);
    let total = events.len();
    stack
        .writer_api()
        .expect("writer API")
        .send(&events)
        .await
        .expect("intake");

    // SIGTERM while the simulator holds one of its POSTs: the writer stops consuming, waits
    // for that answer, records it, and exits 0.
    hold_next_post(&stack).await;
    let before = sim.stat(KEY, Some(201)).await.expect("stats");
    stack
        .signal(Service::Writer, 0, Signal::Term)
        .expect("SIGTERM the writer");
    let status = stack
        .wait_exit(
            Service::Writer,
            0,
            Duration::from_millis(HOLD_MS) + Duration::from_secs(20),
        )
        .await
        .expect("the writer exits after SIGTERM");
    assert!(
        status.success(),
        "the writer exits 0 on SIGTERM: {status:?}"
    );
    let written = sim.stat(KEY, Some(201)).await.expect("stats");
    let recorded = recorded_put_codes(&stack).await;
    assert!(
        written > before,
        "the held POST was finished, not abandoned ({before} → {written})"
    );
    assert_eq!(
        written, recorded,
        "every employment the writer got to ORCID is recorded before it exits"
    );
    assert!(
        written < total as u64,
        "the writer stopped consuming ({written} of {total} written before the stop)"
    );

    sim.clear_faults().await.expect("faults");
    stack
        .restart(Service::Writer, 0)
        .await
        .expect("the writer restarts");
    assert_applied_once(&stack, &people, &events).await;
    assert_eq!(
        sim.stat(KEY, Some(201)).await.expect("stats"),
        total as u64,
        "one POST per hire in all"
    );

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}
