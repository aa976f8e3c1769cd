//! Create, read, update, delete of activities: put codes, Location, source, timestamps, the
//! put-code and visibility rules, source-only writes, duplicates and grouping (§2.3, §3.1,
//! §3.6, §11.6–§11.10).

use serde_json::{Value, json};

use crate::api_support::*;
use crate::helpers::*;

#[tokio::test]
async fn post_get_put_delete_a_work() {
    let f = fixture().await;
    let before = chrono::Utc::now().timestamp_millis();
    let pc = f.create("work", &work("First", "10.1/first")).await;
    let second = f.create("work", &work("Second", "10.1/second")).await;
    assert!(second > pc, "put codes increase");

    let r = f.get(&format!("/work/{pc}")).await;
    assert_eq!(r.status, 200);
    let created = r.body["created-date"]["value"].as_i64().unwrap();
    assert!(created >= before && created <= chrono::Utc::now().timestamp_millis());
    assert_eq!(
        r.body["last-modified-date"]["value"].as_i64(),
        Some(created)
    );
    let base = f.sim.base_url();
    let host = url::Url::parse(base)
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        r.body["source"],
        json!({
            "source-orcid": null,
            "source-client-id": {"uri": format!("{base}/client/{TEST_CLIENT_ID}"), "path": TEST_CLIENT_ID, "host": host},
            "source-name": {"value": format!("Client {TEST_CLIENT_ID}")},
            "assertion-origin-orcid": null,
            "assertion-origin-client-id": null,
            "assertion-origin-name": null
        })
    );
    assert_eq!(
        r.body["title"],
        json!({"title": {"value": "First"}, "subtitle": null, "translated-title": null})
    );
    assert_eq!(
        r.body["journal-title"],
        Value::Null,
        "absent keys read as null"
    );
    assert_eq!(r.body["contributors"], json!({"contributor": []}));

    // Summary: ORCID's work-summary key order (§3.4).
    let s = f.get(&format!("/work/summary/{pc}")).await;
    assert_eq!(s.status, 200);
    assert_eq!(
        keys(&s.body),
        [
            "put-code",
            "created-date",
            "last-modified-date",
            "source",
            "title",
            "external-ids",
            "url",
            "type",
            "publication-date",
            "journal-title",
            "visibility",
            "path",
            "display-index"
        ]
    );
    assert_eq!(s.body["display-index"], json!("0"));

    // PUT with the put code: 200 and the updated item.
    let mut body = work("First, revised", "10.1/first");
    body["put-code"] = json!(pc);
    body["journal-title"] = json!({"value": "J"});
    let r = f.put(&format!("/work/{pc}"), &body).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["title"]["title"]["value"], json!("First, revised"));
    assert_eq!(r.body["journal-title"], json!({"value": "J"}));
    assert_eq!(r.body["created-date"]["value"].as_i64(), Some(created));
    assert!(r.body["last-modified-date"]["value"].as_i64().unwrap() >= created);
    assert!(
        r.header("content-type")
            .starts_with("application/vnd.orcid+json")
    );

    // An unchanged PUT answers 200 with the stored item.
    let again = f.put(&format!("/work/{pc}"), &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, r.body);

    // DELETE: 204, then the put code is gone.
    let r = f.delete(&format!("/work/{pc}")).await;
    assert_eq!(r.status, 204);
    assert!(r.raw.is_empty());
    assert_error(&f.get(&format!("/work/{pc}")).await, 404, 9016);
    assert_error(&f.delete(&format!("/work/{pc}")).await, 404, 9016);
    assert_error(&f.put(&format!("/work/{pc}"), &body).await, 404, 9016);
}

