//! Item states that are hard to produce with the real writer, against a stand-in serving the
//! writer's documented answers (`GET /api/v1/items`, `/api/v1/items/{id}/attempts`,
//! `/api/v1/summary`, bearer caller with `items:read`): an item ORCID refused (`error`, with
//! its ORCID 400 / 9001 history), the failures page and report, the writer's 400 for an
//! unknown state, exact summary counts, and the writer down. The written and pending paths
//! run against the real writer in `real_writer.rs`.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use serde_json::json;

use crate::helpers::{Options, spawn_with};

const WRITER_TOKEN: &str = "TEST_PORTAL_AT_WRITER_TOKEN";

struct Stub {
    queries: Mutex<Vec<String>>,
}

fn authorized(req: &HttpRequest) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {WRITER_TOKEN}"))
}

async fn items(req: HttpRequest, stub: web::Data<Stub>) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized()
            .json(json!({"error": "unauthenticated", "message": "no"}));
    }
    stub.queries
        .lock()
        .unwrap()
        .push(req.query_string().to_owned());
    let now = Utc::now().to_rfc3339();
    let all = vec![
        json!({"id": "0193a1f0-0000-7000-8000-000000000001", "person_id": "P-ITEMS", "key": "hr:emp:1",
               "generation": 1, "section": "employment", "orcid": "0009-0000-0000-0009", "put_code": 12345,
               "state": "in_orcid", "attempts": 1, "last_error": null, "source_event_id": "e1",
               "written_at": now, "updated_at": now}),
        json!({"id": "0193a1f0-0000-7000-8000-000000000002", "person_id": "P-ITEMS", "key": "work:doi:1",
               "generation": 1, "section": "work", "orcid": null, "put_code": null,
               "state": "error", "attempts": 3, "last_error": {"status": 400, "code": 9001, "message": "bad"},
               "source_event_id": "e2", "written_at": null, "updated_at": now}),
        json!({"id": "0193a1f0-0000-7000-8000-000000000003", "person_id": "P-SOMEONE-ELSE", "key": "hr:emp:9",
               "generation": 1, "section": "employment", "orcid": null, "put_code": 777,
               "state": "in_orcid", "attempts": 1, "last_error": null, "source_event_id": "e3",
               "written_at": now, "updated_at": now}),
    ];
    let person = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "person_id")
        .map(|(_, v)| v.into_owned());
    let state = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    // As the writer: an unknown state is a 400.
    const STATES: [&str; 7] = [
        "pending",
        "in_orcid",
        "error",
        "revoked",
        "denied",
        "deleted_by_user",
        "deleted",
    ];
    if state
        .as_deref()
        .is_some_and(|s| !s.is_empty() && !STATES.contains(&s))
    {
        return HttpResponse::BadRequest()
            .json(json!({"error": "bad_request", "message": "state"}));
    }
    let items: Vec<_> = all
        .into_iter()
        .filter(|i| person.as_deref().is_none_or(|p| i["person_id"] == p))
        .filter(|i| state.as_deref().is_none_or(|s| i["state"] == s))
        .collect();
    HttpResponse::Ok().json(json!({"items": items}))
}

async fn attempts(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    if path.as_str() != "0193a1f0-0000-7000-8000-000000000002" {
        return HttpResponse::NotFound().json(json!({"error": "not_found", "message": "no item"}));
    }
    let now = Utc::now().to_rfc3339();
    HttpResponse::Ok().json(json!({
        "item": {"id": "0193a1f0-0000-7000-8000-000000000002", "person_id": "P-ITEMS", "key": "work:doi:1",
                 "generation": 1, "section": "work", "orcid": null, "put_code": null, "state": "error",
                 "attempts": 3, "last_error": null, "source_event_id": "e2", "written_at": null, "updated_at": now},
        "attempts": [
            {"at": now, "event_id": "e2", "action": "create", "outcome": "failed", "http_status": 400,
             "orcid_error_code": 9001, "put_code": null, "message": "invalid work type"}
        ]
    }))
}

async fn summary(req: HttpRequest) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    let today = Utc::now().date_naive();
    let per_day: Vec<_> = (0..30)
        .rev()
        .map(|back| {
            let day = today - chrono::Duration::days(back);
            json!({"day": day, "written": if back == 0 { 3 } else { 0 }, "failed": if back == 0 { 1 } else { 0 }})
        })
        .collect();
    HttpResponse::Ok().json(
        json!({"states": {"in_orcid": 2, "error": 1}, "total": 3, "days": 30, "per_day": per_day}),
    )
}

