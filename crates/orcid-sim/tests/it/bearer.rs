//! The bearer-token contract (§4.2, §4.3, §11.5) that every /v3.0 handler relies on, checked
//! through `auth::authenticate` directly and over HTTP on the webhook routes and userinfo.

use actix_web::test::TestRequest;
use orcid_sim::auth::{AuthFailure, Need, authenticate};
use serde_json::Value;

use crate::helpers::*;

fn with_bearer(token: &str) -> actix_web::HttpRequest {
    TestRequest::default()
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_http_request()
}

async fn body_of(failure: AuthFailure) -> (u16, Value, actix_web::http::header::HeaderMap) {
    let res = failure.into_response();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = actix_web::body::to_bytes(res.into_body()).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), headers)
}

#[tokio::test]
async fn missing_unknown_wrong_record_and_missing_scope() {
    let sim = spawn_sim().await;
    let alice = create_user(&sim).await;
    let bob = create_user(&sim).await;
    let read = connect(&sim, &alice, "/read-limited").await;
    let state = sim.state();

    let no_header = TestRequest::default().to_http_request();
    let f = authenticate(state, &no_header, &alice, Need::Read).unwrap_err();
    let (status, body, headers) = body_of(f).await;
    assert_eq!(status, 403);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json;charset=UTF-8"
    );
    assert_eq!(
        body,
        serde_json::json!({"error": "forbidden", "error_description": "Forbidden: The server understood the request but refuses to authorize it."})
    );

    let f = authenticate(state, &with_bearer("nope-token"), &alice, Need::Read).unwrap_err();
    assert_eq!(
        format!("{f:?}"),
        "InvalidToken([redacted])",
        "Debug hides the token"
    );
    let (status, body, headers) = body_of(f).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_token", "error_description": "Invalid access token: nope-token"})
    );
    assert!(
        headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let f = authenticate(state, &with_bearer(&read.access_token), &bob, Need::Read).unwrap_err();
    let (status, body, _) = body_of(f).await;
    assert_eq!(status, 401);
    assert_eq!(body["error-code"], 9017);
    assert_eq!(body["response-code"], 401);

    let f = authenticate(
        state,
        &with_bearer(&read.access_token),
        &alice,
        Need::WriteActivities,
    )
    .unwrap_err();
    let (status, body, headers) = body_of(f).await;
    assert_eq!(status, 403);
    assert_eq!(body["error-code"], 9038);
    assert_eq!(body["response-code"], 403);
    assert!(
        headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/vnd.orcid+json")
    );

    let caller = authenticate(state, &with_bearer(&read.access_token), &alice, Need::Read).unwrap();
    assert_eq!(caller.client_id, TEST_CLIENT_ID);
    assert_eq!(caller.orcid, Some(alice));
    assert!(caller.read_limited_activities && caller.read_limited_person);
    assert!(!caller.user_revoked);
    sim.stop().await;
}

#[tokio::test]
async fn scopes_map_to_needs() {
    let sim = spawn_sim().await;
    let alice = create_user(&sim).await;
    let state = sim.state();
    let acts = connect(&sim, &alice, "/activities/update").await;
    let person = connect(&sim, &alice, "/person/update").await;
    let auth_only = connect(&sim, &alice, "/authenticate").await;
    let req = with_bearer(&acts.access_token);
    assert!(authenticate(state, &req, &alice, Need::WriteActivities).is_ok());
    assert!(authenticate(state, &req, &alice, Need::DeleteActivities).is_ok());
    assert!(matches!(
        authenticate(state, &req, &alice, Need::WritePerson),
        Err(AuthFailure::MissingScope)
    ));
    let c = authenticate(state, &req, &alice, Need::Read).unwrap();
    assert!(c.read_limited_activities && !c.read_limited_person);
    let req = with_bearer(&person.access_token);
    assert!(authenticate(state, &req, &alice, Need::WritePerson).is_ok());
    assert!(authenticate(state, &req, &alice, Need::DeletePerson).is_ok());
    assert!(matches!(
        authenticate(state, &req, &alice, Need::WriteActivities),
        Err(AuthFailure::MissingScope)
    ));
    let c = authenticate(
        state,
        &with_bearer(&auth_only.access_token),
        &alice,
        Need::Read,
    )
    .unwrap();
    assert!(
        !c.read_limited_activities && !c.read_limited_person,
        "public data only"
    );
    sim.stop().await;
}

