//! Research resources (§3.8). Modelled so that they parse and round-trip; idbridge does not
//! write them.

use serde::{Deserialize, Serialize};

use super::common::{
    Organization, PutCode, Source, Timestamp, TranslatedTitle, UnknownFields, Visibility,
};
use super::date::FuzzyDate;
use super::external_id::ExternalIds;
use super::serde_util::{self, as_text, open_enum, plain, wrapped};

open_enum! {
    /// The kind of resource.
    ResourceType {
        /// `infrastructures`
        Infrastructures = "infrastructures",
        /// `collections`
        Collections = "collections",
        /// `equipment`
        Equipment = "equipment",
        /// `services`
        Services = "services",
    }
}

/// A proposal's title block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResourceTitle {
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub title: Option<String>,
    /// The title in another language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translated_title: Option<TranslatedTitle>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The organizations hosting a proposal or resource: `{"organization": […]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hosts {
    /// The organizations.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub organization: Vec<Organization>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The proposal that granted access to the resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResourceProposal {
    /// Title block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<ResearchResourceTitle>,
    /// Hosting organizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Hosts>,
    /// Identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<FuzzyDate>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<FuzzyDate>,
    /// A link.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// One resource used under the proposal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResourceItem {
    /// The resource's name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub resource_name: Option<String>,
    /// The kind of resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<ResourceType>,
    /// Hosting organizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Hosts>,
    /// Identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// A link.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A full research resource: the write body and `GET /research-resource/{put-code}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResource {
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
    /// `/0000-…/research-resource/1234` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ResearchResourceProposal>,
    /// The resources.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::de_vec"
    )]
    pub resource_item: Vec<ResearchResourceItem>,
    /// The record holder's ordering.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text")]
    pub display_index: Option<i64>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A research resource inside the `/research-resources` listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResourceSummary {
    /// When ORCID stored it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ResearchResourceProposal>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/research-resource/1234`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The record holder's ordering (ORCID writes it as a string).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text")]
    pub display_index: Option<i64>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The research resources listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResources {
    /// When the section last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Groups.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub group: Vec<ResearchResourceGroup>,
    /// `/0000-…/research-resources`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl ResearchResources {
    /// Every summary, in order.
    pub fn summaries(&self) -> impl Iterator<Item = &ResearchResourceSummary> {
        self.group
            .iter()
            .flat_map(|g| g.research_resource_summary.iter())
    }

    /// The put codes of every summary, in order.
    pub fn put_codes(&self) -> Vec<PutCode> {
        self.summaries().filter_map(|s| s.put_code).collect()
    }
}

/// One group of the research resources listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearchResourceGroup {
    /// When the group last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The group's identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// The members.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub research_resource_summary: Vec<ResearchResourceSummary>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}
