//! Rate limit (§4.4), faults, stats and the `/_sim/` user and reset hooks.

use std::time::{Duration, Instant};

use orcid_sim::RateLimit;
use orcid_sim::faults::{Failure, FaultSpec, Faults};
use serde_json::{Value, json};

use crate::helpers::*;

async fn put_hook(sim: &orcid_sim::SimHandle, orcid: &str, n: usize, token: &str) -> u16 {
    http()
        .put(format!(
            "{}/{orcid}/webhook/http%3A%2F%2F127.0.0.1%3A9%2F{n}",
            sim.base_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn rate_limit_allows_the_burst_then_answers_503() {
    // One token a second: what refills while the burst runs stays small even on a loaded box.
    let limit = RateLimit {
        per_second: 1,
        burst: 40,
    };
    let sim = spawn_sim_with(test_config().with_rate_limit(limit)).await;
    let orcid = create_user(&sim).await.to_string();
    let token = client_credentials(&sim, "/webhook").await.access_token;
    let client = http();
    let started = Instant::now();
    let answers: Vec<(u16, String)> = futures_util::future::join_all((0..80).map(|n| {
        let request = client
            .put(format!(
                "{}/{orcid}/webhook/http%3A%2F%2F127.0.0.1%3A9%2F{n}",
                sim.base_url()
            ))
            .bearer_auth(&token);
        async move {
            let res = request.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    }))
    .await;
    let refills = started.elapsed().as_secs() as usize + 1;
    let ok = answers.iter().filter(|(s, _)| *s == 201).count();
    let limited: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 503)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ok + limited.len(), 80);
    assert!(ok >= 40, "the burst of 40 passes: {ok}");
    assert!(
        ok <= 40 + refills,
        "beyond the burst only refills pass: {ok} in {refills} s"
    );
    assert!(!limited.is_empty(), "beyond the burst, 503");
    // The gateway's HTML page, not JSON.
    assert!(limited[0].contains("<title>503 Service Temporarily Unavailable</title>"));
    // OAuth is not limited; another client has its own bucket.
    for _ in 0..5 {
        assert_eq!(
            client
                .get(format!("{}/oauth/jwks", sim.base_url()))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let other = client
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("client_id", OTHER_CLIENT_ID),
            ("client_secret", OTHER_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "/webhook"),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(put_hook(&sim, &orcid, 1000, &other).await, 201);
    // The bucket refills (one token a second here).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 1001;
    loop {
        let status = put_hook(&sim, &orcid, n, &token).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the bucket never refilled");
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.stop().await;
}

#[tokio::test]
async fn no_rate_limit_by_default() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await.to_string();
    let token = client_credentials(&sim, "/webhook").await.access_token;
    for n in 0..80 {
        assert_eq!(put_hook(&sim, &orcid, n, &token).await, 201);
    }
    sim.stop().await;
}

async fn add_fault(sim: &orcid_sim::SimHandle, spec: Value) -> Value {
    let res = http()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn clear_faults(sim: &orcid_sim::SimHandle) {
    let res = http()
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

async fn get_status(sim: &orcid_sim::SimHandle, path: &str) -> u16 {
    http()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn error_rate_fails_about_that_share_of_requests() {
    let sim = spawn_sim().await;
    add_fault(&sim, json!({"error_rate": 0.3})).await;
    let mut failures = 0;
    for _ in 0..200 {
        match get_status(&sim, "/oauth/jwks").await {
            500 => failures += 1,
            200 => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Binomial(200, 0.3): mean 60, sd 6.5.
    assert!((30..=90).contains(&failures), "{failures} of 200");
    // /_sim/ is never affected.
    for _ in 0..20 {
        assert_eq!(get_status(&sim, "/_sim/stats").await, 200);
    }
    clear_faults(&sim).await;
    for _ in 0..20 {
        assert_eq!(get_status(&sim, "/oauth/jwks").await, 200);
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_burst_of_503s_then_normal_service() {
    let sim = spawn_sim().await;
    let body = add_fault(&sim, json!({"status": 503, "count": 5})).await;
    assert_eq!(body["rules"][0]["remaining"], 5);
    for _ in 0..5 {
        let res = http()
            .get(format!("{}/oauth/jwks", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(get_status(&sim, "/oauth/jwks").await, 200);
    sim.stop().await;
}

#[tokio::test]
async fn injected_500s_have_the_body_of_their_part_of_orcid() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({"endpoint": "POST /oauth/token", "status": 500}),
    )
    .await;
    let res = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "server_error");
    clear_faults(&sim).await;
    add_fault(
        &sim,
        json!({"endpoint": "PUT /{orcid}/webhook/*", "status": 500}),
    )
    .await;
    let orcid = create_user(&sim).await.to_string();
    let res = http()
        .put(format!("{}/{orcid}/webhook/x", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error-code"], 9008);
    assert_eq!(body["response-code"], 500);
    sim.stop().await;
}

#[tokio::test]
async fn latency_applies_only_to_the_matching_endpoint() {
    let sim = spawn_sim().await;
    add_fault(
        &sim,
        json!({"endpoint": "GET /oauth/jwks", "latency_ms": 700}),
    )
    .await;
    let t = Instant::now();
    assert_eq!(get_status(&sim, "/oauth/jwks").await, 200);
    assert!(t.elapsed() >= Duration::from_millis(700));
    let t = Instant::now();
    assert_eq!(
        get_status(&sim, "/.well-known/openid-configuration").await,
        200
    );
    assert!(t.elapsed() < Duration::from_millis(700));
    sim.stop().await;
}

#[tokio::test]
async fn hang_outlasts_the_client_timeout() {
    let sim = spawn_sim().await;
    add_fault(&sim, json!({"endpoint": "/oauth/token", "hang_ms": 30000})).await;
    let err = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    // Other routes answer meanwhile, and stop() releases the hung request quickly.
    assert_eq!(get_status(&sim, "/oauth/jwks").await, 200);
    tokio::time::timeout(Duration::from_secs(10), sim.stop())
        .await
        .expect("stop returns");
}

#[tokio::test]
async fn bad_fault_specs_are_refused() {
    let sim = spawn_sim().await;
    for spec in [
        json!({"error_rate": 1.5}),
        json!({"status": 200}),
        json!({"endpoint": "GET nope"}),
        json!({"typo": 1}),
    ] {
        let res = http()
            .post(format!("{}/_sim/faults", sim.base_url()))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{spec}");
    }
    sim.stop().await;
}

#[test]
fn endpoint_patterns_match_as_documented() {
    let faults = Faults::default();
    let spec = |v: Value| serde_json::from_value::<FaultSpec>(v).unwrap();
    faults
        .add(spec(
            json!({"endpoint": "POST /v3.0/*/employment", "status": 503}),
        ))
        .unwrap();
    let hit = |m: &str, p: &str| faults.decide(m, p).failure;
    assert_eq!(
        hit("POST", "/v3.0/0009-0000-0000-0001/employment"),
        Some(Failure::Status(503))
    );
    assert_eq!(
        hit("post", "/v3.0/0009-0000-0000-0001/employment"),
        Some(Failure::Status(503))
    );
    assert_eq!(hit("GET", "/v3.0/0009-0000-0000-0001/employment"), None);
    assert_eq!(hit("POST", "/v3.0/0009-0000-0000-0001/employment/12"), None);
    assert_eq!(hit("POST", "/v3.0/0009-0000-0000-0001/education"), None);
    faults.clear();
    faults
        .add(spec(json!({"endpoint": "/v3.0/**", "status": 502})))
        .unwrap();
    assert_eq!(
        hit("DELETE", "/v3.0/0009-0000-0000-0001/work/7"),
        Some(Failure::Status(502))
    );
    assert_eq!(hit("GET", "/oauth/token"), None);
    faults.clear();
    faults
        .add(spec(
            json!({"endpoint": "* /v3.0/{orcid}/work*", "hang_ms": 10}),
        ))
        .unwrap();
    assert_eq!(
        hit("PUT", "/v3.0/0009-0000-0000-0001/works"),
        Some(Failure::Hang(Duration::from_millis(10)))
    );
    assert_eq!(hit("PUT", "/v3.0/0009-0000-0000-0001/funding"), None);
}

#[tokio::test]
async fn stats_count_requests_by_template_and_status() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await.to_string();
    let token = client_credentials(&sim, "/webhook").await.access_token;
    assert_eq!(put_hook(&sim, &orcid, 1, &token).await, 201);
    assert_eq!(put_hook(&sim, &orcid, 1, &token).await, 204);
    assert_eq!(put_hook(&sim, &orcid, 2, "bad").await, 401);
    get_status(&sim, "/oauth/jwks").await;
    // Whatever clients make up, unrouted paths share one key.
    for n in 0..3 {
        get_status(&sim, &format!("/no/such/path/{n}")).await;
        get_status(&sim, &format!("/v3.0/{orcid}/no-such-section-{n}")).await;
    }
    let stats: Value = http()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({
            "GET /oauth/jwks": {"200": 1},
            "POST /oauth/token": {"200": 1},
            "PUT /{orcid}/webhook/{callback}": {"201": 1, "204": 1, "401": 1},
            "(unrouted)": {"404": 3, "406": 3},
        })
    );
    assert_eq!(
        orcid_sim::stats::template("/v3.0/0009-0000-0000-0001/employment/12"),
        "/v3.0/{orcid}/employment/{put-code}"
    );
    assert_eq!(
        orcid_sim::stats::template("/v3.0/0009-0000-0000-0001/works/1,2,3"),
        "/v3.0/{orcid}/works/{put-codes}"
    );
    let res = http()
        .delete(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let stats: Value = http()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({}));
    sim.stop().await;
}

#[tokio::test]
async fn users_get_increasing_ids_in_the_0009_range() {
    let sim = spawn_sim().await;
    let a = create_user(&sim).await;
    let b = create_user(&sim).await;
    assert_eq!(a.to_string(), "0009-0000-0000-0009"); // 900000000000 + check digit
    assert!(b > a);
    assert!(b.to_string().starts_with("0009-0000-0000-001"));
    let res = http()
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&json!({"given-names": "X", "family-name": "Y", "email": sim.state().users.get(&a).unwrap().email, "password": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = http()
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&json!({"given-names": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http()
        .get(format!("{}/_sim/users/{a}", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["given-names"], "Sofia");
    sim.stop().await;
}

#[tokio::test]
async fn reset_clears_everything_but_clients() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let token = connect(&sim, &orcid, "openid").await;
    add_fault(&sim, json!({"endpoint": "GET /nothing", "status": 500})).await;
    let res = http()
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(sim.state().users.get(&orcid).is_none());
    assert!(!sim.state().records.exists(&orcid));
    let res = http()
        .get(format!("{}/oauth/userinfo", sim.base_url()))
        .bearer_auth(&token.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let faults: Value = http()
        .get(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!({"rules": []}));
    // Clients survive; iDs start again.
    let _ = client_credentials(&sim, "/read-public").await;
    assert_eq!(create_user(&sim).await, orcid);
    sim.stop().await;
}
