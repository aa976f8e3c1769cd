//! A change the researcher makes on their ORCID record reaches us: the simulator calls the
//! webhook, the webhook receiver debounces it into "record changed", the reader reads the
//! record into a new snapshot, and an item of ours the researcher deleted is marked
//! `deleted_by_user` by the writer (and not written again).

use std::time::Duration;

use idbridge_e2e::{Sim, Stack, StackOptions, hr, wait_for};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};
use writer::ledger::ItemState;

use crate::DEADLINE;

const POLL: Duration = Duration::from_millis(200);

/// The reader's snapshot of `orcid`: (read_count, items).
async fn snapshot(stack: &Stack, orcid: &str) -> anyhow::Result<Option<(i64, Vec<Value>)>> {
    let db = stack.db().await?;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT read_count, items FROM reader_snapshots WHERE orcid = $1",
            vec![orcid.into()],
        ))
        .await?;
    let _ = db.close().await;
    let Some(row) = row else { return Ok(None) };
    let count: i64 = row.try_get("", "read_count")?;
    let items: String = row.try_get("", "items")?;
    let items: Vec<Value> = serde_json::from_str(&items)?;
    Ok(Some((count, items)))
}

/// The column `value` of the row `sql` (with `$1` = `orcid`) finds, if any.
async fn value_for<T: sea_orm::TryGetable>(
    stack: &Stack,
    sql: &str,
    orcid: &str,
) -> anyhow::Result<Option<T>> {
    let db = stack.db().await?;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            vec![orcid.into()],
        ))
        .await?;
    let _ = db.close().await;
    Ok(match row {
        Some(row) => Some(row.try_get("", "value")?),
        None => None,
    })
}

/// Sections of `orcid` the writer knows clean from the reader's snapshots.
async fn clean_sections(stack: &Stack, orcid: &str) -> anyhow::Result<Option<i64>> {
    value_for(
        stack,
        "SELECT count(*) AS value FROM writer_clean_sections WHERE orcid = $1 AND basis = 'snapshot'",
        orcid,
    )
    .await
}

async fn registration_state(stack: &Stack, orcid: &str) -> anyhow::Result<Option<String>> {
    value_for(
        stack,
        "SELECT state AS value FROM webhook_registrations WHERE orcid = $1",
        orcid,
    )
    .await
}

/// Employment POSTs and PUTs the simulator answered, whatever the status.
async fn employment_writes(sim: &Sim) -> anyhow::Result<u64> {
    let stats = sim.stats().await?;
    let Some(routes) = stats.as_object() else {
        return Ok(0);
    };
    Ok(routes
        .iter()
        .filter(|(route, _)| {
            (route.starts_with("POST ") || route.starts_with("PUT "))
                && route.contains("/employment")
        })
        .filter_map(|(_, by_status)| by_status.as_object())
        .flat_map(|by_status| by_status.values().filter_map(Value::as_u64))
        .sum())
}

