//! The invitations API (`GET /api/v1/invitations`, `POST /api/v1/invitations/{person_id}/resend`)
//! with the file transport, the in-process bus and PostgreSQL: the list after a pending hire
//! with an e-mail, resend writes a second `.eml`, 404/409/502 say what happened, the rights
//! are checked, and a writer without invitations answers `invitations_disabled`. Also the
//! API-wide fixes: JSON 405 with `Allow`, the bearer scheme in any case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bus::{Bus, OutgoingMessage};
use invitations::InvitationState;
use orcid_sim::SimHandle;
use serde_json::{Value, json};
use uuid::Uuid;
use writer::api::{ErrorBody, InvitationList, InvitationView, token_sha256_hex};
use writer::ledger::ItemState;
use writer::{Application, Dependencies};

use crate::helpers::*;

/// Test credentials (not real secrets).
const ADMIN_TOKEN: &str = "test-invitations-admin-token";
const VIEWER_TOKEN: &str = "test-invitations-viewer-token";
const PORTAL_TOKEN: &str = "test-items-portal-token";

struct Api {
    app: Application,
    bus: Bus,
    base: String,
    mail_dir: PathBuf,
}

async fn start(sim: &SimHandle, db: &TestDb, enabled: bool) -> Api {
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    let mail_dir =
        std::env::temp_dir().join(format!("writer-api-mail-{}", Uuid::new_v4().simple()));
    let mut config = app_config(sim, &db.url, &prefix);
    config.writer.invitations.enabled = enabled;
    {
        let invitations = config.invitations.as_mut().expect("[invitations] defaults");
        invitations.file_dir = mail_dir.clone();
        invitations.portal_url = "https://portal.example.org".to_owned();
    }
    config.writer.http.callers = serde_json::from_value(json!([
        {"name": "admin", "token_sha256": token_sha256_hex(ADMIN_TOKEN),
         "rights": ["invitations:read", "invitations:manage"]},
        {"name": "viewer", "token_sha256": token_sha256_hex(VIEWER_TOKEN), "rights": ["invitations:read"]},
        {"name": "portal", "token_sha256": token_sha256_hex(PORTAL_TOKEN), "rights": ["items:read"]},
    ]))
    .expect("callers");
    let app = Application::build_with(
        config,
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens: Some(Arc::new(SimTokens::default())),
            orcid: Some(orcid_client(sim)),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    let port = app.http_port().expect("HTTP API on");
    Api {
        app,
        bus,
        base: format!("http://127.0.0.1:{port}"),
        mail_dir,
    }
}

impl Api {
    /// `(status, Allow header, JSON body)`.
    async fn call(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
    ) -> (u16, Option<String>, Value) {
        let mut request = http().request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let body = response.json().await.expect("a JSON body");
        (status, allow, body)
    }

    async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let (status, _, body) = self.call(reqwest::Method::GET, token, path).await;
        (status, body)
    }

    async fn resend(&self, token: Option<&str>, person_id: &str) -> (u16, Value) {
        let path = format!("/api/v1/invitations/{person_id}/resend");
        let (status, _, body) = self.call(reqwest::Method::POST, token, &path).await;
        (status, body)
    }

    async fn stop(self) {
        self.app.shutdown_token().cancel();
        self.app.run_until_stopped().await;
        self.bus.close().await;
        let _ = std::fs::remove_dir_all(&self.mail_dir);
        let _ = std::fs::remove_file(&self.mail_dir);
    }
}

fn eml_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

fn error(body: &Value) -> ErrorBody {
    serde_json::from_value(body.clone()).expect("an ErrorBody")
}

