//! XML request bodies (§2.1, §9): each of ORCID's XML write samples for the item types the
//! simulator writes POSTs, and reads back (as JSON) with the same fields as the corresponding
//! JSON sample; XML PUT and bulk; XML errors.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api_support::*;
use crate::helpers::*;

const VND_XML: &str = "application/vnd.orcid+xml";

/// Server-set keys, left out of the comparison.
const SERVER_KEYS: &[&str] = &[
    "created-date",
    "last-modified-date",
    "source",
    "put-code",
    "path",
    "visibility",
    "display-index",
    "external-id-normalized",
    "external-id-normalized-error",
];

fn xml_sample(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/reference/orcid-model/record_3.0/samples/write_samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn send_xml(f: &Fixture, method: reqwest::Method, path: &str, body: &str) -> Reply {
    reply(
        http()
            .request(method, f.url(path))
            .bearer_auth(&f.token)
            .header("Accept", VND_JSON)
            .header("Content-Type", VND_XML)
            .body(body.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The paths of the non-null leaves of `v` (`{"value": x}` counts as `x`, array entries as
/// `[]`), server-set keys left out.
fn fields(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, at: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) if o.len() == 1 && o.contains_key("value") => {
                walk(&o["value"], at, out);
            }
            Value::Object(o) => {
                for (k, x) in o {
                    if !SERVER_KEYS.contains(&k.as_str()) {
                        walk(x, &format!("{at}.{k}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for x in items {
                    walk(x, &format!("{at}[]"), out);
                }
            }
            Value::Null => {}
            _ => {
                out.insert(at.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

/// Every string leaf of `v`.
fn strings(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The text of every leaf element of `xml`, and the values of its `language-code` and
/// `currency-code` attributes (the samples use no entities).
fn xml_texts(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(end) = rest.find("</") {
        let before = &rest[..end];
        if let Some(open) = before.rfind('>') {
            let text = &before[open + 1..];
            if !text.trim().is_empty() && !before[..open].ends_with('/') {
                out.push(text.to_owned());
            }
        }
        rest = &rest[end + 2..];
    }
    for attribute in ["language-code=\"", "currency-code=\""] {
        for (i, _) in xml.match_indices(attribute) {
            let value = &xml[i + attribute.len()..];
            out.push(value[..value.find('"').unwrap()].to_owned());
        }
    }
    out
}

/// Asserts that everything the XML says is in what was read back.
fn assert_texts_carried(read: &Value, xml: &str, file: &str) {
    let mut have = BTreeSet::new();
    strings(read, &mut have);
    for text in xml_texts(xml) {
        assert!(have.contains(&text), "{file}: {text:?} not read back");
    }
}

/// POSTs an XML sample and a JSON sample (to two records of one simulator) and reads both
/// back as JSON.
async fn both(section: &str, xml_file: &str, json_file: &str) -> (Value, Value) {
    let f = fixture().await;
    let xml = xml_sample(xml_file);
    let r = send_xml(&f, reqwest::Method::POST, &format!("/{section}"), &xml).await;
    assert_eq!(r.status, 201, "{xml_file}: {}", r.raw);
    let location = r.header("location").to_owned();
    let pc = location.rsplit('/').next().unwrap();
    let from_xml = f.get(&format!("/{section}/{pc}")).await;
    assert_eq!(from_xml.status, 200, "{xml_file}: {}", from_xml.raw);
    assert_texts_carried(&from_xml.body, &xml, xml_file);

    let (orcid, token) = f.another_user().await;
    let g = Fixture {
        sim: f.sim,
        orcid,
        token,
    };
    let pc = g.create(section, &sample(json_file)).await;
    let from_json = g.get(&format!("/{section}/{pc}")).await;
    assert_eq!(from_json.status, 200, "{json_file}: {}", from_json.raw);
    assert_eq!(
        keys(&from_xml.body),
        keys(&from_json.body),
        "{xml_file}: same keys in the same order"
    );
    (from_xml.body, from_json.body)
}

/// `xml` and `json` (read back) carry the same fields, but for those only one sample has.
fn assert_same_fields(xml: &Value, json: &Value, only_json: &[&str], file: &str) {
    let mut x = fields(xml);
    let mut j = fields(json);
    for path in only_json {
        assert!(j.remove(*path), "{file}: {path} is in the JSON sample");
        assert!(!x.remove(*path), "{file}: {path} is not in the XML sample");
    }
    assert_eq!(x, j, "{file}");
}

#[tokio::test]
async fn affiliation_xml_samples_read_like_the_json_ones() {
    for section in [
        "employment",
        "education",
        "qualification",
        "invited-position",
        "distinction",
        "membership",
        "service",
    ] {
        let file = format!("{section}-3.0.xml");
        let (xml, json) = both(section, &file, &format!("{section}-3.0.json")).await;
        assert_same_fields(&xml, &json, &[], &file);
        assert_eq!(
            xml["external-ids"]["external-id"].as_array().unwrap().len(),
            2,
            "{file}"
        );
    }
}

#[tokio::test]
async fn work_xml_samples_read_like_the_json_ones() {
    let (xml, json) = both("work", "work-full-3.0.xml", "work-full-3.0.json").await;
    // The JSON sample's contributor has an e-mail; the XML one has none.
    assert_same_fields(
        &xml,
        &json,
        &[".contributors.contributor[].contributor-email"],
        "work-full-3.0.xml",
    );
    assert_eq!(
        xml["title"]["translated-title"],
        json!({"value": "Translated-title", "language-code": "en"})
    );
    assert!(
        xml["citation"]["citation-value"]
            .as_str()
            .unwrap()
            .contains("@article {ORCID2012,")
    );
    assert_eq!(
        xml["contributors"]["contributor"][0]["contributor-orcid"]["path"],
        json!("0000-0001-5109-3700")
    );
    // The simple sample carries a subset of the full one's fields.
    let (simple, full) = both("work", "work-simple-3.0.xml", "work-full-3.0.json").await;
    let (simple, full) = (fields(&simple), fields(&full));
    assert!(simple.is_subset(&full), "{simple:?} ⊄ {full:?}");
    assert!(simple.contains(".external-ids.external-id[].external-id-value"));
}

#[tokio::test]
async fn funding_xml_sample_reads_like_the_json_one() {
    let (xml, json) = both("funding", "funding-3.0.xml", "funding-3.0-simple.json").await;
    assert_same_fields(
        &xml,
        &json,
        &[".organization.address.region"],
        "funding-3.0.xml",
    );
    assert_eq!(
        xml["amount"],
        json!({"value": "1000", "currency-code": "ADP"})
    );
}

#[tokio::test]
async fn person_xml_samples_read_like_the_json_ones() {
    for (section, xml_file, json_file) in [
        ("other-names", "other-name-3.0.xml", "other-names-3.0.json"),
        ("keywords", "keyword-3.0.xml", "keywords-3.0.json"),
        (
            "researcher-urls",
            "researcher-url-3.0.xml",
            "researcher-url-3.0.json",
        ),
        (
            "researcher-urls",
            "researcher-url-3.0-no-name.xml",
            "researcher-url-no-name-3.0.json",
        ),
        ("address", "address-3.0.xml", "address-3.0.json"),
        (
            "external-identifiers",
            "external-identifier-3.0.xml",
            "external-identifier-3.0.json",
        ),
    ] {
        let (xml, json) = both(section, xml_file, json_file).await;
        assert_same_fields(&xml, &json, &[], xml_file);
    }
}

#[tokio::test]
async fn bulk_xml_sample_creates_each_work() {
    let f = fixture().await;
    let xml = xml_sample("bulk-work-3.0.xml");
    let r = send_xml(&f, reqwest::Method::POST, "/works", &xml).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let bulk = r.body["bulk"].as_array().unwrap();
    assert_eq!(bulk.len(), 2);
    for (i, entry) in bulk.iter().enumerate() {
        assert!(entry["work"]["put-code"].is_u64(), "[{i}]: {entry}");
        assert_eq!(
            entry["work"]["title"]["title"],
            json!({"value": format!("Current treatment of left main coronary artery disease # {}", i + 1)})
        );
    }
    assert_texts_carried(&r.body, &xml, "bulk-work-3.0.xml");
    // A bulk of one work is still a list of one.
    let start = xml.find("<work:work>").unwrap();
    let end = xml.find("</work:work>").unwrap() + "</work:work>".len();
    let one = format!(
        "{}{}</bulk:bulk>",
        &xml[..start],
        xml[start..end].replace("10.1016/j.crvasa.2015.05.007", "10.1016/one")
    );
    let r = send_xml(&f, reqwest::Method::POST, "/works", &one).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["bulk"].as_array().unwrap().len(), 1, "{}", r.raw);
    assert!(r.body["bulk"][0]["work"]["put-code"].is_u64(), "{}", r.raw);
    // The JSON sample's first work has the same fields, less the publication date.
    let (orcid, token) = f.another_user().await;
    let g = Fixture {
        sim: f.sim,
        orcid,
        token,
    };
    let r = g.post("/works", &sample("bulk-work-3.0.json")).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let mut from_xml = fields(&bulk[0]["work"]);
    for part in ["year", "month", "day"] {
        assert!(from_xml.remove(&format!(".publication-date.{part}")));
    }
    assert_eq!(from_xml, fields(&r.body["bulk"][0]["work"]));
}

#[tokio::test]
async fn xml_put_updates_and_xml_errors_are_9001() {
    let f = fixture().await;
    let xml = xml_sample("employment-3.0.xml");
    let r = send_xml(&f, reqwest::Method::POST, "/employment", &xml).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let pc: u64 = r
        .header("location")
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // put-code is an attribute of the root in XML (§9).
    let update = xml
        .replacen(
            "<employment:employment",
            &format!("<employment:employment put-code=\"{pc}\""),
            1,
        )
        .replace(
            "<common:role-title>role-title</common:role-title>",
            "<common:role-title>Professor</common:role-title>",
        );
    let r = send_xml(
        &f,
        reqwest::Method::PUT,
        &format!("/employment/{pc}"),
        &update,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["role-title"], json!("Professor"));
    assert_eq!(r.body["put-code"], json!(pc));
    // Without the attribute the put codes disagree (9019), as with JSON.
    let r = send_xml(&f, reqwest::Method::PUT, &format!("/employment/{pc}"), &xml).await;
    assert_error(&r, 400, 9019);

    // The wrong root element, malformed XML: 400 9001. Nothing is created.
    let r = send_xml(
        &f,
        reqwest::Method::POST,
        "/work",
        &xml_sample("funding-3.0.xml"),
    )
    .await;
    assert_error(&r, 400, 9001);
    assert!(
        r.body["developer-message"]
            .as_str()
            .unwrap()
            .contains("expected the root element <work>, found <funding>")
    );
    let r = send_xml(
        &f,
        reqwest::Method::POST,
        "/work",
        "<work:work><work:title></work:work>",
    )
    .await;
    assert_error(&r, 400, 9001);
    assert_eq!(f.get("/works").await.body["group"], json!([]));
    // Validation is the same as for JSON: a work without a title is 9022.
    let r = send_xml(
        &f,
        reqwest::Method::POST,
        "/work",
        "<work:work xmlns:work=\"http://www.orcid.org/ns/work\"><work:type>book</work:type></work:work>",
    )
    .await;
    assert_error(&r, 400, 9022);

    // Each XML type is read; answers stay JSON (an XML Accept is 406).
    for (i, content_type) in ["application/orcid+xml", "application/xml"]
        .into_iter()
        .enumerate()
    {
        let body = xml_sample("work-simple-3.0.xml").replace(
            "10.1087/20120404</common:external-id-value>",
            &format!("10.1087/xml{i}</common:external-id-value>"),
        );
        let r = reply(
            http()
                .post(f.url("/work"))
                .bearer_auth(&f.token)
                .header("Accept", VND_JSON)
                .header("Content-Type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 201, "{content_type}: {}", r.raw);
    }
    let r = reply(
        http()
            .post(f.url("/work"))
            .bearer_auth(&f.token)
            .header("Accept", VND_XML)
            .header("Content-Type", VND_XML)
            .body(xml_sample("work-simple-3.0.xml"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 406, 9001);
}
