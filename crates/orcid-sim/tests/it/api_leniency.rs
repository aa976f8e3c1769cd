//! What ORCID's lenient reader accepts (§3) and content negotiation (§2.1, §11.11).

use serde_json::{Value, json};

use crate::api_support::*;
use crate::helpers::*;

#[tokio::test]
async fn lenient_bodies_are_stored_in_canonical_form() {
    let f = fixture().await;
    let body = json!({
        "title": {"title": "Bare title", "subtitle": "Bare subtitle", "translated-title": null},
        "journal-title": "Bare journal",
        "short-description": null,
        "citation": null,
        "type": "journal-article",
        "publication-date": {"year": 2021, "month": "03", "day": null},
        "external-ids": {"external-id": {
            "external-id-type": "doi",
            "external-id-value": "10.9/lenient",
            "external-id-url": "https://doi.org/10.9/lenient",
            "external-id-relationship": "self"
        }},
        "url": "https://example.com/w",
        "contributors": {"contributor": [{"credit-name": "Jo", "contributor-email": "jo@example.com",
                          "contributor-attributes": {"contributor-sequence": "first", "contributor-role": "author"}}]},
        "country": "CA",
        "visibility": null,
        "display-index": "3",
        "some-future-field": {"nested": true}
    });
    let pc = f.create("work", &body).await;
    let r = f.get(&format!("/work/{pc}")).await;
    assert_eq!(r.status, 200);
    let w = &r.body;
    assert_eq!(
        w["title"],
        json!({"title": {"value": "Bare title"}, "subtitle": {"value": "Bare subtitle"}, "translated-title": null})
    );
    assert_eq!(w["journal-title"], json!({"value": "Bare journal"}));
    assert_eq!(
        w["publication-date"],
        json!({"year": {"value": "2021"}, "month": {"value": "03"}, "day": null})
    );
    assert_eq!(w["url"], json!({"value": "https://example.com/w"}));
    assert_eq!(w["country"], json!({"value": "CA"}));
    let id = &w["external-ids"]["external-id"][0];
    assert_eq!(
        id["external-id-url"],
        json!({"value": "https://doi.org/10.9/lenient"})
    );
    assert_eq!(
        w["contributors"]["contributor"][0]["credit-name"],
        json!({"value": "Jo"})
    );
    assert_eq!(
        w["contributors"]["contributor"][0]["contributor-email"],
        json!({"value": "jo@example.com"})
    );
    assert_eq!(
        w.get("some-future-field"),
        None,
        "unknown fields are dropped"
    );
    assert_eq!(w["short-description"], Value::Null);
}

