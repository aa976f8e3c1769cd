//! The writer's HTTP API on the wire: the JSON bodies of `POST /api/v1/hr-events`,
//! `GET /api/v1/items`, `GET /api/v1/items/{id}/attempts`, `GET /api/v1/summary`,
//! `GET /api/v1/invitations` and `POST /api/v1/invitations/{person_id}/resend`, the
//! callers' rights, and the error body. Clients (the portal, reports, tests) deserialize
//! these same types. The README's "HTTP API" section describes the routes.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::digest;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ledger::{ItemAttempt, ItemState, LedgerItem};

/// What a caller of the writer's API may do (`writer.http.callers[].rights`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Right {
    /// `POST /api/v1/hr-events`.
    #[serde(rename = "hr-events:write")]
    HrEventsWrite,
    /// `GET /api/v1/items`, `/api/v1/items/{id}/attempts`, `/api/v1/summary`.
    #[serde(rename = "items:read")]
    ItemsRead,
    /// `GET /api/v1/invitations` (the portal's admin page, the CLI).
    #[serde(rename = "invitations:read")]
    InvitationsRead,
    /// `POST /api/v1/invitations/{person_id}/resend`: sends an e-mail now.
    #[serde(rename = "invitations:manage")]
    InvitationsManage,
}

impl Right {
    /// The name used in configuration and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::HrEventsWrite => "hr-events:write",
            Right::ItemsRead => "items:read",
            Right::InvitationsRead => "invitations:read",
            Right::InvitationsManage => "invitations:manage",
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lower-case hex SHA-256 of `token`, as `writer.http.callers[].token_sha256` wants it.
pub fn token_sha256_hex(token: &str) -> String {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// POST /api/v1/hr-events

/// The answer to `POST /api/v1/hr-events`: `202` when at least one event was accepted
/// (stored for the writer), `422` when none was. One result per submitted event, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeResponse {
    /// One per submitted event, in the order sent.
    pub results: Vec<EventResult>,
    /// How many were accepted.
    pub accepted: usize,
    /// How many were rejected.
    pub rejected: usize,
}

/// What became of one submitted event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult {
    /// Position in the batch (0 for a single event).
    pub index: usize,
    /// Accepted or rejected.
    pub status: EventStatus,
    /// The event's `event_id`, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The bus message the accepted event travels in (its `message_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    /// Why it was rejected: one entry per bad field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Accepted or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored durably; the writer will apply it.
    Accepted,
    /// Not stored; `errors` says why.
    Rejected,
}

/// One bad field of a submitted event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON Pointer into the submitted event (`/position/start_date`; `/payload/…` for an
    /// event sent in an envelope; empty for the event as a whole).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/items, /api/v1/items/{id}/attempts

/// One ledger item as the API shows it (no desired body, never a token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// The ledger row id (UUIDv7; `after` in the listing).
    pub id: Uuid,
    /// The institution's person id.
    pub person_id: String,
    /// The position id, or the repository's work id.
    pub key: String,
    /// 1, or more after rehires into the same position.
    pub generation: i32,
    /// ORCID section: `employment`, `education`, …, or `work`.
    pub section: String,
    /// The ORCID iD the item is on, once known.
    pub orcid: Option<String>,
    /// ORCID's put code, once known.
    pub put_code: Option<u64>,
    /// Where the item stands.
    pub state: ItemState,
    /// Whether ORCID holds the item's current content: `false` while a merged change (a
    /// leave's end date, say) is still to be written, even though `state` is `in_orcid`.
    #[serde(default)]
    pub current: bool,
    /// Attempts at writing the current content.
    pub attempts: i32,
    /// The last failure, when the item has one.
    pub last_error: Option<LastError>,
    /// The last source event merged into the item.
    pub source_event_id: Option<String>,
    /// When ORCID last accepted the content.
    pub written_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The last failure of an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// ORCID's HTTP status, when ORCID answered.
    pub status: Option<i32>,
    /// ORCID's error code (e.g. 9021).
    pub code: Option<i32>,
    /// What happened.
    pub message: Option<String>,
}

impl From<&LedgerItem> for ItemView {
    fn from(item: &LedgerItem) -> Self {
        let failed = item.last_error_status.is_some()
            || item.last_error_code.is_some()
            || item.last_error_message.is_some();
        Self {
            id: item.id,
            person_id: item.person_id.clone(),
            key: item.item_key.clone(),
            generation: item.generation,
            section: item.section.clone(),
            orcid: item.orcid.clone(),
            put_code: item.put_code.map(|p| p.get()),
            state: item.state,
            current: item.is_current(),
            attempts: item.attempts,
            last_error: failed.then(|| LastError {
                status: item.last_error_status,
                code: item.last_error_code,
                message: item.last_error_message.clone(),
            }),
            source_event_id: item.source_event_id.clone(),
            written_at: item.written_at,
            updated_at: item.updated_at,
        }
    }
}