fn has_put_code(items: &[Value], put_code: u64) -> bool {
    items
        .iter()
        .any(|i| i["put_code"].as_u64() == Some(put_code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_edit_at_orcid_reaches_a_new_snapshot() {
    let stack = Stack::start(StackOptions::new(
        "a_record_edit_at_orcid_reaches_a_new_snapshot",
    ))
    .await
    .expect("the stack starts");
    let sim = stack.sim().expect("sim");
    let user = stack
        .connect_researcher("p-edit-1", "Mary", "Somerville")
        .await
        .expect("the researcher connects");
    let orcid = user.researcher.orcid.clone();

    // "Connection ready": the receiver registers a webhook, the reader takes a first snapshot.
    wait_for("the webhook registration", DEADLINE, POLL, || async {
        Ok(registration_state(&stack, &orcid)
            .await?
            .filter(|s| s == "registered"))
    })
    .await
    .expect("registered");
    wait_for("the first snapshot", DEADLINE, POLL, || async {
        snapshot(&stack, &orcid).await
    })
    .await
    .expect("a first snapshot");
    // The writer learns from that snapshot ("record updated") that the record holds nothing of
    // ours to adopt, so the first employment is posted without reading the section first.
    wait_for(
        "the writer to learn clean sections",
        DEADLINE,
        POLL,
        || async { Ok(clean_sections(&stack, &orcid).await?.filter(|n| *n == 8)) },
    )
    .await
    .expect("seven affiliation sections and works known clean from the reader's snapshot");
    let listings_before = sim
        .stat("GET /v3.0/{orcid}/employments", None)
        .await
        .expect("stats");

    // Our employment lands; the webhook for that change gives a snapshot holding it.
    let hire = hr::hire(&user.researcher, "pos-edit", "Lecturer", "2023-01-15").expect("event");
    stack
        .writer_api()
        .expect("writer API")
        .send(std::slice::from_ref(&hire))
        .await
        .expect("intake");
    let ours = stack
        .wait_item_written("p-edit-1", "pos-edit", &hire.event_id, DEADLINE)
        .await
        .expect("the hire is written")
        .put_code
        .expect("put code");
    assert_eq!(
        sim.stat("GET /v3.0/{orcid}/employments", None)
            .await
            .expect("stats"),
        listings_before,
        "the first employment is posted without reading the section"
    );
    let (count_before, _) = wait_for("a snapshot with our employment", DEADLINE, POLL, || async {
        let _ = sim.flush_webhooks().await;
        Ok(snapshot(&stack, &orcid)
            .await?
            .filter(|(_, items)| has_put_code(items, ours)))
    })
    .await
    .expect("the snapshot follows our write");

    // The researcher adds a work of their own on ORCID's site.
    let own = sim
        .add_item(
            &orcid,
            "work",
            &json!({"title": {"title": {"value": "Rivers of the North"}}, "type": "book"}),
        )
        .await
        .expect("the researcher adds a work");
    let (count_after, items) = wait_for(
        "a snapshot with the researcher's work",
        DEADLINE,
        POLL,
        || async {
            let _ = sim.flush_webhooks().await;
            Ok(snapshot(&stack, &orcid)
                .await?
                .filter(|(_, items)| has_put_code(items, own)))
        },
    )
    .await
    .expect("webhook → receiver → reader → new snapshot");
    assert!(
        count_after > count_before,
        "a new read: {count_before} → {count_after}"
    );
    let work = items
        .iter()
        .find(|i| i["put_code"].as_u64() == Some(own))
        .expect("the work");
    assert_eq!(work["section"], "work", "{work}");
    assert!(
        work.get("source_client_id").is_none_or(Value::is_null),
        "the researcher's own: {work}"
    );
    assert!(has_put_code(&items, ours), "ours is still there");

    // The researcher deletes our employment: a new snapshot without it, and the writer marks
    // it deleted_by_user instead of writing it again.
    sim.delete_item(&orcid, "employment", ours)
        .await
        .expect("the researcher deletes our employment");
    wait_for(
        "a snapshot without our employment",
        DEADLINE,
        POLL,
        || async {
            let _ = sim.flush_webhooks().await;
            Ok(snapshot(&stack, &orcid)
                .await?
                .filter(|(_, items)| !has_put_code(items, ours)))
        },
    )
    .await
    .expect("the snapshot follows the deletion");
    let api = stack.writer_api().expect("writer API");
    let item = wait_for(
        "the writer to mark it deleted_by_user",
        DEADLINE,
        POLL,
        || async {
            Ok(api
                .item("p-edit-1", "pos-edit")
                .await?
                .filter(|i| i.state == ItemState::DeletedByUser))
        },
    )
    .await
    .expect("deleted_by_user");
    assert_eq!(item.put_code, Some(ours));
    // Their choice wins: nothing is written back, not even when HR sends a change for that
    // position. The writer handles one person's events in order, so once it has answered
    // that leave, everything the deletion could have caused is behind us too.
    let writes_before = employment_writes(&sim).await.expect("stats");
    let leave = hr::leave(&hire, "2025-06-30").expect("event");
    api.send(std::slice::from_ref(&leave))
        .await
        .expect("intake");
    let skipped = wait_for(
        "the writer to skip the leave of a deleted item",
        DEADLINE,
        POLL,
        || async {
            let history = api.history(item.id).await?;
            Ok(history.attempts.into_iter().find(|a| {
                a.event_id.as_deref() == Some(leave.event_id.as_str()) && a.action != "merge"
            }))
        },
    )
    .await
    .expect("the leave is handled");
    assert_eq!(skipped.outcome, "skipped", "{skipped:?}");
    let item = api
        .item("p-edit-1", "pos-edit")
        .await
        .expect("item")
        .expect("the item");
    assert_eq!(item.state, ItemState::DeletedByUser);
    assert_eq!(
        employment_writes(&sim).await.expect("stats"),
        writes_before,
        "no employment POST or PUT after the deletion"
    );
    let employments = sim.items(&orcid, "employments").await.expect("record");
    assert!(employments.is_empty(), "written again: {employments:#?}");

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}
