//! ORCID's read JSON: full items, summaries, grouped listings, the person section, the
//! activities summary and the whole record, with keys in ORCID's order (reference §2.2, §3.3–
//! §3.7; `record-full-3.0.json`), filtered by what the caller may see (§3.2).

use std::sync::Arc;

use orcid::OrcidId;
use serde_json::{Map, Value, json};

use super::RecordSnapshot;
use super::error::RecordError;
use super::group::groups;
use super::model::{IdKey, Item, Section, Source, Visibility};
use super::normalize::{content_keys, id_key, normalize_id, string_at};

/// What the caller may read.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The calling client: it always sees its own items.
    pub client_id: Option<String>,
    /// May read `limited` (and `registered-only`) activities.
    pub activities_limited: bool,
    /// May read `limited` person data.
    pub person_limited: bool,
    /// Sees everything (test hooks).
    pub everything: bool,
}

impl Viewer {
    /// A viewer that sees every item, private ones included.
    pub fn everything() -> Viewer {
        Viewer {
            client_id: None,
            activities_limited: true,
            person_limited: true,
            everything: true,
        }
    }

    fn level_allows(&self, visibility: Visibility, person: bool) -> bool {
        match visibility {
            Visibility::Public => true,
            Visibility::Limited | Visibility::RegisteredOnly => {
                if person {
                    self.person_limited
                } else {
                    self.activities_limited
                }
            }
            Visibility::Private => false,
        }
    }

    /// Whether non-item person data of `visibility` is readable.
    pub fn sees_person_data(&self, visibility: Visibility) -> bool {
        self.everything || self.level_allows(visibility, true)
    }

    /// Whether `item` is readable.
    pub fn sees(&self, item: &Item) -> bool {
        self.check(item).is_ok()
    }

    /// `Ok` if `item` is readable; else 9013 (private) or 9039 (not public, public-only caller).
    pub fn check(&self, item: &Item) -> Result<(), RecordError> {
        if self.everything {
            return Ok(());
        }
        if let (Source::Client { id, .. }, Some(caller)) = (&item.source, &self.client_id)
            && id == caller
        {
            return Ok(());
        }
        if self.level_allows(item.visibility, item.section.is_person()) {
            Ok(())
        } else if item.visibility == Visibility::Private {
            Err(RecordError::Private)
        } else {
            Err(RecordError::NotPublic)
        }
    }
}

/// Where rendered paths and source blocks point.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub public_url: String,
    /// Its host, for `{uri, path, host}` blocks.
    pub host: String,
}

impl Origin {
    /// The origin of `public_url`.
    pub fn new(public_url: &str) -> Origin {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let host = url::Url::parse(&public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| public_url.clone());
        Origin { public_url, host }
    }

    fn id_block(&self, orcid: &OrcidId) -> Value {
        json!({ "uri": format!("{}/{}", self.public_url, orcid), "path": orcid.to_string(), "host": self.host })
    }
}

/// Everything rendering one record needs.
pub struct Ctx<'a> {
    /// Paths and hosts.
    pub origin: &'a Origin,
    /// The record's iD.
    pub orcid: OrcidId,
    /// The owner's display name (`source-name` of items the owner wrote).
    pub owner_name: &'a str,
    /// Who is reading.
    pub viewer: &'a Viewer,
}

fn ms(value: i64) -> Value {
    json!({ "value": value })
}

fn ms_or_null(value: Option<i64>) -> Value {
    value.map(ms).unwrap_or(Value::Null)
}

impl Ctx<'_> {
    fn source(&self, item: &Item) -> Value {
        match &item.source {
            Source::Client { id, name } => json!({
                "source-orcid": null,
                "source-client-id": {
                    "uri": format!("{}/client/{}", self.origin.public_url, id),
                    "path": id,
                    "host": self.origin.host,
                },
                "source-name": { "value": name },
                "assertion-origin-orcid": null,
                "assertion-origin-client-id": null,
                "assertion-origin-name": null,
            }),
            Source::User => json!({
                "source-orcid": self.origin.id_block(&self.orcid),
                "source-client-id": null,
                "source-name": { "value": self.owner_name },
                "assertion-origin-orcid": null,
                "assertion-origin-client-id": null,
                "assertion-origin-name": null,
            }),
        }
    }

    /// `/{orcid}/{section}/{put-code}`.
    pub fn item_path(&self, item: &Item) -> String {
        format!(
            "/{}/{}/{}",
            self.orcid,
            item.section.item_path(),
            item.put_code
        )
    }

    fn list_path(&self, name: &str) -> String {
        format!("/{}/{}", self.orcid, name)
    }
}

