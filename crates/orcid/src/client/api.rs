//! The member API v3.0 (reference §2): `/v3.0/{orcid}/…` with ORCID JSON and a bearer token.
//!
//! The core is generic — any `T: Serialize` goes in, any `T: DeserializeOwned` comes out, and
//! [`Section`] / [`Resource`] name the path — so every section of the record can be reached
//! even where the crate's model has no type for it. Typed methods use the crate's model for
//! the modelled sections: [`OrcidClient::record`], [`OrcidClient::affiliations`],
//! [`OrcidClient::create_work`], [`OrcidClient::create_works`], ….

use std::fmt;

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::OrcidClient;
use super::tokens::AccessToken;
use super::transport::{Answer, Body, ORCID_JSON, Request};
use crate::error::{Error, excerpt};
use crate::id::OrcidId;
use crate::model::{
    ActivitiesSummary, Affiliation, AffiliationGroups, AffiliationType, BulkResult, Funding,
    Fundings, MAX_BULK_WORKS, Person, PutCode, Record, Work, Works,
};

/// ORCID's code for an unknown put code (404, reference §4.3).
const ITEM_NOT_FOUND: u32 = 9016;

/// The section enum is the model's; it is re-exported here and as `client::Section`.
pub use crate::model::Section;

/// Something to read with GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resource {
    /// `/record`: the whole record.
    Record,
    /// `/activities`: the activities summary.
    Activities,
    /// `/person`.
    Person,
    /// A section's listing, e.g. `/employments`.
    List(Section),
    /// One full item, e.g. `/employment/{put-code}`.
    Item(Section, PutCode),
    /// One item's summary, e.g. `/work/summary/{put-code}` (activities only).
    Summary(Section, PutCode),
}

impl Resource {
    fn path(self) -> Result<String, Error> {
        Ok(match self {
            Resource::Record => "record".to_owned(),
            Resource::Activities => "activities".to_owned(),
            Resource::Person => "person".to_owned(),
            Resource::List(section) => section.list_segment().to_owned(),
            Resource::Item(section, put_code) => format!("{}/{put_code}", section.item_segment()),
            Resource::Summary(section, put_code) => {
                if !section.is_activity() {
                    return Err(Error::InvalidRequest(format!(
                        "{section} items have no summary read"
                    )));
                }
                format!("{}/summary/{put_code}", section.item_segment())
            }
        })
    }
}

impl Resource {
    /// The endpoint word for spans and metrics (`record`, `employment`, `works`…).
    fn endpoint(self) -> &'static str {
        match self {
            Resource::Record => "record",
            Resource::Activities => "activities",
            Resource::Person => "person",
            Resource::List(section) => section.list_segment(),
            Resource::Item(section, _) | Resource::Summary(section, _) => section.item_segment(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            Ok(path) => f.write_str(&path),
            Err(_) => write!(f, "{self:?}"),
        }
    }
}

/// The body of a 2xx answer as `T`, or an [`Error::UnexpectedResponse`] quoting a redacted
/// excerpt.
fn parse_json<T: DeserializeOwned>(answer: &Answer, secrets: &[&str]) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|e| Error::UnexpectedResponse {
        status: answer.status.as_u16(),
        reason: format!(
            "the body is not the expected JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
        excerpt: excerpt(&answer.body, secrets),
    })
}

/// The put code in a `Location` header: its last path segment (reference §2.3).
fn put_code_from_location(answer: &Answer) -> Option<PutCode> {
    let location = answer.headers.get(LOCATION)?.to_str().ok()?;
    let path = location.split(['?', '#']).next()?;
    path.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

fn to_json<T: Serialize + ?Sized>(body: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body)
        .map_err(|e| Error::InvalidRequest(format!("the body does not serialize to JSON: {e}")))
}

