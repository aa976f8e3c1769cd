//! ORCID told us a record changed; the reader read it.

use chrono::{DateTime, Utc};
use orcid::OrcidId;
use serde::{Deserialize, Serialize};

use super::{Event, Section, exchanges};

/// ORCID's webhook said the record changed (debounced by the webhook receiver).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChanged {
    /// The ORCID iD.
    pub orcid: OrcidId,
    /// When the (last debounced) callback arrived.
    pub received_at: DateTime<Utc>,
}

impl Event for RecordChanged {
    const TYPE: &'static str = "record-changed";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "record.changed".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.orcid.to_string())
    }
}

/// An item idbridge wrote that is no longer on the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedItem {
    /// Record section.
    pub section: Section,
    /// Its put code.
    pub put_code: u64,
    /// The source's stable id, when the ledger knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

/// The reader took a new snapshot of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordUpdated {
    /// The ORCID iD.
    pub orcid: OrcidId,
    /// The institution's person id, when connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// ORCID's last-modified date of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
    /// Sections that differ from the previous snapshot.
    pub changed_sections: Vec<Section>,
    /// Items idbridge wrote that the researcher deleted.
    #[serde(default)]
    pub deleted_items: Vec<DeletedItem>,
    /// When the snapshot was taken.
    pub read_at: DateTime<Utc>,
}

impl Event for RecordUpdated {
    const TYPE: &'static str = "record-updated";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "record.updated".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.orcid.to_string())
    }
}
