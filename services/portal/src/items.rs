//! Where the researcher page and the reports get items and their status: the writer's read
//! API (`GET /api/v1/items`, `/api/v1/items/{id}/attempts`, `/api/v1/summary`), behind a
//! small trait so the pages do not depend on how the writer is reached.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// One item the writer keeps for a person (the writer's `ItemView`, read leniently).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    /// The writer's id of the item.
    pub id: String,
    /// The institution's person id.
    pub person_id: String,
    /// `employment`, `work`, …
    pub section: String,
    /// The iD it was written to.
    #[serde(default)]
    pub orcid: Option<String>,
    /// ORCID's put code, once written.
    #[serde(default)]
    pub put_code: Option<u64>,
    /// `pending`, `in_orcid`, `error`, …
    pub state: String,
    /// Whether ORCID holds the current content (`false` while a change such as an end date is
    /// still to be written). A writer that does not say is taken at its `state`.
    #[serde(default = "assume_current")]
    pub current: bool,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: i64,
    /// When it was last written.
    #[serde(default)]
    pub written_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

fn assume_current() -> bool {
    true
}

/// A page of items.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemPage {
    /// The items.
    pub items: Vec<Item>,
    /// Pass as `after` for the next page.
    #[serde(default)]
    pub next_after: Option<String>,
}

/// Which items to list.
#[derive(Clone, Copy, Debug, Default)]
pub struct ItemFilter<'a> {
    /// One person's.
    pub person_id: Option<&'a str>,
    /// In this state (`failed`, …).
    pub state: Option<&'a str>,
    /// After this item id (the previous page's `next_after`).
    pub after: Option<&'a str>,
    /// Page size (1 to 1000).
    pub limit: u64,
}

/// One attempt at writing an item.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempt {
    /// When.
    pub at: DateTime<Utc>,
    /// The event that caused it.
    #[serde(default)]
    pub event_id: Option<String>,
    /// `create`, `update`, `delete`, …
    pub action: String,
    /// `written`, `failed`, …
    pub outcome: String,
    /// ORCID's HTTP status.
    #[serde(default)]
    pub http_status: Option<i32>,
    /// ORCID's error code.
    #[serde(default)]
    pub orcid_error_code: Option<i32>,
    /// The put code.
    #[serde(default)]
    pub put_code: Option<u64>,
    /// What went wrong.
    #[serde(default)]
    pub message: Option<String>,
}

/// An item and its attempts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemHistory {
    /// The item.
    pub item: Item,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// Writes and failures of one day.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DayCount {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Items written.
    pub written: u64,
    /// Attempts failed.
    pub failed: u64,
}

/// Counts by state and per day.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Items by state.
    pub states: std::collections::BTreeMap<String, u64>,
    /// All items.
    pub total: u64,
    /// Days covered by `per_day`.
    pub days: u32,
    /// Writes and failures per day.
    pub per_day: Vec<DayCount>,
}

/// Reading items failed.
#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    /// The writer answered with an error status.
    #[error("the writer answered {status}")]
    Status {
        /// HTTP status.
        status: u16,
    },
    /// The writer could not be reached or its answer not read.
    #[error("calling the writer failed")]
    Transport(#[source] reqwest::Error),
}

/// A boxed future (the trait is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where items come from.
pub trait ItemsSource: Send + Sync + 'static {
    /// One page of a person's (or everyone's) items, optionally in one state.
    fn items<'a>(&'a self, filter: ItemFilter<'a>) -> BoxFuture<'a, Result<ItemPage, ItemsError>>;

    /// One item and every attempt made for it.
    fn history<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ItemHistory, ItemsError>>;

    /// Counts by state and writes per day over `days` days.
    fn summary(&self, days: u32) -> BoxFuture<'_, Result<Summary, ItemsError>>;
}

/// `base` followed by the fixed `before` segments, `id` as exactly one percent-encoded
/// path segment (`/`, space, `%`, `?`, `#` … are escaped), then the fixed `after` segments.
/// `None` for an id that cannot be a segment (empty, `.` or `..`) or a base that cannot
/// carry a path.
pub(crate) fn url_with_id(
    base: &str,
    before: &[&str],
    id: &str,
    after: &[&str],
) -> Option<url::Url> {
    if id.is_empty() || id == "." || id == ".." {
        return None;
    }
    let mut url = url::Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(before)
        .push(id)
        .extend(after);
    Some(url)
}

