//! Records and their items, stored as canonical JSON (records side).
//!
//! [`Records`] is the in-memory registry behind the member API: one entry per iD, each holding
//! its person data and its items as [`serde_json::Value`]s in ORCID's canonical form. It applies
//! ORCID's write rules directly (put codes, sources, visibility, validation, duplicates, limits)
//! and leaves HTTP to [`crate::api`] and JSON layout to [`render`].
//!
//! Locking: a read-write lock over the map of records (taken briefly to find a record) and one
//! mutex per record (held for one operation, never across `.await`). Items are `Arc`s, so a
//! reader copies pointers under the lock and renders outside it.

pub mod error;
pub mod group;
pub mod index;
pub mod model;
pub mod normalize;
pub mod orgs;
pub mod render;
pub mod validate;
pub mod vocab;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use orcid::OrcidId;
use serde_json::{Map, Value};

pub use error::RecordError;
pub use model::{IdKey, Item, Person, Record, RecordStatus, Section, Source, Visibility};

use crate::tokens::now_ms;
use index::person_value;
use normalize::{external_id_entries, id_key};
use orgs::KnownOrgs;

/// ORCID's limit on works per record.
pub const MAX_WORKS: usize = 10_000;
/// ORCID's limit on works per bulk POST.
pub const MAX_BULK_WRITE: usize = 100;
/// ORCID's limit on put codes per bulk read.
pub const MAX_BULK_READ: usize = 100;
/// The first put code handed out.
const FIRST_PUT_CODE: u64 = 1000;

/// Who is writing.
#[derive(Debug, Clone, Copy)]
pub enum Writer<'a> {
    /// A member client through the API.
    Client {
        /// `client_id`.
        id: &'a str,
        /// Display name, for `source-name`.
        name: &'a str,
    },
    /// The record's owner (test hooks).
    User,
}

impl Writer<'_> {
    fn source(&self) -> Source {
        match self {
            Writer::Client { id, name } => Source::Client {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
            },
            Writer::User => Source::User,
        }
    }
}

/// A copy of a record for rendering: metadata plus pointers to its items.
#[derive(Debug, Clone)]
pub struct RecordSnapshot {
    /// The iD.
    pub orcid: OrcidId,
    /// Name, biography, email.
    pub person: Person,
    /// Epoch ms of creation.
    pub created_ms: i64,
    /// Epoch ms of the last change.
    pub last_modified_ms: i64,
    /// Visibility new items get.
    pub default_visibility: Visibility,
    /// Active, deprecated or deactivated.
    pub status: RecordStatus,
    /// Works limit.
    pub max_works: usize,
    /// Epoch ms of deactivation.
    pub deactivated_ms: Option<i64>,
    /// The selected items, by increasing put code.
    pub items: Vec<Arc<Item>>,
}

/// A record's name when it is public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicName {
    /// Credit name if set, else given and family names (the token response's `name`).
    pub display_name: String,
    /// `given-names` (`given_name`).
    pub given_names: String,
    /// `family-name` (`family_name`); may be empty.
    pub family_name: String,
}

/// Changes to a record's person data and settings (test hook); `None` leaves a field alone.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SettingsPatch {
    /// Visibility new items get.
    pub default_visibility: Option<String>,
    /// `given-names`.
    pub given_names: Option<String>,
    /// `family-name`.
    pub family_name: Option<String>,
    /// `credit-name` (empty string clears it).
    pub credit_name: Option<String>,
    /// Visibility of the name.
    pub name_visibility: Option<String>,
    /// Biography (empty string clears it).
    pub biography: Option<String>,
    /// Visibility of the biography.
    pub biography_visibility: Option<String>,
    /// Primary email.
    pub email: Option<String>,
    /// Visibility of the email.
    pub email_visibility: Option<String>,
}