/// Serializes an update body with `put-code` equal to `put_code`: filled in when absent,
/// refused when different (ORCID would answer 400, code 9019).
fn update_body<T: Serialize + ?Sized>(body: &T, put_code: PutCode) -> Result<Vec<u8>, Error> {
    let mut value = serde_json::to_value(body)
        .map_err(|e| Error::InvalidRequest(format!("the body does not serialize to JSON: {e}")))?;
    let Value::Object(map) = &mut value else {
        return Err(Error::InvalidRequest(
            "an update body must be a JSON object".to_owned(),
        ));
    };
    match map.get("put-code") {
        None | Some(Value::Null) => {
            map.insert("put-code".to_owned(), Value::from(put_code.get()));
        }
        Some(found) => {
            let in_body = match found {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match in_body {
                Some(n) if n == put_code.get() => {}
                Some(n) => {
                    return Err(Error::PutCodeMismatch {
                        path: put_code,
                        body: PutCode::from(n),
                    });
                }
                None => {
                    return Err(Error::InvalidRequest(format!(
                        "the body's put-code `{found}` is not a number"
                    )));
                }
            }
        }
    }
    to_json(&value)
}

fn check_bulk_size(given: usize, what: &str) -> Result<(), Error> {
    if given == 0 {
        return Err(Error::InvalidRequest(format!(
            "a bulk {what} needs at least one item"
        )));
    }
    if given > MAX_BULK_WORKS {
        return Err(Error::InvalidRequest(format!(
            "a bulk {what} takes at most {MAX_BULK_WORKS} items; {given} given (split the batch)"
        )));
    }
    Ok(())
}

impl OrcidClient {
    fn member_url(&self, orcid: &OrcidId, path: &str) -> String {
        self.inner
            .endpoints
            .api_url(&format!("v3.0/{}/{path}", orcid.path()))
    }

    fn member_request<'a>(
        &'a self,
        method: Method,
        url: String,
        token: &'a AccessToken,
        body: Body,
        operation: &'a str,
        endpoint: &'static str,
    ) -> Request<'a> {
        let idempotent = method != Method::POST;
        Request {
            method,
            url,
            bearer: Some(token),
            accept: ORCID_JSON,
            body,
            idempotent,
            operation,
            endpoint,
            secrets: vec![
                token.expose_secret(),
                self.inner.client_secret.expose_secret(),
            ],
        }
    }

    /// Reads `resource` of `orcid` as `T` (GET; retried on failure).
    #[tracing::instrument(skip_all, fields(orcid = %orcid, resource = %resource))]
    pub async fn read<T: DeserializeOwned>(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        resource: Resource,
    ) -> Result<T, Error> {
        let url = self.member_url(orcid, &resource.path()?);
        let operation = format!("read {resource}");
        let request = self.member_request(
            Method::GET,
            url,
            token,
            Body::Empty,
            &operation,
            resource.endpoint(),
        );
        let answer = self.send(&request).await?;
        if answer.status == StatusCode::OK {
            parse_json(&answer, &request.secrets)
        } else {
            Err(unexpected_or_error(answer, &request.secrets))
        }
    }

    /// Creates an item (POST → 201) and returns its put code, read from `Location`.
    ///
    /// Never retried once ORCID may have acted on it: a timeout, a lost connection or a
    /// 500/502/504 gives [`Error::OutcomeUnknown`] — read the section back before trying
    /// again. A 503/429 refusal or a failed connection is retried (nothing was created).
    #[tracing::instrument(skip_all, fields(orcid = %orcid, section = %section))]
    pub async fn create<T: Serialize + ?Sized>(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        section: Section,
        body: &T,
    ) -> Result<PutCode, Error> {
        let url = self.member_url(orcid, section.item_segment());
        let operation = format!("create {section}");
        let body = Body::Json(to_json(body)?);
        let request = self.member_request(
            Method::POST,
            url,
            token,
            body,
            &operation,
            section.item_segment(),
        );
        let answer = self.send(&request).await?;
        if !answer.status.is_success() {
            return Err(unexpected_or_error(answer, &request.secrets));
        }
        match put_code_from_location(&answer) {
            Some(put_code) => {
                tracing::info!(put_code = %put_code, "created");
                Ok(put_code)
            }
            // Created, but which item is unknown: the caller has to read back.
            None => Err(Error::UnexpectedResponse {
                status: answer.status.as_u16(),
                reason: "no put code in the Location header".to_owned(),
                excerpt: excerpt(&answer.body, &request.secrets),
            }
            .outcome_unknown(operation)),
        }
    }

    /// Replaces item `put_code` (PUT → 200) and returns ORCID's stored version as `R`.
    ///
    /// The body's `put-code` must equal `put_code`: it is filled in when the body has none,
    /// and the call is refused with [`Error::PutCodeMismatch`] when it names another.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, section = %section, put_code = %put_code))]
    pub async fn update<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        section: Section,
        put_code: PutCode,
        body: &T,
    ) -> Result<R, Error> {
        let url = self.member_url(orcid, &format!("{}/{put_code}", section.item_segment()));
        let operation = format!("update {section}");
        let body = Body::Json(update_body(body, put_code)?);
        let request = self.member_request(
            Method::PUT,
            url,
            token,
            body,
            &operation,
            section.item_segment(),
        );
        let answer = self.send(&request).await?;
        if answer.status == StatusCode::OK {
            parse_json(&answer, &request.secrets)
        } else {
            Err(unexpected_or_error(answer, &request.secrets))
        }
    }

    /// Deletes item `put_code` (DELETE → 204). A token the user revoked still may delete the
    /// client's own items (reference §4.2).
    ///
    /// Retried like every idempotent request. When an attempt's outcome was lost (a timeout,
    /// a lost connection, a 5xx other than 503) and a retry is answered 404 (code 9016), the
    /// call succeeds: the lost attempt most likely deleted the item, and either way it is
    /// gone. A 404 to the first attempt, or after attempts ORCID refused for load (503/429),
    /// is [`Error::NotFound`].
    #[tracing::instrument(skip_all, fields(orcid = %orcid, section = %section, put_code = %put_code))]
    pub async fn delete(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        section: Section,
        put_code: PutCode,
    ) -> Result<(), Error> {
        let url = self.member_url(orcid, &format!("{}/{put_code}", section.item_segment()));
        let operation = format!("delete {section}");
        let request = self.member_request(
            Method::DELETE,
            url,
            token,
            Body::Empty,
            &operation,
            section.item_segment(),
        );
        let answer = self.send(&request).await?;
        if answer.status.is_success() {
            Ok(())
        } else if answer.is_not_found_after_lost_outcome(&[ITEM_NOT_FOUND], &request.secrets) {
            tracing::info!("a retried delete found the item gone: an earlier attempt deleted it");
            Ok(())
        } else {
            Err(unexpected_or_error(answer, &request.secrets))
        }
    }

    /// Reads up to 100 full works at once (`GET /works/{pc1},{pc2},…`) as `R`.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, count = put_codes.len()))]
    pub async fn read_works_bulk_as<R: DeserializeOwned>(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        put_codes: &[PutCode],
    ) -> Result<R, Error> {
        check_bulk_size(put_codes.len(), "read")?;
        let list = put_codes
            .iter()
            .map(PutCode::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let url = self.member_url(orcid, &format!("works/{list}"));
        let request = self.member_request(
            Method::GET,
            url,
            token,
            Body::Empty,
            "read works in bulk",
            "works",
        );
        let answer = self.send(&request).await?;
        if answer.status == StatusCode::OK {
            parse_json(&answer, &request.secrets)
        } else {
            Err(unexpected_or_error(answer, &request.secrets))
        }
    }

    /// Creates up to 100 works at once (`POST /works` with `{"bulk":[{"work":…},…]}`) and
    /// returns ORCID's per-entry answer as `R`: each entry is the created work or an error,
    /// in the order sent.
    ///
    /// Like [`create`](Self::create), never repeated once ORCID may have acted on it.
    #[tracing::instrument(skip_all, fields(orcid = %orcid, count = works.len()))]
    pub async fn create_works_bulk_as<T: Serialize, R: DeserializeOwned>(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        works: &[T],
    ) -> Result<R, Error> {
        check_bulk_size(works.len(), "create")?;
        #[derive(Serialize)]
        struct Entry<'a, T> {
            work: &'a T,
        }
        #[derive(Serialize)]
        struct Bulk<'a, T> {
            bulk: Vec<Entry<'a, T>>,
        }
        let bulk = Bulk {
            bulk: works.iter().map(|work| Entry { work }).collect(),
        };
        let url = self.member_url(orcid, "works");
        let operation = "create works in bulk";
        let body = Body::Json(to_json(&bulk)?);
        let request = self.member_request(Method::POST, url, token, body, operation, "works");
        let answer = self.send(&request).await?;
        if !answer.status.is_success() {
            return Err(unexpected_or_error(answer, &request.secrets));
        }
        // Some works may have been created: an answer that cannot be read leaves the caller
        // not knowing which.
        parse_json(&answer, &request.secrets).map_err(|e| e.outcome_unknown(operation))
    }
}

