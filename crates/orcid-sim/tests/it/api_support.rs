//! Shared pieces of the records-side tests (`api_*.rs`): a simulator with a connected user, JSON
//! calls on `/v3.0/{orcid}/…`, ORCID's samples, and assertions on v3 error bodies.

use orcid::OrcidId;
use orcid_sim::SimHandle;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every member scope a records test needs.
pub const ALL_SCOPES: &str = "/read-limited /activities/update /person/update";

/// ORCID's preferred JSON type.
pub const VND_JSON: &str = "application/vnd.orcid+json";

/// A simulator, one user and a [`TEST_CLIENT_ID`] token with [`ALL_SCOPES`] for them.
pub struct Fixture {
    pub sim: SimHandle,
    pub orcid: OrcidId,
    pub token: String,
}

/// A status, the headers and the body (JSON, or `Null` when empty) of a response.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    /// A header as text (panics when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| {
                panic!(
                    "header {name} missing; status {}, body {}",
                    self.status, self.raw
                )
            })
            .to_str()
            .unwrap()
    }
}

pub async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let raw = res.text().await.unwrap();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
    };
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

/// A fresh simulator with one connected user.
pub async fn fixture() -> Fixture {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let token = connect(&sim, &orcid, ALL_SCOPES).await.access_token;
    Fixture { sim, orcid, token }
}

impl Fixture {
    /// Another user on the same simulator, with a [`TEST_CLIENT_ID`] token for them.
    pub async fn another_user(&self) -> (OrcidId, String) {
        let orcid = create_user(&self.sim).await;
        let token = connect(&self.sim, &orcid, ALL_SCOPES).await.access_token;
        (orcid, token)
    }

    /// A token of [`OTHER_CLIENT_ID`] for this user.
    pub async fn other_client_token(&self, scopes: &str) -> String {
        connect_client(
            &self.sim,
            &self.orcid,
            scopes,
            OTHER_CLIENT_ID,
            OTHER_CLIENT_SECRET,
        )
        .await
        .access_token
    }