/// One key slot in a rendered item.
#[derive(Clone, Copy)]
enum Slot {
    Created,
    Modified,
    Source,
    PutCode,
    Path,
    DisplayIndex,
    Visibility,
    /// Every content key, in order.
    Content,
    /// One content key.
    Field(&'static str),
}

use Slot::{Content, Created, DisplayIndex, Field, Modified, Path, PutCode};

const AFFILIATION_FULL: &[Slot] = &[
    Created,
    Modified,
    Slot::Source,
    PutCode,
    Path,
    Content,
    DisplayIndex,
    Slot::Visibility,
];
const ACTIVITY_FULL: &[Slot] = &[
    Created,
    Modified,
    Slot::Source,
    PutCode,
    Path,
    Content,
    Slot::Visibility,
];
const PERSON_FULL: &[Slot] = &[
    Created,
    Modified,
    Slot::Source,
    Content,
    Slot::Visibility,
    Path,
    PutCode,
    DisplayIndex,
];
const AFFILIATION_SUMMARY: &[Slot] = &[
    Created,
    Modified,
    Slot::Source,
    PutCode,
    Content,
    DisplayIndex,
    Slot::Visibility,
    Path,
];
const WORK_SUMMARY: &[Slot] = &[
    PutCode,
    Created,
    Modified,
    Slot::Source,
    Field("title"),
    Field("external-ids"),
    Field("url"),
    Field("type"),
    Field("publication-date"),
    Field("journal-title"),
    Slot::Visibility,
    Path,
    DisplayIndex,
];
const FUNDING_SUMMARY: &[Slot] = &[
    Created,
    Modified,
    Slot::Source,
    Field("title"),
    Field("external-ids"),
    Field("url"),
    Field("type"),
    Field("start-date"),
    Field("end-date"),
    Field("organization"),
    Slot::Visibility,
    PutCode,
    Path,
    DisplayIndex,
];

/// The rendered form of one external id: ORCID adds `external-id-normalized` and
/// `external-id-normalized-error` on reads of works and affiliations (null for fundings).
fn external_id(entry: &Value, section: Section) -> Value {
    let get = |key: &str| entry.get(key).cloned().unwrap_or(Value::Null);
    let (normalized, error) = if section == Section::Funding {
        (Value::Null, Value::Null)
    } else {
        match (
            string_at(entry, "/external-id-type"),
            string_at(entry, "/external-id-value"),
        ) {
            (Some(t), Some(v)) => match normalize_id(t, v) {
                Some(n) => (json!({ "value": n, "transient": true }), Value::Null),
                None => (
                    Value::Null,
                    json!({
                        "error-code": "8001",
                        "error-message": format!("Cannot normalize identifier value {t}:{v}"),
                        "transient": true,
                    }),
                ),
            },
            _ => (Value::Null, Value::Null),
        }
    };
    json!({
        "external-id-type": get("external-id-type"),
        "external-id-value": get("external-id-value"),
        "external-id-normalized": normalized,
        "external-id-normalized-error": error,
        "external-id-url": get("external-id-url"),
        "external-id-relationship": get("external-id-relationship"),
    })
}

fn field_value(item: &Item, key: &str) -> Value {
    let value = item.content.get(key).cloned().unwrap_or(Value::Null);
    match (key, value) {
        ("external-ids", Value::Object(ids)) => {
            let list: Vec<Value> = ids
                .get("external-id")
                .and_then(Value::as_array)
                .map(|l| l.iter().map(|e| external_id(e, item.section)).collect())
                .unwrap_or_default();
            json!({ "external-id": list })
        }
        ("contributors", Value::Null)
            if matches!(item.section, Section::Work | Section::Funding) =>
        {
            json!({ "contributor": [] })
        }
        (_, value) => value,
    }
}

fn render(item: &Item, ctx: &Ctx<'_>, slots: &[Slot]) -> Value {
    let mut out = Map::new();
    let display_index = if item.section.is_person() {
        json!(0)
    } else {
        json!("0")
    };
    for slot in slots {
        match slot {
            Created => {
                out.insert("created-date".into(), ms(item.created_ms));
            }
            Modified => {
                out.insert("last-modified-date".into(), ms(item.last_modified_ms));
            }
            Slot::Source => {
                out.insert("source".into(), ctx.source(item));
            }
            PutCode => {
                out.insert("put-code".into(), json!(item.put_code));
            }
            Path => {
                out.insert("path".into(), Value::String(ctx.item_path(item)));
            }
            DisplayIndex => {
                out.insert("display-index".into(), display_index.clone());
            }
            Slot::Visibility => {
                out.insert("visibility".into(), json!(item.visibility.as_str()));
            }
            Content => {
                for key in content_keys(item.section) {
                    out.insert(key.into(), field_value(item, key));
                }
            }
            Field(key) => {
                out.insert((*key).into(), field_value(item, key));
            }
        }
    }
    Value::Object(out)
}

/// The full item (`GET /{section}/{pc}`, PUT responses, bulk entries).
pub fn full(item: &Item, ctx: &Ctx<'_>) -> Value {
    let slots = match item.section {
        s if s.is_person() => PERSON_FULL,
        s if s.is_affiliation() => AFFILIATION_FULL,
        _ => ACTIVITY_FULL,
    };
    render(item, ctx, slots)
}

/// The summary (`GET /{section}/summary/{pc}` and listing entries); person items have none and
/// render in full.
pub fn summary(item: &Item, ctx: &Ctx<'_>) -> Value {
    let slots = match item.section {
        Section::Work => WORK_SUMMARY,
        Section::Funding => FUNDING_SUMMARY,
        s if s.is_affiliation() => AFFILIATION_SUMMARY,
        _ => PERSON_FULL,
    };
    render(item, ctx, slots)
}

fn visible<'a>(
    snapshot: &'a RecordSnapshot,
    section: Section,
    viewer: &Viewer,
) -> Vec<&'a Arc<Item>> {
    snapshot
        .items
        .iter()
        .filter(|i| i.section == section && viewer.sees(i))
        .collect()
}