/// # Typed methods
///
/// The same calls with the crate's model types. Creates send only what a client may write:
/// the put code and the fields ORCID sets itself (dates, source, path, display index) are
/// left out. Updates leave out the fields ORCID sets and check the put code as
/// [`update`](OrcidClient::update) does. Delete with [`delete`](OrcidClient::delete).
impl OrcidClient {
    /// The whole record (`GET /record`).
    pub async fn record(&self, token: &AccessToken, orcid: &OrcidId) -> Result<Record, Error> {
        self.read(token, orcid, Resource::Record).await
    }

    /// The activities summary (`GET /activities`).
    pub async fn activities(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
    ) -> Result<ActivitiesSummary, Error> {
        self.read(token, orcid, Resource::Activities).await
    }

    /// The person section (`GET /person`).
    pub async fn person(&self, token: &AccessToken, orcid: &OrcidId) -> Result<Person, Error> {
        self.read(token, orcid, Resource::Person).await
    }

    /// One affiliation section's listing (`GET /employments`, …).
    pub async fn affiliations(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        kind: AffiliationType,
    ) -> Result<AffiliationGroups, Error> {
        self.read(token, orcid, Resource::List(kind.into())).await
    }

    /// One full affiliation (`GET /employment/{put-code}`, …).
    pub async fn affiliation(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        kind: AffiliationType,
        put_code: PutCode,
    ) -> Result<Affiliation, Error> {
        self.read(token, orcid, Resource::Item(kind.into(), put_code))
            .await
    }

