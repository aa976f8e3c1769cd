//! The vocabulary of the store: sections, visibility, sources, items and records.

use std::collections::BTreeMap;
use std::sync::Arc;

use orcid::OrcidId;
use serde_json::{Map, Value};

use super::index::RecordIndex;

/// A kind of item a record holds, as the API addresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `/work`.
    Work,
    /// `/funding`.
    Funding,
    /// `/employment`.
    Employment,
    /// `/education`.
    Education,
    /// `/qualification`.
    Qualification,
    /// `/invited-position`.
    InvitedPosition,
    /// `/distinction`.
    Distinction,
    /// `/membership`.
    Membership,
    /// `/service`.
    Service,
    /// `/other-names`.
    OtherName,
    /// `/keywords`.
    Keyword,
    /// `/researcher-urls`.
    ResearcherUrl,
    /// `/address`.
    Address,
    /// `/external-identifiers`.
    ExternalIdentifier,
}

impl Section {
    /// Every section, activities first.
    pub const ALL: [Section; 14] = [
        Section::Work,
        Section::Funding,
        Section::Employment,
        Section::Education,
        Section::Qualification,
        Section::InvitedPosition,
        Section::Distinction,
        Section::Membership,
        Section::Service,
        Section::OtherName,
        Section::Keyword,
        Section::ResearcherUrl,
        Section::Address,
        Section::ExternalIdentifier,
    ];

    /// The seven affiliation types.
    pub const AFFILIATIONS: [Section; 7] = [
        Section::Employment,
        Section::Education,
        Section::Qualification,
        Section::InvitedPosition,
        Section::Distinction,
        Section::Membership,
        Section::Service,
    ];

    /// The path segment of one item (`work`, `employment`, `other-names`, …): POST target and
    /// the segment before a put code.
    pub fn item_path(self) -> &'static str {
        match self {
            Section::Work => "work",
            Section::Funding => "funding",
            Section::Employment => "employment",
            Section::Education => "education",
            Section::Qualification => "qualification",
            Section::InvitedPosition => "invited-position",
            Section::Distinction => "distinction",
            Section::Membership => "membership",
            Section::Service => "service",
            Section::OtherName => "other-names",
            Section::Keyword => "keywords",
            Section::ResearcherUrl => "researcher-urls",
            Section::Address => "address",
            Section::ExternalIdentifier => "external-identifiers",
        }
    }

    /// The path segment of the listing (`works`, `employments`, `other-names`, …).
    pub fn list_path(self) -> &'static str {
        match self {
            Section::Work => "works",
            Section::Funding => "fundings",
            Section::Employment => "employments",
            Section::Education => "educations",
            Section::Qualification => "qualifications",
            Section::InvitedPosition => "invited-positions",
            Section::Distinction => "distinctions",
            Section::Membership => "memberships",
            Section::Service => "services",
            other => other.item_path(),
        }
    }

    /// The section whose item path is `segment`.
    pub fn from_item_path(segment: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.item_path() == segment)
    }

    /// The section whose listing path is `segment`.
    pub fn from_list_path(segment: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.list_path() == segment)
    }

    /// Whether this is one of the seven affiliation types.
    pub fn is_affiliation(self) -> bool {
        Section::AFFILIATIONS.contains(&self)
    }

    /// Whether this is a person item (written with `/person/update`).
    pub fn is_person(self) -> bool {
        matches!(
            self,
            Section::OtherName
                | Section::Keyword
                | Section::ResearcherUrl
                | Section::Address
                | Section::ExternalIdentifier
        )
    }

    /// The activity's name in ORCID's messages ("You are not the source of the work…").
    pub fn activity_name(self) -> &'static str {
        match self {
            Section::OtherName => "other name",
            Section::Keyword => "keyword",
            Section::ResearcherUrl => "researcher url",
            Section::Address => "address",
            Section::ExternalIdentifier => "external identifier",
            other => other.item_path(),
        }
    }

    /// The root element of one item in ORCID's XML (`work`, `employment`, `other-name`, …).
    pub fn xml_root(self) -> &'static str {
        if self.is_person() {
            self.entry_key()
        } else {
            self.item_path()
        }
    }

    /// The key that wraps one item in a listing: `employment-summary` in `summaries[]`,
    /// `work-summary` and `funding-summary` in groups, `other-name` etc. in person lists.
    pub fn entry_key(self) -> &'static str {
        match self {
            Section::Work => "work-summary",
            Section::Funding => "funding-summary",
            Section::Employment => "employment-summary",
            Section::Education => "education-summary",
            Section::Qualification => "qualification-summary",
            Section::InvitedPosition => "invited-position-summary",
            Section::Distinction => "distinction-summary",
            Section::Membership => "membership-summary",
            Section::Service => "service-summary",
            Section::OtherName => "other-name",
            Section::Keyword => "keyword",
            Section::ResearcherUrl => "researcher-url",
            Section::Address => "address",
            Section::ExternalIdentifier => "external-identifier",
        }
    }
}

/// Who may read an item (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Everyone.
    Public,
    /// Trusted parties with a `/read-limited` token.
    Limited,
    /// Signed-in ORCID users (treated as limited by the API).
    RegisteredOnly,
    /// Only the record owner and the item's source.
    Private,
}

impl Visibility {
    /// ORCID's JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Limited => "limited",
            Visibility::RegisteredOnly => "registered-only",
            Visibility::Private => "private",
        }
    }

    /// Parses ORCID's spelling, leniently: any case, `_` for `-`.
    pub fn parse(text: &str) -> Option<Visibility> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "public" => Some(Visibility::Public),
            "limited" => Some(Visibility::Limited),
            "registered-only" => Some(Visibility::RegisteredOnly),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// Who wrote an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A member client, through the API.
    Client {
        /// `client_id`.
        id: String,
        /// The client's display name, as it was when the item was written.
        name: String,
    },
    /// The record's owner, through ORCID's own site (a test hook here).
    User,
}

