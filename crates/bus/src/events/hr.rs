//! HR events v1 (PRODUCT.md §4): hire, leave, change of a position.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AffiliationSection, Event, ExternalId, Organization, PartialDate, exchanges};

/// What happened to the position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HrEventType {
    /// The position starts.
    Hire,
    /// The position ends (`end_date` set).
    Leave,
    /// Something about it changed (title, department, dates).
    Change,
}

impl HrEventType {
    /// `hire`, `leave` or `change`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hire => "hire",
            Self::Leave => "leave",
            Self::Change => "change",
        }
    }
}

/// One HR event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HrEvent {
    /// The HR system's id of this event; idempotency key (the same id twice is one event).
    pub event_id: String,
    /// `hire`, `leave` or `change`.
    pub event_type: HrEventType,
    /// When it happened in the HR system.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub person: Person,
    /// Which position.
    pub position: Position,
}

/// The person, identified by the institution's stable id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The institution's stable id of the person.
    pub person_id: String,
    /// Names, when the source has them (ORCID's affiliation CSV has no name columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<PersonNames>,
    /// Work e-mail, for invitations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A person's names; each part optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonNames {
    /// Given names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_names: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

/// An appointment; `position_id` is the stable key of the ORCID item it becomes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Stable id of this appointment.
    pub position_id: String,
    /// ORCID section (employment unless said otherwise).
    #[serde(default)]
    pub section: AffiliationSection,
    /// Department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Role title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_title: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<PartialDate>,
    /// End (set by `leave`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<PartialDate>,
    /// Organisation, when not the institution itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// A page about the position (ORCID's affiliation `url`; CSV column `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Identifiers of the position, e.g. a grant number (CSV columns `external-id`,
    /// `external-id-type`, `external-id-url`; the CSV's relationship is `self`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_ids: Vec<ExternalId>,
}

impl Event for HrEvent {
    const TYPE: &'static str = "hr-event";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::HR;
    fn routing_key(&self) -> String {
        format!("hr.{}", self.event_type.as_str())
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person.person_id.clone())
    }
}