    /// Adds an affiliation (`POST /employment`, …); see [`create`](OrcidClient::create).
    pub async fn create_affiliation(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        kind: AffiliationType,
        affiliation: &Affiliation,
    ) -> Result<PutCode, Error> {
        let mut body = affiliation.clone().into_write_body();
        body.put_code = None;
        self.create(token, orcid, kind.into(), &body).await
    }

    /// Replaces an affiliation (`PUT /employment/{put-code}`, …); returns ORCID's version.
    pub async fn update_affiliation(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        kind: AffiliationType,
        put_code: PutCode,
        affiliation: &Affiliation,
    ) -> Result<Affiliation, Error> {
        let body = affiliation.clone().into_write_body();
        self.update(token, orcid, kind.into(), put_code, &body)
            .await
    }

    /// The works listing (`GET /works`).
    pub async fn works(&self, token: &AccessToken, orcid: &OrcidId) -> Result<Works, Error> {
        self.read(token, orcid, Resource::List(Section::Work)).await
    }

    /// One full work (`GET /work/{put-code}`).
    pub async fn work(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        put_code: PutCode,
    ) -> Result<Work, Error> {
        self.read(token, orcid, Resource::Item(Section::Work, put_code))
            .await
    }

    /// Adds a work (`POST /work`); see [`create`](OrcidClient::create).
    pub async fn create_work(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        work: &Work,
    ) -> Result<PutCode, Error> {
        self.create(token, orcid, Section::Work, &work_body(work))
            .await
    }

    /// Replaces a work (`PUT /work/{put-code}`); returns ORCID's version.
    pub async fn update_work(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        put_code: PutCode,
        work: &Work,
    ) -> Result<Work, Error> {
        let body = work.clone().into_write_body();
        self.update(token, orcid, Section::Work, put_code, &body)
            .await
    }

