//! `idbridge up --demo`: the scripted tour. Three demo researchers connect (the simulator's
//! authorize → token with the demo client, then the token response sealed to the vault's
//! hand-off key and "iD connected" published, exactly as the portal does), HR hires them,
//! one leaves, one gets a work; when the writer's ledger shows every item written, the
//! table of what landed in ORCID is read back from the simulator.

use std::io::Write;
use std::time::Duration;

use bus::OutgoingMessage;
use bus::events::{
    AffiliationSection, Contributor, ExternalId, HrEvent, HrEventType, IdConnected, PartialDate,
    Person, PersonNames, Position, Relationship, Work, WorkEvent, WorkEventType,
};
use chrono::Utc;
use orcid::client::{ClientConfig, OrcidClient, UserTokens};
use secrecy::SecretString;
use serde_json::Value;
use writer::ledger::{Ledger, LedgerItem};

use crate::up::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoResearcher, Stack};

/// How long the tour waits for the writer.
const DEADLINE: Duration = Duration::from_secs(120);

/// The tour failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator's OAuth flow failed.
    #[error("connecting {person}: {message}")]
    Connect {
        /// The person id.
        person: String,
        /// What happened.
        message: String,
    },
    /// Publishing failed.
    #[error("publishing: {0}")]
    Publish(#[from] bus::BusError),
    /// The writer did not finish in time.
    #[error("the writer did not write {what} within {DEADLINE:?} (last state: {state})")]
    Timeout {
        /// Which item.
        what: String,
        /// Its last ledger state.
        state: String,
    },
    /// Reading the ledger or the simulator failed.
    #[error("reading back: {0}")]
    Read(String),
}

const ROLES: [&str; 3] = ["Professor", "Research Fellow", "Lecturer"];
const DEPARTMENTS: [&str; 3] = ["Psychoceramics", "Computing", "Naval Research"];

fn http() -> Result<reqwest::Client, DemoError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DemoError::Read(e.to_string()))
}

/// The researcher approves the demo client at the simulator (headless) and the client
/// exchanges the code: ORCID's real token response.
async fn authorize(
    base: &str,
    client: &OrcidClient,
    researcher: &DemoResearcher,
    person: &str,
    redirect_uri: &str,
) -> Result<UserTokens, DemoError> {
    let failed = |message: String| DemoError::Connect {
        person: person.to_owned(),
        message,
    };
    let orcid = researcher.orcid.to_string();
    let res = http()?
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("client_id", DEMO_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/read-limited /activities/update"),
            ("redirect_uri", redirect_uri),
            ("sim_user", orcid.as_str()),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let code = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| {
            failed(format!(
                "no code in the authorize answer ({})",
                res.status()
            ))
        })?;
    client
        .exchange_code(&code, redirect_uri)
        .await
        .map_err(|e| failed(e.to_string()))
}

fn hire(person: &str, index: usize, researcher: &DemoResearcher) -> HrEvent {
    HrEvent {
        event_id: format!("demo-{}", uuid::Uuid::new_v4().simple()),
        event_type: HrEventType::Hire,
        occurred_at: Utc::now(),
        person: Person {
            person_id: person.to_owned(),
            names: Some(PersonNames {
                given_names: Some(researcher.given.to_owned()),
                family_name: Some(researcher.family.to_owned()),
            }),
            email: None,
        },
        position: Position {
            position_id: format!("{person}-pos"),
            section: AffiliationSection::Employment,
            department: Some(DEPARTMENTS[index % 3].to_owned()),
            role_title: Some(ROLES[index % 3].to_owned()),
            start_date: PartialDate::parse(&format!("202{}-0{}-01", index + 2, index + 1)).ok(),
            end_date: None,
            organization: None,
            url: None,
            external_ids: Vec::new(),
        },
    }
}

