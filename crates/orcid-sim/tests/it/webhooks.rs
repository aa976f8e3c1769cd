//! Webhooks (§5, §11.12): registration, unregistration, delivery, retries, 429.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::helpers::*;

/// One callback the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    body_len: usize,
    at: Instant,
}

/// A tiny HTTP server standing in for an integrator's callback endpoint; answers with the
/// scripted statuses in order, then 204.
struct Receiver {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start() -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let (h, s) = (hits.clone(), script.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let (h, s) = (h.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (h, s) = (h.clone(), s.clone());
                async move {
                    h.lock().unwrap().push(Hit {
                        method: req.method().to_string(),
                        path: req.path().to_owned(),
                        body_len: body.len(),
                        at: Instant::now(),
                    });
                    let status = s.lock().unwrap().pop_front().unwrap_or(204);
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .finish()
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
        Receiver {
            base,
            hits,
            script,
            handle,
        }
    }

    fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    async fn wait_for_hits(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} callbacks arrived",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn encode(uri: &str) -> String {
    utf8_percent_encode(uri, NON_ALPHANUMERIC).to_string()
}

async fn put_hook(
    sim: &orcid_sim::SimHandle,
    orcid: &str,
    callback: &str,
    token: &str,
) -> reqwest::Response {
    http()
        .put(format!(
            "{}/{orcid}/webhook/{}",
            sim.base_url(),
            encode(callback)
        ))
        .bearer_auth(token)
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap()
}

async fn delete_hook(
    sim: &orcid_sim::SimHandle,
    orcid: &str,
    callback: &str,
    token: &str,
) -> reqwest::Response {
    http()
        .delete(format!(
            "{}/{orcid}/webhook/{}",
            sim.base_url(),
            encode(callback)
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn flush(sim: &orcid_sim::SimHandle) -> Value {
    let res = http()
        .post(format!("{}/_sim/webhooks/flush", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn webhook_token(sim: &orcid_sim::SimHandle, client_id: &str, secret: &str) -> String {
    let res = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "/webhook"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn register_and_unregister() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await.to_string();
    let token = client_credentials(&sim, "/webhook").await.access_token;
    let callback = format!("https://nowhere2.com/{orcid}/updated");
    let res = put_hook(&sim, &orcid, &callback, &token).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"],
        format!("{}/{orcid}/webhook/{}", sim.base_url(), encode(&callback)).as_str()
    );
    // The callback segment is echoed as sent (ORCID's documented encoding keeps `.` and `-`).
    let raw = format!("https%3A%2F%2Fnowhere3.com%2F{orcid}%2Fupdated");
    let res = http()
        .put(format!("{}/{orcid}/webhook/{raw}", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("{}/{orcid}/webhook/{raw}", sim.base_url())
    );
    let res = put_hook(&sim, &orcid, &callback, &token).await;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());

    // Another client cannot remove it.
    let other = webhook_token(&sim, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET).await;
    let res = delete_hook(&sim, &orcid, &callback, &other).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error-code"], 9014);
    assert_eq!(body["response-code"], 403);

    let res = delete_hook(&sim, &orcid, &callback, &token).await;
    assert_eq!(res.status(), 204);
    let res = delete_hook(&sim, &orcid, &callback, &token).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error-code"], 9028);
    assert_eq!(
        body["developer-message"],
        format!("404 Not Found: No webhook found for orcid={orcid}, and uri={callback}.")
    );
    sim.stop().await;
}

#[tokio::test]
async fn registration_errors() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await.to_string();
    let webhook = client_credentials(&sim, "/webhook").await.access_token;
    let public = client_credentials(&sim, "/read-public").await.access_token;
    let res = put_hook(&sim, &orcid, "http://127.0.0.1:9/x", &public).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error-code"], 9038);
    // A user token without /webhook is refused the same way.
    let user = connect(&sim, &orcid.parse().unwrap(), "/activities/update")
        .await
        .access_token;
    let res = put_hook(&sim, &orcid, "http://127.0.0.1:9/x", &user).await;
    assert_eq!(res.status(), 403);
    // Unknown iD (valid check digit): 404.
    let res = put_hook(
        &sim,
        "0000-0002-1825-0097",
        "http://127.0.0.1:9/x",
        &webhook,
    )
    .await;
    assert_eq!(res.status(), 404);
    // Syntactically bad callback: 400 9012.
    let res = put_hook(&sim, &orcid, "http://bad host/x", &webhook).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error-code"], 9012);
    assert_eq!(
        body["developer-message"],
        "400 Bad Request: Webhook uri: http://bad host/x is syntactically incorrect"
    );
    sim.stop().await;
}

#[tokio::test]
async fn delivery_is_an_empty_post_after_a_change() {
    let sim = spawn_sim().await;
    let receiver = Receiver::start().await;
    let orcid = create_user(&sim).await;
    let token = client_credentials(&sim, "/webhook").await.access_token;
    let callback = format!("{}/{orcid}/updated", receiver.base);
    assert_eq!(
        put_hook(&sim, &orcid.to_string(), &callback, &token)
            .await
            .status(),
        201
    );

    // A new hook waits for the next change.
    let summary = flush(&sim).await;
    assert_eq!(summary["delivered"], 0);
    assert!(receiver.hits().is_empty());

    sim.state().record_changed(&orcid);
    sim.state().record_changed(&orcid);
    let summary = flush(&sim).await;
    assert_eq!(summary["delivered"], 1, "{summary}");
    assert_eq!(summary["attempts"][0]["callback"], callback);
    assert_eq!(summary["attempts"][0]["status"], 204);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "changes are coalesced");
    assert_eq!(hits[0].method, "POST");
    assert_eq!(hits[0].path, format!("/{orcid}/updated"));
    assert_eq!(hits[0].body_len, 0);

    // Nothing new: nothing sent.
    assert_eq!(flush(&sim).await["delivered"], 0);
    assert_eq!(receiver.hits().len(), 1);
    receiver.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn background_delivery_retries_with_linear_backoff() {
    let sim = spawn_sim().await; // interval 200 ms, retry unit 100 ms
    let receiver = Receiver::start().await;
    receiver.script(&[500, 503]);
    let orcid = create_user(&sim).await;
    let token = client_credentials(&sim, "/webhook").await.access_token;
    let callback = format!("{}/cb", receiver.base);
    assert_eq!(
        put_hook(&sim, &orcid.to_string(), &callback, &token)
            .await
            .status(),
        201
    );
    sim.state().record_changed(&orcid);
    let hits = receiver.wait_for_hits(3, Duration::from_secs(10)).await;
    assert!(hits.iter().all(|h| h.method == "POST" && h.body_len == 0));
    // Second retry waits at least 2 × the unit after the second failure.
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(100));
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(200));
    // Delivered now: no more callbacks.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.hits().len(), 3);
    receiver.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn connection_errors_count_as_failures_and_hooks_stop_after_max_attempts() {
    let mut config = test_config();
    config.webhook_interval = Duration::from_secs(3600); // flush only
    let sim = spawn_sim_with(config).await; // max attempts 5
    let orcid = create_user(&sim).await;
    let token = client_credentials(&sim, "/webhook").await.access_token;
    // Port 9 (discard) is closed on loopback: connection refused.
    assert_eq!(
        put_hook(&sim, &orcid.to_string(), "http://127.0.0.1:9/cb", &token)
            .await
            .status(),
        201
    );
    sim.state().record_changed(&orcid);
    for n in 1..=5 {
        let summary = flush(&sim).await;
        assert_eq!(summary["failed"], 1, "{summary}");
        assert_eq!(summary["attempts"][0]["error"], "connection failed");
        assert_eq!(summary["attempts"][0]["failed_attempts"], n);
    }
    let summary = flush(&sim).await;
    assert_eq!(
        summary["attempts"].as_array().unwrap().len(),
        0,
        "disabled after 5 failures"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_429_skips_the_clients_other_hooks_for_the_run() {
    let mut config = test_config();
    config.webhook_interval = Duration::from_secs(3600);
    let sim = spawn_sim_with(config).await;
    let receiver = Receiver::start().await;
    receiver.script(&[429]);
    let alice = create_user(&sim).await;
    let bob = create_user(&sim).await;
    let token = client_credentials(&sim, "/webhook").await.access_token;
    for who in [alice, bob] {
        let cb = format!("{}/{who}", receiver.base);
        assert_eq!(
            put_hook(&sim, &who.to_string(), &cb, &token).await.status(),
            201
        );
        sim.state().record_changed(&who);
    }
    let summary = flush(&sim).await;
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(receiver.hits().len(), 1);
    // Next run: both go out.
    let summary = flush(&sim).await;
    assert_eq!(summary["delivered"], 2, "{summary}");
    assert_eq!(receiver.hits().len(), 3);
    receiver.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn stop_ends_the_delivery_task() {
    let sim = spawn_sim().await;
    tokio::time::timeout(Duration::from_secs(10), sim.stop())
        .await
        .expect("stop returns");
}

#[tokio::test]
async fn an_api_write_fires_the_hook() {
    let mut config = test_config();
    config.webhook_interval = Duration::from_secs(3600); // flush only
    let sim = spawn_sim_with(config).await;
    let receiver = Receiver::start().await;
    let orcid = create_user(&sim).await;
    let hook_token = client_credentials(&sim, "/webhook").await.access_token;
    let callback = format!("{}/{orcid}/updated", receiver.base);
    assert_eq!(
        put_hook(&sim, &orcid.to_string(), &callback, &hook_token)
            .await
            .status(),
        201
    );
    let user = connect(&sim, &orcid, "/activities/update").await;
    let res = http()
        .post(format!("{}/v3.0/{orcid}/employment", sim.base_url()))
        .bearer_auth(&user.access_token)
        .header("Content-Type", "application/vnd.orcid+json")
        .header("Accept", "application/vnd.orcid+json")
        .body(
            serde_json::json!({
                "role-title": "Engineer",
                "organization": {
                    "name": "Boston University",
                    "address": {"city": "Boston", "region": "Massachusetts", "country": "US"},
                    "disambiguated-organization": {
                        "disambiguated-organization-identifier": "https://ror.org/05qwgg493",
                        "disambiguation-source": "ROR"
                    }
                }
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let summary = flush(&sim).await;
    assert_eq!(summary["delivered"], 1, "{summary}");
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, format!("/{orcid}/updated"));
    receiver.stop().await;
    sim.stop().await;
}