/// The writer's HTTP read API.
#[derive(Clone)]
pub struct HttpItems {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for HttpItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpItems")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpItems {
    /// A client of the writer at `base_url` with the portal's caller token.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(base_url: &str, token: SecretString) -> Result<Self, ItemsError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(ItemsError::Transport)?;
        Ok(Self {
            http,
            base: base_url.trim().trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ItemsError> {
        self.get_url(format!("{}{path}", self.base), query).await
    }

    async fn get_url<T: serde::de::DeserializeOwned>(
        &self,
        url: String,
        query: &[(&str, String)],
    ) -> Result<T, ItemsError> {
        let response = self.http.get(url).query(query);
        let response = traced(response)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| ItemsError::Transport(e.without_url()))?;
        if !response.status().is_success() {
            return Err(ItemsError::Status {
                status: response.status().as_u16(),
            });
        }
        response
            .json()
            .await
            .map_err(|e| ItemsError::Transport(e.without_url()))
    }
}

impl ItemsSource for HttpItems {
    fn items<'a>(&'a self, filter: ItemFilter<'a>) -> BoxFuture<'a, Result<ItemPage, ItemsError>> {
        Box::pin(async move {
            let mut query = vec![("limit", filter.limit.to_string())];
            if let Some(p) = filter.person_id {
                query.push(("person_id", p.to_owned()));
            }
            if let Some(s) = filter.state {
                query.push(("state", s.to_owned()));
            }
            if let Some(a) = filter.after {
                query.push(("after", a.to_owned()));
            }
            self.get("/api/v1/items", &query).await
        })
    }

    fn history<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ItemHistory, ItemsError>> {
        Box::pin(async move {
            // An id that cannot be one path segment names no item.
            let url = url_with_id(&self.base, &["api", "v1", "items"], id, &["attempts"])
                .ok_or(ItemsError::Status { status: 404 })?;
            self.get_url(url.into(), &[]).await
        })
    }

    fn summary(&self, days: u32) -> BoxFuture<'_, Result<Summary, ItemsError>> {
        Box::pin(async move {
            self.get("/api/v1/summary", &[("days", days.to_string())])
                .await
        })
    }
}

/// One person's invitation (the writer's `InvitationView`, read leniently).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invitation {
    /// The HR person id.
    pub person_id: String,
    /// Where e-mails go.
    #[serde(default)]
    pub email: String,
    /// The name the e-mail greets.
    #[serde(default)]
    pub display_name: String,
    /// `pending`, `sent`, `connected`, `stopped` or `failed`.
    pub state: String,
    /// E-mails sent in all.
    #[serde(default)]
    pub sent_count: u32,
    /// Reminders sent since the schedule (re)started.
    #[serde(default)]
    pub reminders_sent: u32,
    /// When the last e-mail went out.
    #[serde(default)]
    pub last_sent_at: Option<DateTime<Utc>>,
    /// When the next e-mail is due.
    #[serde(default)]
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// Why the last send failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the person was first invited.
    pub created_at: DateTime<Utc>,
    /// When the person connected their iD.
    #[serde(default)]
    pub connected_at: Option<DateTime<Utc>>,
}

/// A page of invitations and the counts by state (of all invitations).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InvitationList {
    /// The page, newest first.
    pub invitations: Vec<Invitation>,
    /// Invitations per state.
    #[serde(default)]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Pass as `offset` for the next page.
    #[serde(default)]
    pub next_offset: Option<u64>,
}

/// Which invitations to list.
#[derive(Clone, Copy, Debug, Default)]
pub struct InvitationFilter<'a> {
    /// In this state.
    pub state: Option<&'a str>,
    /// One person's.
    pub person_id: Option<&'a str>,
    /// Page size (1 to 1000).
    pub limit: u64,
    /// Skip this many.
    pub offset: u64,
}

/// Listing or resending invitations failed.
#[derive(Debug, thiserror::Error)]
pub enum InvitationsError {
    /// The writer has invitations turned off (`writer.invitations.enabled = false`).
    #[error("invitations are disabled at the writer (set writer.invitations.enabled = true)")]
    Disabled,
    /// The writer refused (its status, error code and message).
    #[error("the writer answered {status} {code}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The writer's error code (`not_found`, `already_connected`, `busy`, `mail_failed`, …).
        code: String,
        /// The writer's message.
        message: String,
    },
    /// The writer could not be reached or its answer not read.
    #[error("calling the writer failed")]
    Transport(#[source] reqwest::Error),
}

