//! Peer reviews (§3.8). Modelled so that they parse and round-trip; idbridge does not write
//! them.

use serde::{Deserialize, Serialize};

use super::common::{Organization, PutCode, Source, Timestamp, UnknownFields, Visibility};
use super::date::FuzzyDate;
use super::external_id::{ExternalId, ExternalIds};
use super::serde_util::{self, as_text, open_enum, plain, wrapped};
use super::work::WorkTitle;

open_enum! {
    /// The reviewer's role.
    ReviewerRole {
        /// `reviewer`
        Reviewer = "reviewer",
        /// `editor`
        Editor = "editor",
        /// `member`
        Member = "member",
        /// `chair`
        Chair = "chair",
        /// `organizer`
        Organizer = "organizer",
    }
}

open_enum! {
    /// The kind of review.
    ReviewType {
        /// `review`
        Review = "review",
        /// `evaluation`
        Evaluation = "evaluation",
    }
}

/// The reviewed item's title block (same shape as a work title).
pub type SubjectName = WorkTitle;

/// A full peer review: the write body and `GET /peer-review/{put-code}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerReview {
    /// When ORCID stored it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/peer-review/1234` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The reviewer's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_role: Option<ReviewerRole>,
    /// Identifiers of the review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_identifiers: Option<ExternalIds>,
    /// A link to the review.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub review_url: Option<String>,
    /// Review or evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_type: Option<ReviewType>,
    /// When the review was completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_completion_date: Option<FuzzyDate>,
    /// The group id (`issn:…`, `ringgold:…`, …).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub review_group_id: Option<String>,
    /// The reviewed item's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_external_identifier: Option<ExternalId>,
    /// The reviewed item's container (journal) name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub subject_container_name: Option<String>,
    /// The reviewed item's kind (work types, funding types, `research-resource-proposal`…),
    /// kept as text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub subject_type: Option<String>,
    /// The reviewed item's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_name: Option<SubjectName>,
    /// A link to the reviewed item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub subject_url: Option<String>,
    /// The organization that convened the review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convening_organization: Option<Organization>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A peer review inside the `/peer-reviews` listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerReviewSummary {
    /// When ORCID stored it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The reviewer's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_role: Option<ReviewerRole>,
    /// Identifiers of the review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// A link to the review.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub review_url: Option<String>,
    /// Review or evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_type: Option<ReviewType>,
    /// When the review was completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_date: Option<FuzzyDate>,
    /// The group id.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub review_group_id: Option<String>,
    /// The convening organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convening_organization: Option<Organization>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/peer-review/1234`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The record holder's ordering (ORCID writes it as a string).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The peer reviews listing: `group[]` → `peer-review-group[]` → `peer-review-summary[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerReviews {
    /// When the section last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Groups by review group id.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub group: Vec<PeerReviewGroup>,
    /// `/0000-…/peer-reviews`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl PeerReviews {
    /// Every summary, in order.
    pub fn summaries(&self) -> impl Iterator<Item = &PeerReviewSummary> {
        self.group
            .iter()
            .flat_map(|g| g.peer_review_group.iter())
            .flat_map(|g| g.peer_review_summary.iter())
    }

    /// The put codes of every summary, in order.
    pub fn put_codes(&self) -> Vec<PutCode> {
        self.summaries().filter_map(|s| s.put_code).collect()
    }
}

/// One group of the peer reviews listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerReviewGroup {
    /// When the group last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The group's identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// Sub-groups of duplicates.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub peer_review_group: Vec<PeerReviewDuplicateGroup>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A sub-group of the peer reviews listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerReviewDuplicateGroup {
    /// When the sub-group last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The sub-group's identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// The members.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub peer_review_summary: Vec<PeerReviewSummary>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A peer-review group id record (`/v3.0/group-id-record`): the journal or body a review
/// belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct GroupIdRecord {
    /// ORCID's id of the record.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// The group's name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub name: Option<String>,
    /// `issn:…`, `ringgold:…`, `orcid-generated:…`, `fundref:…` or `publons:…`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub group_id: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub description: Option<String>,
    /// Kind of group (`journal`, `magazine`, …), as text.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        with = "plain"
    )]
    pub group_type: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}