#[tokio::test]
async fn client_credentials_read_public_reads_any_record_but_writes_nothing() {
    let sim = spawn_sim().await;
    let alice = create_user(&sim).await;
    let state = sim.state();
    let public = client_credentials(&sim, "/read-public").await;
    let req = with_bearer(&public.access_token);
    let c = authenticate(state, &req, &alice, Need::Read).unwrap();
    assert!(c.orcid.is_none() && c.is_client_credentials());
    assert!(!c.read_limited_activities && !c.read_limited_person);
    assert!(matches!(
        authenticate(state, &req, &alice, Need::WriteActivities),
        Err(AuthFailure::MissingScope)
    ));
    let webhook = client_credentials(&sim, "/webhook").await;
    let req = with_bearer(&webhook.access_token);
    assert!(matches!(
        authenticate(state, &req, &alice, Need::Read),
        Err(AuthFailure::MissingScope)
    ));
    sim.stop().await;
}

#[tokio::test]
async fn user_revocation_leaves_deletes_working_and_client_revocation_does_not() {
    let sim = spawn_sim().await;
    let alice = create_user(&sim).await;
    let token = connect(
        &sim,
        &alice,
        "/activities/update /person/update /read-limited",
    )
    .await;
    let other = connect_client(
        &sim,
        &alice,
        "/activities/update",
        OTHER_CLIENT_ID,
        OTHER_CLIENT_SECRET,
    )
    .await;
    let res = http()
        .post(format!("{}/_sim/users/{alice}/revoke", sim.base_url()))
        .json(&serde_json::json!({"client_id": TEST_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"revoked": 1})
    );

    let state = sim.state();
    let req = with_bearer(&token.access_token);
    for need in [Need::Read, Need::WriteActivities, Need::WritePerson] {
        assert!(
            matches!(
                authenticate(state, &req, &alice, need),
                Err(AuthFailure::InvalidToken(_))
            ),
            "{need:?}"
        );
    }
    for need in [Need::DeleteActivities, Need::DeletePerson] {
        let c = authenticate(state, &req, &alice, need).unwrap();
        assert!(c.user_revoked, "{need:?}");
    }
    // The other client's token is untouched.
    assert!(
        authenticate(
            state,
            &with_bearer(&other.access_token),
            &alice,
            Need::WriteActivities
        )
        .is_ok()
    );
    // A refresh of a user-revoked token fails.
    let res = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", token.refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Client revocation: even DELETE fails.
    let t2 = connect_client(
        &sim,
        &alice,
        "/activities/update",
        OTHER_CLIENT_ID,
        OTHER_CLIENT_SECRET,
    )
    .await;
    let res = http()
        .post(format!("{}/oauth/revoke", sim.base_url()))
        .form(&[
            ("client_id", OTHER_CLIENT_ID),
            ("client_secret", OTHER_CLIENT_SECRET),
            ("token", &t2.access_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(matches!(
        authenticate(
            state,
            &with_bearer(&t2.access_token),
            &alice,
            Need::DeleteActivities
        ),
        Err(AuthFailure::InvalidToken(_))
    ));
    // Unknown user: 404.
    let res = http()
        .post(format!(
            "{}/_sim/users/0009-0000-0009-9999/revoke",
            sim.base_url()
        ))
        .json(&serde_json::json!({"client_id": TEST_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert!(res.status() == 404 || res.status() == 400);
    sim.stop().await;
}

#[tokio::test]
async fn bearer_errors_over_http_on_the_webhook_route() {
    let sim = spawn_sim().await;
    let alice = create_user(&sim).await;
    let url = format!(
        "{}/{alice}/webhook/http%3A%2F%2F127.0.0.1%3A9%2Fhook",
        sim.base_url()
    );
    let res = http().put(&url).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "forbidden");
    let res = http()
        .put(&url)
        .bearer_auth("f5af9f51-07e6-4332-8f1a-c0c11c1e3728")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"error": "invalid_token", "error_description": "Invalid access token: f5af9f51-07e6-4332-8f1a-c0c11c1e3728"})
    );
    sim.stop().await;
}

#[tokio::test]
async fn userinfo_and_its_errors() {
    let sim = spawn_sim().await;
    let alice = create_user(&sim).await;
    let t = connect(&sim, &alice, "openid").await;
    let res = http()
        .get(format!("{}/oauth/userinfo", sim.base_url()))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "id": format!("{}/{alice}", sim.base_url()),
            "sub": alice.to_string(),
            "name": "Sofia Garcia",
            "family_name": "Garcia",
            "given_name": "Sofia",
        })
    );
    let res = http()
        .post(format!("{}/oauth/userinfo", sim.base_url()))
        .form(&[("access_token", t.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["sub"], alice.to_string());
    let limited = connect(&sim, &alice, "/read-limited").await;
    for token in ["garbage", limited.access_token.as_str()] {
        let res = http()
            .get(format!("{}/oauth/userinfo", sim.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            serde_json::json!({"error": "access_denied", "error-description": "access_token is invalid"})
        );
    }
    sim.stop().await;
}