/// A page of `GET /api/v1/items`, ordered by `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPage {
    /// The items.
    pub items: Vec<ItemView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Uuid>,
}

/// One attempt of an item's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    /// When.
    pub at: DateTime<Utc>,
    /// The source event being applied.
    pub event_id: Option<String>,
    /// What was tried (`merge`, `token`, `list`, `create`, `adopt`, `update`, `delete`, `give-up`, …).
    pub action: String,
    /// What came of it (`merged`, `written`, `adopted`, `pending`, `retry`, `failed`, …).
    pub outcome: String,
    /// ORCID's HTTP status.
    pub http_status: Option<i32>,
    /// ORCID's error code.
    pub orcid_error_code: Option<i32>,
    /// The put code involved.
    pub put_code: Option<u64>,
    /// Detail.
    pub message: Option<String>,
}

impl From<&ItemAttempt> for AttemptView {
    fn from(a: &ItemAttempt) -> Self {
        Self {
            at: a.at,
            event_id: a.event_id.clone(),
            action: a.action.clone(),
            outcome: a.outcome.clone(),
            http_status: a.http_status,
            orcid_error_code: a.orcid_error_code,
            put_code: a.put_code.map(|p| p.get()),
            message: a.message.clone(),
        }
    }
}

/// `GET /api/v1/items/{id}/attempts`: the item and its history, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemHistory {
    /// The item.
    pub item: ItemView,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptView>,
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/summary

/// `GET /api/v1/summary?days=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Items by state (every state present, zeros included).
    pub states: BTreeMap<String, u64>,
    /// All items.
    pub total: u64,
    /// The days covered by `per_day` (today included).
    pub days: u32,
    /// One entry per day (UTC), oldest first, days without attempts included.
    pub per_day: Vec<DayCount>,
}

/// What the writer did on one day (UTC), from the attempt history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// The day.
    pub day: NaiveDate,
    /// Writes ORCID accepted: attempts with outcome `written`, `adopted` or `deleted`.
    pub written: u64,
    /// Items given up on: attempts with outcome `failed` or `denied`.
    pub failed: u64,
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/invitations, POST /api/v1/invitations/{person_id}/resend

/// One person's invitation as the API shows it (the answer to a resend, an entry of
/// [`InvitationList`]). The portal link's id is left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    /// The HR person id.
    pub person_id: String,
    /// Where e-mails go (empty for a person who connected before any invitation).
    pub email: String,
    /// The name the e-mail greets.
    pub display_name: String,
    /// `pending`, `sent`, `connected`, `stopped` or `failed`.
    pub state: String,
    /// E-mails sent in all (invitation, reminders, resends).
    pub sent_count: u32,
    /// Reminders sent since the schedule (re)started.
    pub reminders_sent: u32,
    /// When the last e-mail went out.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// When the next e-mail is due (none when nothing more will be sent).
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// Why the last send failed (cleared by a successful send).
    pub last_error: Option<String>,
    /// When the person was first invited.
    pub created_at: DateTime<Utc>,
    /// When the person connected their iD.
    pub connected_at: Option<DateTime<Utc>>,
}

impl From<&invitations::Invitation> for InvitationView {
    fn from(i: &invitations::Invitation) -> Self {
        Self {
            person_id: i.person_id.clone(),
            email: i.email.clone(),
            display_name: i.display_name.clone(),
            state: i.state.as_str().to_owned(),
            sent_count: i.sent_count,
            reminders_sent: i.reminders_sent,
            last_sent_at: i.last_sent_at,
            next_reminder_at: i.next_reminder_at,
            last_error: i.last_error.clone(),
            created_at: i.created_at,
            connected_at: i.connected_at,
        }
    }
}

/// `GET /api/v1/invitations?state=&person_id=&limit=&offset=`: a page of invitations,
/// newest first, and how many invitations are in each state (all of them, not only the
/// page's; every state present, zeros included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationList {
    /// The page, newest first.
    pub invitations: Vec<InvitationView>,
    /// Invitations per state (`pending`, `sent`, `connected`, `stopped`, `failed`).
    pub counts: BTreeMap<String, u64>,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Errors

/// The body of every non-2xx answer except the per-event `422`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `unauthenticated`, `forbidden`, `bad_request`, `unsupported_media_type`,
    /// `payload_too_large`, `not_found`, `method_not_allowed`, `invitations_disabled`,
    /// `already_connected`, `busy`, `mail_failed`, `internal`.
    pub error: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// For `forbidden`: the right the caller lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_right: Option<String>,
    /// For `internal`: where to look in the writer's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}
