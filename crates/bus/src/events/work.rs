//! Work events v1: a research output to put on (or take off) a researcher's ORCID record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use orcid::OrcidId;

use super::{Event, ExternalId, PartialDate, exchanges};

/// Create/update or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkEventType {
    /// Create the work, or update it (same `work_id`).
    Upsert,
    /// Delete the work idbridge wrote for this `work_id`.
    Delete,
}

/// One work event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkEvent {
    /// The repository's id of this event; idempotency key.
    pub event_id: String,
    /// `upsert` or `delete`.
    pub event_type: WorkEventType,
    /// When it happened in the repository.
    pub occurred_at: DateTime<Utc>,
    /// The institution's id of the researcher whose record it goes on.
    pub person_id: String,
    /// The work.
    pub work: Work,
}

/// A research output, in ORCID's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    /// Stable id in the repository; the key of the ORCID item.
    pub work_id: String,
    /// Title.
    pub title: String,
    /// Subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// ORCID work type (`journal-article`, `book`, `dataset`, …).
    #[serde(rename = "type")]
    pub work_type: String,
    /// DOIs, handles, ISBNs… with their relationship to this work.
    pub external_ids: Vec<ExternalId>,
    /// Publication date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_date: Option<PartialDate>,
    /// Journal (or book series) title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_title: Option<String>,
    /// Contributors, in order.
    #[serde(default)]
    pub contributors: Vec<Contributor>,
    /// Landing page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A contributor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    /// Name as credited.
    pub name: String,
    /// ORCID iD, when known (checked: only a valid iD can be written here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcid: Option<OrcidId>,
    /// Role (`author`, `editor`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Event for WorkEvent {
    const TYPE: &'static str = "work-event";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::WORKS;
    fn routing_key(&self) -> String {
        match self.event_type {
            WorkEventType::Upsert => "work.upsert".into(),
            WorkEventType::Delete => "work.delete".into(),
        }
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person_id.clone())
    }
}
