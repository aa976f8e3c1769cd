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

/// One item of a record, as the reader's snapshot summarises it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRef {
    /// Record section.
    pub section: Section,
    /// Its put code.
    pub put_code: u64,
    /// The member client (`APP-…`) that wrote it; absent when the researcher (or a delegate)
    /// added it by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_client_id: Option<String>,
    /// A display title (a work's or funding's title, an affiliation's role and organization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What state the record was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordStatus {
    /// Readable as usual.
    Active,
    /// Merged into another record (`primary_orcid`); ORCID answers 301/409 with code 9007.
    Deprecated,
    /// Deactivated by its holder; ORCID answers 409 with code 9044.
    Deactivated,
}

/// The reader took a new snapshot of a record.
///
/// The item lists (`added`, `changed`, `removed`) and `previous_read_at`, `status`,
/// `primary_orcid` were added later as optional fields: absent (empty) in older messages.
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
    /// When the previous snapshot was taken; absent for the first snapshot of the iD (then
    /// every item is in `added`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_read_at: Option<DateTime<Utc>>,
    /// Items on the record that were not in the previous snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<ItemRef>,
    /// Items whose content changed since the previous snapshot (same section and put code).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<ItemRef>,
    /// Items of the previous snapshot that are gone, whoever their source (those of
    /// idbridge's client are also in `deleted_items`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<ItemRef>,
    /// The record's state when read; absent in older messages (active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RecordStatus>,
    /// For a deprecated record, the iD it was merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_orcid: Option<OrcidId>,
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
