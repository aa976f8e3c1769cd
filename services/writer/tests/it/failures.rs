//! ORCID failing: 5xx and 503 bursts (retried, nothing twice), a revoked token (stop, mark,
//! tell the token source), a missing scope (denied, parked), an item the researcher deleted
//! (not recreated, unless configured), retries running out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bus::events::{ConnectionReady, HrEventType};
use bus::{Delivery, Outcome};
use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::json;
use writer::ledger::ItemState;
use writer::tokens::{PersonToken, TokenError, TokenSource};
use writer::{Cause, WritePolicy};

use crate::helpers::*;

#[tokio::test]
async fn five_xx_and_503_bursts_apply_everything_once() {
    let h = Harness::new().await;
    let people = ["P-30", "P-31", "P-32"];
    let mut orcids = Vec::new();
    for person in people {
        orcids.push(h.connected(person).await);
    }
    add_fault(
        &h.sim,
        json!({"endpoint": "/v3.0/**", "error_rate": 0.3, "status": 500}),
    )
    .await;
    add_fault(
        &h.sim,
        json!({"endpoint": "/v3.0/**", "status": 503, "count": 15}),
    )
    .await;

    // Per person, in order: hire, change and leave of two positions; people in parallel.
    let runs = people.iter().map(|person| {
        let h = &h;
        async move {
            for position in ["A", "B"] {
                let hire = hire(person, &format!("{person}-{position}"), "2025-01-01");
                let change = hire
                    .then(HrEventType::Change)
                    .department("Renamed Department");
                let leave = change.then(HrEventType::Leave).end("2026-06-30");
                for event in [&hire, &change, &leave] {
                    let outcome = h.drive(&event.event, 200).await;
                    assert_eq!(outcome, Outcome::Ack, "{person}/{position}: {outcome:?}");
                }
            }
        }
    });
    futures_util::future::join_all(runs).await;
    clear_faults(&h.sim).await;

    let stats = sim_stats(&h.sim).await;
    let failed: u64 = stats
        .as_object()
        .expect("stats")
        .iter()
        .filter(|(route, _)| route.contains("/v3.0/"))
        .map(|(_, s)| s["500"].as_u64().unwrap_or(0) + s["503"].as_u64().unwrap_or(0))
        .sum();
    assert!(failed >= 15, "the faults were hit: {stats:#}");
    assert_eq!(
        calls(&stats, "POST /v3.0/{orcid}/employment", "201"),
        6,
        "one create per position: {stats:#}"
    );
    for (person, orcid) in people.iter().zip(&orcids) {
        let items = sim_items(&h.sim, orcid, "employments").await;
        assert_eq!(items.len(), 2, "{person}: {items:#?}");
        for item in &items {
            assert_eq!(
                text(item, "/department-name").as_deref(),
                Some("Renamed Department")
            );
            assert_eq!(text(item, "/end-date/year/value").as_deref(), Some("2026"));
        }
        for ledger in h.writer.ledger().items_of(person).await.expect("ledger") {
            assert!(ledger.is_current(), "{ledger:#?}");
            assert!(
                items
                    .iter()
                    .any(|i| i["put-code"].as_u64() == ledger.put_code.map(|p| p.get())),
                "ledger put code is on the record"
            );
        }
    }
    h.finish().await;
}