fn work(person: &str, tag: &str) -> WorkEvent {
    let doi = format!("10.5555/idbridge-demo.{tag}");
    WorkEvent {
        event_id: format!("demo-{}", uuid::Uuid::new_v4().simple()),
        event_type: WorkEventType::Upsert,
        occurred_at: Utc::now(),
        person_id: person.to_owned(),
        work: Work {
            work_id: format!("{person}-work-1"),
            title: "On the Bridging of Identifiers".to_owned(),
            subtitle: None,
            work_type: "journal-article".to_owned(),
            external_ids: vec![ExternalId {
                id_type: "doi".to_owned(),
                url: Some(format!("https://doi.org/{doi}")),
                value: doi,
                relationship: Relationship::SelfId,
            }],
            publication_date: PartialDate::parse("2026-03").ok(),
            journal_title: Some("Journal of Demonstrations".to_owned()),
            contributors: vec![Contributor {
                name: "Ada Lovelace".to_owned(),
                orcid: None,
                role: Some("author".to_owned()),
            }],
            url: None,
        },
    }
}

/// Polls the ledger until `find` gives a current item whose last event is `event_id`.
async fn wait_written(
    ledger: &Ledger,
    what: &str,
    event_id: &str,
    find: impl AsyncFn(&Ledger) -> Result<Option<LedgerItem>, sea_orm::DbErr>,
) -> Result<LedgerItem, DemoError> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut state = "no ledger row yet".to_owned();
    loop {
        match find(ledger).await {
            Ok(Some(item)) => {
                if item.is_current() && item.source_event_id.as_deref() == Some(event_id) {
                    return Ok(item);
                }
                state = item.state.to_string();
            }
            Ok(None) => {}
            Err(e) => return Err(DemoError::Read(e.to_string())),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError::Timeout {
                what: what.to_owned(),
                state,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn date_of(value: &Value, key: &str) -> Option<String> {
    let year = text_at(value, &format!("/{key}/year/value"))?;
    let month = text_at(value, &format!("/{key}/month/value"));
    let day = text_at(value, &format!("/{key}/day/value"));
    Some(match (month, day) {
        (Some(m), Some(d)) => format!("{year}-{m}-{d}"),
        (Some(m), None) => format!("{year}-{m}"),
        _ => year,
    })
}

/// Runs the tour on a started stack, printing as it goes and the table at the end.
///
/// # Errors
/// [`DemoError`].
pub async fn run(stack: &Stack, out: &mut impl Write) -> Result<(), DemoError> {
    let Some(sim) = &stack.sim else {
        return Err(DemoError::Read("the tour needs the simulator".to_owned()));
    };
    let base = sim.base_url().to_owned();
    let client = OrcidClient::new(
        ClientConfig::custom(
            &base,
            DEMO_CLIENT_ID,
            SecretString::from(DEMO_CLIENT_SECRET.to_owned()),
        )
        .map_err(|e| DemoError::Read(e.to_string()))?,
    )
    .map_err(|e| DemoError::Read(e.to_string()))?;
    // Person ids of this run: a data directory kept from an earlier run still works.
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let people: Vec<(String, &DemoResearcher)> = stack
        .researchers
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("demo{}-{tag}", i + 1), r))
        .collect();

    let _ = writeln!(out, "demo: connecting {} researchers", people.len());
    for (person, researcher) in &people {
        let tokens = authorize(&base, &client, researcher, person, &stack.redirect_uri).await?;
        let sealed =
            token_vault::handoff::seal_tokens(&stack.handoff.0, &researcher.orcid, person, &tokens)
                .map_err(|e| DemoError::Connect {
                    person: person.clone(),
                    message: e.to_string(),
                })?;
        let connected = IdConnected {
            orcid: researcher.orcid,
            person_id: person.clone(),
            name: tokens.name.clone(),
            scopes: tokens
                .scopes
                .to_string()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            sealed_token: sealed,
            key_id: stack.handoff.1.to_owned(),
            granted_at: Utc::now(),
        };
        stack
            .bus
            .publish(&OutgoingMessage::event(&connected)?)
            .await?;
        let _ = writeln!(out, "  {person} connected {}", researcher.orcid);
    }

    let _ = writeln!(out, "demo: HR hires all three, one leaves, one gets a work");
    let mut expected: Vec<(String, String, String, bool)> = Vec::new(); // person, key, event, is work
    let mut hires = Vec::new();
    for (index, (person, researcher)) in people.iter().enumerate() {
        let event = hire(person, index, researcher);
        stack.bus.publish(&OutgoingMessage::event(&event)?).await?;
        hires.push(event);
    }
    for (index, event) in hires.iter().enumerate() {
        if index == 0 {
            let mut leave = event.clone();
            leave.event_id = format!("demo-{}", uuid::Uuid::new_v4().simple());
            leave.event_type = HrEventType::Leave;
            leave.occurred_at = event.occurred_at + chrono::Duration::seconds(1);
            leave.position.end_date = PartialDate::parse("2026-06-30").ok();
            stack.bus.publish(&OutgoingMessage::event(&leave)?).await?;
            expected.push((
                leave.person.person_id.clone(),
                leave.position.position_id.clone(),
                leave.event_id.clone(),
                false,
            ));
        } else {
            expected.push((
                event.person.person_id.clone(),
                event.position.position_id.clone(),
                event.event_id.clone(),
                false,
            ));
        }
    }
    if let Some((person, _)) = people.get(1) {
        let event = work(person, &tag);
        stack.bus.publish(&OutgoingMessage::event(&event)?).await?;
        expected.push((
            person.clone(),
            event.work.work_id.clone(),
            event.event_id.clone(),
            true,
        ));
    }

    let _ = writeln!(out, "demo: waiting for the writer");
    let _ = out.flush();
    for (person, key, event_id, is_work) in &expected {
        let what = format!("{person}/{key}");
        wait_written(&stack.ledger, &what, event_id, async |ledger: &Ledger| {
            if *is_work {
                ledger.work(person, key).await
            } else {
                ledger.item(person, key).await
            }
        })
        .await?;
    }

    // Read back what ORCID holds.
    let ledger_items = stack
        .ledger
        .all()
        .await
        .map_err(|e| DemoError::Read(e.to_string()))?;
    let _ = writeln!(
        out,
        "demo: what landed in ORCID (read back from the simulator)"
    );
    let _ = writeln!(
        out,
        "{:<16} {:<19} {:<11} {:>9}  {:<9} detail",
        "person", "iD", "section", "put code", "state"
    );
    for (person, researcher) in &people {
        let record: Value = http()?
            .get(format!("{base}/_sim/records/{}", researcher.orcid))
            .send()
            .await
            .map_err(|e| DemoError::Read(e.to_string()))?
            .json()
            .await
            .map_err(|e| DemoError::Read(e.to_string()))?;
        for (listing, section) in [("employments", "employment"), ("works", "work")] {
            let items = record
                .pointer(&format!("/items/{listing}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                let put_code = text_at(&item, "/put-code").unwrap_or_else(|| "-".to_owned());
                let state = ledger_items
                    .iter()
                    .find(|i| {
                        i.person_id == *person
                            && i.put_code.map(|p| p.get().to_string()).as_deref()
                                == Some(put_code.as_str())
                    })
                    .map_or_else(|| "(not ours)".to_owned(), |i| i.state.to_string());
                let detail = if section == "work" {
                    text_at(&item, "/title/title/value").unwrap_or_default()
                } else {
                    let role = text_at(&item, "/role-title").unwrap_or_default();
                    let start = date_of(&item, "start-date").unwrap_or_default();
                    let end = date_of(&item, "end-date").unwrap_or_default();
                    format!("{role}, {start}..{end}")
                };
                let _ = writeln!(
                    out,
                    "{person:<16} {:<19} {section:<11} {put_code:>9}  {state:<9} {detail}",
                    researcher.orcid.to_string()
                );
            }
        }
    }
    let _ = writeln!(out, "demo: done");
    let _ = out.flush();
    Ok(())
}
