//! The writer's HTTP API against RabbitMQ, PostgreSQL and orcid-sim: HR events posted over
//! HTTP are answered per event, stored in the outbox, relayed to the HR exchange and written
//! to ORCID; callers need a known token and the right; malformed requests say what to fix;
//! the read API shows items, their history and a summary.

use std::sync::Arc;

use bus::events::HrEventType;
use bus::{Bus, Envelope};
use orcid_sim::SimHandle;
use serde_json::{Value, json};
use writer::api::{EventStatus, IntakeResponse, ItemHistory, ItemPage, Summary, token_sha256_hex};
use writer::config::WriterConfig;
use writer::ledger::{ItemState, LedgerItem};
use writer::{Application, Dependencies};

use crate::helpers::*;

/// Test credentials (not real secrets).
const HR_TOKEN: &str = "test-hr-system-token";
const PORTAL_TOKEN: &str = "test-portal-token";
const UNKNOWN_TOKEN: &str = "test-unknown-token";

struct Api {
    app: Application,
    bus: Bus,
    config: WriterConfig,
    tokens: Arc<SimTokens>,
    base: String,
}

fn config(sim: &SimHandle, db: &TestDb, prefix: &str, max_batch: usize) -> WriterConfig {
    let base = app_config(sim, &db.url, prefix);
    let mut config = base;
    config.writer.http.max_batch = max_batch;
    config.writer.http.callers = serde_json::from_value(json!([
        {"name": "hr-system", "token_sha256": token_sha256_hex(HR_TOKEN), "rights": ["hr-events:write"]},
        {"name": "portal", "token_sha256": token_sha256_hex(PORTAL_TOKEN), "rights": ["items:read"]},
    ]))
    .expect("callers");
    config
}