#[tokio::test]
async fn put_code_rules() {
    let f = fixture().await;
    let pc = f.create("work", &work("W", "10.1/w")).await;

    // 9024: a put code on POST.
    let mut with_pc = work("W2", "10.1/w2");
    with_pc["put-code"] = json!(12345);
    let r = f.post("/work", &with_pc).await;
    assert_error(&r, 400, 9024);

    // 9019: missing or different put code on PUT.
    let r = f.put(&format!("/work/{pc}"), &work("W", "10.1/w")).await;
    assert_error(&r, 400, 9019);
    assert_eq!(
        r.body["developer-message"],
        json!(format!(
            "400 Bad Request: The put code in the URL was {pc} whereas the one in the body was null."
        ))
    );
    let mut wrong = work("W", "10.1/w");
    wrong["put-code"] = json!(pc + 1);
    let r = f.put(&format!("/work/{pc}"), &wrong).await;
    assert_error(&r, 400, 9019);
    assert!(
        r.body["developer-message"]
            .as_str()
            .unwrap()
            .contains(&format!("was {}.", pc + 1))
    );

    // A put code sent as a string is accepted (Jackson coerces it).
    let mut as_string = work("W as string", "10.1/w");
    as_string["put-code"] = json!(pc.to_string());
    let r = f.put(&format!("/work/{pc}"), &as_string).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["put-code"], json!(pc));

    // Another record's put code is not found on this one.
    let (other, other_token) = f.another_user().await;
    let foreign = reply(
        http()
            .post(format!("{}/v3.0/{other}/work", f.sim.base_url()))
            .bearer_auth(&other_token)
            .header("Accept", VND_JSON)
            .header("Content-Type", VND_JSON)
            .body(work("Theirs", "10.1/theirs").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(foreign.status, 201);
    let foreign_pc = foreign
        .header("location")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_error(&f.get(&format!("/work/{foreign_pc}")).await, 404, 9016);
    assert_error(&f.delete(&format!("/work/{foreign_pc}")).await, 404, 9016);
    // Nor under another section of the same record.
    assert_error(&f.get(&format!("/funding/{pc}")).await, 404, 9016);
}

#[tokio::test]
async fn visibility_is_the_default_and_cannot_change_on_put() {
    let f = fixture().await;
    let mut body = employment("Professor", None);
    body["visibility"] = json!("private");
    let pc = f.create("employment", &body).await;
    let r = f.get(&format!("/employment/{pc}")).await;
    assert_eq!(
        r.body["visibility"],
        json!("public"),
        "POST ignores a sent visibility"
    );

    let mut update = employment("Dean", None);
    update["put-code"] = json!(pc);
    update["visibility"] = json!("limited");
    assert_error(
        &f.put(&format!("/employment/{pc}"), &update).await,
        403,
        9035,
    );
    update["visibility"] = json!("public");
    let r = f.put(&format!("/employment/{pc}"), &update).await;
    assert_eq!(
        r.status, 200,
        "echoing the current visibility is fine: {}",
        r.raw
    );
    assert_eq!(r.body["role-title"], json!("Dean"));
}

#[tokio::test]
async fn only_the_source_may_update_or_delete() {
    let f = fixture().await;
    let pc = f.create("employment", &employment("Professor", None)).await;
    let other = f
        .other_client_token("/read-limited /activities/update")
        .await;
    let mut update = employment("Hijacked", None);
    update["put-code"] = json!(pc);
    let r = f
        .send_with(
            reqwest::Method::PUT,
            &other,
            &format!("/employment/{pc}"),
            &update,
        )
        .await;
    assert_error(&r, 403, 9010);
    assert_eq!(
        r.body["developer-message"],
        json!(
            "403 Forbidden: You are not the source of the employment, so you are not allowed to update it."
        )
    );
    assert_error(
        &f.delete_with(&other, &format!("/employment/{pc}")).await,
        403,
        9010,
    );
    // Still there, unchanged; the other client can read it.
    let r = f.get_with(&other, &format!("/employment/{pc}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["role-title"], json!("Professor"));
}

#[tokio::test]
async fn duplicates_conflict_per_source_and_section() {
    let f = fixture().await;
    let pc = f.create("work", &work("Original", "10.1234/ABC")).await;

    // Same source, same self DOI after normalisation: 409 9021 naming the existing put code.
    let r = f
        .post("/work", &work("Copy", "https://doi.org/10.1234/abc"))
        .await;
    assert_error(&r, 409, 9021);
    assert_eq!(
        r.body["developer-message"],
        json!(format!(
            "409 Conflict: You have already added this activity (matched by external identifiers), please see element with put-code {pc}. If you are trying to edit the item, please use PUT instead of POST."
        ))
    );
    assert!(
        r.body["user-message"]
            .as_str()
            .unwrap()
            .contains(&format!("Client {TEST_CLIENT_ID}"))
    );

    // A part-of or version-of id with the same value is not a duplicate.
    let mut version = work("Version", "10.1/other");
    version["external-ids"]["external-id"]
        .as_array_mut()
        .unwrap()
        .push(json!({"external-id-type": "doi", "external-id-value": "10.1234/abc", "external-id-relationship": "version-of"}));
    let version_pc = f.create("work", &version).await;

    // Another client never conflicts.
    let other = f.other_client_token("/activities/update").await;
    let r = f
        .send_with(
            reqwest::Method::POST,
            &other,
            "/work",
            &work("Theirs", "10.1234/abc"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);

    // PUT into a duplicate conflicts too.
    let mut into_dup = work("Version", "10.1234/ABC");
    into_dup["put-code"] = json!(version_pc);
    assert_error(
        &f.put(&format!("/work/{version_pc}"), &into_dup).await,
        409,
        9021,
    );

    // The same self id in another section is fine.
    let r = f.post("/funding", &funding("Grant", "10.1234/abc")).await;
    assert_eq!(r.status, 201, "{}", r.raw);
}

#[tokio::test]
async fn works_group_by_shared_ids() {
    let f = fixture().await;
    let a = f.create("work", &work("A", "10.5555/shared")).await;
    let b = f.create("work", &work("B", "10.5555/alone")).await;
    // A second source with the same DOI (in another form) groups with A.
    let other = f.other_client_token("/activities/update").await;
    let r = f
        .send_with(
            reqwest::Method::POST,
            &other,
            "/work",
            &work("A again", "doi:10.5555/SHARED"),
        )
        .await;
    assert_eq!(r.status, 201);
    let c: u64 = r
        .header("location")
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let r = f.get("/works").await;
    assert_eq!(r.status, 200);
    assert_eq!(keys(&r.body), ["last-modified-date", "group", "path"]);
    assert_eq!(r.body["path"], json!(format!("/{}/works", f.orcid)));
    let groups = r.body["group"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{}", r.raw);
    let members: Vec<Vec<u64>> = groups
        .iter()
        .map(|g| {
            g["work-summary"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["put-code"].as_u64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(members, vec![vec![a, c], vec![b]]);
    assert_eq!(
        keys(&groups[0]),
        ["last-modified-date", "external-ids", "work-summary"]
    );
    let group_ids = groups[0]["external-ids"]["external-id"].as_array().unwrap();
    assert_eq!(group_ids.len(), 1, "the shared DOI appears once");
    assert_eq!(
        group_ids[0]["external-id-normalized"]["value"],
        json!("10.5555/shared")
    );
}

#[tokio::test]
async fn affiliations_group_and_stand_alone() {
    let f = fixture().await;
    let plain = f.create("employment", &employment("No ids", None)).await;
    let g1 = f
        .create("employment", &employment("Grant holder", Some("G-1")))
        .await;
    let r = f.get("/employments").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        keys(&r.body),
        ["last-modified-date", "affiliation-group", "path"]
    );
    let groups = r.body["affiliation-group"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        groups[0]["external-ids"],
        json!({"external-id": []}),
        "no ids: its own group"
    );
    let summary = &groups[0]["summaries"][0]["employment-summary"];
    assert_eq!(summary["put-code"], json!(plain));
    assert_eq!(
        keys(summary),
        [
            "created-date",
            "last-modified-date",
            "source",
            "put-code",
            "department-name",
            "role-title",
            "start-date",
            "end-date",
            "organization",
            "url",
            "external-ids",
            "display-index",
            "visibility",
            "path"
        ]
    );
    assert_eq!(
        groups[1]["summaries"][0]["employment-summary"]["put-code"],
        json!(g1)
    );
    assert_eq!(
        groups[1]["external-ids"]["external-id"][0]["external-id-value"],
        json!("G-1")
    );
    assert_eq!(
        r.body["last-modified-date"], groups[1]["last-modified-date"],
        "the listing's last-modified is the latest item's"
    );
}

#[tokio::test]
async fn fundings_list_and_summary() {
    let f = fixture().await;
    let pc = f.create("funding", &funding("Grant", "NSF-1")).await;
    let r = f.get("/fundings").await;
    assert_eq!(r.status, 200);
    let summary = &r.body["group"][0]["funding-summary"][0];
    assert_eq!(summary["put-code"], json!(pc));
    assert_eq!(
        keys(summary),
        [
            "created-date",
            "last-modified-date",
            "source",
            "title",
            "external-ids",
            "url",
            "type",
            "start-date",
            "end-date",
            "organization",
            "visibility",
            "put-code",
            "path",
            "display-index"
        ]
    );
    let s = f.get(&format!("/funding/summary/{pc}")).await;
    assert_eq!(s.body, *summary);
}

#[tokio::test]
async fn record_activities_and_person() {
    let f = fixture().await;
    f.create("work", &work("W", "10.1/w")).await;
    f.create("keywords", &json!({"content": "rust"})).await;
    let r = f.get("").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        keys(&r.body),
        [
            "orcid-identifier",
            "preferences",
            "history",
            "person",
            "activities-summary",
            "path"
        ]
    );
    assert_eq!(r.body["path"], json!(format!("/{}", f.orcid)));
    assert_eq!(
        r.body["orcid-identifier"]["path"],
        json!(f.orcid.to_string())
    );
    let same = f.get("/record").await;
    assert_eq!(same.body["orcid-identifier"], r.body["orcid-identifier"]);

    let a = f.get("/activities").await;
    assert_eq!(
        keys(&a.body),
        [
            "last-modified-date",
            "distinctions",
            "educations",
            "employments",
            "fundings",
            "invited-positions",
            "memberships",
            "peer-reviews",
            "qualifications",
            "research-resources",
            "services",
            "works",
            "path"
        ]
    );
    assert_eq!(a.body["works"]["group"].as_array().unwrap().len(), 1);
    assert_eq!(a.body["peer-reviews"]["group"], json!([]));

    let p = f.get("/person").await;
    assert_eq!(
        keys(&p.body),
        [
            "last-modified-date",
            "name",
            "other-names",
            "biography",
            "researcher-urls",
            "emails",
            "addresses",
            "keywords",
            "external-identifiers",
            "path"
        ]
    );
    assert_eq!(p.body["name"]["given-names"], json!({"value": "Sofia"}));
    assert_eq!(p.body["keywords"]["keyword"][0]["content"], json!("rust"));
    assert_eq!(
        p.body["emails"]["email"],
        json!([]),
        "email is private by default"
    );

    let d = f.get("/personal-details").await;
    assert_eq!(
        keys(&d.body),
        [
            "last-modified-date",
            "name",
            "other-names",
            "biography",
            "path"
        ]
    );
    assert_error(&f.get("/biography").await, 404, 9041);
    let e = f.get("/email").await;
    assert_eq!(e.body["path"], json!(format!("/{}/email", f.orcid)));
}

#[tokio::test]
async fn unknown_paths_and_records() {
    let f = fixture().await;
    assert_error(&f.get("/nonsense").await, 404, 9001);
    assert_error(&f.get("/work/abc").await, 404, 9001);
    let unknown = orcid::OrcidId::from_base(999_999_999_999).unwrap();
    let public = client_credentials(&f.sim, "/read-public")
        .await
        .access_token;
    let r = reply(
        http()
            .get(format!("{}/v3.0/{unknown}/works", f.sim.base_url()))
            .bearer_auth(&public)
            .header("Accept", VND_JSON)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 404, 9016);
}
