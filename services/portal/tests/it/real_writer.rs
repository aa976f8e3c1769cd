//! The item pages and reports against the REAL writer (`writer::Application`): its own
//! PostgreSQL database, the portal's in-process bus (shared with the token vault, so the
//! vault's "connection ready" reaches it), tokens from the real vault (`token:read`), ORCID
//! = the same orcid-sim, and its HTTP API on loopback with a portal caller (`items:read`) and
//! an HR caller (`hr-events:write`). A researcher connects through the portal, an HR system
//! posts a hire, the writer writes it to ORCID, and the portal shows it.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use writer::api::{ItemHistory, ItemPage, ItemView, token_sha256_hex};
use writer::config::WriterConfig;

use crate::helpers::{
    DEADLINE, ORCID_CLIENT_ID, ORCID_CLIENT_SECRET, Options, TestDb, TestPortal,
    WRITER_CALLER_TOKEN, connect, http, spawn_with,
};

/// The portal's caller at the writer (test data, not a real credential).
pub(crate) const PORTAL_AT_WRITER: &str = "TEST_PORTAL_AT_REAL_WRITER_TOKEN";
/// An HR system's caller at the writer (test data).
pub(crate) const HR_AT_WRITER: &str = "TEST_HR_AT_REAL_WRITER_TOKEN";

pub(crate) struct RealWriter {
    pub(crate) url: String,
    db: TestDb,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A free loopback port. The portal must know the writer's URL when it is configured, and
/// the writer needs the vault the portal's helpers start: so the port is chosen first (as
/// the helpers do for the portal's own public URL).
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
    probe.local_addr().expect("addr").port()
}

async fn start_writer(portal: &TestPortal, port: u16) -> RealWriter {
    start_writer_with(portal, port, Vec::new()).await
}

