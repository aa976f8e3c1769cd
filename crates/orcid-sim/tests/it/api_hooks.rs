//! The records' test hooks: the whole record, the user editing, deleting and adding items,
//! person settings, and deprecated / deactivated records (§7).

use reqwest::Method;
use serde_json::json;

use crate::api_support::*;

#[tokio::test]
async fn export_shows_every_item_and_user_info() {
    let f = fixture().await;
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/settings", f.orcid),
            Some(&json!({"default-visibility": "private"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let pc = f.create("work", &work("Hidden", "10.6/hidden")).await;
    let r = f
        .hook(Method::GET, &format!("/_sim/records/{}", f.orcid), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["orcid"], json!(f.orcid.to_string()));
    assert_eq!(r.body["given-names"], json!("Sofia"));
    assert_eq!(r.body["family-name"], json!("Garcia"));
    assert!(r.body["email"].as_str().unwrap().contains('@'));
    assert_eq!(r.body["status"], json!("active"));
    assert_eq!(r.body["max-works"], json!(10000));
    assert_eq!(r.body["items"]["works"][0]["put-code"], json!(pc));
    assert_eq!(r.body["items"]["works"][0]["visibility"], json!("private"));
    assert_eq!(r.body["items"]["employments"], json!([]));
    let unknown = orcid::OrcidId::from_base(999_999_999_998).unwrap();
    let r = f
        .hook(Method::GET, &format!("/_sim/records/{unknown}"), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_user_edits_and_deletes_items() {
    let f = fixture().await;
    let pc = f.create("employment", &employment("Lecturer", None)).await;
    let before = f.get(&format!("/employment/{pc}")).await.body;

    // Edit: a merge patch over the content (and visibility); the source stays the client.
    let r = f
        .hook(
            Method::PUT,
            &format!("/_sim/records/{}/employment/{pc}", f.orcid),
            Some(&json!({"role-title": "Senior Lecturer", "end-date": {"year": {"value": "2024"}}, "visibility": "limited"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let after = f.get(&format!("/employment/{pc}")).await.body;
    assert_eq!(after["role-title"], json!("Senior Lecturer"));
    assert_eq!(after["end-date"]["year"], json!({"value": "2024"}));
    assert_eq!(after["visibility"], json!("limited"));
    assert_eq!(after["source"], before["source"]);
    assert_eq!(after["organization"], before["organization"]);
    assert!(
        after["last-modified-date"]["value"].as_i64()
            >= before["last-modified-date"]["value"].as_i64()
    );

    // Delete: gone for the client.
    let r = f
        .hook(
            Method::DELETE,
            &format!("/_sim/records/{}/employment/{pc}", f.orcid),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_error(&f.get(&format!("/employment/{pc}")).await, 404, 9016);
    let r = f
        .hook(
            Method::DELETE,
            &format!("/_sim/records/{}/employment/{pc}", f.orcid),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error-code"], json!(9016));
}

#[tokio::test]
async fn the_user_adds_items() {
    let f = fixture().await;
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/work", f.orcid),
            Some(&work("Mine", "10.6/mine")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let pc = r.body["put-code"].as_u64().unwrap();
    assert_eq!(
        r.header("location"),
        format!("{}/v3.0/{}/work/{pc}", f.sim.base_url(), f.orcid)
    );
    let w = f.get(&format!("/work/{pc}")).await;
    assert_eq!(w.status, 200);
    assert_eq!(
        w.body["source"]["source-orcid"]["path"],
        json!(f.orcid.to_string())
    );
    assert_eq!(w.body["source"]["source-client-id"], json!(null));
    assert_eq!(
        w.body["source"]["source-name"],
        json!({"value": "Sofia Garcia"})
    );
    // The client is not its source, and a user's work never conflicts with the client's.
    let mut update = work("Mine", "10.6/mine");
    update["put-code"] = json!(pc);
    update["journal-title"] = json!("J");
    assert_error(&f.put(&format!("/work/{pc}"), &update).await, 403, 9010);
    assert_error(&f.delete(&format!("/work/{pc}")).await, 403, 9010);
    f.create("work", &work("Same DOI from the client", "10.6/mine"))
        .await;
    // They group together.
    assert_eq!(
        f.get("/works").await.body["group"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn person_settings() {
    let f = fixture().await;
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/settings", f.orcid),
            Some(&json!({"biography": "Works on things.", "credit-name": "S. Garcia", "email-visibility": "limited"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let bio = f.get("/biography").await;
    assert_eq!(bio.status, 200);
    assert_eq!(bio.body["content"], json!("Works on things."));
    assert_eq!(bio.body["path"], json!(format!("/{}/biography", f.orcid)));
    let p = f.get("/person").await;
    assert_eq!(p.body["name"]["credit-name"], json!({"value": "S. Garcia"}));
    assert_eq!(p.body["emails"]["email"][0]["visibility"], json!("limited"));
    assert_eq!(p.body["emails"]["email"][0]["primary"], json!(true));
    // Unknown settings are refused.
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/settings", f.orcid),
            Some(&json!({"colour": "blue"})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn deprecated_record() {
    let f = fixture().await;
    let pc = f.create("work", &work("W", "10.6/w")).await;
    let (primary, _) = f.another_user().await;
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/deprecate", f.orcid),
            Some(&json!({"primary": primary.to_string()})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.raw);

    let r = f.get(&format!("/work/{pc}")).await;
    assert_error(&r, 301, 9007);
    assert_eq!(
        r.header("location"),
        format!("{}/v3.0/{primary}/work/{pc}", f.sim.base_url())
    );
    assert!(
        r.body["developer-message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "Please refer to account: {}/{primary}",
                f.sim.base_url()
            ))
    );
    assert_error(&f.post("/work", &work("X", "10.6/x")).await, 409, 9007);
    assert_error(&f.delete(&format!("/work/{pc}")).await, 409, 9007);

    let r = f
        .hook(Method::GET, &format!("/_sim/records/{}", f.orcid), None)
        .await;
    assert_eq!(r.body["status"], json!("deprecated"));
    assert_eq!(r.body["primary"], json!(primary.to_string()));
}

#[tokio::test]
async fn deactivated_record() {
    let f = fixture().await;
    let pc = f.create("work", &work("W", "10.6/w")).await;
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/deactivate", f.orcid),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    for r in [
        f.get(&format!("/work/{pc}")).await,
        f.get("/works").await,
        f.post("/work", &work("X", "10.6/x")).await,
        f.delete(&format!("/work/{pc}")).await,
    ] {
        assert_error(&r, 409, 9044);
    }
    let r = f
        .hook(
            Method::POST,
            &format!("/_sim/records/{}/reactivate", f.orcid),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(f.get(&format!("/work/{pc}")).await.status, 200);
}
