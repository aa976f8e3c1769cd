//! The sections of a record whose items have put codes, and their API path segments
//! (reference §2.2, §2.3).

use std::fmt;

use super::affiliation::AffiliationType;

/// A section of a record whose items have put codes: the five kinds of activities (seven
/// affiliation sections among them) and the five person sections.
///
/// It names the paths of the member API (`POST /v3.0/{orcid}/work`, `GET …/works`, …) and
/// the sections of [`ActivitiesSummary`](super::ActivitiesSummary).
///
/// ```
/// use orcid::model::{AffiliationType, Section};
///
/// let s = Section::from(AffiliationType::InvitedPosition);
/// assert_eq!((s.item_segment(), s.list_segment()), ("invited-position", "invited-positions"));
/// assert_eq!(Section::Keywords.list_segment(), "keywords");
/// assert!(Section::Work.is_activity() && !Section::Keywords.is_activity());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Section {
    /// `work` / `works`.
    Work,
    /// `funding` / `fundings`.
    Funding,
    /// One of the seven affiliation sections.
    Affiliation(AffiliationType),
    /// `peer-review` / `peer-reviews`.
    PeerReview,
    /// `research-resource` / `research-resources`.
    ResearchResource,
    /// `other-names` (person).
    OtherNames,
    /// `keywords` (person).
    Keywords,
    /// `researcher-urls` (person).
    ResearcherUrls,
    /// `address` (person).
    Address,
    /// `external-identifiers` (person).
    ExternalIdentifiers,
}

impl Section {
    /// The path segment of one item: `POST /v3.0/{orcid}/{item}`, `PUT …/{item}/{put-code}`.
    pub fn item_segment(self) -> &'static str {
        match self {
            Section::Work => "work",
            Section::Funding => "funding",
            Section::Affiliation(kind) => kind.path_segment(),
            Section::PeerReview => "peer-review",
            Section::ResearchResource => "research-resource",
            Section::OtherNames => "other-names",
            Section::Keywords => "keywords",
            Section::ResearcherUrls => "researcher-urls",
            Section::Address => "address",
            Section::ExternalIdentifiers => "external-identifiers",
        }
    }

    /// The path segment of the listing, `GET /v3.0/{orcid}/{list}`; for an activity also its
    /// key in `activities-summary`.
    pub fn list_segment(self) -> &'static str {
        match self {
            Section::Work => "works",
            Section::Funding => "fundings",
            Section::Affiliation(kind) => kind.listing_segment(),
            Section::PeerReview => "peer-reviews",
            Section::ResearchResource => "research-resources",
            other => other.item_segment(),
        }
    }

    /// Whether this is an activity section (in `activities-summary`, with a
    /// `/{item}/summary/{put-code}` read); person sections are not.
    pub fn is_activity(self) -> bool {
        matches!(
            self,
            Section::Work
                | Section::Funding
                | Section::Affiliation(_)
                | Section::PeerReview
                | Section::ResearchResource
        )
    }
}

impl From<AffiliationType> for Section {
    fn from(kind: AffiliationType) -> Self {
        Section::Affiliation(kind)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.item_segment())
    }
}