fn latest<'a>(items: impl IntoIterator<Item = &'a Arc<Item>>) -> Option<i64> {
    items.into_iter().map(|i| i.last_modified_ms).max()
}

/// The union of the groupable ids of a group's members, each once.
fn group_ids(members: &[&Arc<Item>], section: Section) -> Value {
    let normalise = section != Section::Funding;
    let mut seen: Vec<IdKey> = Vec::new();
    let mut ids = Vec::new();
    for member in members {
        let entries = member
            .content
            .get("external-ids")
            .and_then(|e| e.get("external-id"))
            .and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            let relationship = entry
                .get("external-id-relationship")
                .and_then(Value::as_str);
            if matches!(relationship, Some("part-of") | Some("funded-by")) {
                continue;
            }
            let Some(key) = id_key(entry, normalise) else {
                continue;
            };
            if !seen.contains(&key) {
                seen.push(key);
                ids.push(external_id(entry, section));
            }
        }
    }
    json!({ "external-id": ids })
}

/// A section listing: `/works`, `/fundings`, `/employments`…, and the person lists.
pub fn listing(snapshot: &RecordSnapshot, section: Section, ctx: &Ctx<'_>) -> Value {
    let items = visible(snapshot, section, ctx.viewer);
    let last_modified = ms_or_null(latest(items.iter().copied()));
    let path = ctx.list_path(section.list_path());
    if section.is_person() {
        let entries: Vec<Value> = items.iter().map(|i| full(i, ctx)).collect();
        let mut out = Map::new();
        out.insert("last-modified-date".into(), last_modified);
        out.insert(section.entry_key().into(), Value::Array(entries));
        out.insert("path".into(), Value::String(path));
        return Value::Object(out);
    }
    let rendered: Vec<Value> = groups(&items)
        .into_iter()
        .map(|members| {
            let mut group = Map::new();
            group.insert(
                "last-modified-date".into(),
                ms_or_null(latest(members.iter().copied())),
            );
            group.insert("external-ids".into(), group_ids(&members, section));
            if section.is_affiliation() {
                let summaries: Vec<Value> = members
                    .iter()
                    .map(|m| json!({ section.entry_key(): summary(m, ctx) }))
                    .collect();
                group.insert("summaries".into(), Value::Array(summaries));
            } else {
                let summaries: Vec<Value> = members.iter().map(|m| summary(m, ctx)).collect();
                group.insert(section.entry_key().into(), Value::Array(summaries));
            }
            Value::Object(group)
        })
        .collect();
    let group_key = if section.is_affiliation() {
        "affiliation-group"
    } else {
        "group"
    };
    let mut out = Map::new();
    out.insert("last-modified-date".into(), last_modified);
    out.insert(group_key.into(), Value::Array(rendered));
    out.insert("path".into(), Value::String(path));
    Value::Object(out)
}

/// An always-empty grouped listing, for the sections the simulator does not store
/// (`peer-reviews`, `research-resources`).
pub fn empty_listing(name: &str, ctx: &Ctx<'_>) -> Value {
    json!({ "last-modified-date": null, "group": [], "path": ctx.list_path(name) })
}

/// `/activities`.
pub fn activities(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    let mut out = Map::new();
    let activity_items = snapshot
        .items
        .iter()
        .filter(|i| !i.section.is_person() && ctx.viewer.sees(i));
    out.insert(
        "last-modified-date".into(),
        ms_or_null(latest(activity_items)),
    );
    for name in [
        "distinctions",
        "educations",
        "employments",
        "fundings",
        "invited-positions",
        "memberships",
        "peer-reviews",
        "qualifications",
        "research-resources",
        "services",
        "works",
    ] {
        let value = match Section::from_list_path(name) {
            Some(section) => listing(snapshot, section, ctx),
            None => empty_listing(name, ctx),
        };
        out.insert(name.into(), value);
    }
    out.insert("path".into(), Value::String(ctx.list_path("activities")));
    Value::Object(out)
}