    /// `{base}/v3.0/{orcid}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v3.0/{}{}", self.sim.base_url(), self.orcid, path)
    }

    /// `{base}{path}` (hooks).
    pub fn base(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.get_with(&self.token, path).await
    }

    pub async fn get_with(&self, token: &str, path: &str) -> Reply {
        reply(
            http()
                .get(self.url(path))
                .bearer_auth(token)
                .header("Accept", VND_JSON)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send_with(reqwest::Method::POST, &self.token, path, body)
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send_with(reqwest::Method::PUT, &self.token, path, body)
            .await
    }

    pub async fn send_with(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &Value,
    ) -> Reply {
        reply(
            http()
                .request(method, self.url(path))
                .bearer_auth(token)
                .header("Accept", VND_JSON)
                .header("Content-Type", VND_JSON)
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.delete_with(&self.token, path).await
    }

    pub async fn delete_with(&self, token: &str, path: &str) -> Reply {
        reply(
            http()
                .delete(self.url(path))
                .bearer_auth(token)
                .header("Accept", VND_JSON)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POSTs `body` to `/{section}` and returns the put code, asserting ORCID's 201: empty body
    /// and `Location: {base}/v3.0/{orcid}/{section}/{pc}`.
    pub async fn create(&self, section: &str, body: &Value) -> u64 {
        let r = self.post(&format!("/{section}"), body).await;
        assert_eq!(r.status, 201, "POST /{section}: {}", r.raw);
        assert!(r.raw.is_empty(), "201 has an empty body: {}", r.raw);
        let location = r.header("location");
        let prefix = format!("{}/v3.0/{}/{}/", self.sim.base_url(), self.orcid, section);
        let pc = location
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("Location {location} does not start with {prefix}"));
        pc.parse().unwrap()
    }

    /// A hook call with a JSON body.
    pub async fn hook(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
        let mut req = http().request(method, self.base(path));
        if let Some(body) = body {
            req = req.json(body);
        }
        reply(req.send().await.unwrap()).await
    }
}

/// Asserts a v3 error: status, `error-code`, `response-code`, the five keys in ORCID's order,
/// and a JSON content type.
pub fn assert_error(r: &Reply, status: u16, code: u64) {
    assert_eq!(r.status, status, "status; body {}", r.raw);
    assert_eq!(
        r.body["error-code"],
        json!(code),
        "error-code; body {}",
        r.raw
    );
    assert_eq!(r.body["response-code"], json!(status), "response-code");
    let keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "response-code",
            "developer-message",
            "user-message",
            "error-code",
            "more-info"
        ]
    );
    assert!(
        r.body["developer-message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "developer-message present"
    );
    assert!(
        r.header("content-type").contains("json"),
        "JSON content type"
    );
}

/// One of ORCID's v3.0 write samples.
pub fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/reference/orcid-model/record_3.0/samples/write_samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Asserts that what ORCID returns carries everything that was sent: objects key by key (extra
/// keys in `read` allowed), arrays element by element, a sent `null` matches anything absent,
/// and a bare string matches ORCID's `{"value": …}` form.
pub fn assert_carries(read: &Value, sent: &Value, at: &str) {
    match (sent, read) {
        (Value::Null, Value::Null) => {}
        (Value::Null, _) => {}
        (Value::Object(s), Value::Object(r)) => {
            for (key, value) in s {
                let got = r.get(key).unwrap_or(&Value::Null);
                assert_carries(got, value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(s), Value::Array(r)) => {
            assert_eq!(s.len(), r.len(), "{at}: array length");
            for (i, (sv, rv)) in s.iter().zip(r).enumerate() {
                assert_carries(rv, sv, &format!("{at}[{i}]"));
            }
        }
        (Value::String(s), Value::Object(r)) if r.contains_key("value") => {
            assert_eq!(
                r["value"],
                json!(s),
                "{at}: bare string stored as {{value}}"
            );
        }
        (s, r) => assert_eq!(r, s, "{at}"),
    }
}

/// A minimal valid work with one self DOI.
pub fn work(title: &str, doi: &str) -> Value {
    json!({
        "title": {"title": {"value": title}},
        "type": "journal-article",
        "external-ids": {"external-id": [{
            "external-id-type": "doi",
            "external-id-value": doi,
            "external-id-relationship": "self"
        }]}
    })
}

/// A minimal valid employment at Boston University, with an optional self grant number.
pub fn employment(role: &str, grant: Option<&str>) -> Value {
    let mut body = json!({
        "role-title": role,
        "start-date": {"year": {"value": "2020"}, "month": {"value": "01"}},
        "organization": {
            "name": "Boston University",
            "address": {"city": "Boston", "region": "MA", "country": "US"},
            "disambiguated-organization": {
                "disambiguated-organization-identifier": "https://ror.org/05qwgg493",
                "disambiguation-source": "ROR"
            }
        }
    });
    if let Some(grant) = grant {
        body["external-ids"] = json!({"external-id": [{
            "external-id-type": "grant_number",
            "external-id-value": grant,
            "external-id-relationship": "self"
        }]});
    }
    body
}

/// A minimal valid funding from the NSF.
pub fn funding(title: &str, grant: &str) -> Value {
    json!({
        "type": "grant",
        "title": {"title": {"value": title}},
        "external-ids": {"external-id": [{
            "external-id-type": "grant_number",
            "external-id-value": grant,
            "external-id-relationship": "self"
        }]},
        "organization": {
            "name": "National Science Foundation",
            "address": {"city": "Alexandria", "country": "US"},
            "disambiguated-organization": {
                "disambiguated-organization-identifier": "http://dx.doi.org/10.13039/100000001",
                "disambiguation-source": "FUNDREF"
            }
        }
    })
}

/// The keys of a JSON object, in order.
pub fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}
