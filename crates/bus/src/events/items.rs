//! Outcomes of ORCID writes, for reports and downstream systems.

use chrono::{DateTime, Utc};
use orcid::OrcidId;
use serde::{Deserialize, Serialize};

use super::{Event, Section, exchanges};

/// What the write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemAction {
    /// A new item (a new put code).
    Created,
    /// An existing item, same put code.
    Updated,
    /// The item was deleted.
    Deleted,
}

/// An item is on ORCID (or was deleted from it) and its put code is in the writer's ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemWritten {
    /// The ORCID iD.
    pub orcid: OrcidId,
    /// The institution's person id.
    pub person_id: String,
    /// Record section.
    pub section: Section,
    /// The source's stable id (`position_id`, `work_id`).
    pub source_id: String,
    /// ORCID's put code of the item.
    pub put_code: u64,
    /// What was done.
    pub action: ItemAction,
    /// When ORCID confirmed it.
    pub written_at: DateTime<Utc>,
}

impl Event for ItemWritten {
    const TYPE: &'static str = "item-written";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "item.written".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person_id.clone())
    }
}

/// Why a write failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// Machine-readable kind: `token-revoked`, `scope-missing`, `invalid-item`,
    /// `duplicate`, `not-connected`, `orcid-unavailable`, `retries-exhausted`, …
    pub kind: String,
    /// ORCID's error code (9010, 9016, …), when ORCID answered with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcid_error_code: Option<u32>,
    /// Human-readable detail (never a token).
    pub message: String,
}

/// A write did not happen, and will not without a change or an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFailed {
    /// The ORCID iD, when the person is connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcid: Option<OrcidId>,
    /// The institution's person id.
    pub person_id: String,
    /// Record section.
    pub section: Section,
    /// The source's stable id.
    pub source_id: String,
    /// What went wrong.
    pub error: ItemError,
    /// Attempts made.
    pub attempts: u32,
    /// When it was given up on.
    pub failed_at: DateTime<Utc>,
}

impl Event for ItemFailed {
    const TYPE: &'static str = "item-failed";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "item.failed".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person_id.clone())
    }
}
