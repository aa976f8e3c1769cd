//! Who sees what (§3.2): the record's default visibility, limited items for `/read-limited`
//! tokens only, private items for their source only, `/read-public` tokens public items only.

use serde_json::json;

use crate::api_support::*;
use crate::helpers::*;

async fn set_default(f: &Fixture, visibility: &str) {
    let r = f
        .hook(
            reqwest::Method::POST,
            &format!("/_sim/records/{}/settings", f.orcid),
            Some(&json!({"default-visibility": visibility})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["default-visibility"], json!(visibility));
}

fn put_codes_in(works: &serde_json::Value) -> Vec<u64> {
    works["group"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["work-summary"].as_array().unwrap().iter())
        .map(|w| w["put-code"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn public_limited_and_private_items() {
    let f = fixture().await;
    let public = f.create("work", &work("Public", "10.2/public")).await;
    set_default(&f, "limited").await;
    let limited = f.create("work", &work("Limited", "10.2/limited")).await;
    assert_eq!(
        f.get(&format!("/work/{limited}")).await.body["visibility"],
        json!("limited")
    );
    set_default(&f, "private").await;
    let private = f.create("work", &work("Private", "10.2/private")).await;

    // The source sees all three, private included.
    assert_eq!(
        put_codes_in(&f.get("/works").await.body),
        [public, limited, private]
    );
    assert_eq!(f.get(&format!("/work/{private}")).await.status, 200);

    // Another client with /read-limited: public and limited; the private one is hidden from
    // lists and refused alone (9013).
    let other = f.other_client_token("/read-limited").await;
    assert_eq!(
        put_codes_in(&f.get_with(&other, "/works").await.body),
        [public, limited]
    );
    assert_error(
        &f.get_with(&other, &format!("/work/{private}")).await,
        403,
        9013,
    );
    assert_eq!(
        f.get_with(&other, &format!("/work/{limited}")).await.status,
        200
    );

    // A user token with /authenticate only reads public items.
    let authenticate = connect_client(
        &f.sim,
        &f.orcid,
        "/authenticate",
        OTHER_CLIENT_ID,
        OTHER_CLIENT_SECRET,
    )
    .await
    .access_token;
    assert_eq!(
        put_codes_in(&f.get_with(&authenticate, "/works").await.body),
        [public]
    );
    assert_error(
        &f.get_with(&authenticate, &format!("/work/{limited}")).await,
        403,
        9039,
    );

    // A /read-public client-credentials token of the source client still sees its own items.
    let read_public = client_credentials(&f.sim, "/read-public")
        .await
        .access_token;
    let own = f.get_with(&read_public, "/works").await;
    assert_eq!(
        put_codes_in(&own.body),
        [public, limited, private],
        "the source sees its own items"
    );

    // Bulk read filters item by item.
    let r = f
        .get_with(&other, &format!("/works/{public},{limited},{private}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let bulk = r.body["bulk"].as_array().unwrap();
    assert_eq!(bulk[0]["work"]["put-code"], json!(public));
    assert_eq!(bulk[1]["work"]["put-code"], json!(limited));
    assert_eq!(bulk[2]["error"]["error-code"], json!(9013));
}

#[tokio::test]
async fn read_public_token_sees_public_items_only() {
    let f = fixture().await;
    // Items written by the other client, so the /read-public token (TEST client) is not their
    // source.
    let writer = f
        .other_client_token("/activities/update /person/update")
        .await;
    let post = |path: &'static str, body: serde_json::Value| {
        let f = &f;
        let writer = writer.clone();
        async move {
            let r = f
                .send_with(reqwest::Method::POST, &writer, path, &body)
                .await;
            assert_eq!(r.status, 201, "{}", r.raw);
            r.header("location")
                .rsplit('/')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }
    };
    let public = post("/employment", employment("Public", None)).await;
    let public_kw = post("/keywords", json!({"content": "public"})).await;
    set_default(&f, "limited").await;
    let limited = post("/employment", employment("Limited", Some("L-1"))).await;
    let limited_kw = post("/keywords", json!({"content": "limited"})).await;

    let read_public = client_credentials(&f.sim, "/read-public")
        .await
        .access_token;
    let r = f.get_with(&read_public, "/employments").await;
    assert_eq!(r.status, 200);
    let groups = r.body["affiliation-group"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "the limited group is removed: {}", r.raw);
    assert_eq!(
        groups[0]["summaries"][0]["employment-summary"]["put-code"],
        json!(public)
    );
    assert_error(
        &f.get_with(&read_public, &format!("/employment/{limited}"))
            .await,
        403,
        9039,
    );
    assert_error(
        &f.get_with(&read_public, &format!("/employment/summary/{limited}"))
            .await,
        403,
        9039,
    );
    let kw = f.get_with(&read_public, "/keywords").await;
    assert_eq!(kw.body["keyword"].as_array().unwrap().len(), 1);
    assert_eq!(kw.body["keyword"][0]["put-code"], json!(public_kw));
    let record = f.get_with(&read_public, "").await;
    assert_eq!(record.status, 200);
    assert_eq!(
        record.body["activities-summary"]["employments"]["affiliation-group"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The user's /read-limited token of the TEST client sees both.
    let r = f.get("/employments").await;
    assert_eq!(r.body["affiliation-group"].as_array().unwrap().len(), 2);
    assert_eq!(f.get(&format!("/keywords/{limited_kw}")).await.status, 200);
}