async fn start(sim: &SimHandle, db: &TestDb, prefix: &str, max_batch: usize) -> Api {
    let bus = amqp_bus(prefix).await;
    let tokens = Arc::new(SimTokens::default());
    let config = config(sim, db, prefix, max_batch);
    let app = Application::build_with(
        config.clone(),
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens: Some(tokens.clone()),
            orcid: Some(orcid_client(sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    let port = app.http_port().expect("the HTTP API is on by default");
    assert_ne!(port, 0);
    Api {
        app,
        bus,
        config,
        tokens,
        base: format!("http://127.0.0.1:{port}"),
    }
}

impl Api {
    async fn connect(&self, sim: &SimHandle, person_id: &str) -> orcid::OrcidId {
        let orcid = create_user(sim, person_id).await;
        let token = authorize(sim, &orcid, WRITE_SCOPES, &orcid_client(sim)).await;
        self.tokens.connect(person_id, &orcid, token);
        orcid
    }

    async fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = http()
            .post(format!("{}/api/v1/hr-events", self.base))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /api/v1/hr-events");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut request = http().get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn stop(self) {
        let spec = writer::service_spec(&self.config);
        let topology = writer::topology(&spec);
        self.app.kill().await;
        let _ = self.bus.delete(&topology).await;
        self.bus.close().await;
    }
}

fn event_json(hr: &Hr) -> Value {
    serde_json::to_value(&hr.event).expect("event JSON")
}

async fn written(api: &Api, person_id: &str, position_id: &str) -> LedgerItem {
    wait_for(&format!("{person_id}/{position_id} in ORCID"), || async {
        api.app
            .writer()
            .ledger()
            .item(person_id, position_id)
            .await
            .expect("ledger")
            .filter(|i| i.state == ItemState::InOrcid && i.is_current() && i.put_code.is_some())
    })
    .await
}

fn put_codes(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|i| i["put-code"].as_u64().expect("put-code"))
        .collect()
}

#[tokio::test]
async fn a_batch_is_answered_per_event_and_the_good_events_are_written() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let api = start(&sim, &db, &prefix, 500).await;
    let orcid_1 = api.connect(&sim, "P-H1").await;
    let orcid_2 = api.connect(&sim, "P-H2").await;

    let hire_1 = hire("P-H1", "POS-H1", "2026-12-01");
    let hire_2 = hire("P-H2", "POS-H2", "2026-11-01");
    let mut bad_date = event_json(&hire("P-H2", "POS-BAD", "2026-01-01"));
    bad_date["position"]["start_date"] = json!("2026-13-01");
    // The second good one comes in an envelope, as an AMQP publisher would send it.
    let envelope = serde_json::to_value(Envelope::new(&hire_2.event).expect("envelope"))
        .expect("envelope JSON");
    let mut many_bad = event_json(&hire("P-H1", "POS-BAD2", "2026-01-01"));
    many_bad.as_object_mut().expect("object").remove("event_id");
    many_bad["event_type"] = json!("leave");
    many_bad["position"]["section"] = json!("sabbatical");
    let batch = json!({"events": [event_json(&hire_1), bad_date, envelope, many_bad]});

    let (status, body) = api.post(Some(HR_TOKEN), &batch).await;
    assert_eq!(status, 202, "{body:#}");
    let response: IntakeResponse = serde_json::from_value(body.clone()).expect("typed body");
    assert_eq!((response.accepted, response.rejected), (2, 2), "{body:#}");
    let statuses: Vec<EventStatus> = response.results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            EventStatus::Accepted,
            EventStatus::Rejected,
            EventStatus::Accepted,
            EventStatus::Rejected
        ]
    );
    assert_eq!(
        response.results[0].event_id.as_deref(),
        Some(hire_1.event.event_id.as_str())
    );
    assert!(response.results[0].message_id.is_some());
    assert_eq!(
        response.results[2].event_id.as_deref(),
        Some(hire_2.event.event_id.as_str())
    );
    let fields = |i: usize| -> Vec<String> {
        let mut f: Vec<String> = response.results[i]
            .errors
            .iter()
            .map(|e| e.field.clone())
            .collect();
        f.sort();
        f
    };
    assert_eq!(fields(1), ["/position/start_date"], "{body:#}");
    assert!(
        response.results[1].errors[0].message.contains("YYYY-MM-DD"),
        "{body:#}"
    );
    assert_eq!(fields(3), ["/event_id", "/position/section"], "{body:#}");
    assert!(response.results[3].message_id.is_none());

    // Stored as an AMQP publisher would send them: HR exchange, routing key, partition key.
    let rows = db
        .count(
            "SELECT COUNT(*) AS n FROM writer_outbox WHERE message_type = 'hr-event' \
             AND exchange = 'hr' AND routing_key = 'hr.hire' AND partition_key IN ('P-H1', 'P-H2')",
        )
        .await;
    assert_eq!(rows, 2);

    // Relayed, consumed, written.
    let item_1 = written(&api, "P-H1", "POS-H1").await;
    let item_2 = written(&api, "P-H2", "POS-H2").await;
    let on_orcid_1 = sim_items(&sim, &orcid_1, "employments").await;
    assert_eq!(
        put_codes(&on_orcid_1),
        [item_1.put_code.expect("put code").get()]
    );
    let on_orcid_2 = sim_items(&sim, &orcid_2, "employments").await;
    assert_eq!(
        put_codes(&on_orcid_2),
        [item_2.put_code.expect("put code").get()]
    );
    assert_eq!(
        text(&on_orcid_2[0], "/start-date/month/value").as_deref(),
        Some("11")
    );
    assert!(
        api.app
            .writer()
            .ledger()
            .item("P-H2", "POS-BAD")
            .await
            .expect("ledger")
            .is_none()
    );

    // A single event (not a batch): the leave end-dates the same item; the same event again
    // is accepted again and changes nothing.
    let leave = hire_1.then(HrEventType::Leave).end("2027-06-30");
    let (status, body) = api.post(Some(HR_TOKEN), &event_json(&leave)).await;
    assert_eq!(status, 202, "{body:#}");
    assert_eq!(body["accepted"], 1);
    wait_for("the leave applied", || async {
        let items = sim_items(&sim, &orcid_1, "employments").await;
        (items.len() == 1 && text(&items[0], "/end-date/year/value").as_deref() == Some("2027"))
            .then_some(())
    })
    .await;
    let (status, _) = api.post(Some(HR_TOKEN), &event_json(&leave)).await;
    assert_eq!(status, 202);
    wait_for("the repeated leave consumed", || async {
        (db.count("SELECT COUNT(*) AS n FROM writer_inbox").await >= 4).then_some(())
    })
    .await;
    let after = sim_items(&sim, &orcid_1, "employments").await;
    assert_eq!(
        put_codes(&after),
        [item_1.put_code.expect("put code").get()]
    );

    // The read API: items of a person, their history, pages, the summary.
    let (status, body) = api
        .get(Some(PORTAL_TOKEN), "/api/v1/items?person_id=P-H1")
        .await;
    assert_eq!(status, 200, "{body:#}");
    let page: ItemPage = serde_json::from_value(body.clone()).expect("typed page");
    assert_eq!(page.items.len(), 1, "{body:#}");
    assert!(page.next_after.is_none());
    let item = &page.items[0];
    assert_eq!(item.id, item_1.id);
    assert_eq!(
        (item.person_id.as_str(), item.key.as_str()),
        ("P-H1", "POS-H1")
    );
    assert_eq!(item.section, "employment");
    assert_eq!(item.state, ItemState::InOrcid);
    assert_eq!(item.put_code, item_1.put_code.map(|p| p.get()));
    assert_eq!(item.orcid.as_deref(), Some(orcid_1.to_string().as_str()));
    assert_eq!(
        item.source_event_id.as_deref(),
        Some(leave.event.event_id.as_str())
    );
    assert!(item.last_error.is_none());
    assert!(
        body["items"][0].get("desired").is_none(),
        "no bodies: {body:#}"
    );

    let (status, body) = api
        .get(
            Some(PORTAL_TOKEN),
            &format!("/api/v1/items/{}/attempts", item.id),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    let history: ItemHistory = serde_json::from_value(body.clone()).expect("typed history");
    let steps: Vec<(String, String, Option<String>)> = history
        .attempts
        .iter()
        .map(|a| (a.action.clone(), a.outcome.clone(), a.event_id.clone()))
        .collect();
    let hire_id = Some(hire_1.event.event_id.clone());
    let leave_id = Some(leave.event.event_id.clone());
    assert!(
        steps.contains(&("create".into(), "written".into(), hire_id)),
        "{steps:?}"
    );
    assert!(
        steps.contains(&("update".into(), "written".into(), leave_id)),
        "{steps:?}"
    );
    assert!(history.attempts.iter().any(|a| a.put_code == item.put_code));

    let (status, body) = api.get(Some(PORTAL_TOKEN), "/api/v1/items?limit=1").await;
    assert_eq!(status, 200);
    let first: ItemPage = serde_json::from_value(body).expect("page");
    assert_eq!(first.items.len(), 1);
    let next = first.next_after.expect("a second page");
    let (_, body) = api
        .get(
            Some(PORTAL_TOKEN),
            &format!("/api/v1/items?limit=1&after={next}"),
        )
        .await;
    let second: ItemPage = serde_json::from_value(body).expect("page");
    assert_eq!(second.items.len(), 1);
    assert_ne!(second.items[0].id, first.items[0].id);
    let (_, body) = api
        .get(
            Some(PORTAL_TOKEN),
            &format!("/api/v1/items?limit=1&after={}", second.items[0].id),
        )
        .await;
    assert_eq!(body["items"], json!([]));
    let (_, body) = api
        .get(Some(PORTAL_TOKEN), "/api/v1/items?state=pending")
        .await;
    assert_eq!(body["items"], json!([]));
    let (status, body) = api
        .get(Some(PORTAL_TOKEN), "/api/v1/items?state=lost")
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap_or("").contains("in_orcid"),
        "{body}"
    );

    let (status, body) = api.get(Some(PORTAL_TOKEN), "/api/v1/summary?days=7").await;
    assert_eq!(status, 200, "{body:#}");
    let summary: Summary = serde_json::from_value(body.clone()).expect("typed summary");
    assert_eq!(summary.total, 2);
    assert_eq!(summary.states["in_orcid"], 2);
    assert_eq!(summary.states["pending"], 0);
    assert_eq!(summary.per_day.len(), 7);
    let today = summary.per_day.last().expect("today");
    assert!(
        today.day <= chrono::Utc::now().date_naive() && summary.per_day[0].day < today.day,
        "{body:#}"
    );
    // Two creates and one update (summed, in case the test ran across midnight UTC).
    let written: u64 = summary.per_day.iter().map(|d| d.written).sum();
    let failed: u64 = summary.per_day.iter().map(|d| d.failed).sum();
    assert_eq!((written, failed), (3, 0), "{body:#}");

    api.stop().await;
    sim.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn callers_need_a_known_token_and_the_right_and_bad_requests_say_what_to_fix() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let prefix = prefix();
    let api = start(&sim, &db, &prefix, 3).await;
    let good = event_json(&hire("P-A1", "POS-A1", "2026-12-01"));

    let (status, body) = api.get(None, "/health").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    // Who.
    for token in [None, Some(UNKNOWN_TOKEN)] {
        let (status, body) = api.post(token, &good).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "unauthenticated");
        let (status, _) = api.get(token, "/api/v1/items").await;
        assert_eq!(status, 401);
    }
    let (status, body) = api.post(Some(PORTAL_TOKEN), &good).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["missing_right"], "hr-events:write");
    for path in ["/api/v1/items", "/api/v1/summary"] {
        let (status, body) = api.get(Some(HR_TOKEN), path).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["missing_right"], "items:read");
    }

    // What.
    let raw = |content_type: &str, body: &'static str| {
        http()
            .post(format!("{}/api/v1/hr-events", api.base))
            .bearer_auth(HR_TOKEN)
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    let response = raw("application/json", "{\"event_id\": ")
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{body}"
    );
    let response = raw("text/csv", "person-id\nP-1\n").await.expect("POST");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("application/json"),
        "{body}"
    );
    let (status, body) = api.post(Some(HR_TOKEN), &json!([good])).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api.post(Some(HR_TOKEN), &json!({"events": []})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .post(Some(HR_TOKEN), &json!({"events": [good, good, good, good]}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("at most 3"),
        "{body}"
    );
    let (status, body) = api
        .get(Some(PORTAL_TOKEN), "/api/v1/items/not-a-uuid/attempts")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .get(
            Some(PORTAL_TOKEN),
            &format!("/api/v1/items/{}/attempts", uuid::Uuid::now_v7()),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    // Every event bad: 422 with the same per-event body, nothing stored.
    let mut no_person = good.clone();
    no_person["person"] = json!({});
    let mut end_before_start = good.clone();
    end_before_start["position"]["end_date"] = json!("2026-11-30");
    let (status, body) = api
        .post(
            Some(HR_TOKEN),
            &json!({"events": [no_person, end_before_start]}),
        )
        .await;
    assert_eq!(status, 422, "{body:#}");
    let response: IntakeResponse = serde_json::from_value(body.clone()).expect("typed");
    assert_eq!((response.accepted, response.rejected), (0, 2));
    assert_eq!(response.results[0].errors[0].field, "/person/person_id");
    assert_eq!(response.results[1].errors[0].field, "/position/end_date");
    assert!(
        response.results[1].errors[0].message.contains("before"),
        "{body:#}"
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM writer_outbox").await, 0);

    api.stop().await;
    sim.stop().await;
    db.drop().await;
}
