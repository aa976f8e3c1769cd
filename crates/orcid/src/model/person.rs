//! The person section: name (what idbridge shows), and the rest of the biographical items
//! modelled enough to round-trip (§3.7).
//!
//! Person items carry `display-index` as a JSON integer (activities use a string); both are
//! read either way.

use serde::{Deserialize, Serialize};

use super::common::{PutCode, Source, Timestamp, UnknownFields, Visibility};
use super::external_id::{NormalizationError, NormalizedValue, Relationship};
use super::serde_util::{self, de_or_default, plain, wrapped};

/// The person section (`GET /v3.0/{orcid}/person`, and `person` in the record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Person {
    /// When the section last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The name, if visible to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// Other names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_names: Option<OtherNames>,
    /// The biography.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biography: Option<Biography>,
    /// Web sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub researcher_urls: Option<ResearcherUrls>,
    /// E-mail addresses visible to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Emails>,
    /// Countries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Addresses>,
    /// Keywords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Keywords>,
    /// Personal identifiers (Scopus Author ID, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_identifiers: Option<PersonExternalIdentifiers>,
    /// `/0000-…/person`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Person {
    /// The name to show, see [`Name::display_name`].
    pub fn display_name(&self) -> Option<String> {
        self.name.as_ref()?.display_name()
    }
}

/// The record holder's name (read-only through the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Name {
    /// When it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Given names.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub given_names: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub family_name: Option<String>,
    /// The published name, preferred for display.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub credit_name: Option<String>,
    /// Always `null` in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// The bare iD (no leading slash here).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Name {
    /// The credit name if set, else given names and family name joined by a space (as
    /// ORCID builds the `name` of a token response). `None` when all are blank.
    pub fn display_name(&self) -> Option<String> {
        let non_blank = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if let Some(credit) = non_blank(&self.credit_name) {
            return Some(credit);
        }
        let parts: Vec<String> = [non_blank(&self.given_names), non_blank(&self.family_name)]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// The biography (read-only through the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Biography {
    /// When it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub content: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// `/0000-…/biography`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A text person item: an other name or a keyword. Write body: `{"content": "…"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContentItem {
    /// When it was stored (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub content: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// `/0000-…/keywords/4249` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// The record holder's ordering (an integer in person items).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// An other name (`POST /other-names`).
pub type OtherName = ContentItem;
/// A keyword (`POST /keywords`).
pub type Keyword = ContentItem;

/// A web site (`POST /researcher-urls`): `{"url-name": "…", "url": {"value": "…"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResearcherUrl {
    /// When it was stored (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The link text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub url_name: Option<String>,
    /// The link.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// `/0000-…/researcher-urls/1234` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// The record holder's ordering.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A country (`POST /address`): `{"country": {"value": "CA"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Address {
    /// When it was stored (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// ISO 3166 alpha-2 code.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub country: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// `/0000-…/address/2621` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// The record holder's ordering.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A personal identifier (`POST /external-identifiers`). The type is free text, the URL is
/// required and the relationship must be `self`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PersonExternalIdentifier {
    /// When it was stored (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The identifier system, free text (`Scopus Author ID`).
    #[serde(default, deserialize_with = "de_or_default")]
    pub external_id_type: String,
    /// The identifier.
    #[serde(default, deserialize_with = "de_or_default")]
    pub external_id_value: String,
    /// ORCID's normalized value (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_normalized: Option<NormalizedValue>,
    /// Why ORCID could not normalize it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_normalized_error: Option<NormalizationError>,
    /// A link to the identifier (required).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub external_id_url: Option<String>,
    /// Must be `self`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_relationship: Option<Relationship>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// `/0000-…/external-identifiers/3995` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// The record holder's ordering.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// An e-mail address (read-only through the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Email {
    /// When it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub email: Option<String>,
    /// `/0000-…/email`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Whether the holder confirmed it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub verified: Option<bool>,
    /// Whether it is the primary address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub primary: Option<bool>,
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

macro_rules! person_list {
    ($(#[$meta:meta])* $name:ident, $field:ident, $key:literal, $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub struct $name {
            /// When the list last changed.
            #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
            pub last_modified_date: Option<Timestamp>,
            /// The items. `null` reads as empty.
            #[serde(rename = $key, default, deserialize_with = "serde_util::de_vec")]
            pub $field: Vec<$item>,
            /// The list's API path.
            #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
            pub path: Option<String>,
            /// Keys this crate does not model.
            #[serde(flatten)]
            pub extra: UnknownFields,
        }
    };
}

person_list!(
    /// `GET /other-names`: `{"other-name": […]}`.
    OtherNames, other_name, "other-name", OtherName
);
person_list!(
    /// `GET /keywords`: `{"keyword": […]}`.
    Keywords, keyword, "keyword", Keyword
);
person_list!(
    /// `GET /researcher-urls`: `{"researcher-url": […]}`.
    ResearcherUrls, researcher_url, "researcher-url", ResearcherUrl
);
person_list!(
    /// `GET /address`: `{"address": […]}`.
    Addresses, address, "address", Address
);
person_list!(
    /// `GET /external-identifiers`: `{"external-identifier": […]}`.
    PersonExternalIdentifiers, external_identifier, "external-identifier", PersonExternalIdentifier
);
person_list!(
    /// `GET /email`: `{"email": […]}`.
    Emails, email, "email", Email
);