async fn spawn_stub() -> (String, Arc<web::Data<Stub>>, actix_web::dev::ServerHandle) {
    let stub = web::Data::new(Stub {
        queries: Mutex::new(Vec::new()),
    });
    let data = stub.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/api/v1/items", web::get().to(items))
            .route("/api/v1/summary", web::get().to(summary))
            .route("/api/v1/items/{id}/attempts", web::get().to(attempts))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), Arc::new(stub), handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stand_in_writer_gives_failed_items_counts_and_an_outage() {
    let (writer_url, stub, handle) = spawn_stub().await;
    let portal = spawn_with(Options {
        portal_env: vec![
            ("IDBRIDGE__PORTAL__WRITER__URL".to_owned(), writer_url),
            (
                "IDBRIDGE__PORTAL__WRITER__CALLER_TOKEN".to_owned(),
                WRITER_TOKEN.to_owned(),
            ),
        ],
        ..Options::default()
    })
    .await;
    let mut browser = portal.browser();
    browser.dev_sign_in("P-ITEMS", "Nia", "", false).await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("data-item-id=\"0193a1f0-0000-7000-8000-000000000001\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("data-item-id=\"0193a1f0-0000-7000-8000-000000000002\"")
    );
    assert!(
        !page.body.contains("000000000003"),
        "only the signed-in person's items"
    );
    assert!(page.body.contains("status-failed"));
    assert!(
        stub.queries
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("person_id=P-ITEMS")),
        "asked for this person's items"
    );

    let mut admin = portal.browser();
    admin.dev_sign_in("P-ITEMS-ADMIN", "Oz", "", true).await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("id=\"writes-chart\""), "{}", page.body);
    assert!(page.body.contains("data-value=\"3\""));
    let page = admin.get("/admin/reports/items.csv").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.starts_with(
            "id,person_id,section,orcid,put_code,state,attempts,written_at,updated_at"
        )
    );
    let page = admin.get("/admin/reports/items.json").await;
    let rows: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    let page = admin.get("/admin/reports/summary.json").await;
    let months: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let this_month = months.as_array().unwrap().last().unwrap().clone();
    assert_eq!(this_month["items_written"], 3);
    assert_eq!(this_month["writes_failed"], 1);

    // Every item's status, by person.
    let page = admin.get("/admin/items").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body.matches("data-testid=\"admin-item\"").count(), 3);
    let page = admin
        .get("/admin/items?person_id=P-SOMEONE-ELSE&state=")
        .await;
    assert_eq!(page.body.matches("data-testid=\"admin-item\"").count(), 1);
    assert!(page.body.contains(">777<"));
    assert_eq!(browser.get("/admin/items").await.status, 403);
    let page = admin.get("/admin/items?state=written").await;
    assert!(
        page.body.contains("id=\"items-note\""),
        "an unknown state is said so"
    );

    // Failed items and one item's history.
    let page = admin.get("/admin/failures").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("href=\"/admin/items/0193a1f0-0000-7000-8000-000000000002\"")
    );
    assert_eq!(page.body.matches("data-testid=\"failed-item\"").count(), 1);
    let page = admin
        .get("/admin/items/0193a1f0-0000-7000-8000-000000000002")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("invalid work type"));
    assert!(page.body.contains("data-testid=\"attempt\""));
    let page = admin.get("/admin/items/unknown-id").await;
    assert_eq!(page.status, 404);
    let page = browser
        .get("/admin/items/0193a1f0-0000-7000-8000-000000000002")
        .await;
    assert_eq!(page.status, 403, "researchers do not see others' items");
    let page = admin.get("/admin/reports/failures.csv").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("item,writer,0193a1f0-0000-7000-8000-000000000002,work,P-ITEMS,error"),
        "{}",
        page.body
    );

    // The writer down: the page still works and says so.
    handle.stop(true).await;
    let page = browser.get("/me").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("cannot be shown right now"),
        "{}",
        page.body
    );
    let page = admin.get("/admin/reports/items.csv").await;
    assert_eq!(page.status, 503);
    portal.stop().await;
}
