//! The ORCID v3.0 JSON model (JSON only; ORCID's XML is out of scope).
//!
//! # Reading is lenient, writing is canonical
//!
//! Documents read from ORCID parse the way ORCID's own server (Jackson) parses them (§3 of
//! the reference):
//!
//! - a wrapped scalar (`"url": {"value": "…"}`) may also come bare (`"url": "…"`);
//! - every optional key may be missing or an explicit `null`;
//! - numbers may come as strings (`put-code`, `display-index`, `response-code`,
//!   `error-code`, the epoch-millisecond `created-date`/`last-modified-date`) and amounts as
//!   numbers;
//! - an unknown key never makes a read fail, and neither does an unknown enumeration value
//!   (each enumeration has an `Other(String)` variant that keeps the value as sent);
//! - a date that is not a real date still reads, as [`FuzzyDate::Invalid`].
//!
//! Writing always produces canonical ORCID JSON: kebab-case keys, wrapped scalars as
//! `{"value": …}`, zero-padded date parts, and `None` fields omitted.
//!
//! # Unknown keys are preserved
//!
//! Every object type except [`FuzzyDate`] has a flattened `extra: UnknownFields` holding the keys this crate does not model, written back
//! unchanged. A read-modify-write of an item that a newer ORCID extended therefore sends the
//! new keys back as they were. Listing and bulk entries of an unknown shape are kept whole
//! (`Unknown` variants). The only keys dropped are unknown keys inside a date object and
//! keys beside `"value"` in a wrapped scalar. [`UnknownFields::observe`] reports every
//! unknown key read, kept or dropped.
//!
//! # Types per endpoint
//!
//! | Endpoint | Type |
//! |---|---|
//! | `/{affiliation}` write body, `/{affiliation}/{pc}` | [`Affiliation`] (all seven types) |
//! | `/employments`, `/educations`, … | [`AffiliationGroups`] |
//! | `/work` write body, `/work/{pc}` | [`Work`] |
//! | `/works` | [`Works`] |
//! | `POST /works` body / answer, `GET /works/{pc,…}` | [`BulkWorks`] / [`BulkResult`] |
//! | `/funding`, `/fundings` | [`Funding`], [`Fundings`] |
//! | `/peer-review`, `/peer-reviews` | [`PeerReview`], [`PeerReviews`] |
//! | `/research-resource`, `/research-resources` | [`ResearchResource`], [`ResearchResources`] |
//! | `/record`, `/activities`, `/person` | [`Record`], [`ActivitiesSummary`], [`Person`] |
//! | error responses | [`ErrorBody`] |
//!
//! [`Section`] names the sections whose items have put codes, with their path segments; the
//! client uses it to build URLs.

mod affiliation;
mod bulk;
mod common;
mod date;
mod error_body;
mod external_id;
mod funding;
mod peer_review;
mod person;
mod record;
mod research_resource;
mod section;
mod serde_util;
mod work;

pub use affiliation::{
    Affiliation, AffiliationGroup, AffiliationGroups, AffiliationSummary, AffiliationSummaryEntry,
    AffiliationType, UnknownAffiliationType,
};
pub use bulk::{BulkResult, BulkResultEntry, BulkWork, BulkWorks, MAX_BULK_WORKS};
pub use common::{
    ClientIdentifier, DisambiguatedOrganization, DisambiguationSource, OrcidIdentifier,
    Organization, OrganizationAddress, PutCode, PutCodeError, Source, Timestamp, TranslatedTitle,
    UnknownFields, Visibility,
};
pub use date::{DateError, FuzzyDate, PartialDate, RawDate};
pub use error_body::ErrorBody;
pub use external_id::{ExternalId, ExternalIds, NormalizationError, NormalizedValue, Relationship};
pub use funding::{
    Amount, Funding, FundingGroup, FundingSummary, FundingTitle, FundingType, Fundings,
};
pub use peer_review::{
    GroupIdRecord, PeerReview, PeerReviewDuplicateGroup, PeerReviewGroup, PeerReviewSummary,
    PeerReviews, ReviewType, ReviewerRole, SubjectName,
};
pub use person::{
    Address, Addresses, Biography, ContentItem, Email, Emails, Keyword, Keywords, Name, OtherName,
    OtherNames, Person, PersonExternalIdentifier, PersonExternalIdentifiers, ResearcherUrl,
    ResearcherUrls,
};
pub use record::{ActivitiesSummary, History, Preferences, Record};
pub use research_resource::{
    Hosts, ResearchResource, ResearchResourceGroup, ResearchResourceItem, ResearchResourceProposal,
    ResearchResourceSummary, ResearchResourceTitle, ResearchResources, ResourceType,
};
pub use section::Section;
pub use work::{
    Citation, CitationType, Contributor, ContributorAttributes, ContributorRole,
    ContributorSequence, Contributors, Work, WorkGroup, WorkSummary, WorkTitle, WorkType, Works,
};