#[tokio::test]
async fn each_json_content_type_is_read_and_answered() {
    let f = fixture().await;
    for (i, (content_type, expected)) in [
        (
            "application/vnd.orcid+json",
            "application/vnd.orcid+json; qs=4;charset=UTF-8",
        ),
        (
            "application/orcid+json",
            "application/orcid+json; qs=2;charset=UTF-8",
        ),
        (
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let r = reply(
            http()
                .post(f.url("/work"))
                .bearer_auth(&f.token)
                .header("Content-Type", content_type)
                .header("Accept", content_type)
                .body(work(&format!("W{i}"), &format!("10.1/ct{i}")).to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 201, "{content_type}: {}", r.raw);
        let r = reply(
            http()
                .get(f.url("/works"))
                .bearer_auth(&f.token)
                .header("Accept", content_type)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), expected, "Accept {content_type}");
        assert_eq!(r.body["group"].as_array().unwrap().len(), i + 1);
    }
}

/// A GET of `path` with `accept` (`None`: no `Accept` header at all; reqwest would otherwise
/// send `*/*`).
async fn get_accepting(f: &Fixture, token: &str, path: &str, accept: Option<&str>) -> Reply {
    let mut req = http().get(f.url(path)).bearer_auth(token);
    req = match accept {
        Some(a) => req.header("Accept", a),
        None => req.header("Accept", ""),
    };
    reply(req.send().await.unwrap()).await
}

#[tokio::test]
async fn where_orcid_would_answer_xml_the_simulator_answers_406() {
    let f = fixture().await;
    // ORCID's default is XML (§2.1, §11.11): no Accept, */*, application/*, or XML ranked first.
    for accept in [
        None,
        Some("*/*"),
        Some("application/*"),
        Some("text/html, */*;q=0.8"),
        Some("application/vnd.orcid+xml, application/json;q=0.5"),
        Some("application/vnd.orcid+xml"),
        Some("application/xml"),
    ] {
        let r = get_accepting(&f, &f.token, "/works", accept).await;
        assert_error(&r, 406, 9001);
        assert_eq!(
            r.header("content-type"),
            "application/vnd.orcid+json; qs=4;charset=UTF-8"
        );
        let message = r.body["developer-message"].as_str().unwrap();
        assert!(
            message.contains("ORCID would answer with XML")
                && message.contains("send Accept: application/vnd.orcid+json"),
            "{accept:?}: {message}"
        );
    }
    // JSON ranked first is answered.
    let r = get_accepting(
        &f,
        &f.token,
        "/works",
        Some("application/vnd.orcid+xml;q=0.5, application/json"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.header("content-type"), "application/json;charset=UTF-8");
    // Nothing ORCID produces: 406 without the XML hint.
    let r = get_accepting(&f, &f.token, "/works", Some("text/csv")).await;
    assert_error(&r, 406, 9001);
    assert!(
        !r.body["developer-message"]
            .as_str()
            .unwrap()
            .contains("would answer with XML")
    );
}

#[tokio::test]
async fn error_bodies_are_negotiated_too() {
    let f = fixture().await;
    // A 404 ORCID would write in XML is a 406 here, not a JSON 404.
    let r = get_accepting(&f, &f.token, "/work/999999", None).await;
    assert_error(&r, 406, 9001);
    let r = get_accepting(&f, &f.token, "/no-such-section", Some("*/*")).await;
    assert_error(&r, 406, 9001);
    let r = get_accepting(&f, &f.token, "/work/999999", Some("application/json")).await;
    assert_error(&r, 404, 9016);
    assert_eq!(r.header("content-type"), "application/json;charset=UTF-8");
    // 9017 and 9038 come after negotiation, in the negotiated type.
    let (other, _) = f.another_user().await;
    let foreign = |accept: Option<&'static str>| {
        let mut req = http()
            .get(format!("{}/v3.0/{other}/works", f.sim.base_url()))
            .bearer_auth(&f.token);
        req = req.header("Accept", accept.unwrap_or(""));
        req
    };
    let r = reply(foreign(None).send().await.unwrap()).await;
    assert_error(&r, 406, 9001);
    let r = reply(
        foreign(Some("application/orcid+json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, 9017);
    assert_eq!(
        r.header("content-type"),
        "application/orcid+json; qs=2;charset=UTF-8"
    );
    let read_only = connect(&f.sim, &f.orcid, "/read-limited")
        .await
        .access_token;
    let post = |accept: &'static str| {
        http()
            .post(f.url("/work"))
            .bearer_auth(&read_only)
            .header("Accept", accept)
            .header("Content-Type", VND_JSON)
            .body(work("W", "10.1/neg").to_string())
    };
    let r = reply(post("*/*").send().await.unwrap()).await;
    assert_error(&r, 406, 9001);
    let r = reply(post("application/json").send().await.unwrap()).await;
    assert_error(&r, 403, 9038);
    assert_eq!(r.header("content-type"), "application/json;charset=UTF-8");
    // The bearer filter's OAuth-style refusals come first and are JSON whatever the Accept.
    let r = get_accepting(&f, "not-a-token", "/works", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], json!("invalid_token"));
}

#[tokio::test]
async fn bodies_must_be_json_or_xml() {
    let f = fixture().await;
    // Other types and a missing Content-Type: 415.
    for content_type in [Some("text/plain"), None] {
        let mut req = http()
            .post(f.url("/work"))
            .bearer_auth(&f.token)
            .header("Accept", VND_JSON)
            .body(work("W", "10.1/xml").to_string());
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let r = reply(req.send().await.unwrap()).await;
        assert_error(&r, 415, 9001);
    }
    // A JSON body labelled as XML is unreadable XML: 400 9001.
    let r = reply(
        http()
            .post(f.url("/work"))
            .bearer_auth(&f.token)
            .header("Accept", VND_JSON)
            .header("Content-Type", "application/vnd.orcid+xml")
            .body(work("W", "10.1/xml").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 400, 9001);
    // Nothing was created.
    assert_eq!(f.get("/works").await.body["group"], json!([]));
}

#[tokio::test]
async fn auth_comes_first() {
    let f = fixture().await;
    let r = reply(
        http()
            .post(f.url("/work"))
            .header("Content-Type", VND_JSON)
            .body(work("W", "10.1/w").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], json!("forbidden"));
    // A read-only token cannot write: 403 9038.
    let read_only = connect(&f.sim, &f.orcid, "/read-limited")
        .await
        .access_token;
    let r = f
        .send_with(
            reqwest::Method::POST,
            &read_only,
            "/work",
            &work("W", "10.1/w"),
        )
        .await;
    assert_error(&r, 403, 9038);
    // A person write needs /person/update.
    let activities = connect(&f.sim, &f.orcid, "/activities/update")
        .await
        .access_token;
    let r = f
        .send_with(
            reqwest::Method::POST,
            &activities,
            "/keywords",
            &json!({"content": "k"}),
        )
        .await;
    assert_error(&r, 403, 9038);
}