    /// Up to 100 full works (`GET /works/{pc1},{pc2},…`): one entry per put code, in order,
    /// each the work or an error.
    pub async fn works_bulk(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        put_codes: &[PutCode],
    ) -> Result<BulkResult, Error> {
        self.read_works_bulk_as(token, orcid, put_codes).await
    }

    /// Adds up to 100 works at once (`POST /works`): one entry per work, in order, each the
    /// stored work (with its put code) or why it was refused. See
    /// [`create_works_bulk_as`](OrcidClient::create_works_bulk_as).
    pub async fn create_works(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        works: &[Work],
    ) -> Result<BulkResult, Error> {
        let bodies: Vec<Work> = works.iter().map(work_body).collect();
        self.create_works_bulk_as(token, orcid, &bodies).await
    }

    /// The fundings listing (`GET /fundings`).
    pub async fn fundings(&self, token: &AccessToken, orcid: &OrcidId) -> Result<Fundings, Error> {
        self.read(token, orcid, Resource::List(Section::Funding))
            .await
    }

    /// One full funding (`GET /funding/{put-code}`).
    pub async fn funding(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        put_code: PutCode,
    ) -> Result<Funding, Error> {
        self.read(token, orcid, Resource::Item(Section::Funding, put_code))
            .await
    }

    /// Adds a funding (`POST /funding`); see [`create`](OrcidClient::create).
    pub async fn create_funding(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        funding: &Funding,
    ) -> Result<PutCode, Error> {
        let mut body = funding.clone().into_write_body();
        body.put_code = None;
        self.create(token, orcid, Section::Funding, &body).await
    }

    /// Replaces a funding (`PUT /funding/{put-code}`); returns ORCID's version.
    pub async fn update_funding(
        &self,
        token: &AccessToken,
        orcid: &OrcidId,
        put_code: PutCode,
        funding: &Funding,
    ) -> Result<Funding, Error> {
        let body = funding.clone().into_write_body();
        self.update(token, orcid, Section::Funding, put_code, &body)
            .await
    }
}

/// A work as a create body: without put code and server-set fields.
fn work_body(work: &Work) -> Work {
    let mut body = work.clone().into_write_body();
    body.put_code = None;
    body
}

/// A non-success answer as an error; a 2xx that is not the one expected as
/// [`Error::UnexpectedResponse`].
fn unexpected_or_error(answer: Answer, secrets: &[&str]) -> Error {
    if answer.status.is_success() {
        Error::UnexpectedResponse {
            status: answer.status.as_u16(),
            reason: "unexpected success status".to_owned(),
            excerpt: excerpt(&answer.body, secrets),
        }
    } else {
        answer.into_error(secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        #[serde(rename = "put-code", skip_serializing_if = "Option::is_none")]
        put_code: Option<u64>,
        title: &'static str,
    }

    #[test]
    fn update_body_fills_in_the_put_code() {
        let out = update_body(
            &Body {
                put_code: None,
                title: "t",
            },
            PutCode(7),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["put-code"], 7);
    }

    #[test]
    fn update_body_refuses_another_put_code() {
        let err = update_body(
            &Body {
                put_code: Some(8),
                title: "t",
            },
            PutCode(7),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::PutCodeMismatch {
                path: PutCode(7),
                body: PutCode(8)
            }
        ));
        update_body(
            &Body {
                put_code: Some(7),
                title: "t",
            },
            PutCode(7),
        )
        .unwrap();
    }

    #[test]
    fn sections_name_their_paths() {
        let s = Section::from(AffiliationType::InvitedPosition);
        assert_eq!(s.item_segment(), "invited-position");
        assert_eq!(s.list_segment(), "invited-positions");
        assert_eq!(Section::Keywords.list_segment(), "keywords");
        assert_eq!(
            Resource::Summary(Section::Work, PutCode(3)).path().unwrap(),
            "work/summary/3"
        );
        assert!(
            Resource::Summary(Section::Keywords, PutCode(3))
                .path()
                .is_err()
        );
    }
}
