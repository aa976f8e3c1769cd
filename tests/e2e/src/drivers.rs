//! What the system's users do, over HTTP: a researcher at the simulator and in the portal,
//! an HR system at the writer's intake, the simulator's test hooks, and polling helpers.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bus::events::{
    AffiliationSection, HrEvent, HrEventType, PartialDate, Person, PersonNames, Position,
};
use chrono::Utc;
use serde_json::{Value, json};
use writer::api::{IntakeResponse, ItemHistory, ItemPage, ItemView};

use crate::browser::{Browser, Page};

/// The password of every researcher the harness creates at the simulator (test data).
pub const PASSWORD: &str = "e2e-researcher-password";

/// Polls `check` every `poll` until it returns `Ok(Some(_))`; errors from `check` are
/// remembered and retried. Fails after `timeout`, naming `what` and the last error.
///
/// # Errors
/// The deadline passed.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let end = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = Some(format!("{e:#}")),
        }
        if tokio::time::Instant::now() >= end {
            match last {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what} (last error: {e})")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(poll).await;
    }
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("an HTTP client")
}

async fn json_of(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.context("reading the body")?;
    ensure!(status.is_success(), "{what}: {status}: {text}");
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

/// A researcher: a user (and record) at the simulator, and a person id at the institution.
#[derive(Clone, Debug)]
pub struct Researcher {
    /// The institution's person id.
    pub person_id: String,
    /// Given names.
    pub given: String,
    /// Family name.
    pub family: String,
    /// Sign-in e-mail at the simulator.
    pub email: String,
    /// Their iD.
    pub orcid: String,
}

/// The simulator's API and test hooks (`/_sim/…`).
#[derive(Clone, Debug)]
pub struct Sim {
    base: String,
    http: reqwest::Client,
}

impl Sim {
    /// A client of the simulator at `base`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: http()?,
        })
    }

    /// Its base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Creates a user and their record (`POST /_sim/users`).
    ///
    /// # Errors
    /// The simulator refused.
    pub async fn create_researcher(
        &self,
        person_id: &str,
        given: &str,
        family: &str,
    ) -> anyhow::Result<Researcher> {
        let email = format!(
            "{}-{}@e2e.invalid",
            person_id.to_ascii_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let body = json_of(
            self.http
                .post(format!("{}/_sim/users", self.base))
                .json(&json!({"given-names": given, "family-name": family,
                    "email": email, "password": PASSWORD}))
                .send()
                .await
                .context("POST /_sim/users")?,
            "creating a researcher at the simulator",
        )
        .await?;
        let orcid = body["orcid"]
            .as_str()
            .context("the simulator returned no iD")?
            .to_owned();
        Ok(Researcher {
            person_id: person_id.to_owned(),
            given: given.to_owned(),
            family: family.to_owned(),
            email,
            orcid,
        })
    }

    /// The whole record as stored (`GET /_sim/records/{orcid}`).
    ///
    /// # Errors
    /// Unknown iD or transport.
    pub async fn record(&self, orcid: &str) -> anyhow::Result<Value> {
        json_of(
            self.http
                .get(format!("{}/_sim/records/{orcid}", self.base))
                .send()
                .await
                .context("GET /_sim/records")?,
            "reading a record at the simulator",
        )
        .await
    }

    /// The items of one listing of the record (`employments`, `works`, …).
    ///
    /// # Errors
    /// As [`Sim::record`].
    pub async fn items(&self, orcid: &str, listing: &str) -> anyhow::Result<Vec<Value>> {
        let record = self.record(orcid).await?;
        Ok(record
            .pointer(&format!("/items/{listing}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// The researcher edits an item on their record (a JSON merge patch).
    ///
    /// # Errors
    /// The simulator refused.
    pub async fn edit_item(
        &self,
        orcid: &str,
        section: &str,
        put_code: u64,
        patch: &Value,
    ) -> anyhow::Result<Value> {
        json_of(
            self.http
                .put(format!(
                    "{}/_sim/records/{orcid}/{section}/{put_code}",
                    self.base
                ))
                .json(patch)
                .send()
                .await
                .context("PUT /_sim/records/…")?,
            "editing an item at the simulator",
        )
        .await
    }

    /// The researcher adds an item of their own.
    ///
    /// # Errors
    /// The simulator refused.
    pub async fn add_item(&self, orcid: &str, section: &str, item: &Value) -> anyhow::Result<u64> {
        let body = json_of(
            self.http
                .post(format!("{}/_sim/records/{orcid}/{section}", self.base))
                .json(item)
                .send()
                .await
                .context("POST /_sim/records/…")?,
            "adding an item at the simulator",
        )
        .await?;
        body["put-code"].as_u64().context("no put-code")
    }

    /// The researcher deletes an item from their record.
    ///
    /// # Errors
    /// The simulator refused.
    pub async fn delete_item(
        &self,
        orcid: &str,
        section: &str,
        put_code: u64,
    ) -> anyhow::Result<()> {
        let res = self
            .http
            .delete(format!(
                "{}/_sim/records/{orcid}/{section}/{put_code}",
                self.base
            ))
            .send()
            .await
            .context("DELETE /_sim/records/…")?;
        ensure!(
            res.status().as_u16() == 204,
            "deleting an item: {}",
            res.status()
        );
        Ok(())
    }

    /// Delivers pending webhook callbacks now (`POST /_sim/webhooks/flush`).
    ///
    /// # Errors
    /// Transport.
    pub async fn flush_webhooks(&self) -> anyhow::Result<Value> {
        json_of(
            self.http
                .post(format!("{}/_sim/webhooks/flush", self.base))
                .send()
                .await
                .context("POST /_sim/webhooks/flush")?,
            "flushing webhooks",
        )
        .await
    }

    /// Request counts by route and status (`GET /_sim/stats`).
    ///
    /// # Errors
    /// Transport.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        json_of(
            self.http
                .get(format!("{}/_sim/stats", self.base))
                .send()
                .await
                .context("GET /_sim/stats")?,
            "reading the stats",
        )
        .await
    }

    /// How many answers with `status` the route `key` (e.g. `POST /v3.0/{orcid}/employment`)
    /// gave, or, with `status` `None`, all statuses added up.
    ///
    /// # Errors
    /// Transport.
    pub async fn stat(&self, key: &str, status: Option<u16>) -> anyhow::Result<u64> {
        let stats = self.stats().await?;
        let Some(by_status) = stats.get(key).and_then(Value::as_object) else {
            return Ok(0);
        };
        Ok(by_status
            .iter()
            .filter(|(s, _)| status.is_none_or(|want| s.as_str() == want.to_string()))
            .filter_map(|(_, n)| n.as_u64())
            .sum())
    }

    /// Adds a fault rule (`POST /_sim/faults`), e.g.
    /// `{"endpoint": "POST /v3.0/*/employment", "latency_ms": 100}`.
    ///
    /// # Errors
    /// The simulator refused.
    pub async fn add_fault(&self, rule: &Value) -> anyhow::Result<()> {
        json_of(
            self.http
                .post(format!("{}/_sim/faults", self.base))
                .json(rule)
                .send()
                .await
                .context("POST /_sim/faults")?,
            "adding a fault",
        )
        .await
        .map(|_| ())
    }

    /// The active fault rules as the simulator lists them (`GET /_sim/faults`): each as
    /// posted, with its `id` and, for a counted rule, how many uses it has `remaining`.
    ///
    /// # Errors
    /// Transport or not 200.
    pub async fn faults(&self) -> anyhow::Result<Vec<Value>> {
        let body = json_of(
            self.http
                .get(format!("{}/_sim/faults", self.base))
                .send()
                .await
                .context("GET /_sim/faults")?,
            "listing the faults",
        )
        .await?;
        Ok(body["rules"].as_array().cloned().unwrap_or_default())
    }

    /// Clears every fault rule.
    ///
    /// # Errors
    /// Transport.
    pub async fn clear_faults(&self) -> anyhow::Result<()> {
        self.http
            .delete(format!("{}/_sim/faults", self.base))
            .send()
            .await
            .context("DELETE /_sim/faults")?;
        Ok(())
    }

    /// The status of `GET /v3.0/{orcid}/employments` with `access_token`, as a client
    /// holding that token would see it (401 once it is revoked).
    ///
    /// # Errors
    /// Transport.
    pub async fn api_status_with(&self, orcid: &str, access_token: &str) -> anyhow::Result<u16> {
        let res = self
            .http
            .get(format!("{}/v3.0/{orcid}/employments", self.base))
            .bearer_auth(access_token)
            .header("accept", "application/vnd.orcid+json")
            .send()
            .await
            .context("GET /v3.0/…/employments")?;
        Ok(res.status().as_u16())
    }
}

/// A researcher's browser on the portal (and, during connect, at ORCID).
#[derive(Debug)]
pub struct PortalUser {
    /// The browser (cookies of the portal and the simulator).
    pub browser: Browser,
    portal: String,
    /// Who.
    pub researcher: Researcher,
}

impl PortalUser {
    /// Signs `researcher` in to the portal with the development sign-in.
    ///
    /// # Errors
    /// A page did not answer as expected.
    pub async fn sign_in(portal: &str, researcher: &Researcher) -> anyhow::Result<Self> {
        let mut browser = Browser::new()?;
        let portal = portal.trim_end_matches('/').to_owned();
        let page = browser.get(&format!("{portal}/signin")).await?;
        ensure!(page.status == 200, "GET /signin: {}", page.status);
        let csrf = page
            .hidden("csrf")
            .context("no csrf field on the sign-in form")?;
        let form = vec![
            ("csrf".to_owned(), csrf),
            ("person_id".to_owned(), researcher.person_id.clone()),
            (
                "name".to_owned(),
                format!("{} {}", researcher.given, researcher.family),
            ),
            ("email".to_owned(), researcher.email.clone()),
        ];
        let page = browser.post(&format!("{portal}/signin/dev"), &form).await?;
        ensure!(
            page.status == 303 && page.raw_location().as_deref() == Some("/me"),
            "the dev sign-in answered {} {:?}: {}",
            page.status,
            page.raw_location(),
            page.body
        );
        Ok(Self {
            browser,
            portal,
            researcher: researcher.clone(),
        })
    }

    /// Connect → ORCID's authorize page → sign in there and press Authorize → back to the
    /// portal's callback → `/me?connected=1`. Returns the callback URL ORCID sent back.
    ///
    /// # Errors
    /// A hop did not answer as expected.
    pub async fn connect(&mut self) -> anyhow::Result<String> {
        let page = self
            .browser
            .get(&format!("{}/connect", self.portal))
            .await?;
        ensure!(page.status == 200, "GET /connect: {}", page.status);
        let page = self
            .browser
            .get(&format!("{}/connect/orcid", self.portal))
            .await?;
        ensure!(page.status == 303, "GET /connect/orcid: {}", page.status);
        let authorize = page.location()?;
        // At ORCID: the sign-in and consent page.
        let page = self.browser.get(&authorize).await?;
        ensure!(
            page.status == 200 && page.body.contains("id=\"authorize-button\""),
            "ORCID's authorize page answered {}: {}",
            page.status,
            page.body
        );
        let mut form = crate::browser::hidden_inputs(&page.body);
        form.push(("username".to_owned(), self.researcher.email.clone()));
        form.push(("password".to_owned(), PASSWORD.to_owned()));
        form.push(("action".to_owned(), "authorize".to_owned()));
        let target = url::Url::parse(&authorize)
            .context("the authorize URL")?
            .join("/oauth/authorize")
            .context("the form's action")?;
        let page = self.browser.post(target.as_str(), &form).await?;
        ensure!(
            page.status == 302,
            "ORCID answered the consent with {}: {}",
            page.status,
            page.body
        );
        let callback = page.location()?;
        ensure!(
            callback.starts_with(&self.portal),
            "ORCID sent the browser to {callback}, not the portal"
        );
        // Back at the portal.
        let page = self.browser.get(&callback).await?;
        ensure!(
            page.status == 303 && page.raw_location().as_deref() == Some("/me?connected=1"),
            "the portal's callback answered {} {:?}: {}",
            page.status,
            page.raw_location(),
            page.body
        );
        Ok(callback)
    }

    /// `GET /me`.
    ///
    /// # Errors
    /// Transport, or not 200.
    pub async fn me(&mut self) -> anyhow::Result<Page> {
        let page = self.browser.get(&format!("{}/me", self.portal)).await?;
        ensure!(page.status == 200, "GET /me: {} {}", page.status, page.body);
        Ok(page)
    }

    /// Disconnect: the confirmation page, then its form. Returns where the portal sent
    /// the browser (`/me?disconnected=1`).
    ///
    /// # Errors
    /// A page did not answer as expected.
    pub async fn disconnect(&mut self) -> anyhow::Result<String> {
        let page = self
            .browser
            .get(&format!("{}/disconnect", self.portal))
            .await?;
        ensure!(
            page.status == 200,
            "GET /disconnect: {} {:?}",
            page.status,
            page.raw_location()
        );
        let csrf = page
            .hidden("csrf")
            .context("no csrf field on the disconnect page")?;
        let page = self
            .browser
            .post(
                &format!("{}/disconnect", self.portal),
                &[("csrf".to_owned(), csrf)],
            )
            .await?;
        ensure!(
            page.status == 303,
            "POST /disconnect: {} {}",
            page.status,
            page.body
        );
        page.raw_location().context("no Location after disconnect")
    }
}

/// The writer's HTTP API as an HR system (and a reader of items) sees it.
#[derive(Clone, Debug)]
pub struct WriterApi {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl WriterApi {
    /// A caller of the writer at `base` with bearer `token`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: http()?,
        })
    }

    /// `POST /api/v1/hr-events` with `events` as batches (`{"events": […]}`) of at most 500
    /// (the intake's default `max_batch`); every event must be accepted.
    ///
    /// # Errors
    /// Not 202, or an event rejected.
    pub async fn send(&self, events: &[HrEvent]) -> anyhow::Result<IntakeResponse> {
        let mut all = IntakeResponse {
            results: Vec::new(),
            accepted: 0,
            rejected: 0,
        };
        for (n, batch) in events.chunks(500).enumerate() {
            let res = self
                .http
                .post(format!("{}/api/v1/hr-events", self.base))
                .bearer_auth(&self.token)
                .json(&json!({ "events": batch }))
                .send()
                .await
                .context("POST /api/v1/hr-events")?;
            let status = res.status().as_u16();
            let text = res.text().await.context("reading the body")?;
            ensure!(status == 202, "POST /api/v1/hr-events: {status}: {text}");
            let answer: IntakeResponse = serde_json::from_str(&text)
                .with_context(|| format!("the intake's answer: {text}"))?;
            ensure!(
                answer.rejected == 0 && answer.accepted == batch.len(),
                "the intake rejected events: {text}"
            );
            all.accepted += answer.accepted;
            all.results.extend(answer.results.into_iter().map(|mut r| {
                r.index += n * 500;
                r
            }));
        }
        Ok(all)
    }

    /// Every item (`GET /api/v1/items`, all pages), optionally of one person.
    ///
    /// # Errors
    /// Transport or not 200.
    pub async fn items(&self, person_id: Option<&str>) -> anyhow::Result<Vec<ItemView>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("limit", "500".to_owned())];
            if let Some(p) = person_id {
                query.push(("person_id", p.to_owned()));
            }
            if let Some(a) = &after {
                query.push(("after", a.clone()));
            }
            let res = self
                .http
                .get(format!("{}/api/v1/items", self.base))
                .bearer_auth(&self.token)
                .query(&query)
                .send()
                .await
                .context("GET /api/v1/items")?;
            let status = res.status().as_u16();
            let text = res.text().await.context("reading the body")?;
            ensure!(status == 200, "GET /api/v1/items: {status}: {text}");
            let page: ItemPage =
                serde_json::from_str(&text).with_context(|| format!("an item page: {text}"))?;
            all.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next.to_string()),
                None => return Ok(all),
            }
        }
    }

    /// An item and its history (`GET /api/v1/items/{id}/attempts`).
    ///
    /// # Errors
    /// Transport or not 200.
    pub async fn history(&self, id: uuid::Uuid) -> anyhow::Result<ItemHistory> {
        let res = self
            .http
            .get(format!("{}/api/v1/items/{id}/attempts", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("GET /api/v1/items/{id}/attempts")?;
        let status = res.status().as_u16();
        let text = res.text().await.context("reading the body")?;
        ensure!(
            status == 200,
            "GET /api/v1/items/{id}/attempts: {status}: {text}"
        );
        serde_json::from_str(&text).with_context(|| format!("an item history: {text}"))
    }

    /// Whether ORCID confirmed the content of `event_id` for the item (an attempt for that
    /// event ended `written`, `adopted` or `unchanged`): merging an event already sets the
    /// item's `source_event_id` while it is still `in_orcid` with the previous content.
    ///
    /// # Errors
    /// As [`WriterApi::history`].
    pub async fn confirmed(&self, id: uuid::Uuid, event_id: &str) -> anyhow::Result<bool> {
        Ok(self.history(id).await?.attempts.iter().any(|a| {
            a.event_id.as_deref() == Some(event_id)
                && matches!(a.outcome.as_str(), "written" | "adopted" | "unchanged")
        }))
    }

    /// The current item of `person_id` keyed `key` (position id), if any.
    ///
    /// # Errors
    /// As [`WriterApi::items`].
    pub async fn item(&self, person_id: &str, key: &str) -> anyhow::Result<Option<ItemView>> {
        Ok(self
            .items(Some(person_id))
            .await?
            .into_iter()
            .filter(|i| i.key == key)
            .max_by_key(|i| i.generation))
    }
}

/// HR events as an HR system would send them.
pub mod hr {
    use super::*;

    /// A hire of `person` into `position_id` (employment at the configured institution).
    pub fn hire(
        person: &Researcher,
        position_id: &str,
        role: &str,
        start: &str,
    ) -> anyhow::Result<HrEvent> {
        Ok(HrEvent {
            event_id: format!("e2e-{}", uuid::Uuid::new_v4().simple()),
            event_type: HrEventType::Hire,
            occurred_at: Utc::now(),
            person: Person {
                person_id: person.person_id.clone(),
                names: Some(PersonNames {
                    given_names: Some(person.given.clone()),
                    family_name: Some(person.family.clone()),
                }),
                email: None,
            },
            position: Position {
                position_id: position_id.to_owned(),
                section: AffiliationSection::Employment,
                department: Some("Psychoceramics".to_owned()),
                role_title: Some(role.to_owned()),
                start_date: Some(PartialDate::parse(start).map_err(anyhow::Error::msg)?),
                end_date: None,
                organization: None,
                url: None,
                external_ids: Vec::new(),
            },
        })
    }

    /// The leave that ends `hire`'s position on `end`.
    pub fn leave(hire: &HrEvent, end: &str) -> anyhow::Result<HrEvent> {
        let mut event = hire.clone();
        event.event_id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        event.event_type = HrEventType::Leave;
        event.occurred_at = Utc::now();
        event.position.end_date = Some(PartialDate::parse(end).map_err(anyhow::Error::msg)?);
        Ok(event)
    }
}
