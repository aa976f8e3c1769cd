//! Per-record indexes that keep writes independent of the record's size: item counts by section
//! (the works limit) and the duplicate index (§3.6: 9021 for activities, 9030 for person items).
//!
//! [`super::model::Record`] updates them on every insert, replacement and removal, whoever
//! writes (API clients and the owner's edits through the hooks alike).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::model::{IdKey, Item, Section, Source};

/// Who wrote an item, as the duplicate rule compares writers: a client by id (its display name
/// may change), the owner as one writer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Writer {
    Client(String),
    User,
}

impl Writer {
    fn of(source: &Source) -> Writer {
        match source {
            Source::Client { id, .. } => Writer::Client(id.clone()),
            Source::User => Writer::User,
        }
    }
}

/// What two items of one section and one writer may not share.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    /// An activity's external id: relationship `self` (`true`) or none (`false`), and its type
    /// and normalised value.
    ExternalId(bool, IdKey),
    /// A person item's value (name, keyword, URL, country, `type:value`).
    PersonValue(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    section: Section,
    writer: Writer,
    identity: Identity,
}

/// Counts by section and the duplicate index of one record.
#[derive(Debug, Clone, Default)]
pub struct RecordIndex {
    counts: HashMap<Section, usize>,
    /// Items that hold each key. Almost always one; more when the owner (whose writes are not
    /// checked) or an owner's edit made two items share a key.
    holders: HashMap<Key, Vec<u64>>,
}

impl RecordIndex {
    /// Accounts for a stored item.
    pub fn add(&mut self, item: &Item) {
        *self.counts.entry(item.section).or_insert(0) += 1;
        for key in keys(item) {
            self.holders.entry(key).or_default().push(item.put_code);
        }
    }

    /// Forgets a stored item (the one [`RecordIndex::add`] was given).
    pub fn remove(&mut self, item: &Item) {
        if let Some(n) = self.counts.get_mut(&item.section) {
            *n = n.saturating_sub(1);
        }
        for key in keys(item) {
            if let Some(put_codes) = self.holders.get_mut(&key) {
                put_codes.retain(|pc| *pc != item.put_code);
                if put_codes.is_empty() {
                    self.holders.remove(&key);
                }
            }
        }
    }

    /// How many items of `section` the record holds.
    pub fn count(&self, section: Section) -> usize {
        self.counts.get(&section).copied().unwrap_or(0)
    }

    /// The lowest put code, other than `except`, of an item of the same section and writer that
    /// shares a duplicate key with `item`.
    pub fn duplicate_of(&self, item: &Item, except: Option<u64>) -> Option<u64> {
        keys(item)
            .iter()
            .filter_map(|key| self.holders.get(key))
            .flatten()
            .copied()
            .filter(|pc| Some(*pc) != except)
            .min()
    }
}

/// The duplicate keys of `item`.
fn keys(item: &Item) -> Vec<Key> {
    let writer = Writer::of(&item.source);
    let key = |identity| Key {
        section: item.section,
        writer: writer.clone(),
        identity,
    };
    if item.section.is_person() {
        return person_value(item)
            .map(|value| vec![key(Identity::PersonValue(value))])
            .unwrap_or_default();
    }
    item.duplicate_keys
        .iter()
        .map(|(is_self, id)| key(Identity::ExternalId(*is_self, id.clone())))
        .collect()
}

/// The person-item value two items of the same source may not share (9030).
pub fn person_value(item: &Item) -> Option<String> {
    let content = &item.content;
    let value = match item.section {
        Section::OtherName | Section::Keyword => text(content, &["content"])?.to_owned(),
        Section::ResearcherUrl => text(content, &["url", "value"])?.to_owned(),
        Section::Address => text(content, &["country", "value"])?.to_owned(),
        Section::ExternalIdentifier => format!(
            "{}:{}",
            text(content, &["external-id-type"])?,
            text(content, &["external-id-value"])?
        ),
        _ => return None,
    };
    Some(value)
}

/// The non-blank string at `path` in `content`.
fn text<'a>(content: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut object = content;
    for key in parents {
        object = object.get(*key)?.as_object()?;
    }
    object.get(*last)?.as_str().filter(|s| !s.trim().is_empty())
}