/// The writer's invitations API.
pub trait InvitationsSource: Send + Sync + 'static {
    /// A page of invitations and the counts by state.
    fn invitations<'a>(
        &'a self,
        filter: InvitationFilter<'a>,
    ) -> BoxFuture<'a, Result<InvitationList, InvitationsError>>;

    /// Sends the person's invitation again now.
    fn resend<'a>(
        &'a self,
        person_id: &'a str,
    ) -> BoxFuture<'a, Result<Invitation, InvitationsError>>;
}

#[derive(Deserialize)]
struct WriterError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

impl HttpItems {
    async fn invitation_answer<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, InvitationsError> {
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| InvitationsError::Transport(e.without_url()));
        }
        let body: WriterError = response.json().await.unwrap_or(WriterError {
            error: String::new(),
            message: String::new(),
        });
        if status.as_u16() == 404 && body.error == "invitations_disabled" {
            return Err(InvitationsError::Disabled);
        }
        Err(InvitationsError::Refused {
            status: status.as_u16(),
            code: body.error,
            message: body.message.chars().take(500).collect(),
        })
    }
}

impl InvitationsSource for HttpItems {
    fn invitations<'a>(
        &'a self,
        filter: InvitationFilter<'a>,
    ) -> BoxFuture<'a, Result<InvitationList, InvitationsError>> {
        Box::pin(async move {
            let mut query = vec![
                ("limit", filter.limit.to_string()),
                ("offset", filter.offset.to_string()),
            ];
            if let Some(s) = filter.state {
                query.push(("state", s.to_owned()));
            }
            if let Some(p) = filter.person_id {
                query.push(("person_id", p.to_owned()));
            }
            let response = self
                .http
                .get(format!("{}/api/v1/invitations", self.base))
                .query(&query);
            let response = traced(response)
                .bearer_auth(self.token.expose_secret())
                .send()
                .await
                .map_err(|e| InvitationsError::Transport(e.without_url()))?;
            Self::invitation_answer(response).await
        })
    }

    fn resend<'a>(
        &'a self,
        person_id: &'a str,
    ) -> BoxFuture<'a, Result<Invitation, InvitationsError>> {
        Box::pin(async move {
            let Some(url) = url_with_id(
                &self.base,
                &["api", "v1", "invitations"],
                person_id,
                &["resend"],
            ) else {
                return Err(InvitationsError::Refused {
                    status: 404,
                    code: "not_found".to_owned(),
                    message: "no invitation has that person id".to_owned(),
                });
            };
            let response = self.http.post(url);
            let response = traced(response)
                .bearer_auth(self.token.expose_secret())
                .send()
                .await
                .map_err(|e| InvitationsError::Transport(e.without_url()))?;
            Self::invitation_answer(response).await
        })
    }
}

/// `request` with the current trace context (`traceparent`), so the callee's request span
/// joins the caller's trace.
fn traced(mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    for (name, value) in idbridge_platform::telemetry::trace_headers() {
        request = request.header(name, value);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::url_with_id;

    #[test]
    fn ids_become_exactly_one_path_segment() {
        let url = |id| {
            url_with_id(
                "http://w.test:8080/base/",
                &["api", "v1", "items"],
                id,
                &["attempts"],
            )
            .map(String::from)
        };
        assert_eq!(
            url("P 1").as_deref(),
            Some("http://w.test:8080/base/api/v1/items/P%201/attempts")
        );
        assert_eq!(
            url("a/b").as_deref(),
            Some("http://w.test:8080/base/api/v1/items/a%2Fb/attempts")
        );
        assert_eq!(
            url("a+b?c#d%").as_deref(),
            Some("http://w.test:8080/base/api/v1/items/a+b%3Fc%23d%25/attempts")
        );
        assert_eq!(
            url("../x").as_deref(),
            Some("http://w.test:8080/base/api/v1/items/..%2Fx/attempts")
        );
        for bad in ["", ".", ".."] {
            assert_eq!(url(bad), None, "{bad:?}");
        }
        let plain = url_with_id("http://w.test", &["api"], "x", &[]).map(String::from);
        assert_eq!(plain.as_deref(), Some("http://w.test/api/x"));
    }
}
