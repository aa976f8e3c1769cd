//! Building blocks shared by every section: put codes, timestamps, visibility, the source
//! block, organizations, and the bag of keys this crate does not model.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::serde_util::{self, Scalar, open_enum, plain, wrapped};
use crate::id::{OrcidId, Registry, UncheckedOrcidId};

/// The identifier ORCID gives an item (a work, an employment, a keyword…) within a record.
///
/// Read from a JSON number or a string holding one; written as a number. Any `u64` is a put
/// code, so there is nothing further to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PutCode(pub u64);

impl PutCode {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PutCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for PutCode {
    fn from(n: u64) -> Self {
        PutCode(n)
    }
}

/// Why a string is not a put code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a put code: expected a whole non-negative number")]
pub struct PutCodeError(pub String);

impl FromStr for PutCode {
    type Err = PutCodeError;
    /// Parses the decimal number (surrounding whitespace is ignored), e.g. the last segment
    /// of a `Location` header.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse()
            .map(PutCode)
            .map_err(|_| PutCodeError(s.to_owned()))
    }
}

impl Scalar for PutCode {
    const EXPECTING: &'static str = "a put code (a whole number, or a string holding one)";
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse().map_err(|e: PutCodeError| e.to_string())
    }
    fn from_u64(n: u64) -> Result<Self, String> {
        Ok(PutCode(n))
    }
}

impl Serialize for PutCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for PutCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_util::de_opt::<D, PutCode>(d)?
            .ok_or_else(|| serde::de::Error::custom("a put code is required here"))
    }
}

/// A server-set instant (`created-date`, `last-modified-date`, history dates): milliseconds
/// since the Unix epoch, as ORCID's JSON carries them (`{"value": 1559916358839}`).
///
/// Read from a number or a string holding one, bare or wrapped; written as a number (inside
/// `{"value": …}` where the schema wraps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// The instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

impl Scalar for Timestamp {
    const EXPECTING: &'static str = "epoch milliseconds (a number, or a string holding one)";
    fn from_text(s: &str) -> Result<Self, String> {
        u64::from_text(s).map(Timestamp)
    }
    fn from_u64(n: u64) -> Result<Self, String> {
        Ok(Timestamp(n))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_util::de_opt::<D, Timestamp>(d)?
            .ok_or_else(|| serde::de::Error::custom("a timestamp is required here"))
    }
}

open_enum! {
    /// Who may see an item (§3.2 of the reference).
    Visibility {
        /// Everyone, including the Public API.
        Public = "public",
        /// Trusted organizations holding a `/read-limited` token.
        Limited = "limited",
        /// Signed-in ORCID users (legacy).
        RegisteredOnly = "registered-only",
        /// Only the record holder and the item's source.
        Private = "private",
    }
}

open_enum! {
    /// The registry an organization identifier comes from (§3.3). ROR and FundRef are the
    /// ones ORCID asks for today; GRID and Ringgold are legacy.
    DisambiguationSource {
        /// Research Organization Registry; the identifier is the full `https://ror.org/…` URL.
        Ror = "ROR",
        /// Ringgold; the identifier is numeric.
        Ringgold = "RINGGOLD",
        /// GRID (legacy); identifiers look like `grid.238252.c`.
        Grid = "GRID",
        /// Crossref Funder Registry; the identifier is the DOI URL.
        Fundref = "FUNDREF",
        /// Legal Entity Identifier.
        Lei = "LEI",
    }
}

/// Keys of a JSON object that this crate does not model, kept verbatim.
///
/// Every object type of the model (except the tiny `{"value": …}`-style wrappers and
/// [`FuzzyDate`](super::FuzzyDate)) carries one as its flattened `extra` field, so a document
/// read from a newer ORCID and written back (read-modify-write) loses nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct UnknownFields(pub Map<String, Value>);

thread_local! {
    static UNKNOWN_KEYS_SEEN: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

impl UnknownFields {
    /// Runs `parse` and returns its result together with the names of every key the model
    /// does not know that was read while it ran on this thread: keys that landed in an
    /// [`UnknownFields`], in an `Unknown` entry of a listing or bulk answer, or that were
    /// dropped (unknown keys inside a date or beside `"value"` in a wrapped scalar).
    ///
    /// Use it to notice that ORCID sends something this crate does not model yet (the
    /// sample tests use it to prove the model covers ORCID's official samples). Only
    /// parses run inside `parse`, on the calling thread, are observed.
    pub fn observe<R>(parse: impl FnOnce() -> R) -> (R, Vec<String>) {
        let previous = UNKNOWN_KEYS_SEEN.with(|seen| seen.replace(Some(Vec::new())));
        let result = parse();
        let keys = UNKNOWN_KEYS_SEEN
            .with(|seen| seen.replace(previous))
            .unwrap_or_default();
        (result, keys)
    }
}

/// Reports keys the model does not know to a running [`UnknownFields::observe`], if any.
pub(crate) fn note_unknown_keys<'a>(keys: impl IntoIterator<Item = &'a String>) {
    UNKNOWN_KEYS_SEEN.with(|seen| {
        if let Some(seen) = seen.borrow_mut().as_mut() {
            seen.extend(keys.into_iter().cloned());
        }
    });
}