/// `name` inside `/person` and `/personal-details` (null when not visible).
pub fn name(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    let p = &snapshot.person;
    if !ctx.viewer.sees_person_data(p.name_visibility) {
        return Value::Null;
    }
    json!({
        "created-date": ms(snapshot.created_ms),
        "last-modified-date": ms(p.last_modified_ms),
        "given-names": { "value": p.given_names },
        "family-name": { "value": p.family_name },
        "credit-name": p.credit_name.as_ref().map(|c| json!({ "value": c })),
        "source": null,
        "visibility": p.name_visibility.as_str(),
        "path": snapshot.orcid.to_string(),
    })
}

/// `/biography`: `Ok(None)` when there is none, 9013/9039 when not visible.
pub fn biography(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Result<Option<Value>, RecordError> {
    let p = &snapshot.person;
    let Some(content) = &p.biography else {
        return Ok(None);
    };
    if !ctx.viewer.sees_person_data(p.biography_visibility) {
        return Err(if p.biography_visibility == Visibility::Private {
            RecordError::Private
        } else {
            RecordError::NotPublic
        });
    }
    Ok(Some(json!({
        "created-date": ms(snapshot.created_ms),
        "last-modified-date": ms(p.last_modified_ms),
        "content": content,
        "visibility": p.biography_visibility.as_str(),
        "path": ctx.list_path("biography"),
    })))
}

/// `/email`.
pub fn emails(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    let p = &snapshot.person;
    let visible = ctx.viewer.sees_person_data(p.email_visibility);
    let list: Vec<Value> = if visible {
        vec![json!({
            "created-date": ms(snapshot.created_ms),
            "last-modified-date": ms(p.last_modified_ms),
            "source": {
                "source-orcid": ctx.origin.id_block(&snapshot.orcid),
                "source-client-id": null,
                "source-name": { "value": ctx.owner_name },
                "assertion-origin-orcid": null,
                "assertion-origin-client-id": null,
                "assertion-origin-name": null,
            },
            "email": p.email,
            "path": null,
            "visibility": p.email_visibility.as_str(),
            "verified": true,
            "primary": true,
            "put-code": null,
        })]
    } else {
        Vec::new()
    };
    json!({
        "last-modified-date": if visible { ms(p.last_modified_ms) } else { Value::Null },
        "email": list,
        "path": ctx.list_path("email"),
    })
}

fn person_last_modified(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    let items = latest(
        snapshot
            .items
            .iter()
            .filter(|i| i.section.is_person() && ctx.viewer.sees(i)),
    );
    let p = &snapshot.person;
    let person = ctx
        .viewer
        .sees_person_data(p.name_visibility)
        .then_some(p.last_modified_ms);
    ms_or_null(items.max(person))
}

/// `/personal-details`.
pub fn personal_details(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    json!({
        "last-modified-date": person_last_modified(snapshot, ctx),
        "name": name(snapshot, ctx),
        "other-names": listing(snapshot, Section::OtherName, ctx),
        "biography": biography(snapshot, ctx).ok().flatten(),
        "path": ctx.list_path("personal-details"),
    })
}

/// `/person`.
pub fn person(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    json!({
        "last-modified-date": person_last_modified(snapshot, ctx),
        "name": name(snapshot, ctx),
        "other-names": listing(snapshot, Section::OtherName, ctx),
        "biography": biography(snapshot, ctx).ok().flatten(),
        "researcher-urls": listing(snapshot, Section::ResearcherUrl, ctx),
        "emails": emails(snapshot, ctx),
        "addresses": listing(snapshot, Section::Address, ctx),
        "keywords": listing(snapshot, Section::Keyword, ctx),
        "external-identifiers": listing(snapshot, Section::ExternalIdentifier, ctx),
        "path": ctx.list_path("person"),
    })
}

/// `GET /v3.0/{orcid}` and `/record`.
pub fn record(snapshot: &RecordSnapshot, ctx: &Ctx<'_>) -> Value {
    json!({
        "orcid-identifier": ctx.origin.id_block(&snapshot.orcid),
        "preferences": { "locale": "en" },
        "history": {
            "creation-method": "DIRECT",
            "completion-date": null,
            "submission-date": ms(snapshot.created_ms),
            "last-modified-date": ms(snapshot.last_modified_ms),
            "claimed": true,
            "source": null,
            "deactivation-date": ms_or_null(snapshot.deactivated_ms),
            "verified-email": true,
            "verified-primary-email": true,
        },
        "person": person(snapshot, ctx),
        "activities-summary": activities(snapshot, ctx),
        "path": format!("/{}", snapshot.orcid),
    })
}