#[tokio::test]
async fn invitations_are_listed_and_resent_with_the_rights_and_errors_say_why() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let api = start(&sim, &db, true).await;
    let invitations = api.app.invitations().expect("enabled").clone();

    // A pending hire with an e-mail: invited.
    let mut hire = hire("P-IA1", "POS-IA1", "2026-01-01");
    hire.event.person.email = Some("josiah.carberry@example.org".to_owned());
    api.bus
        .publish(&OutgoingMessage::event(&hire.event).expect("message"))
        .await
        .expect("publish");
    let invitation = wait_for("the invitation sent", || async {
        invitations
            .get("P-IA1")
            .await
            .expect("invitations")
            .filter(|i| i.state == InvitationState::Sent)
    })
    .await;
    let item = api
        .app
        .writer()
        .ledger()
        .item("P-IA1", "POS-IA1")
        .await
        .expect("ledger")
        .expect("item");
    assert_eq!(item.state, ItemState::Pending);
    assert_eq!(eml_count(&api.mail_dir), 1);

    // The list, with counts for every state; no link id.
    let (status, body) = api.get(Some(VIEWER_TOKEN), "/api/v1/invitations").await;
    assert_eq!(status, 200, "{body}");
    let raw = body.to_string();
    assert!(
        !raw.contains(&invitation.link_id),
        "the link id is left out: {raw}"
    );
    assert!(body["invitations"][0].get("link").is_none(), "{raw}");
    let list: InvitationList = serde_json::from_value(body).expect("typed list");
    assert_eq!(list.invitations.len(), 1);
    let view = &list.invitations[0];
    assert_eq!(view.person_id, "P-IA1");
    assert_eq!(view.email, "josiah.carberry@example.org");
    assert_eq!(view.state, "sent");
    assert_eq!(view.sent_count, 1);
    assert!(view.last_sent_at.is_some());
    assert!(view.next_reminder_at.is_some(), "a reminder is scheduled");
    assert_eq!(view.connected_at, None);
    assert_eq!(list.next_offset, None);
    assert_eq!(list.counts.len(), 5, "{:?}", list.counts);
    assert_eq!(list.counts["sent"], 1);
    assert_eq!(list.counts["pending"], 0);

    // Filters and paging.
    let (_, body) = api
        .get(Some(VIEWER_TOKEN), "/api/v1/invitations?state=connected")
        .await;
    let list: InvitationList = serde_json::from_value(body).expect("typed list");
    assert!(list.invitations.is_empty());
    assert_eq!(list.counts["sent"], 1, "counts are not filtered");
    let (_, body) = api
        .get(
            Some(VIEWER_TOKEN),
            "/api/v1/invitations?person_id=P-IA1&state=sent",
        )
        .await;
    let list: InvitationList = serde_json::from_value(body).expect("typed list");
    assert_eq!(list.invitations.len(), 1);
    let (_, body) = api
        .get(Some(VIEWER_TOKEN), "/api/v1/invitations?person_id=nobody")
        .await;
    let list: InvitationList = serde_json::from_value(body).expect("typed list");
    assert!(list.invitations.is_empty());
    let (status, body) = api
        .get(Some(VIEWER_TOKEN), "/api/v1/invitations?state=lost")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(error(&body).message.contains("pending, sent"), "{body}");
    let (status, _) = api
        .get(Some(VIEWER_TOKEN), "/api/v1/invitations?limit=0")
        .await;
    assert_eq!(status, 400);

    // Rights: none, the wrong one, read without manage.
    let (status, body) = api.get(None, "/api/v1/invitations").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = api.get(Some(PORTAL_TOKEN), "/api/v1/invitations").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        error(&body).missing_right.as_deref(),
        Some("invitations:read")
    );
    let (status, body) = api.resend(Some(VIEWER_TOKEN), "P-IA1").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        error(&body).missing_right.as_deref(),
        Some("invitations:manage")
    );
    let (status, _) = api.resend(None, "P-IA1").await;
    assert_eq!(status, 401);
    assert_eq!(
        eml_count(&api.mail_dir),
        1,
        "nothing sent without the right"
    );

    // Resend: a second e-mail, the invitation in the answer.
    let (status, body) = api.resend(Some(ADMIN_TOKEN), "P-IA1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("link_id").is_none(), "{body}");
    let view: InvitationView = serde_json::from_value(body).expect("typed invitation");
    assert_eq!(view.state, "sent");
    assert_eq!(view.sent_count, 2);
    assert_eq!(eml_count(&api.mail_dir), 2);

    // Unknown person: 404.
    let (status, body) = api.resend(Some(ADMIN_TOKEN), "P-NOBODY").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error(&body).error, "not_found");

    // The mail transport fails (its directory became a file): 502, recorded as failed.
    std::fs::remove_dir_all(&api.mail_dir).expect("remove the mail directory");
    std::fs::write(&api.mail_dir, b"not a directory").expect("a file in its place");
    let (status, body) = api.resend(Some(ADMIN_TOKEN), "P-IA1").await;
    assert_eq!(status, 502, "{body}");
    let body = error(&body);
    assert_eq!(body.error, "mail_failed");
    assert!(
        body.message.contains("mail transport failed"),
        "{}",
        body.message
    );
    assert!(!body.message.contains("smtp://"), "{}", body.message);
    let failed = invitations.get("P-IA1").await.expect("db").expect("row");
    assert_eq!(failed.state, InvitationState::Failed);
    assert!(failed.last_error.is_some());
    std::fs::remove_file(&api.mail_dir).expect("remove the file");

    // Connected: 409.
    assert!(invitations.mark_connected("P-IA1").await.expect("db"));
    let (status, body) = api.resend(Some(ADMIN_TOKEN), "P-IA1").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error(&body).error, "already_connected");
    let (_, body) = api.get(Some(ADMIN_TOKEN), "/api/v1/invitations").await;
    let list: InvitationList = serde_json::from_value(body).expect("typed list");
    assert_eq!(list.invitations[0].state, "connected");
    assert!(list.invitations[0].connected_at.is_some());
    assert_eq!(list.counts["connected"], 1);
    assert_eq!(list.counts["sent"], 0);

    api.stop().await;
    sim.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_writer_without_invitations_answers_invitations_disabled() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let api = start(&sim, &db, false).await;
    assert!(api.app.invitations().is_none());
    for (status, body) in [
        api.get(Some(ADMIN_TOKEN), "/api/v1/invitations").await,
        api.resend(Some(ADMIN_TOKEN), "P-1").await,
    ] {
        assert_eq!(status, 404, "{body}");
        let body = error(&body);
        assert_eq!(body.error, "invitations_disabled");
        assert!(
            body.message.contains("writer.invitations.enabled = true"),
            "{}",
            body.message
        );
    }
    // Callers are still checked first.
    let (status, _) = api.get(None, "/api/v1/invitations").await;
    assert_eq!(status, 401);
    let (status, _) = api.get(Some(PORTAL_TOKEN), "/api/v1/invitations").await;
    assert_eq!(status, 403);
    api.stop().await;
    sim.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_with_allow_and_the_bearer_scheme_is_case_insensitive() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let api = start(&sim, &db, true).await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/api/v1/hr-events", "POST"),
        (reqwest::Method::DELETE, "/api/v1/items", "GET"),
        (reqwest::Method::POST, "/api/v1/summary", "GET"),
        (reqwest::Method::PUT, "/api/v1/invitations", "GET"),
        (
            reqwest::Method::GET,
            "/api/v1/invitations/P-1/resend",
            "POST",
        ),
        (reqwest::Method::POST, "/health", "GET"),
    ] {
        let (status, header, body) = api.call(method.clone(), Some(ADMIN_TOKEN), path).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(header.as_deref(), Some(allow), "{method} {path}");
        let body = error(&body);
        assert_eq!(body.error, "method_not_allowed");
        assert_eq!(body.message, format!("use {allow}"));
    }
    // Unknown routes stay 404.
    let (status, body) = api.get(Some(ADMIN_TOKEN), "/api/v1/nothing").await;
    assert_eq!(status, 404, "{body}");

    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = http()
            .get(format!("{}/api/v1/invitations", api.base))
            .header("authorization", format!("{scheme} {VIEWER_TOKEN}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 200, "scheme {scheme}");
    }
    let response = http()
        .get(format!("{}/api/v1/invitations", api.base))
        .header("authorization", format!("Basic {VIEWER_TOKEN}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 401);
    api.stop().await;
    sim.stop().await;
    db.drop().await;
}