/// All records, keyed by iD. Synchronises itself; every lock is held briefly.
pub struct Records {
    records: RwLock<HashMap<OrcidId, Arc<Mutex<Record>>>>,
    next_put_code: AtomicU64,
    orgs: RwLock<KnownOrgs>,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            records: RwLock::new(HashMap::new()),
            next_put_code: AtomicU64::new(FIRST_PUT_CODE),
            orgs: RwLock::new(KnownOrgs::default()),
        }
    }
}

// Every mutation below is completed before its guard drops, so a lock poisoned by a panicking
// thread still guards consistent data and is used as is.
fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Records {
    fn record(&self, orcid: &OrcidId) -> Option<Arc<Mutex<Record>>> {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(orcid)
            .cloned()
    }

    fn record_or_404(&self, orcid: &OrcidId) -> Result<Arc<Mutex<Record>>, RecordError> {
        self.record(orcid).ok_or(RecordError::NotFound)
    }

    fn next_put_code(&self) -> u64 {
        self.next_put_code.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates (or replaces) the record `orcid` for a new user.
    pub fn create_record(&self, orcid: OrcidId, given_names: &str, family_name: &str, email: &str) {
        let now = now_ms();
        let person = Person {
            given_names: given_names.to_owned(),
            family_name: family_name.to_owned(),
            credit_name: None,
            name_visibility: Visibility::Public,
            biography: None,
            biography_visibility: Visibility::Public,
            email: email.to_owned(),
            email_visibility: Visibility::Private,
            last_modified_ms: now,
        };
        let record = Record::new(orcid, person, now, MAX_WORKS);
        self.records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(orcid, Arc::new(Mutex::new(record)));
    }

    /// Whether a record exists for `orcid`.
    pub fn exists(&self, orcid: &OrcidId) -> bool {
        self.record(orcid).is_some()
    }

    /// Forgets every record and every organization added by tests. Put codes keep increasing
    /// across resets, so a put code a client kept from before never names a new item.
    pub fn reset(&self) {
        self.records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self.orgs.write().unwrap_or_else(PoisonError::into_inner) = KnownOrgs::default();
    }

    /// The display name of `orcid` (credit name, else given and family names).
    pub fn display_name(&self, orcid: &OrcidId) -> Option<String> {
        self.record(orcid).map(|r| lock(&r).person.display_name())
    }

    /// The person data of `orcid` (name, biography, email and their visibility).
    pub fn person(&self, orcid: &OrcidId) -> Option<Person> {
        self.record(orcid).map(|r| lock(&r).person.clone())
    }

    /// The name as ORCID shows it outside the record (token response, `id_token`, userinfo;
    /// §1.3, §1.4): `None` for an unknown iD or when the name is not public.
    pub fn public_name(&self, orcid: &OrcidId) -> Option<PublicName> {
        let record = self.record(orcid)?;
        let r = lock(&record);
        let person = &r.person;
        (person.name_visibility == Visibility::Public).then(|| PublicName {
            display_name: person.display_name(),
            given_names: person.given_names.clone(),
            family_name: person.family_name.clone(),
        })
    }

    /// Active, deprecated or deactivated; `None` for an unknown iD.
    pub fn status(&self, orcid: &OrcidId) -> Option<RecordStatus> {
        self.record(orcid).map(|r| lock(&r).status.clone())
    }

    /// A copy of the record with the items of the sections `wanted` selects.
    pub fn snapshot(
        &self,
        orcid: &OrcidId,
        wanted: impl Fn(Section) -> bool,
    ) -> Option<RecordSnapshot> {
        let record = self.record(orcid)?;
        let r = lock(&record);
        Some(RecordSnapshot {
            orcid: r.orcid,
            person: r.person.clone(),
            created_ms: r.created_ms,
            last_modified_ms: r.last_modified_ms,
            default_visibility: r.default_visibility,
            status: r.status.clone(),
            max_works: r.max_works,
            deactivated_ms: r.deactivated_ms,
            items: r
                .items()
                .filter(|item| wanted(item.section))
                .cloned()
                .collect(),
        })
    }

    /// The item `put_code` of `section` on `orcid`, with the owner's display name (the
    /// `source-name` of items the owner wrote).
    pub fn item(
        &self,
        orcid: &OrcidId,
        section: Section,
        put_code: u64,
    ) -> Result<(Arc<Item>, String), RecordError> {
        let record = self.record_or_404(orcid)?;
        let r = lock(&record);
        let item = find_item(&r, section, put_code)?;
        Ok((item, r.person.display_name()))
    }

    fn validation_context<'a>(orgs: &'a KnownOrgs, public_url: &'a str) -> validate::Context<'a> {
        validate::Context { orgs, public_url }
    }

    /// Creates an item from a POST body. Clients are validated as ORCID validates API writes;
    /// the owner (test hooks) is not, may choose the visibility, and may add duplicates.
    pub fn create(
        &self,
        orcid: &OrcidId,
        section: Section,
        writer: Writer<'_>,
        body: &Value,
        public_url: &str,
    ) -> Result<Arc<Item>, RecordError> {
        let record = self.record_or_404(orcid)?;
        let incoming = normalize::incoming(section, body)?;
        let mut content = incoming.content;
        if let Writer::Client { .. } = writer {
            let orgs = self.orgs.read().unwrap_or_else(PoisonError::into_inner);
            validate::validate(
                section,
                &mut content,
                &Self::validation_context(&orgs, public_url),
            )?;
            if incoming.put_code.is_some() {
                return Err(RecordError::PutCodeOnCreate);
            }
        }
        let mut r = lock(&record);
        self.insert_new(&mut r, section, writer, content, incoming.visibility)
    }

    /// Checks limits and duplicates, then stores a validated item.
    fn insert_new(
        &self,
        r: &mut Record,
        section: Section,
        writer: Writer<'_>,
        content: Map<String, Value>,
        visibility: Option<Visibility>,
    ) -> Result<Arc<Item>, RecordError> {
        let source = writer.source();
        let is_client = matches!(writer, Writer::Client { .. });
        if is_client && section == Section::Work && r.count(Section::Work) + 1 > r.max_works {
            return Err(RecordError::TooManyWorks { max: r.max_works });
        }
        let now = now_ms();
        let mut item = Item {
            put_code: 0,
            section,
            source,
            visibility: match writer {
                Writer::User => visibility.unwrap_or(r.default_visibility),
                // ORCID ignores the visibility a client sends on a claimed record.
                Writer::Client { .. } => r.default_visibility,
            },
            created_ms: now,
            last_modified_ms: now,
            duplicate_keys: Vec::new(),
            group_keys: Vec::new(),
            content,
        };
        index_ids(&mut item);
        if is_client {
            check_duplicates(r, &item, None)?;
        }
        item.put_code = self.next_put_code();
        let item = Arc::new(item);
        r.store(Arc::clone(&item));
        r.last_modified_ms = now;
        Ok(item)
    }

    /// Bulk-creates works: each entry is created or replaced in place by its error (§3.6).
    /// Fails as a whole when the record would exceed its works limit (9048) or the bulk holds
    /// more than [`MAX_BULK_WRITE`] works (9006).
    pub fn create_works(
        &self,
        orcid: &OrcidId,
        writer: Writer<'_>,
        entries: &[Value],
        public_url: &str,
    ) -> Result<Vec<Result<Arc<Item>, RecordError>>, RecordError> {
        let record = self.record_or_404(orcid)?;
        let mut r = lock(&record);
        if r.count(Section::Work) + entries.len() > r.max_works {
            return Err(RecordError::TooManyWorks { max: r.max_works });
        }
        if entries.len() > MAX_BULK_WRITE {
            return Err(RecordError::BulkTooLarge {
                max: MAX_BULK_WRITE,
            });
        }
        let orgs = self.orgs.read().unwrap_or_else(PoisonError::into_inner);
        let ctx = Self::validation_context(&orgs, public_url);
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            let work = match entry {
                Value::Object(o) if o.contains_key("work") => o.get("work").unwrap_or(&Value::Null),
                other => other,
            };
            let result = normalize::incoming(Section::Work, work).and_then(|incoming| {
                let mut content = incoming.content;
                validate::validate(Section::Work, &mut content, &ctx)?;
                if incoming.put_code.is_some() {
                    return Err(RecordError::PutCodeOnCreate);
                }
                self.insert_new(&mut r, Section::Work, writer, content, None)
            });
            results.push(result);
        }
        Ok(results)
    }

    /// Updates an item from a PUT body. Returns the stored item and whether anything changed
    /// (an unchanged PUT changes nothing, as at ORCID).
    pub fn update(
        &self,
        orcid: &OrcidId,
        section: Section,
        put_code: u64,
        writer: Writer<'_>,
        body: &Value,
        public_url: &str,
    ) -> Result<(Arc<Item>, bool), RecordError> {
        let record = self.record_or_404(orcid)?;
        let incoming = normalize::incoming(section, body)?;
        match &incoming.put_code {
            Some(Ok(n)) if *n == put_code => {}
            other => {
                return Err(RecordError::PutCodeMismatch {
                    url: put_code,
                    body: match other {
                        Some(Ok(n)) => Some(n.to_string()),
                        Some(Err(raw)) => Some(raw.clone()),
                        None => None,
                    },
                });
            }
        }
        let mut r = lock(&record);
        let existing = find_item(&r, section, put_code)?;
        let is_source = match writer {
            Writer::Client { id, .. } => existing.source.is_client(id),
            Writer::User => false,
        };
        let not_source = RecordError::NotSource {
            activity: section.activity_name(),
        };
        let mut content = incoming.content;
        let visibility_kept = incoming.visibility.is_none_or(|v| v == existing.visibility);
        if content == existing.content && visibility_kept {
            return if is_source {
                Ok((existing, false))
            } else {
                Err(not_source)
            };
        }
        if !visibility_kept {
            return Err(RecordError::VisibilityChange);
        }
        {
            let orgs = self.orgs.read().unwrap_or_else(PoisonError::into_inner);
            validate::validate(
                section,
                &mut content,
                &Self::validation_context(&orgs, public_url),
            )?;
        }
        let mut item = Item {
            content,
            last_modified_ms: now_ms(),
            duplicate_keys: Vec::new(),
            group_keys: Vec::new(),
            ..(*existing).clone()
        };
        index_ids(&mut item);
        if item.content == existing.content {
            // Equal once aliases are resolved: nothing to store.
            return if is_source {
                Ok((existing, false))
            } else {
                Err(not_source)
            };
        }
        if let Writer::Client { .. } = writer {
            let probe = Item {
                source: writer.source(),
                ..item.clone()
            };
            check_duplicates(&r, &probe, Some(put_code))?;
        }
        if !is_source {
            return Err(not_source);
        }
        let item = Arc::new(item);
        r.last_modified_ms = item.last_modified_ms;
        r.store(Arc::clone(&item));
        Ok((item, true))
    }

    /// Deletes an item. A client must be its source (9010); the owner may delete anything.
    pub fn delete(
        &self,
        orcid: &OrcidId,
        section: Section,
        put_code: u64,
        writer: Writer<'_>,
    ) -> Result<(), RecordError> {
        let record = self.record_or_404(orcid)?;
        let mut r = lock(&record);
        let existing = find_item(&r, section, put_code)?;
        if let Writer::Client { id, .. } = writer
            && !existing.source.is_client(id)
        {
            return Err(RecordError::NotSource {
                activity: section.activity_name(),
            });
        }
        r.remove(put_code);
        r.last_modified_ms = now_ms();
        Ok(())
    }

    /// The owner edits an item (test hook): `patch` is an RFC 7396 merge patch over the item's
    /// content and `visibility`. Not validated (ORCID's own site has its own rules); the source
    /// stays as it was.
    pub fn user_edit(
        &self,
        orcid: &OrcidId,
        section: Section,
        put_code: u64,
        patch: &Value,
    ) -> Result<Arc<Item>, RecordError> {
        let record = self.record_or_404(orcid)?;
        let mut r = lock(&record);
        let existing = find_item(&r, section, put_code)?;
        let mut doc = Value::Object(existing.content.clone());
        if let Value::Object(map) = &mut doc {
            map.insert(
                "visibility".to_owned(),
                Value::String(existing.visibility.as_str().to_owned()),
            );
        }
        normalize::merge_patch(&mut doc, patch);
        let incoming = normalize::incoming(section, &doc)?;
        let mut item = Item {
            content: incoming.content,
            visibility: incoming.visibility.unwrap_or(existing.visibility),
            last_modified_ms: now_ms(),
            duplicate_keys: Vec::new(),
            group_keys: Vec::new(),
            ..(*existing).clone()
        };
        index_ids(&mut item);
        let item = Arc::new(item);
        r.last_modified_ms = item.last_modified_ms;
        r.store(Arc::clone(&item));
        Ok(item)
    }

    /// Applies a settings patch (test hook); returns whether person data (not just settings)
    /// changed.
    pub fn apply_settings(
        &self,
        orcid: &OrcidId,
        patch: &SettingsPatch,
    ) -> Result<bool, RecordError> {
        let record = self.record_or_404(orcid)?;
        let parse = |v: &Option<String>| -> Result<Option<Visibility>, RecordError> {
            v.as_deref()
                .map(|s| {
                    Visibility::parse(s).ok_or_else(|| {
                        RecordError::InvalidEnum(format!("'{s}' is not a visibility"))
                    })
                })
                .transpose()
        };
        let default_visibility = parse(&patch.default_visibility)?;
        let name_visibility = parse(&patch.name_visibility)?;
        let biography_visibility = parse(&patch.biography_visibility)?;
        let email_visibility = parse(&patch.email_visibility)?;
        let mut r = lock(&record);
        if let Some(v) = default_visibility {
            r.default_visibility = v;
        }
        let before = r.person.clone();
        let person = &mut r.person;
        if let Some(v) = &patch.given_names {
            person.given_names.clone_from(v);
        }
        if let Some(v) = &patch.family_name {
            person.family_name.clone_from(v);
        }
        if let Some(v) = &patch.credit_name {
            person.credit_name = (!v.is_empty()).then(|| v.clone());
        }
        if let Some(v) = &patch.biography {
            person.biography = (!v.is_empty()).then(|| v.clone());
        }
        if let Some(v) = &patch.email {
            person.email.clone_from(v);
        }
        if let Some(v) = name_visibility {
            person.name_visibility = v;
        }
        if let Some(v) = biography_visibility {
            person.biography_visibility = v;
        }
        if let Some(v) = email_visibility {
            person.email_visibility = v;
        }
        let changed = r.person != before;
        if changed {
            let now = now_ms();
            r.person.last_modified_ms = now;
            r.last_modified_ms = now;
        }
        Ok(changed)
    }

    /// Sets the record's status (test hook).
    pub fn set_status(&self, orcid: &OrcidId, status: RecordStatus) -> Result<(), RecordError> {
        let record = self.record_or_404(orcid)?;
        let mut r = lock(&record);
        let now = now_ms();
        r.deactivated_ms = matches!(status, RecordStatus::Deactivated).then_some(now);
        r.status = status;
        r.last_modified_ms = now;
        Ok(())
    }

    /// Sets the most works the record may hold (test hook).
    pub fn set_max_works(&self, orcid: &OrcidId, max_works: usize) -> Result<(), RecordError> {
        let record = self.record_or_404(orcid)?;
        lock(&record).max_works = max_works;
        Ok(())
    }

    /// Makes ORCID's organization database know `(source, id)` (test hook).
    pub fn add_known_org(&self, source: &str, id: &str) {
        self.orgs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add(source, id);
    }
}

