//! Bulk works: `POST /works` with up to 100 works, and the per-entry results (§2.3, §3.6).

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::common::{PutCode, UnknownFields, note_unknown_keys};
use super::error_body::ErrorBody;
use super::serde_util;
use super::work::Work;

/// The most works one bulk call may carry, written (`POST /works`, more gives 400, code 9006)
/// or read (`GET /works/{pc1},…`) (reference §3.6, §7). The client refuses bigger batches
/// before sending.
pub const MAX_BULK_WORKS: usize = 100;

/// The bulk write body: `{"bulk": [{"work": {…}}, …]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkWorks {
    /// The works, each wrapped as `{"work": …}`.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub bulk: Vec<BulkWork>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl BulkWorks {
    /// A body holding `works`. ORCID takes at most [`MAX_BULK_WORKS`]; this does not
    /// split, the caller does.
    pub fn new(works: impl IntoIterator<Item = Work>) -> Self {
        BulkWorks {
            bulk: works.into_iter().map(BulkWork::from).collect(),
            extra: UnknownFields::default(),
        }
    }

    /// The works.
    pub fn works(&self) -> impl Iterator<Item = &Work> {
        self.bulk.iter().map(|b| &b.work)
    }
}

impl FromIterator<Work> for BulkWorks {
    fn from_iter<I: IntoIterator<Item = Work>>(iter: I) -> Self {
        BulkWorks::new(iter)
    }
}

/// One entry of a bulk write body: `{"work": {…}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkWork {
    /// The work.
    #[serde(default)]
    pub work: Work,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl From<Work> for BulkWork {
    fn from(work: Work) -> Self {
        BulkWork {
            work,
            extra: UnknownFields::default(),
        }
    }
}

/// ORCID's answer to a bulk write (and to `GET /works/{pc1},{pc2},…`): one entry per work
/// sent, in the same order, each the stored work (with its put code) or an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkResult {
    /// The entries.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub bulk: Vec<BulkResultEntry>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl BulkResult {
    /// The stored works with their position in the request.
    pub fn works(&self) -> impl Iterator<Item = (usize, &Work)> {
        self.bulk.iter().enumerate().filter_map(|(i, e)| match e {
            BulkResultEntry::Work(w) => Some((i, w.as_ref())),
            _ => None,
        })
    }

    /// The rejected entries with their position in the request.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &ErrorBody)> {
        self.bulk.iter().enumerate().filter_map(|(i, e)| match e {
            BulkResultEntry::Error(err) => Some((i, err)),
            _ => None,
        })
    }

    /// The put code of each entry, in request order; `None` for an error, an entry of
    /// unknown shape, or a work without a put code.
    pub fn put_codes(&self) -> Vec<Option<PutCode>> {
        self.bulk
            .iter()
            .map(|e| match e {
                BulkResultEntry::Work(w) => w.put_code,
                _ => None,
            })
            .collect()
    }
}

/// One entry of a [`BulkResult`].
#[derive(Debug, Clone, PartialEq)]
pub enum BulkResultEntry {
    /// `{"work": {…}}`: the work as stored.
    Work(Box<Work>),
    /// `{"error": {…}}`: why this work was rejected (e.g. 9021 duplicate, 9037 bad type).
    Error(ErrorBody),
    /// Any other shape, kept verbatim.
    Unknown(Map<String, Value>),
}

impl Serialize for BulkResultEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BulkResultEntry::Work(work) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("work", work)?;
                m.end()
            }
            BulkResultEntry::Error(err) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("error", err)?;
                m.end()
            }
            BulkResultEntry::Unknown(map) => map.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BulkResultEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = BulkResultEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("{\"work\": {…}} or {\"error\": {…}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.insert(key, map.next_value()?);
                }
                if entries.len() == 1 {
                    if let Some(work) = entries.get("work") {
                        return Work::deserialize(work)
                            .map(|w| BulkResultEntry::Work(Box::new(w)))
                            .map_err(serde::de::Error::custom);
                    }
                    if let Some(err) = entries.get("error") {
                        return ErrorBody::deserialize(err)
                            .map(BulkResultEntry::Error)
                            .map_err(serde::de::Error::custom);
                    }
                }
                note_unknown_keys(entries.keys());
                Ok(BulkResultEntry::Unknown(entries))
            }
        }
        d.deserialize_map(EntryVisitor)
    }
}