/// The real writer with extra `IDBRIDGE__…` variables (e.g. `[writer.invitations]`).
pub(crate) async fn start_writer_with(
    portal: &TestPortal,
    port: u16,
    extra_env: Vec<(String, String)>,
) -> RealWriter {
    let db = TestDb::new().await;
    let env: Vec<(String, String)> = [
        ("IDBRIDGE__DATABASE__URL", db.url.as_str()),
        ("IDBRIDGE__DATABASE__MAX_CONNECTIONS", "4"),
        ("IDBRIDGE__ORCID__REGISTRY", portal.sim.base_url()),
        ("IDBRIDGE__ORCID__CLIENT_ID", ORCID_CLIENT_ID),
        ("IDBRIDGE__ORCID__CLIENT_SECRET", ORCID_CLIENT_SECRET),
        ("IDBRIDGE__ORCID__RATE_LIMIT__SHARED", "false"),
        ("IDBRIDGE__WRITER__VAULT__URL", portal.vault_url.as_str()),
        ("IDBRIDGE__WRITER__VAULT__CALLER_TOKEN", WRITER_CALLER_TOKEN),
        ("IDBRIDGE__WRITER__PARTITIONS", "2"),
        ("IDBRIDGE__WRITER__RETRY_TIERS_MS", "[50, 100, 200]"),
        ("IDBRIDGE__INSTITUTION__NAME", "Boston University"),
        ("IDBRIDGE__INSTITUTION__CITY", "Boston"),
        ("IDBRIDGE__INSTITUTION__COUNTRY", "US"),
        (
            "IDBRIDGE__INSTITUTION__DISAMBIGUATED_ID",
            "https://ror.org/05qwgg493",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([(
        "IDBRIDGE__WRITER__HTTP__LISTEN".to_owned(),
        format!("127.0.0.1:{port}"),
    )])
    .chain(extra_env)
    .collect();
    let mut config = WriterConfig::from_sources(
        &idbridge_platform::config::Sources::new(writer::config::DEFAULTS).env(env),
    )
    .unwrap_or_else(|e| panic!("writer test configuration: {e}"));
    config.writer.http.callers = serde_json::from_value(json!([
        {"name": "portal", "token_sha256": token_sha256_hex(PORTAL_AT_WRITER), "rights": ["items:read", "invitations:read", "invitations:manage"]},
        {"name": "hr-system", "token_sha256": token_sha256_hex(HR_AT_WRITER), "rights": ["hr-events:write"]},
    ]))
    .expect("callers");
    let shutdown = CancellationToken::new();
    let app = writer::Application::build_with(
        config,
        writer::Dependencies {
            bus: Some(portal.bus.clone()),
            shutdown: Some(shutdown.clone()),
            ..writer::Dependencies::default()
        },
    )
    .await
    .expect("the writer starts");
    assert_eq!(app.http_port(), Some(port));
    let task = tokio::spawn(app.run_until_stopped());
    RealWriter {
        url: format!("http://127.0.0.1:{port}"),
        db,
        shutdown,
        task,
    }
}

impl RealWriter {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(PORTAL_AT_WRITER)
            .send()
            .await
            .expect("GET at the writer");
        assert_eq!(response.status(), 200, "GET {path} at the writer");
        response.json().await.expect("the writer's JSON")
    }

    /// Polls the writer's item list for `person_id` until `wanted` holds for an item; on
    /// the deadline, panics with what the writer shows (items and their histories).
    async fn wait_item(
        &self,
        person_id: &str,
        what: &str,
        wanted: impl Fn(&ItemView) -> bool,
    ) -> ItemView {
        let deadline = tokio::time::Instant::now() + DEADLINE * 2;
        loop {
            let page: ItemPage = self
                .get(&format!("/api/v1/items?person_id={person_id}"))
                .await;
            if let Some(item) = page.items.iter().find(|i| wanted(i)) {
                return item.clone();
            }
            if tokio::time::Instant::now() > deadline {
                let mut histories = Vec::new();
                for item in &page.items {
                    let history: ItemHistory = self
                        .get(&format!("/api/v1/items/{}/attempts", item.id))
                        .await;
                    histories.push(history);
                }
                panic!(
                    "timed out waiting for {what}: items {:?}; histories {histories:?}",
                    page.items
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        self.db.drop().await;
    }
}

fn hire(person_id: &str, position_id: &str) -> Value {
    json!({
        "event_id": format!("hr-{}", Uuid::new_v4().simple()),
        "event_type": "hire",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "person": {"person_id": person_id, "names": {"given_names": "Josiah", "family_name": "Carberry"}},
        "position": {"position_id": position_id, "department": "Psychoceramics",
                     "role_title": "Professor", "start_date": "2026-12-01"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_written_by_the_real_writer_shows_on_the_researcher_page_and_the_admin_pages() {
    let writer_port = free_port();
    let portal = spawn_with(Options {
        portal_env: vec![
            (
                "IDBRIDGE__PORTAL__WRITER__URL".to_owned(),
                format!("http://127.0.0.1:{writer_port}"),
            ),
            (
                "IDBRIDGE__PORTAL__WRITER__CALLER_TOKEN".to_owned(),
                PORTAL_AT_WRITER.to_owned(),
            ),
        ],
        ..Options::default()
    })
    .await;
    let writer = start_writer(&portal, writer_port).await;
    let person = format!("P-RW-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let other = format!("{person}-NOTCONNECTED");

    // The researcher connects through the portal; the vault stores the token.
    let mut browser = portal.browser();
    browser.dev_sign_in(&person, "Josiah", "", false).await;
    let (orcid, _) = connect(&portal, &mut browser).await;
    portal.wait_connected(&person).await;
    let page = browser.get("/me").await;
    assert!(page.body.contains("id=\"no-items\""), "{}", page.body);

    // An HR system posts two hires: one for the researcher, one for someone not connected.
    let response = http()
        .post(format!("{}/api/v1/hr-events", writer.url))
        .bearer_auth(HR_AT_WRITER)
        .json(&json!({"events": [hire(&person, "POS-1"), hire(&other, "POS-2")]}))
        .send()
        .await
        .expect("POST /api/v1/hr-events");
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");

    // Written: the writer's ledger holds the put code.
    let item = writer
        .wait_item(&person, "the hire written to ORCID", |i| {
            i.state == writer::ledger::ItemState::InOrcid
                && i.put_code.is_some()
                && i.orcid.as_deref() == Some(orcid.to_string().as_str())
        })
        .await;
    let put_code = item.put_code.expect("put code");
    // And it is on the ORCID record (the simulator's view), under that put code.
    let record: Value = http()
        .get(format!("{}/_sim/records/{orcid}", portal.sim.base_url()))
        .send()
        .await
        .expect("GET /_sim/records")
        .json()
        .await
        .expect("json");
    let employments = record["items"]["employments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        employments
            .iter()
            .any(|e| e["put-code"].as_u64() == Some(put_code)),
        "put code {put_code} on the record: {record}"
    );
    let id = item.id.to_string();
    let pending = writer
        .wait_item(&other, "the other hire waiting as pending", |i| {
            i.state == writer::ledger::ItemState::Pending
        })
        .await;

    // The researcher's page: the item, "on your ORCID record", no put code.
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("data-testid=\"item\"").count(),
        1,
        "only this person's item: {}",
        page.body
    );
    let row = page
        .body
        .split(&format!("data-item-id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("item {id} on /me: {}", page.body));
    let row = row.split("</tr>").next().expect("row");
    assert!(row.contains("<td>employment</td>"), "{row}");
    assert!(row.contains("data-state=\"in_orcid\""), "{row}");
    assert!(row.contains("status-active"), "{row}");
    assert!(row.contains("On your ORCID record"), "{row}");
    assert!(
        !row.contains(&put_code.to_string()),
        "the researcher sees no put code: {row}"
    );
    assert!(!page.body.contains(&pending.id.to_string()));

    // The person not connected sees the hire waiting.
    let mut waiting = portal.browser();
    waiting.dev_sign_in(&other, "Nia", "", false).await;
    let page = waiting.get("/me").await;
    let row = page
        .body
        .split(&format!("data-item-id=\"{}\"", pending.id))
        .nth(1)
        .unwrap_or_else(|| panic!("pending item on /me: {}", page.body));
    assert!(row.contains("data-state=\"pending\""), "{row}");
    assert!(row.contains("status-pending"), "{row}");

    // Administrators: the item list, the item and its history, the reports.
    let mut admin = portal.browser();
    admin.dev_sign_in("P-RW-ADMIN", "Oz", "", true).await;
    let page = admin.get(&format!("/admin/items?person_id={person}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body.matches("data-testid=\"admin-item\"").count(), 1);
    let row = page
        .body
        .split(&format!("data-item-id=\"{id}\""))
        .nth(1)
        .expect("the admin row")
        .split("</tr>")
        .next()
        .expect("row");
    assert!(
        row.contains(&format!("href=\"/admin/items/{id}\"")),
        "{row}"
    );
    assert!(row.contains("<td>in_orcid</td>"), "{row}");
    assert!(row.contains(&format!("<td>{put_code}</td>")), "{row}");
    let page = admin.get("/admin/items?state=pending").await;
    assert!(page.body.contains(&pending.id.to_string()), "{}", page.body);
    assert!(!page.body.contains(&id));

    let page = admin.get(&format!("/admin/items/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("<dd id=\"item-put-code\">{put_code}</dd>")),
        "{}",
        page.body
    );
    let history: ItemHistory = writer.get(&format!("/api/v1/items/{id}/attempts")).await;
    assert!(
        history
            .attempts
            .iter()
            .any(|a| a.outcome == "written" && a.put_code == Some(put_code)),
        "{history:?}"
    );
    assert_eq!(
        page.body.matches("data-testid=\"attempt\"").count(),
        history.attempts.len(),
        "every attempt of the writer's history is shown"
    );
    assert!(
        page.body.contains("<td>merge</td><td>created</td>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<td>create</td><td>written</td>"),
        "{}",
        page.body
    );
    assert_eq!(
        browser.get(&format!("/admin/items/{id}")).await.status,
        403,
        "a researcher does not see the admin item page"
    );

    let page = admin.get("/admin/reports/items.csv").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!(
            "{id},{person},employment,{},{put_code},in_orcid,",
            orcid
        )),
        "{}",
        page.body
    );
    let page = admin.get("/admin").await;
    assert!(page.body.contains("id=\"writes-chart\""), "{}", page.body);

    writer.stop().await;
    portal.stop().await;
}
