//! Fundings: grants, contracts, awards (§3.5).

use serde::{Deserialize, Serialize};

use super::common::{
    Organization, PutCode, Source, Timestamp, TranslatedTitle, UnknownFields, Visibility,
};
use super::date::FuzzyDate;
use super::external_id::ExternalIds;
use super::serde_util::{self, as_text, open_enum, plain, wrapped};
use super::work::Contributors;

open_enum! {
    /// The kind of funding.
    FundingType {
        /// `grant`
        Grant = "grant",
        /// `contract`
        Contract = "contract",
        /// `award`
        Award = "award",
        /// `salary-award`
        SalaryAward = "salary-award",
    }
}

/// A funding's title block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FundingTitle {
    /// The title (required, code 9022).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub title: Option<String>,
    /// The title in another language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translated_title: Option<TranslatedTitle>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// An amount: `{"value": "1000.0", "currency-code": "USD"}`. The value is kept as text
/// (read from a number too) so no precision is lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Amount {
    /// The amount, as text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub value: Option<String>,
    /// ISO 4217 currency code (required when an amount is given).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub currency_code: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A full funding: the write body and `GET /funding/{put-code}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Funding {
    /// When ORCID stored it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// ORCID's id of the item: absent on POST, required on PUT.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/funding/4413` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The kind of funding (required).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub funding_type: Option<FundingType>,
    /// The funder's own sub-type.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub organization_defined_type: Option<String>,
    /// Title block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<FundingTitle>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub short_description: Option<String>,
    /// Amount and currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// A link.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<FuzzyDate>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<FuzzyDate>,
    /// External identifiers (at least one, code 9023).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// Contributors (roles `lead`, `co-lead`, `supported-by`, `other-contribution`, or CRediT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributors: Option<Contributors>,
    /// The funder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Funding {
    /// The title text.
    pub fn title_text(&self) -> Option<&str> {
        self.title.as_ref()?.title.as_deref()
    }

    /// The same funding without the fields ORCID sets itself (dates, source, path): what to
    /// send back on a PUT after reading it. The put code, visibility and unknown keys are
    /// kept.
    pub fn into_write_body(self) -> Self {
        Funding {
            created_date: None,
            last_modified_date: None,
            source: None,
            path: None,
            ..self
        }
    }
}

/// A funding inside a `/fundings` group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FundingSummary {
    /// When ORCID stored it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Title block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<FundingTitle>,
    /// External identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// A link.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Kind of funding.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub funding_type: Option<FundingType>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<FuzzyDate>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<FuzzyDate>,
    /// The funder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/funding/4413`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The record holder's ordering (ORCID writes it as a string).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The fundings listing (`GET /v3.0/{orcid}/fundings`, and `fundings` in
/// `activities-summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Fundings {
    /// When the section last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Groups of fundings sharing an identifier.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub group: Vec<FundingGroup>,
    /// `/0000-…/fundings`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Fundings {
    /// Every summary of every group, in order.
    pub fn summaries(&self) -> impl Iterator<Item = &FundingSummary> {
        self.group.iter().flat_map(|g| g.funding_summary.iter())
    }

    /// The put codes of every summary, in order.
    pub fn put_codes(&self) -> Vec<PutCode> {
        self.summaries().filter_map(|s| s.put_code).collect()
    }
}

/// One group of `/fundings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FundingGroup {
    /// When the group last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The union of the groupable ids of the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// The members.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub funding_summary: Vec<FundingSummary>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}
