//! Bulk works: POST `/works` with errors in place and the 100 limit; GET `/works/{a,b,…}`
//! (§2.2, §2.3, §3.6).

use serde_json::{Value, json};

use crate::api_support::*;

#[tokio::test]
async fn bulk_create_puts_errors_in_place() {
    let f = fixture().await;
    let existing = f.create("work", &work("Existing", "10.3/existing")).await;
    let mut bad_type = work("Bad type", "10.3/bad");
    bad_type["type"] = json!("novel");
    let body = json!({"bulk": [
        {"work": work("One", "10.3/one")},
        {"work": work("Dup of existing", "https://doi.org/10.3/EXISTING")},
        {"work": bad_type},
        {"work": work("Dup of the first entry", "10.3/one")},
        {"work": work("Two", "10.3/two")},
    ]});
    let r = f.post("/works", &body).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(
        r.header("content-type")
            .starts_with("application/vnd.orcid+json")
    );
    let bulk = r.body["bulk"].as_array().unwrap();
    assert_eq!(bulk.len(), 5);
    let one = bulk[0]["work"]["put-code"].as_u64().unwrap();
    assert_eq!(
        bulk[0]["work"]["path"],
        json!(format!("/{}/work/{one}", f.orcid))
    );
    assert_eq!(bulk[1]["error"]["error-code"], json!(9021));
    assert!(
        bulk[1]["error"]["developer-message"]
            .as_str()
            .unwrap()
            .contains(&format!("put-code {existing}"))
    );
    assert_eq!(bulk[2]["error"]["error-code"], json!(9037));
    assert_eq!(bulk[3]["error"]["error-code"], json!(9021));
    assert!(
        bulk[3]["error"]["developer-message"]
            .as_str()
            .unwrap()
            .contains(&format!("put-code {one}"))
    );
    let two = bulk[4]["work"]["put-code"].as_u64().unwrap();
    assert!(two > one);
    assert_eq!(
        keys(&bulk[1]["error"]),
        [
            "response-code",
            "developer-message",
            "user-message",
            "error-code",
            "more-info"
        ]
    );

    // Three works now: the existing one and the two created.
    let r = f.get(&format!("/works/{existing},{one},{two}")).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let read: Vec<u64> = r.body["bulk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["work"]["put-code"].as_u64().unwrap())
        .collect();
    assert_eq!(read, [existing, one, two]);
}

#[tokio::test]
async fn bulk_limits() {
    let f = fixture().await;
    let entries: Vec<Value> = (0..101)
        .map(|i| json!({"work": work(&format!("W{i}"), &format!("10.4/{i}"))}))
        .collect();
    let r = f.post("/works", &json!({"bulk": entries})).await;
    assert_error(&r, 400, 9006);
    assert!(
        r.body["developer-message"]
            .as_str()
            .unwrap()
            .contains("You are allowed to add up to 100 elements per request.")
    );
    assert_eq!(
        f.get("/works").await.body["group"],
        json!([]),
        "nothing created"
    );

    // Exactly 100 is fine.
    let r = f.post("/works", &json!({"bulk": &entries[..100]})).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let put_codes: Vec<String> = r.body["bulk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["work"]["put-code"].as_u64().unwrap().to_string())
        .collect();
    assert_eq!(put_codes.len(), 100);

    // Bulk read: 100 put codes are fine, 101 are 400 9042.
    let r = f.get(&format!("/works/{}", put_codes.join(","))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["bulk"].as_array().unwrap().len(), 100);
    let r = f
        .get(&format!("/works/{},{}", put_codes.join(","), put_codes[0]))
        .await;
    assert_error(&r, 400, 9042);

    // An unknown put code is an error in place (9034); a non-number fails the request (9006).
    let r = f.get(&format!("/works/{},1", put_codes[0])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["bulk"][1]["error"]["error-code"], json!(9034));
    assert_error(
        &f.get(&format!("/works/{},abc", put_codes[0])).await,
        400,
        9006,
    );

    // A body that is not a bulk.
    assert_error(&f.post("/works", &work("W", "10.4/x")).await, 400, 9047);
}
