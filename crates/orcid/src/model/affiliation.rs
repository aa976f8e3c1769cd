//! The seven affiliation sections: employment, education, qualification, invited-position,
//! distinction, membership and service (§3.3). They share one shape.

use std::fmt;
use std::str::FromStr;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::common::{
    Organization, PutCode, Source, Timestamp, UnknownFields, Visibility, note_unknown_keys,
};
use super::date::{FuzzyDate, PartialDate};
use super::external_id::{ExternalId, ExternalIds};
use super::serde_util::{self, as_text, plain, wrapped};

/// Which of the seven affiliation sections an affiliation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AffiliationType {
    /// `employment`.
    Employment,
    /// `education`.
    Education,
    /// `qualification`.
    Qualification,
    /// `invited-position`.
    InvitedPosition,
    /// `distinction`.
    Distinction,
    /// `membership`.
    Membership,
    /// `service`.
    Service,
}

impl AffiliationType {
    /// All seven, in ORCID's usual order.
    pub const ALL: [AffiliationType; 7] = [
        AffiliationType::Distinction,
        AffiliationType::Education,
        AffiliationType::Employment,
        AffiliationType::InvitedPosition,
        AffiliationType::Membership,
        AffiliationType::Qualification,
        AffiliationType::Service,
    ];

    /// The API path segment of one item: `POST /v3.0/{orcid}/invited-position`,
    /// `PUT …/invited-position/{put-code}`.
    pub fn path_segment(self) -> &'static str {
        match self {
            AffiliationType::Employment => "employment",
            AffiliationType::Education => "education",
            AffiliationType::Qualification => "qualification",
            AffiliationType::InvitedPosition => "invited-position",
            AffiliationType::Distinction => "distinction",
            AffiliationType::Membership => "membership",
            AffiliationType::Service => "service",
        }
    }

    /// The API path segment of the listing, `GET /v3.0/{orcid}/invited-positions`; also the
    /// key of the section in `activities-summary`.
    pub fn listing_segment(self) -> &'static str {
        match self {
            AffiliationType::Employment => "employments",
            AffiliationType::Education => "educations",
            AffiliationType::Qualification => "qualifications",
            AffiliationType::InvitedPosition => "invited-positions",
            AffiliationType::Distinction => "distinctions",
            AffiliationType::Membership => "memberships",
            AffiliationType::Service => "services",
        }
    }

    /// The key wrapping each summary in an `affiliation-group`'s `summaries`, e.g.
    /// `invited-position-summary`.
    pub fn summary_key(self) -> &'static str {
        match self {
            AffiliationType::Employment => "employment-summary",
            AffiliationType::Education => "education-summary",
            AffiliationType::Qualification => "qualification-summary",
            AffiliationType::InvitedPosition => "invited-position-summary",
            AffiliationType::Distinction => "distinction-summary",
            AffiliationType::Membership => "membership-summary",
            AffiliationType::Service => "service-summary",
        }
    }

    /// The type whose [`path_segment`](Self::path_segment) is `s`.
    pub fn from_path_segment(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.path_segment() == s)
    }

    /// The type whose [`listing_segment`](Self::listing_segment) is `s`.
    pub fn from_listing_segment(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.listing_segment() == s)
    }

    /// The type whose [`summary_key`](Self::summary_key) is `s`.
    pub fn from_summary_key(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.summary_key() == s)
    }
}

impl fmt::Display for AffiliationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path_segment())
    }
}

/// Why a string is not an affiliation type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an affiliation type (employment, education, qualification, invited-position, distinction, membership, service)"
)]
pub struct UnknownAffiliationType(pub String);

impl FromStr for AffiliationType {
    type Err = UnknownAffiliationType;
    /// Parses the path segment (`invited-position`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_path_segment(s).ok_or_else(|| UnknownAffiliationType(s.to_owned()))
    }
}

impl Serialize for AffiliationType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.path_segment())
    }
}

impl<'de> Deserialize<'de> for AffiliationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One affiliation of any of the seven types: the write body (POST, or PUT with
/// [`put_code`](Self::put_code) set), the full read (`GET /employment/{put-code}`) and the
/// summary inside listings all have this shape. Which type it is comes from the URL (or the
/// summary key), not from the body.
///
/// Build a write body with [`Affiliation::new`] and the `with_*` methods; it serializes to
/// the canonical shape of §3.3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Affiliation {
    /// When ORCID stored it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// ORCID's id of the item: absent on POST, required on PUT (code 9019/9024).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/employment/9266` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Department.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub department_name: Option<String>,
    /// Role or title (a degree for education).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub role_title: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<FuzzyDate>,
    /// End (requires a start, code 9050).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<FuzzyDate>,
    /// The organization (required for employment and education, code 9046).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// A link about the affiliation.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// External identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// The record holder's ordering (read-only; ORCID writes it as a string).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text")]
    pub display_index: Option<i64>,
    /// Who may see it. ORCID ignores it on POST and rejects a change on PUT (code 9035).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// An affiliation inside an `affiliation-group` listing. Same shape as [`Affiliation`].
pub type AffiliationSummary = Affiliation;

impl Affiliation {
    /// A write body for an affiliation at `organization`.
    pub fn new(organization: Organization) -> Self {
        Affiliation {
            organization: Some(organization),
            ..Affiliation::default()
        }
    }

    /// With a department.
    pub fn with_department(mut self, department: impl Into<String>) -> Self {
        self.department_name = Some(department.into());
        self
    }

    /// With a role or title.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role_title = Some(role.into());
        self
    }

    /// With a start date.
    pub fn with_start(mut self, date: PartialDate) -> Self {
        self.start_date = Some(date.into());
        self
    }

    /// With an end date.
    pub fn with_end(mut self, date: PartialDate) -> Self {
        self.end_date = Some(date.into());
        self
    }

    /// With a URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// With one more external identifier.
    pub fn with_external_id(mut self, id: ExternalId) -> Self {
        self.external_ids
            .get_or_insert_with(ExternalIds::default)
            .external_id
            .push(id);
        self
    }

    /// With a put code, for a PUT.
    pub fn with_put_code(mut self, put_code: PutCode) -> Self {
        self.put_code = Some(put_code);
        self
    }

    /// The same affiliation without the fields ORCID sets itself (dates, source, path,
    /// display index): what to send back on a PUT after reading an item. The put code,
    /// the visibility and unknown keys are kept.
    pub fn into_write_body(self) -> Self {
        Affiliation {
            created_date: None,
            last_modified_date: None,
            source: None,
            path: None,
            display_index: None,
            ..self
        }
    }
}