impl<'de> Deserialize<'de> for UnknownFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        note_unknown_keys(map.keys());
        Ok(UnknownFields(map))
    }
}

impl Deref for UnknownFields {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for UnknownFields {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// An ORCID iD as ORCID's JSON carries it: `{"uri", "path", "host"}` (`orcid-identifier`,
/// `source-orcid`, `contributor-orcid`, `assertion-origin-orcid`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OrcidIdentifier {
    /// `https://orcid.org/0000-…`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub uri: Option<String>,
    /// The bare iD, unchecked (ORCID's samples use placeholders such as
    /// `8888-8888-8888-8888`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<UncheckedOrcidId>,
    /// `orcid.org` or `sandbox.orcid.org`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub host: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl OrcidIdentifier {
    /// The block ORCID would write for `id` on `registry`.
    pub fn new(id: OrcidId, registry: Registry) -> Self {
        OrcidIdentifier {
            uri: Some(id.uri(registry)),
            path: Some(id.into()),
            host: Some(registry.host().to_owned()),
            extra: UnknownFields::default(),
        }
    }

    /// The iD, from `path` or else from the last segment of `uri`.
    pub fn id(&self) -> Option<UncheckedOrcidId> {
        self.path.clone().or_else(|| {
            self.uri
                .as_deref()
                .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                .filter(|s| !s.is_empty())
                .map(|s| UncheckedOrcidId(s.to_owned()))
        })
    }
}

/// A client (member application) as ORCID's JSON carries it: `{"uri", "path", "host"}`,
/// `path` being the client id such as `APP-OQYKBIN9CXD9U3SH`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClientIdentifier {
    /// `https://orcid.org/client/APP-…`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub uri: Option<String>,
    /// The client id, `APP-…`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// `orcid.org` or `sandbox.orcid.org`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub host: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// Who wrote an item (§3.1). Server-set: ORCID ignores or clears it on write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Source {
    /// Set when the record holder (or a delegate) added the item by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_orcid: Option<OrcidIdentifier>,
    /// Set when a member client wrote the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_client_id: Option<ClientIdentifier>,
    /// The client's or person's display name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub source_name: Option<String>,
    /// Set for items written through Search & Link or delegation: the user on whose behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_origin_orcid: Option<OrcidIdentifier>,
    /// The client on whose behalf the item was asserted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_origin_client_id: Option<ClientIdentifier>,
    /// Display name of the assertion origin.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub assertion_origin_name: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Source {
    /// The client id (`APP-…`) of the member client that wrote the item, if a client did.
    /// This is what decides whether we may update or delete it (ORCID error 9010).
    pub fn client_id(&self) -> Option<&str> {
        self.source_client_id.as_ref()?.path.as_deref()
    }

    /// The iD of the person who wrote the item, if a person did.
    pub fn orcid(&self) -> Option<UncheckedOrcidId> {
        self.source_orcid.as_ref()?.id()
    }

    /// The display name of the source.
    pub fn name(&self) -> Option<&str> {
        self.source_name.as_deref()
    }
}

/// An organization: an employer, a funder, a convening or hosting organization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Organization {
    /// The organization's name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub name: Option<String>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<OrganizationAddress>,
    /// Its identifier in an organization registry (ROR, FundRef, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disambiguated_organization: Option<DisambiguatedOrganization>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Organization {
    /// An organization with a name, an address and a registry identifier: what ORCID
    /// requires for employment and education (§3.3: codes 9045, 9046, 9060).
    ///
    /// `country` is an ISO 3166 alpha-2 code such as `US`.
    pub fn new(
        name: impl Into<String>,
        city: impl Into<String>,
        region: Option<String>,
        country: impl Into<String>,
        source: DisambiguationSource,
        identifier: impl Into<String>,
    ) -> Self {
        Organization {
            name: Some(name.into()),
            address: Some(OrganizationAddress {
                city: Some(city.into()),
                region,
                country: Some(country.into()),
                extra: UnknownFields::default(),
            }),
            disambiguated_organization: Some(DisambiguatedOrganization {
                identifier: Some(identifier.into()),
                source: Some(source),
                extra: UnknownFields::default(),
            }),
            extra: UnknownFields::default(),
        }
    }
}

/// An organization's address. Unlike most scalars, ORCID writes these as bare strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OrganizationAddress {
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub city: Option<String>,
    /// Region, state or province.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub region: Option<String>,
    /// ISO 3166 alpha-2 country code, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub country: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// An organization's identifier in a registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DisambiguatedOrganization {
    /// The identifier, e.g. `https://ror.org/05qwgg493`.
    #[serde(
        rename = "disambiguated-organization-identifier",
        default,
        skip_serializing_if = "Option::is_none",
        with = "plain"
    )]
    pub identifier: Option<String>,
    /// The registry.
    #[serde(
        rename = "disambiguation-source",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<DisambiguationSource>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A title in another language: `{"value": "…", "language-code": "en"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TranslatedTitle {
    /// The translated title.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub value: Option<String>,
    /// Its language (ORCID's language codes, e.g. `en`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub language_code: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}
