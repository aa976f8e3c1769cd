//! The whole record (`GET /v3.0/{orcid}/record`) and its activities summary.

use serde::{Deserialize, Serialize};

use super::affiliation::{AffiliationGroups, AffiliationType};
use super::common::{OrcidIdentifier, PutCode, Source, Timestamp, UnknownFields};
use super::funding::Fundings;
use super::peer_review::PeerReviews;
use super::person::Person;
use super::research_resource::ResearchResources;
use super::section::Section;
use super::serde_util::{plain, wrapped};
use super::work::Works;

/// A whole record: iD, preferences, history, person and activities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    /// The record's iD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcid_identifier: Option<OrcidIdentifier>,
    /// Preferences (locale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Preferences>,
    /// History (creation, claim, verification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// The person section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Person>,
    /// The activities summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activities_summary: Option<ActivitiesSummary>,
    /// `/0000-…`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The record holder's preferences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Preferences {
    /// UI language, e.g. `en`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub locale: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The record's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct History {
    /// How the record was created (`MEMBER_REFERRED`, `DIRECT`, …), as text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub creation_method: Option<String>,
    /// When registration was completed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub completion_date: Option<Timestamp>,
    /// When the record was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub submission_date: Option<Timestamp>,
    /// When the record last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Whether the holder claimed it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub claimed: Option<bool>,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// When it was deactivated.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub deactivation_date: Option<Timestamp>,
    /// Whether any e-mail is verified.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub verified_email: Option<bool>,
    /// Whether the primary e-mail is verified.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub verified_primary_email: Option<bool>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The activities summary (`GET /v3.0/{orcid}/activities`, and `activities-summary` in the
/// record): every section's listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ActivitiesSummary {
    /// When any activity last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Distinctions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinctions: Option<AffiliationGroups>,
    /// Educations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub educations: Option<AffiliationGroups>,
    /// Employments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employments: Option<AffiliationGroups>,
    /// Fundings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fundings: Option<Fundings>,
    /// Invited positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_positions: Option<AffiliationGroups>,
    /// Memberships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memberships: Option<AffiliationGroups>,
    /// Peer reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_reviews: Option<PeerReviews>,
    /// Qualifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifications: Option<AffiliationGroups>,
    /// Research resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub research_resources: Option<ResearchResources>,
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<AffiliationGroups>,
    /// Works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub works: Option<Works>,
    /// `/0000-…/activities`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl ActivitiesSummary {
    /// The listing of one affiliation type.
    pub fn affiliations(&self, affiliation_type: AffiliationType) -> Option<&AffiliationGroups> {
        match affiliation_type {
            AffiliationType::Employment => self.employments.as_ref(),
            AffiliationType::Education => self.educations.as_ref(),
            AffiliationType::Qualification => self.qualifications.as_ref(),
            AffiliationType::InvitedPosition => self.invited_positions.as_ref(),
            AffiliationType::Distinction => self.distinctions.as_ref(),
            AffiliationType::Membership => self.memberships.as_ref(),
            AffiliationType::Service => self.services.as_ref(),
        }
    }

    /// The put codes of every item of a section, in listing order (empty when the section
    /// is absent, and for the person sections, which are not part of the activities).
    pub fn put_codes(&self, section: Section) -> Vec<PutCode> {
        match section {
            Section::Affiliation(t) => self
                .affiliations(t)
                .map(AffiliationGroups::put_codes)
                .unwrap_or_default(),
            Section::Work => self
                .works
                .as_ref()
                .map(Works::put_codes)
                .unwrap_or_default(),
            Section::Funding => self
                .fundings
                .as_ref()
                .map(Fundings::put_codes)
                .unwrap_or_default(),
            Section::PeerReview => self
                .peer_reviews
                .as_ref()
                .map(PeerReviews::put_codes)
                .unwrap_or_default(),
            Section::ResearchResource => self
                .research_resources
                .as_ref()
                .map(ResearchResources::put_codes)
                .unwrap_or_default(),
            Section::OtherNames
            | Section::Keywords
            | Section::ResearcherUrls
            | Section::Address
            | Section::ExternalIdentifiers => Vec::new(),
        }
    }
}