#[tokio::test]
async fn a_revoked_token_stops_writing_for_that_id() {
    let h = Harness::new().await;
    let orcid = h.connected("P-40").await;
    let first = hire("P-40", "POS-40", "2026-01-01");
    let second = hire("P-40", "POS-41", "2026-02-01");
    assert_eq!(h.apply(&first.event).await, Outcome::Ack);
    assert_eq!(h.apply(&second.event).await, Outcome::Ack);

    // The researcher removes the institution from their trusted organisations.
    let res = sim_post(
        &h.sim,
        &format!("/_sim/users/{orcid}/revoke"),
        json!({"client_id": TEST_CLIENT_ID}),
    )
    .await;
    assert_eq!(res.status(), 200);

    let leave = first.then(HrEventType::Leave).end("2026-12-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack, "no retry storm");
    for position in ["POS-40", "POS-41"] {
        let item = h.item("P-40", position).await;
        assert_eq!(item.state, ItemState::Revoked, "{position}");
    }
    let item = h.item("P-40", "POS-40").await;
    assert_eq!(item.last_error_status, Some(401));
    assert_eq!(
        h.tokens.reports().len(),
        1,
        "the token source was told once"
    );
    let failed = h.db.outbox_payloads("item-failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["error"]["kind"], "token-revoked");
    bus::schemas::validate("item-failed", 1, &failed[0]).expect("valid item-failed");

    // Further events for the iD make no ORCID call.
    let calls_before = api_calls(&sim_stats(&h.sim).await);
    let change = leave.then(HrEventType::Change).role("Adjunct");
    assert_eq!(h.apply(&change.event).await, Outcome::Ack);
    assert_eq!(
        h.apply(&second.then(HrEventType::Leave).end("2027-01-31").event)
            .await,
        Outcome::Ack
    );
    assert_eq!(
        api_calls(&sim_stats(&h.sim).await),
        calls_before,
        "no further ORCID calls"
    );
    assert_eq!(h.item("P-40", "POS-40").await.state, ItemState::Revoked);

    // They connect again: "connection ready" writes what waited, on the same put codes.
    let token = authorize(&h.sim, &orcid, WRITE_SCOPES, &h.client).await;
    h.tokens.connect("P-40", &orcid, token);
    let ready = ConnectionReady {
        orcid,
        person_id: "P-40".to_owned(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        connected_at: Utc::now(),
    };
    assert_eq!(
        h.writer
            .apply_connection_ready(&ready, &Cause::none())
            .await,
        Outcome::Ack
    );
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 2, "{items:#?}");
    let pos40 = h.item("P-40", "POS-40").await;
    assert!(pos40.is_current());
    let on_record = items
        .iter()
        .find(|i| i["put-code"].as_u64() == pos40.put_code.map(|p| p.get()))
        .expect("same put code");
    assert_eq!(text(on_record, "/role-title").as_deref(), Some("Adjunct"));
    assert_eq!(
        text(on_record, "/end-date/year/value").as_deref(),
        Some("2026")
    );
    assert!(h.item("P-40", "POS-41").await.is_current());
    h.finish().await;
}

#[tokio::test]
async fn a_missing_scope_is_denied_and_parked() {
    let h = Harness::new().await;
    let orcid = h.connected_with("P-41", "/read-limited").await;
    let hire = hire("P-41", "POS-42", "2026-01-01");
    match h.apply(&hire.event).await {
        Outcome::Park { reason } => {
            assert!(reason.starts_with("scope-missing"), "{reason}");
            assert!(reason.contains("9038"), "{reason}");
        }
        other => panic!("expected park, got {other:?}"),
    }
    let item = h.item("P-41", "POS-42").await;
    assert_eq!(item.state, ItemState::Denied);
    assert_eq!(item.last_error_status, Some(403));
    assert_eq!(item.last_error_code, Some(9038));
    assert!(sim_items(&h.sim, &orcid, "employments").await.is_empty());
    let failed = h.db.outbox_payloads("item-failed").await;
    assert_eq!(failed[0]["error"]["kind"], "scope-missing");
    assert_eq!(failed[0]["error"]["orcid_error_code"], 9038);
    h.finish().await;
}

#[tokio::test]
async fn an_item_the_researcher_deleted_is_not_recreated() {
    let h = Harness::new().await;
    let orcid = h.connected("P-42").await;
    let hire = hire("P-42", "POS-43", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let put_code = h.item("P-42", "POS-43").await.put_code.expect("put code");
    let res = http()
        .delete(format!(
            "{}/_sim/records/{orcid}/employment/{put_code}",
            h.sim.base_url()
        ))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);

    let leave = hire.then(HrEventType::Leave).end("2026-08-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    let item = h.item("P-42", "POS-43").await;
    assert_eq!(item.state, ItemState::DeletedByUser);
    assert_eq!(item.last_error_status, Some(404));
    assert!(
        sim_items(&h.sim, &orcid, "employments").await.is_empty(),
        "not recreated"
    );
    let failed = h.db.outbox_payloads("item-failed").await;
    assert_eq!(failed[0]["error"]["kind"], "deleted-by-user");

    let before = api_calls(&sim_stats(&h.sim).await);
    let change = leave.then(HrEventType::Change).role("Lecturer");
    assert_eq!(h.apply(&change.event).await, Outcome::Ack);
    assert_eq!(api_calls(&sim_stats(&h.sim).await), before, "left alone");
    h.finish().await;
}

#[tokio::test]
async fn with_recreate_deleted_the_item_is_written_again() {
    let h = Harness::with(
        TestDb::postgres().await,
        WritePolicy {
            recreate_deleted: true,
            ..WritePolicy::default()
        },
    )
    .await;
    let orcid = h.connected("P-43").await;
    let hire = hire("P-43", "POS-44", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    let old = h.item("P-43", "POS-44").await.put_code.expect("put code");
    let res = http()
        .delete(format!(
            "{}/_sim/records/{orcid}/employment/{old}",
            h.sim.base_url()
        ))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let leave = hire.then(HrEventType::Leave).end("2026-08-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);
    let items = sim_items(&h.sim, &orcid, "employments").await;
    assert_eq!(items.len(), 1, "{items:#?}");
    let item = h.item("P-43", "POS-44").await;
    assert_ne!(item.put_code, Some(old));
    assert_eq!(
        item.put_code.map(|p| p.get()),
        items[0]["put-code"].as_u64()
    );
    assert_eq!(
        text(&items[0], "/end-date/month/value").as_deref(),
        Some("08")
    );
    h.finish().await;
}

#[tokio::test]
async fn the_last_attempt_marks_the_item_failed() {
    let h = Harness::new().await;
    let orcid = h.connected("P-44").await;
    add_fault(&h.sim, json!({"endpoint": "/v3.0/**", "status": 502})).await;
    let hire = hire("P-44", "POS-45", "2026-01-01");
    let mut delivery = Delivery {
        envelope: hire.envelope(),
        attempt: 1,
        redelivered: false,
        exchange: "t.hr".to_owned(),
        routing_key: "hr.hire".to_owned(),
        partition_key: Some("P-44".to_owned()),
        queue: "t.writer.p0".to_owned(),
        history: Vec::new(),
    };
    assert!(matches!(
        h.writer.handle(&delivery).await,
        Outcome::Retry { .. }
    ));
    assert_eq!(h.item("P-44", "POS-45").await.state, ItemState::Pending);
    assert!(h.db.outbox_payloads("item-failed").await.is_empty());

    delivery.attempt = WritePolicy::default().max_attempts;
    assert!(matches!(
        h.writer.handle(&delivery).await,
        Outcome::Retry { .. }
    ));
    let item = h.item("P-44", "POS-45").await;
    assert_eq!(item.state, ItemState::Error);
    let failed = h.db.outbox_payloads("item-failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error"]["kind"], "retries-exhausted");
    assert_eq!(
        item.last_error_status,
        Some(502),
        "ORCID's last answer is kept"
    );
    assert!(
        item.last_error_message
            .as_deref()
            .is_some_and(|m| m.starts_with("gave up"))
    );
    let history = h.writer.ledger().history(item.id).await.expect("history");
    assert!(history.iter().any(|a| a.action == "give-up"));
    assert!(
        history.iter().filter(|a| a.outcome == "retry").count() >= 2,
        "every attempt has a row: {history:#?}"
    );

    // ORCID recovers; the person connects again: the failed item is written.
    clear_faults(&h.sim).await;
    let ready = ConnectionReady {
        orcid,
        person_id: "P-44".to_owned(),
        scopes: vec!["/read-limited".into(), "/activities/update".into()],
        connected_at: Utc::now(),
    };
    assert_eq!(
        h.writer
            .apply_connection_ready(&ready, &Cause::none())
            .await,
        Outcome::Ack
    );
    let item = h.item("P-44", "POS-45").await;
    assert_eq!(item.state, ItemState::InOrcid);
    assert!(item.is_current());
    assert_eq!(sim_items(&h.sim, &orcid, "employments").await.len(), 1);
    h.finish().await;
}

/// A token source that hands out the connection's token but cannot take a report (the
/// vault is down when the writer reports ORCID's 401).
struct UnreportableTokens {
    tokens: Arc<SimTokens>,
    reports: AtomicUsize,
}

impl TokenSource for UnreportableTokens {
    fn token<'a>(&'a self, person_id: &'a str) -> BoxFuture<'a, Result<PersonToken, TokenError>> {
        self.tokens.token(person_id)
    }

    fn mark_revoked<'a>(
        &'a self,
        _person_id: &'a str,
        _token: &'a PersonToken,
        _reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async move {
            self.reports.fetch_add(1, Ordering::SeqCst);
            Err(TokenError::Unavailable(
                "test: the vault is down".to_owned(),
            ))
        })
    }
}

/// ORCID answers 401 and the report to the token source fails, so the message is retried
/// while the source still hands out the refused token: the retries do not call ORCID with
/// it again (at most one more call), the items stay `revoked`, the report is retried.
#[tokio::test]
async fn a_failed_revocation_report_does_not_repeat_the_refused_call() {
    let h = Harness::new().await;
    let orcid = h.connected("P-47").await;
    let tokens = Arc::new(UnreportableTokens {
        tokens: h.tokens.clone(),
        reports: AtomicUsize::new(0),
    });
    let writer = writer::Writer::new(writer::WriterParts {
        db: h.db.db.clone(),
        orcid: h.client.clone(),
        tokens: tokens.clone(),
        institution: institution(),
        policy: WritePolicy::default(),
        relay_waker: None,
    });
    let first = hire("P-47", "POS-47", "2026-01-01");
    assert_eq!(
        writer.apply_hr_event(&first.event, &Cause::none()).await,
        Outcome::Ack
    );
    let res = sim_post(
        &h.sim,
        &format!("/_sim/users/{orcid}/revoke"),
        json!({"client_id": TEST_CLIENT_ID}),
    )
    .await;
    assert_eq!(res.status(), 200);

    let leave = first.then(HrEventType::Leave).end("2026-12-31");
    let calls_before = api_calls(&sim_stats(&h.sim).await);
    assert!(matches!(
        writer.apply_hr_event(&leave.event, &Cause::none()).await,
        Outcome::Retry { .. }
    ));
    assert_eq!(h.item("P-47", "POS-47").await.state, ItemState::Revoked);
    assert_eq!(
        api_calls(&sim_stats(&h.sim).await),
        calls_before + 1,
        "the call that got the 401"
    );

    // The retries of the leave, and a hire into another position meanwhile.
    for _ in 0..3 {
        assert!(matches!(
            writer.apply_hr_event(&leave.event, &Cause::none()).await,
            Outcome::Retry { .. }
        ));
    }
    let other = hire("P-47", "POS-48", "2026-02-01");
    assert!(matches!(
        writer.apply_hr_event(&other.event, &Cause::none()).await,
        Outcome::Retry { .. }
    ));
    let stats = sim_stats(&h.sim).await;
    assert!(
        api_calls(&stats) <= calls_before + 2,
        "at most one more ORCID call after the 401: {stats:#}"
    );
    for position in ["POS-47", "POS-48"] {
        let item = h.item("P-47", position).await;
        assert_eq!(item.state, ItemState::Revoked, "{position}");
        assert!(!item.is_current(), "{position}");
    }
    assert_eq!(
        tokens.reports.load(Ordering::SeqCst),
        5,
        "the report is made again on every retry"
    );
    let failed = h.db.outbox_payloads("item-failed").await;
    assert!(
        !failed.is_empty() && failed.iter().all(|f| f["error"]["kind"] == "token-revoked"),
        "{failed:#?}"
    );
    h.finish().await;
}