/// Fills the duplicate and grouping indexes of `item` from its external ids.
fn index_ids(item: &mut Item) {
    // Funding ids are compared raw (§3.6).
    let normalise = item.section != Section::Funding;
    let mut duplicate_keys = Vec::new();
    let mut group_keys = Vec::new();
    for entry in external_id_entries(&item.content) {
        let Some(key) = id_key(entry, normalise) else {
            continue;
        };
        let relationship = entry
            .get("external-id-relationship")
            .and_then(Value::as_str);
        match relationship {
            Some("self") => duplicate_keys.push((true, key.clone())),
            None => duplicate_keys.push((false, key.clone())),
            _ => {}
        }
        if !matches!(relationship, Some("part-of") | Some("funded-by"))
            && !group_keys.contains(&key)
        {
            group_keys.push(key);
        }
    }
    item.duplicate_keys = duplicate_keys;
    item.group_keys = group_keys;
}

/// The item `put_code` of `section`, or 404 (9016).
fn find_item(r: &Record, section: Section, put_code: u64) -> Result<Arc<Item>, RecordError> {
    r.item(section, put_code)
        .cloned()
        .ok_or(RecordError::NotFound)
}

/// 9021 (activities) or 9030 (person items) when `item` repeats an item of the same section
/// from the same source; `except` is the item being updated. One index lookup per key.
fn check_duplicates(r: &Record, item: &Item, except: Option<u64>) -> Result<(), RecordError> {
    let Some(put_code) = r.duplicate_of(item, except) else {
        return Ok(());
    };
    if item.section.is_person() {
        return Err(RecordError::DuplicateElement {
            value: person_value(item).unwrap_or_default(),
            element: item.section.entry_key(),
        });
    }
    Err(RecordError::Duplicate { put_code })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "http://127.0.0.1:1";

    fn client() -> Writer<'static> {
        Writer::Client {
            id: "APP-1",
            name: "One",
        }
    }

    fn work(doi: &str) -> Value {
        json!({
            "title": {"title": {"value": doi}},
            "type": "journal-article",
            "external-ids": {"external-id": [{"external-id-type": "doi", "external-id-value": doi, "external-id-relationship": "self"}]}
        })
    }

    fn records_with_user() -> (Records, OrcidId) {
        let records = Records::default();
        let orcid = OrcidId::parse("0000-0002-1825-0097").unwrap();
        records.create_record(orcid, "Josiah", "Carberry", "j@example.com");
        (records, orcid)
    }

    #[test]
    fn create_record_exists_and_reset() {
        let (records, orcid) = records_with_user();
        assert!(records.exists(&orcid));
        assert_eq!(
            records.display_name(&orcid).as_deref(),
            Some("Josiah Carberry")
        );
        let first = records
            .create(&orcid, Section::Work, client(), &work("10.1/a"), URL)
            .unwrap();
        records.reset();
        assert!(!records.exists(&orcid));
        records.create_record(orcid, "Josiah", "Carberry", "j@example.com");
        let after = records
            .create(&orcid, Section::Work, client(), &work("10.1/a"), URL)
            .unwrap();
        assert!(
            after.put_code > first.put_code,
            "put codes keep increasing across resets"
        );
    }

    #[test]
    fn many_works_stay_cheap() {
        let (records, orcid) = records_with_user();
        let started = std::time::Instant::now();
        for i in 0..3000 {
            records
                .create(
                    &orcid,
                    Section::Work,
                    client(),
                    &work(&format!("10.1/{i}")),
                    URL,
                )
                .unwrap();
        }
        let err = records
            .create(&orcid, Section::Work, client(), &work("10.1/2999"), URL)
            .unwrap_err();
        assert_eq!(err.code(), 9021);
        let snapshot = records.snapshot(&orcid, |s| s == Section::Work).unwrap();
        assert_eq!(snapshot.items.len(), 3000);
        // Generous bound: catches accidental quadratic clones, not machine speed.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn indexes_follow_inserts_updates_user_edits_and_deletes() {
        let (records, orcid) = records_with_user();
        let a = records
            .create(&orcid, Section::Work, client(), &work("10.1/a"), URL)
            .unwrap();
        // A duplicate names the existing put code; another client may repeat the id.
        let err = records
            .create(&orcid, Section::Work, client(), &work("10.1/A"), URL)
            .unwrap_err();
        assert!(matches!(err, RecordError::Duplicate { put_code } if put_code == a.put_code));
        let other = Writer::Client {
            id: "APP-2",
            name: "Two",
        };
        records
            .create(&orcid, Section::Work, other, &work("10.1/a"), URL)
            .unwrap();
        // The owner edits the client's work to another DOI: the old one is free, the new taken.
        let patch = json!({"external-ids": {"external-id": [{"external-id-type": "doi", "external-id-value": "10.1/b", "external-id-relationship": "self"}]}});
        records
            .user_edit(&orcid, Section::Work, a.put_code, &patch)
            .unwrap();
        let again = records
            .create(&orcid, Section::Work, client(), &work("10.1/a"), URL)
            .unwrap();
        assert_eq!(
            records
                .create(&orcid, Section::Work, client(), &work("10.1/b"), URL)
                .unwrap_err()
                .code(),
            9021
        );
        // A client update may not take another of its items' ids.
        let mut body = work("10.1/b");
        body["put-code"] = json!(again.put_code);
        let err = records
            .update(&orcid, Section::Work, again.put_code, client(), &body, URL)
            .unwrap_err();
        assert!(matches!(err, RecordError::Duplicate { put_code } if put_code == a.put_code));
        // After a delete the id is free again and the works limit counts one less.
        records
            .delete(&orcid, Section::Work, a.put_code, Writer::User)
            .unwrap();
        records
            .create(&orcid, Section::Work, client(), &work("10.1/b"), URL)
            .unwrap();
        records.set_max_works(&orcid, 4).unwrap();
        records
            .create(&orcid, Section::Work, client(), &work("10.1/c"), URL)
            .unwrap();
        assert_eq!(
            records
                .create(&orcid, Section::Work, client(), &work("10.1/d"), URL)
                .unwrap_err()
                .code(),
            9048
        );
        // Person items: the same keyword twice from one source is 9030.
        records
            .create(
                &orcid,
                Section::Keyword,
                client(),
                &json!({"content": "rivers"}),
                URL,
            )
            .unwrap();
        let err = records
            .create(
                &orcid,
                Section::Keyword,
                client(),
                &json!({"content": "rivers"}),
                URL,
            )
            .unwrap_err();
        assert_eq!(err.code(), 9030);
        records
            .create(
                &orcid,
                Section::Keyword,
                other,
                &json!({"content": "rivers"}),
                URL,
            )
            .unwrap();
    }

    #[test]
    fn update_and_delete_follow_source_rules() {
        let (records, orcid) = records_with_user();
        let item = records
            .create(&orcid, Section::Work, client(), &work("10.1/a"), URL)
            .unwrap();
        let pc = item.put_code;
        let mut body = work("10.1/a");
        body["put-code"] = json!(pc);
        let (same, changed) = records
            .update(&orcid, Section::Work, pc, client(), &body, URL)
            .unwrap();
        assert!(!changed);
        assert_eq!(same.last_modified_ms, item.last_modified_ms);
        let other = Writer::Client {
            id: "APP-2",
            name: "Two",
        };
        body["title"] = json!({"title": {"value": "changed"}});
        let err = records
            .update(&orcid, Section::Work, pc, other, &body, URL)
            .unwrap_err();
        assert_eq!(err.code(), 9010);
        assert_eq!(
            records
                .delete(&orcid, Section::Work, pc, other)
                .unwrap_err()
                .code(),
            9010
        );
        assert_eq!(
            records
                .delete(&orcid, Section::Funding, pc, client())
                .unwrap_err()
                .code(),
            9016
        );
        records
            .delete(&orcid, Section::Work, pc, Writer::User)
            .unwrap();
        assert_eq!(
            records.item(&orcid, Section::Work, pc).unwrap_err().code(),
            9016
        );
    }
}