/// An affiliation section listing (`GET /v3.0/{orcid}/employments`, and each affiliation
/// section of `activities-summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AffiliationGroups {
    /// When the section last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Groups of affiliations sharing an external id; an affiliation without ids is alone in
    /// its group.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub affiliation_group: Vec<AffiliationGroup>,
    /// `/0000-…/employments`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl AffiliationGroups {
    /// Every summary of every group, in order.
    pub fn summaries(&self) -> impl Iterator<Item = &AffiliationSummary> {
        self.typed_summaries().map(|(_, s)| s)
    }

    /// Every summary of every group with its type, in order.
    pub fn typed_summaries(&self) -> impl Iterator<Item = (AffiliationType, &AffiliationSummary)> {
        self.affiliation_group
            .iter()
            .flat_map(|g| g.summaries.iter())
            .filter_map(AffiliationSummaryEntry::known)
    }

    /// The put codes of every summary, in order.
    pub fn put_codes(&self) -> Vec<PutCode> {
        self.summaries().filter_map(|s| s.put_code).collect()
    }
}

/// One `affiliation-group`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AffiliationGroup {
    /// When the group last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The union of the groupable ids of the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// The members, each wrapped as `{"employment-summary": {…}}`.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub summaries: Vec<AffiliationSummaryEntry>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// One entry of an `affiliation-group`'s `summaries`: `{"employment-summary": {…}}`.
#[derive(Debug, Clone, PartialEq)]
pub enum AffiliationSummaryEntry {
    /// A summary under one of the seven known keys.
    Known {
        /// Which key it was under.
        affiliation_type: AffiliationType,
        /// The summary.
        summary: Box<AffiliationSummary>,
    },
    /// Anything else (a key this crate does not know, or several keys), kept verbatim.
    Unknown(Map<String, Value>),
}

impl AffiliationSummaryEntry {
    /// An entry wrapping `summary` under `affiliation_type`'s key.
    pub fn new(affiliation_type: AffiliationType, summary: AffiliationSummary) -> Self {
        AffiliationSummaryEntry::Known {
            affiliation_type,
            summary: Box::new(summary),
        }
    }

    /// The type and summary, for a known entry.
    pub fn known(&self) -> Option<(AffiliationType, &AffiliationSummary)> {
        match self {
            AffiliationSummaryEntry::Known {
                affiliation_type,
                summary,
            } => Some((*affiliation_type, summary)),
            AffiliationSummaryEntry::Unknown(_) => None,
        }
    }
}

impl Serialize for AffiliationSummaryEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AffiliationSummaryEntry::Known {
                affiliation_type,
                summary,
            } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(affiliation_type.summary_key(), summary)?;
                m.end()
            }
            AffiliationSummaryEntry::Unknown(map) => map.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AffiliationSummaryEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = AffiliationSummaryEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object such as {\"employment-summary\": {…}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut known: Option<(AffiliationType, AffiliationSummary)> = None;
                let mut others = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    match AffiliationType::from_summary_key(&key) {
                        Some(t) if known.is_none() => {
                            known = Some((t, map.next_value()?));
                        }
                        _ => {
                            others.insert(key, map.next_value()?);
                        }
                    }
                }
                match known {
                    Some((affiliation_type, summary)) if others.is_empty() => {
                        Ok(AffiliationSummaryEntry::new(affiliation_type, summary))
                    }
                    Some((affiliation_type, summary)) => {
                        note_unknown_keys(others.keys());
                        let value =
                            serde_json::to_value(&summary).map_err(serde::de::Error::custom)?;
                        others.insert(affiliation_type.summary_key().to_owned(), value);
                        Ok(AffiliationSummaryEntry::Unknown(others))
                    }
                    None => {
                        note_unknown_keys(others.keys());
                        Ok(AffiliationSummaryEntry::Unknown(others))
                    }
                }
            }
        }
        d.deserialize_map(EntryVisitor)
    }
}
