//! ORCID's validation codes for activities (§3.3–§3.5, §4.3, §11.8) and the works limit.

use serde_json::{Value, json};

use crate::api_support::*;

/// POSTs `body` to `section` and asserts a 400 with `code`; returns the developer message.
async fn refused(f: &Fixture, section: &str, body: &Value, status: u16, code: u64) -> String {
    let r = f.post(&format!("/{section}"), body).await;
    assert_error(&r, status, code);
    r.body["developer-message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn work_rules() {
    let f = fixture().await;
    // 9022: no title, or an empty one.
    let mut w = work("", "10.1/a");
    refused(&f, "work", &w, 400, 9022).await;
    w.as_object_mut().unwrap().remove("title");
    refused(&f, "work", &w, 400, 9022).await;

    // 9023: no external ids; ids without a self one.
    let mut w = work("T", "10.1/a");
    w.as_object_mut().unwrap().remove("external-ids");
    refused(&f, "work", &w, 400, 9023).await;
    let mut w = work("T", "10.1/a");
    w["external-ids"]["external-id"][0]["external-id-relationship"] = json!("part-of");
    let message = refused(&f, "work", &w, 400, 9023).await;
    assert!(
        message.contains("At least one identifier with 'self' relationship is required"),
        "{message}"
    );
    // An unknown id type is refused too.
    let mut w = work("T", "10.1/a");
    w["external-ids"]["external-id"][0]["external-id-type"] = json!("not-a-type");
    let message = refused(&f, "work", &w, 400, 9023).await;
    assert!(message.contains("not-a-type"), "{message}");

    // 9037: a work type outside the vocabulary (and none at all).
    let mut w = work("T", "10.1/a");
    w["type"] = json!("novel");
    let message = refused(&f, "work", &w, 400, 9037).await;
    assert!(
        message.starts_with("400 Bad Request: Invalid work type, valid values are: annotation, "),
        "{message}"
    );
    w.as_object_mut().unwrap().remove("type");
    refused(&f, "work", &w, 400, 9037).await;
    // Aliases are accepted and stored as the v3 type.
    let mut w = work("Alias", "10.1/alias");
    w["type"] = json!("dataset");
    let pc = f.create("work", &w).await;
    assert_eq!(
        f.get(&format!("/work/{pc}")).await.body["type"],
        json!("data-set")
    );

    // 9049: a date that does not exist.
    let mut w = work("T", "10.1/b");
    w["publication-date"] =
        json!({"year": {"value": "2021"}, "month": {"value": "02"}, "day": {"value": "30"}});
    refused(&f, "work", &w, 400, 9049).await;

    // 9058: an unknown contributor role; 9020: a contributor URI not on orcid.org.
    let mut w = work("T", "10.1/c");
    w["contributors"] =
        json!({"contributor": [{"contributor-attributes": {"contributor-role": "chef"}}]});
    refused(&f, "work", &w, 400, 9058).await;
    w["contributors"] = json!({"contributor": [{"contributor-orcid": {"uri": "https://example.org/0000-0002-1825-0097"}}]});
    refused(&f, "work", &w, 400, 9020).await;

    // 9037 for a bad translated-title language or country.
    let mut w = work("T", "10.1/d");
    w["title"]["translated-title"] = json!({"value": "Titre", "language-code": "xx"});
    refused(&f, "work", &w, 400, 9037).await;
    let mut w = work("T", "10.1/d");
    w["country"] = json!({"value": "ZZ"});
    refused(&f, "work", &w, 400, 9037).await;
}

fn with_org(mut body: Value, org: Value) -> Value {
    body["organization"] = org;
    body
}

#[tokio::test]
async fn affiliation_rules() {
    let f = fixture().await;
    let bu = employment("Professor", None)["organization"].clone();

    // 9046: no organization.
    let mut e = employment("P", None);
    e.as_object_mut().unwrap().remove("organization");
    refused(&f, "employment", &e, 400, 9046).await;

    // 9045: no disambiguated organization, or one ORCID does not know.
    let mut org = bu.clone();
    org.as_object_mut()
        .unwrap()
        .remove("disambiguated-organization");
    refused(
        &f,
        "employment",
        &with_org(employment("P", None), org),
        400,
        9045,
    )
    .await;
    let mut org = bu.clone();
    org["disambiguated-organization"] = json!({"disambiguated-organization-identifier": "999999999", "disambiguation-source": "RINGGOLD"});
    let message = refused(
        &f,
        "employment",
        &with_org(employment("P", None), org.clone()),
        400,
        9045,
    )
    .await;
    assert!(message.contains("999999999"), "{message}");
    // Once ORCID's org database knows it (test hook), it is accepted.
    let r = f
        .hook(
            reqwest::Method::POST,
            "/_sim/records/orgs",
            Some(&json!({"disambiguation-source": "RINGGOLD", "disambiguated-organization-identifier": "999999999"})),
        )
        .await;
    assert_eq!(r.status, 204);
    f.create("employment", &with_org(employment("P", None), org))
        .await;
    // Every built-in source is known: RINGGOLD, GRID, FUNDREF, LEI, ROR.
    for (source, id) in [
        ("RINGGOLD", "385488"),
        ("GRID", "grid.238252.c"),
        ("FUNDREF", "http://dx.doi.org/10.13039/100000001"),
        ("LEI", "5493001KJTIIGC8Y1R12"),
        ("ROR", "https://ror.org/04fa4r544"),
    ] {
        let mut org = bu.clone();
        org["disambiguated-organization"] =
            json!({"disambiguated-organization-identifier": id, "disambiguation-source": source});
        f.create(
            "education",
            &with_org(employment(&format!("via {source}"), None), org),
        )
        .await;
    }

    // 9060: employment and education need city and country.
    let mut org = bu.clone();
    org["address"] = json!({"region": "MA", "country": "US"});
    refused(
        &f,
        "employment",
        &with_org(employment("P", None), org.clone()),
        400,
        9060,
    )
    .await;
    refused(
        &f,
        "education",
        &with_org(employment("P", None), org),
        400,
        9060,
    )
    .await;

    // 9061: other affiliation types accept no city, but a city without a country is refused.
    let mut org = bu.clone();
    org["address"] = json!({"city": "Boston"});
    refused(
        &f,
        "service",
        &with_org(employment("P", None), org),
        400,
        9061,
    )
    .await;
    let mut org = bu.clone();
    org["address"] = json!({"country": "US"});
    f.create("service", &with_org(employment("Reviewer", None), org))
        .await;

    // 9062: a professional activity needs a disambiguated org or an external id.
    let no_id_org = json!({"name": "Some Society", "address": {"country": "US"}});
    refused(
        &f,
        "membership",
        &with_org(employment("Member", None), no_id_org.clone()),
        400,
        9062,
    )
    .await;
    f.create(
        "membership",
        &with_org(employment("Member", Some("M-1")), no_id_org),
    )
    .await;

    // Dates: 9049 invalid, 9050 end without start, 9055 start after end.
    let mut e = employment("P", None);
    e["start-date"] = json!({"year": {"value": "2021"}, "month": {"value": "13"}});
    refused(&f, "employment", &e, 400, 9049).await;
    let mut e = employment("P", None);
    e.as_object_mut().unwrap().remove("start-date");
    e["end-date"] = json!({"year": {"value": "2021"}});
    refused(&f, "employment", &e, 400, 9050).await;
    let mut e = employment("P", None);
    e["end-date"] = json!({"year": {"value": "2019"}});
    refused(&f, "employment", &e, 400, 9055).await;
    // Same year, less precise end: not after.
    let mut e = employment("P, same year", None);
    e["end-date"] = json!({"year": {"value": "2020"}});
    f.create("employment", &e).await;
}

#[tokio::test]
async fn funding_rules() {
    let f = fixture().await;
    let mut g = funding("", "G-1");
    refused(&f, "funding", &g, 400, 9022).await;
    g = funding("T", "G-1");
    g.as_object_mut().unwrap().remove("external-ids");
    refused(&f, "funding", &g, 400, 9023).await;
    g = funding("T", "G-1");
    g["type"] = json!("gift");
    refused(&f, "funding", &g, 400, 9037).await;
    g = funding("T", "G-1");
    g.as_object_mut().unwrap().remove("organization");
    refused(&f, "funding", &g, 400, 9046).await;
    g = funding("T", "G-1");
    g["organization"]["disambiguated-organization"] = Value::Null;
    refused(&f, "funding", &g, 400, 9045).await;
    g = funding("T", "G-1");
    g["amount"] = json!({"value": "lots", "currency-code": "USD"});
    refused(&f, "funding", &g, 400, 9054).await;
    g = funding("T", "G-1");
    g["end-date"] = json!({"year": {"value": "2020"}});
    refused(&f, "funding", &g, 400, 9050).await;
}

#[tokio::test]
async fn unparseable_and_misshapen_json() {
    let f = fixture().await;
    let r = reply(
        crate::helpers::http()
            .post(f.url("/work"))
            .bearer_auth(&f.token)
            .header("Accept", VND_JSON)
            .header("Content-Type", VND_JSON)
            .body("{\"title\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 400, 9001);
    let r = f.post("/work", &json!(["not", "an", "object"])).await;
    assert_error(&r, 400, 9047);
    let mut w = work("T", "10.1/x");
    w["external-ids"] = json!("10.1/x");
    assert_error(&f.post("/work", &w).await, 400, 9047);
}

#[tokio::test]
async fn works_limit_9048() {
    let f = fixture().await;
    let r = f
        .hook(
            reqwest::Method::POST,
            &format!("/_sim/records/{}/limits", f.orcid),
            Some(&json!({"max-works": 2})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    f.create("work", &work("1", "10.1/1")).await;
    f.create("work", &work("2", "10.1/2")).await;
    assert_error(&f.post("/work", &work("3", "10.1/3")).await, 409, 9048);
    // A bulk that would go over is refused as a whole.
    let r = f
        .post("/works", &json!({"bulk": [{"work": work("4", "10.1/4")}]}))
        .await;
    assert_error(&r, 409, 9048);
    // Other sections are not limited.
    f.create("funding", &funding("F", "F-1")).await;
}
