//! Record changes reach the webhooks: every API write and user edit calls `record_changed`,
//! an unchanged PUT and a refused write do not (§5, §11.12). Person duplicates (9030).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::json;

use crate::api_support::*;
use crate::helpers::*;

/// A callback endpoint that counts the POSTs it receives.
struct Counter {
    url: String,
    hits: Arc<Mutex<usize>>,
    handle: actix_web::dev::ServerHandle,
}

impl Counter {
    async fn start() -> Counter {
        let hits: Arc<Mutex<usize>> = Arc::default();
        let counted = hits.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/updated", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let counted = counted.clone();
            App::new().default_service(web::to(move || {
                let counted = counted.clone();
                async move {
                    *counted.lock().unwrap() += 1;
                    HttpResponse::NoContent().finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Counter { url, hits, handle }
    }

    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

/// Delivers pending callbacks now and returns how many calls the counter has seen.
async fn flush_and_count(f: &Fixture, counter: &Counter) -> usize {
    let r = f.hook(Method::POST, "/_sim/webhooks/flush", None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    counter.hits()
}

#[tokio::test]
async fn writes_and_user_edits_fire_webhooks() {
    let f = fixture().await;
    let counter = Counter::start().await;
    let token = client_credentials(&f.sim, "/webhook").await.access_token;
    let r = http()
        .put(format!(
            "{}/{}/webhook/{}",
            f.sim.base_url(),
            f.orcid,
            utf8_percent_encode(&counter.url, NON_ALPHANUMERIC)
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(flush_and_count(&f, &counter).await, 0, "no change yet");

    let pc = f.create("work", &work("W", "10.7/w")).await;
    assert_eq!(flush_and_count(&f, &counter).await, 1, "POST");

    let mut body = work("W", "10.7/w");
    body["put-code"] = json!(pc);
    assert_eq!(f.put(&format!("/work/{pc}"), &body).await.status, 200);
    assert_eq!(
        flush_and_count(&f, &counter).await,
        1,
        "an unchanged PUT changes nothing"
    );
    assert_eq!(f.post("/work", &work("Dup", "10.7/w")).await.status, 409);
    assert_eq!(
        flush_and_count(&f, &counter).await,
        1,
        "a refused write changes nothing"
    );

    body["journal-title"] = json!("J");
    assert_eq!(f.put(&format!("/work/{pc}"), &body).await.status, 200);
    assert_eq!(flush_and_count(&f, &counter).await, 2, "PUT");

    let r = f
        .hook(
            Method::PUT,
            &format!("/_sim/records/{}/work/{pc}", f.orcid),
            Some(&json!({"visibility": "private"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(flush_and_count(&f, &counter).await, 3, "user edit");

    assert_eq!(f.delete(&format!("/work/{pc}")).await.status, 204);
    assert_eq!(flush_and_count(&f, &counter).await, 4, "DELETE");
    counter.handle.stop(false).await;
}

#[tokio::test]
async fn person_items_conflict_per_source() {
    let f = fixture().await;
    let pc = f.create("keywords", &json!({"content": "rust"})).await;
    let r = f.post("/keywords", &json!({"content": "rust"})).await;
    assert_error(&r, 409, 9030);
    assert!(
        r.body["developer-message"]
            .as_str()
            .unwrap()
            .contains("'rust'")
    );
    // Another client may add the same keyword; an update to another value is fine.
    let other = f.other_client_token("/person/update").await;
    let r = f
        .send_with(
            Method::POST,
            &other,
            "/keywords",
            &json!({"content": "rust"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let r = f
        .put(
            &format!("/keywords/{pc}"),
            &json!({"put-code": pc, "content": "rustlang"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["content"], json!("rustlang"));
    let r = f.delete(&format!("/keywords/{pc}")).await;
    assert_eq!(r.status, 204);
    // Person item validation: a researcher URL needs a url.
    assert_error(
        &f.post("/researcher-urls", &json!({"url-name": "no url"}))
            .await,
        400,
        9020,
    );
}