impl Source {
    /// Whether this is the client `client_id`.
    pub fn is_client(&self, client_id: &str) -> bool {
        matches!(self, Source::Client { id, .. } if id == client_id)
    }
}

/// An external id reduced to what equality uses: type and normalised (else raw) value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdKey {
    /// `external-id-type`.
    pub id_type: String,
    /// The normalised value, or the raw value when it cannot be normalised.
    pub value: String,
}

/// One stored item. Immutable once stored: an update stores a new `Arc<Item>`.
#[derive(Debug, Clone)]
pub struct Item {
    /// The put code (global, increasing).
    pub put_code: u64,
    /// What kind of item this is.
    pub section: Section,
    /// Who wrote it.
    pub source: Source,
    /// Who may read it.
    pub visibility: Visibility,
    /// Epoch ms of creation.
    pub created_ms: i64,
    /// Epoch ms of the last change.
    pub last_modified_ms: i64,
    /// The content fields in canonical form and ORCID's key order, without the server-set
    /// fields (`created-date`, `source`, `put-code`, `path`, `visibility`, `display-index`).
    pub content: Map<String, Value>,
    /// Ids that make a duplicate: relationship `self` (`true`) or no relationship (`false`).
    pub duplicate_keys: Vec<(bool, IdKey)>,
    /// Ids that group items in listings (§3.6: not `part-of`/`funded-by`, value not empty).
    pub group_keys: Vec<IdKey>,
}

/// Whether a record can be used (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStatus {
    /// Normal.
    Active,
    /// Merged into `primary`: GET answers 301, writes 409 (9007).
    Deprecated {
        /// The record that replaced this one.
        primary: OrcidId,
    },
    /// Deactivated by its owner: 409 (9044).
    Deactivated,
}

/// Person data that is not an item: the name, biography and primary email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `given-names`.
    pub given_names: String,
    /// `family-name`.
    pub family_name: String,
    /// `credit-name`, if set.
    pub credit_name: Option<String>,
    /// Visibility of the name.
    pub name_visibility: Visibility,
    /// Biography text, if any.
    pub biography: Option<String>,
    /// Visibility of the biography.
    pub biography_visibility: Visibility,
    /// The primary email.
    pub email: String,
    /// Visibility of the email (ORCID's default is private).
    pub email_visibility: Visibility,
    /// Epoch ms of the last change to these fields.
    pub last_modified_ms: i64,
}

impl Person {
    /// The display name: credit name, else given and family names.
    pub fn display_name(&self) -> String {
        match &self.credit_name {
            Some(credit) if !credit.trim().is_empty() => credit.clone(),
            _ => format!("{} {}", self.given_names, self.family_name)
                .trim()
                .to_owned(),
        }
    }
}

/// One record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The iD.
    pub orcid: OrcidId,
    /// Name, biography, email.
    pub person: Person,
    /// Epoch ms the record was created.
    pub created_ms: i64,
    /// Epoch ms of the last change to anything in it.
    pub last_modified_ms: i64,
    /// The visibility new items get.
    pub default_visibility: Visibility,
    /// Active, deprecated or deactivated.
    pub status: RecordStatus,
    /// Most works the record may hold (ORCID: 10,000; 9048 beyond).
    pub max_works: usize,
    /// Epoch ms of deactivation, if deactivated.
    pub deactivated_ms: Option<i64>,
    /// Items by put code. Changed only through [`Record::store`] and [`Record::remove`], which
    /// keep `index` in step.
    items: BTreeMap<u64, Arc<Item>>,
    index: RecordIndex,
}

impl Record {
    /// A record without items.
    pub fn new(orcid: OrcidId, person: Person, now_ms: i64, max_works: usize) -> Record {
        Record {
            orcid,
            person,
            created_ms: now_ms,
            last_modified_ms: now_ms,
            default_visibility: Visibility::Public,
            status: RecordStatus::Active,
            max_works,
            deactivated_ms: None,
            items: BTreeMap::new(),
            index: RecordIndex::default(),
        }
    }

    /// Items by increasing put code.
    pub fn items(&self) -> impl Iterator<Item = &Arc<Item>> {
        self.items.values()
    }

    /// The item `put_code` if it belongs to `section`.
    pub fn item(&self, section: Section, put_code: u64) -> Option<&Arc<Item>> {
        self.items
            .get(&put_code)
            .filter(|item| item.section == section)
    }

    /// How many items of `section` the record holds (constant time).
    pub fn count(&self, section: Section) -> usize {
        self.index.count(section)
    }

    /// The lowest put code, other than `except`, of an item of `item`'s section and source that
    /// shares a duplicate key with it (constant time in the record's size).
    pub fn duplicate_of(&self, item: &Item, except: Option<u64>) -> Option<u64> {
        self.index.duplicate_of(item, except)
    }

    /// Stores `item` under its put code, replacing an item stored there.
    pub fn store(&mut self, item: Arc<Item>) {
        if let Some(old) = self.items.insert(item.put_code, Arc::clone(&item)) {
            self.index.remove(&old);
        }
        self.index.add(&item);
    }

    /// Removes the item `put_code`.
    pub fn remove(&mut self, put_code: u64) -> Option<Arc<Item>> {
        let old = self.items.remove(&put_code)?;
        self.index.remove(&old);
        Some(old)
    }
}
