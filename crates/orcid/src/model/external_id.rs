//! External identifiers (DOIs, grant numbers, ROR ids…) and how they relate to an item.

use serde::{Deserialize, Serialize};

use super::common::UnknownFields;
use super::serde_util::{self, de_or_default, open_enum, plain, wrapped};

open_enum! {
    /// How an external identifier relates to the item carrying it.
    Relationship {
        /// The identifier identifies this very item. Works need at least one (code 9023),
        /// and duplicates are detected on `self` ids (code 9021).
        SelfId = "self",
        /// The item is part of what the identifier names (a chapter of a book's ISBN).
        PartOf = "part-of",
        /// The identifier names another version of the item (a preprint of an article).
        VersionOf = "version-of",
        /// The item was funded by what the identifier names (works only, funding-type ids).
        FundedBy = "funded-by",
    }
}

/// A list of external identifiers: `{"external-id": […]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalIds {
    /// The identifiers. `null` reads as empty.
    #[serde(
        rename = "external-id",
        default,
        deserialize_with = "serde_util::de_vec"
    )]
    pub external_id: Vec<ExternalId>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl ExternalIds {
    /// A list holding these identifiers.
    pub fn new(ids: impl IntoIterator<Item = ExternalId>) -> Self {
        ExternalIds {
            external_id: ids.into_iter().collect(),
            extra: UnknownFields::default(),
        }
    }

    /// The identifiers.
    pub fn iter(&self) -> std::slice::Iter<'_, ExternalId> {
        self.external_id.iter()
    }

    /// The identifiers whose relationship is `self`.
    pub fn self_ids(&self) -> impl Iterator<Item = &ExternalId> {
        self.external_id.iter().filter(|id| id.is_self())
    }

    /// Whether there are no identifiers.
    pub fn is_empty(&self) -> bool {
        self.external_id.is_empty()
    }
}

impl FromIterator<ExternalId> for ExternalIds {
    fn from_iter<I: IntoIterator<Item = ExternalId>>(iter: I) -> Self {
        ExternalIds::new(iter)
    }
}

impl<'a> IntoIterator for &'a ExternalIds {
    type Item = &'a ExternalId;
    type IntoIter = std::slice::Iter<'a, ExternalId>;
    fn into_iter(self) -> Self::IntoIter {
        self.external_id.iter()
    }
}

/// One external identifier.
///
/// `external-id-type` and `external-id-value` are always written (empty when ORCID sent
/// nothing); everything else is optional. The `normalized*` fields are read-only: ORCID adds
/// them on reads and ignores them on writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalId {
    /// The identifier type in ORCID's spelling: `doi`, `isbn`, `grant_number`, … (the list
    /// comes from `GET /v3.0/identifiers`; person identifiers take free text).
    #[serde(
        rename = "external-id-type",
        default,
        deserialize_with = "de_or_default"
    )]
    pub id_type: String,
    /// The identifier itself.
    #[serde(
        rename = "external-id-value",
        default,
        deserialize_with = "de_or_default"
    )]
    pub value: String,
    /// ORCID's normalized form of the value (read-only), used for grouping and duplicates.
    #[serde(
        rename = "external-id-normalized",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub normalized: Option<NormalizedValue>,
    /// Why ORCID could not normalize the value (read-only).
    #[serde(
        rename = "external-id-normalized-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub normalized_error: Option<NormalizationError>,
    /// A resolvable URL for the identifier.
    #[serde(
        rename = "external-id-url",
        default,
        skip_serializing_if = "Option::is_none",
        with = "wrapped"
    )]
    pub url: Option<String>,
    /// How the identifier relates to the item.
    #[serde(
        rename = "external-id-relationship",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub relationship: Option<Relationship>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl ExternalId {
    /// An identifier with the given relationship.
    pub fn new(
        id_type: impl Into<String>,
        value: impl Into<String>,
        relationship: Relationship,
    ) -> Self {
        ExternalId {
            id_type: id_type.into(),
            value: value.into(),
            relationship: Some(relationship),
            ..ExternalId::default()
        }
    }

    /// An identifier of the item itself (`"external-id-relationship": "self"`).
    pub fn self_id(id_type: impl Into<String>, value: impl Into<String>) -> Self {
        ExternalId::new(id_type, value, Relationship::SelfId)
    }

    /// The same identifier with a URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Whether the relationship is `self`.
    pub fn is_self(&self) -> bool {
        self.relationship == Some(Relationship::SelfId)
    }

    /// The normalized value if ORCID gave one, else the raw value: what ORCID compares when
    /// grouping and detecting duplicates (§3.6).
    pub fn comparable_value(&self) -> &str {
        self.normalized
            .as_ref()
            .and_then(|n| n.value.as_deref())
            .unwrap_or(&self.value)
    }
}

/// `external-id-normalized`: `{"value": "10.1087/20120404", "transient": true}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NormalizedValue {
    /// The normalized value.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub value: Option<String>,
    /// Always `true` in ORCID's output: the value is computed, not stored.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub transient: Option<bool>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// `external-id-normalized-error`:
/// `{"error-code": "8001", "error-message": "Cannot normalize …", "transient": true}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NormalizationError {
    /// ORCID's code, kept as text (ORCID sends a string such as `"8001"`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub error_code: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub error_message: Option<String>,
    /// Always `true` in ORCID's output.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub transient: Option<bool>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}
