//! Turning what a client sent into the canonical stored form, as leniently as ORCID's Jackson
//! reader (reference §3): bare strings where `{"value": …}` is expected, numbers sent as strings
//! and strings sent as numbers, explicit nulls, unknown fields (dropped), single objects where a
//! list is expected. Shape errors that Jackson would refuse answer 400 9047.
//!
//! The canonical content holds every content key of the section in ORCID's read order, with
//! `null` for absent values, so rendering is a copy and "unchanged PUT" is an equality test.

use serde_json::{Map, Value, json};

use super::error::RecordError;
use super::model::{IdKey, Section, Visibility};
use super::vocab;

/// What the body of a POST or PUT carried.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The canonical content fields.
    pub content: Map<String, Value>,
    /// `put-code`: `None` absent, `Some(Ok)` a number (or numeric string), `Some(Err(text))`
    /// anything else.
    pub put_code: Option<Result<u64, String>>,
    /// `visibility`, if sent.
    pub visibility: Option<Visibility>,
}

/// How one content key is read.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Wrapped,
    Relationship,
    Date,
    ExternalIds,
    WorkTitle,
    FundingTitle,
    Citation,
    WorkContributors,
    FundingContributors,
    Organization,
    Amount,
}

const WORK: &[(&str, Kind)] = &[
    ("title", Kind::WorkTitle),
    ("journal-title", Kind::Wrapped),
    ("short-description", Kind::Text),
    ("citation", Kind::Citation),
    ("type", Kind::Text),
    ("publication-date", Kind::Date),
    ("external-ids", Kind::ExternalIds),
    ("url", Kind::Wrapped),
    ("contributors", Kind::WorkContributors),
    ("language-code", Kind::Text),
    ("country", Kind::Wrapped),
];

const FUNDING: &[(&str, Kind)] = &[
    ("type", Kind::Text),
    ("organization-defined-type", Kind::Wrapped),
    ("title", Kind::FundingTitle),
    ("short-description", Kind::Text),
    ("amount", Kind::Amount),
    ("url", Kind::Wrapped),
    ("start-date", Kind::Date),
    ("end-date", Kind::Date),
    ("external-ids", Kind::ExternalIds),
    ("contributors", Kind::FundingContributors),
    ("organization", Kind::Organization),
];

const AFFILIATION: &[(&str, Kind)] = &[
    ("department-name", Kind::Text),
    ("role-title", Kind::Text),
    ("start-date", Kind::Date),
    ("end-date", Kind::Date),
    ("organization", Kind::Organization),
    ("url", Kind::Wrapped),
    ("external-ids", Kind::ExternalIds),
];

const CONTENT_ONLY: &[(&str, Kind)] = &[("content", Kind::Text)];

const RESEARCHER_URL: &[(&str, Kind)] = &[("url-name", Kind::Text), ("url", Kind::Wrapped)];

const ADDRESS: &[(&str, Kind)] = &[("country", Kind::Wrapped)];

const PERSON_EXTERNAL_ID: &[(&str, Kind)] = &[
    ("external-id-type", Kind::Text),
    ("external-id-value", Kind::Text),
    ("external-id-url", Kind::Wrapped),
    ("external-id-relationship", Kind::Relationship),
];

fn fields(section: Section) -> &'static [(&'static str, Kind)] {
    match section {
        Section::Work => WORK,
        Section::Funding => FUNDING,
        Section::OtherName | Section::Keyword => CONTENT_ONLY,
        Section::ResearcherUrl => RESEARCHER_URL,
        Section::Address => ADDRESS,
        Section::ExternalIdentifier => PERSON_EXTERNAL_ID,
        _ => AFFILIATION,
    }
}

/// The content keys of `section`, in ORCID's read order.
pub fn content_keys(section: Section) -> impl Iterator<Item = &'static str> {
    fields(section).iter().map(|(key, _)| *key)
}

/// Reads a POST/PUT body for `section`.
pub fn incoming(section: Section, body: &Value) -> Result<Incoming, RecordError> {
    let Value::Object(object) = body else {
        return Err(RecordError::InvalidJson(format!(
            "expected a JSON object for the {}, found {}",
            section.activity_name(),
            kind_of(body)
        )));
    };
    let put_code = match object.get("put-code") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| n.to_string())),
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| s.clone())),
        Some(other) => Some(Err(other.to_string())),
    };
    let visibility = match object.get("visibility") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let text = text(v, "visibility")?.unwrap_or_default();
            Some(Visibility::parse(&text).ok_or_else(|| {
                RecordError::InvalidEnum(format!(
                    "'{text}' is not a visibility; valid values are: public, limited, registered-only, private"
                ))
            })?)
        }
    };
    Ok(Incoming {
        content: content(section, object)?,
        put_code,
        visibility,
    })
}

/// The canonical content of `object` for `section` (unknown keys dropped).
pub fn content(
    section: Section,
    object: &Map<String, Value>,
) -> Result<Map<String, Value>, RecordError> {
    let mut out = Map::new();
    for (key, kind) in fields(section) {
        let value = match object.get(*key) {
            None | Some(Value::Null) => Value::Null,
            Some(v) => read(*kind, v, key)?.unwrap_or(Value::Null),
        };
        out.insert((*key).to_owned(), value);
    }
    Ok(out)
}

fn read(kind: Kind, v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    match kind {
        Kind::Text => Ok(text(v, path)?.map(Value::String)),
        Kind::Wrapped => wrapped(v, path),
        Kind::Relationship => relationship(v, path),
        Kind::Date => date(v, path),
        Kind::ExternalIds => external_ids(v, path),
        Kind::WorkTitle => title(v, path, true),
        Kind::FundingTitle => title(v, path, false),
        Kind::Citation => citation(v, path),
        Kind::WorkContributors => contributors(v, path, true),
        Kind::FundingContributors => contributors(v, path, false),
        Kind::Organization => organization(v, path),
        Kind::Amount => amount(v, path),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn shape_error(path: &str, expected: &str, found: &Value) -> RecordError {
    RecordError::InvalidJson(format!(
        "{path}: expected {expected}, found {}",
        kind_of(found)
    ))
}

/// A scalar as text: strings as they are, numbers and booleans printed, `{"value": x}` unwrapped.
pub fn text(v: &Value, path: &str) -> Result<Option<String>, RecordError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Object(o) if o.contains_key("value") => {
            text(o.get("value").unwrap_or(&Value::Null), path)
        }
        other => Err(shape_error(path, "a string", other)),
    }
}

fn opt_text(object: &Map<String, Value>, key: &str, path: &str) -> Result<Value, RecordError> {
    Ok(match object.get(key) {
        None => Value::Null,
        Some(v) => text(v, &format!("{path}.{key}"))?
            .map(Value::String)
            .unwrap_or(Value::Null),
    })
}

fn opt_wrapped(object: &Map<String, Value>, key: &str, path: &str) -> Result<Value, RecordError> {
    Ok(match object.get(key) {
        None => Value::Null,
        Some(v) => wrapped(v, &format!("{path}.{key}"))?.unwrap_or(Value::Null),
    })
}

fn wrapped(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    Ok(text(v, path)?.map(|s| json!({ "value": s })))
}

fn relationship(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    let Some(raw) = text(v, path)? else {
        return Ok(None);
    };
    let spelled = raw.trim().to_ascii_lowercase().replace('_', "-");
    if vocab::RELATIONSHIPS.contains(&spelled.as_str()) {
        Ok(Some(Value::String(spelled)))
    } else {
        Err(RecordError::InvalidEnum(format!(
            "'{raw}' is not a relationship; valid values are: {}",
            vocab::RELATIONSHIPS.join(", ")
        )))
    }
}

fn object<'a>(
    v: &'a Value,
    path: &str,
    expected: &str,
) -> Result<&'a Map<String, Value>, RecordError> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(shape_error(path, expected, other)),
    }
}

fn date(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    let o = object(v, path, "an object {year, month, day}")?;
    let year = opt_wrapped(o, "year", path)?;
    let month = opt_wrapped(o, "month", path)?;
    let day = opt_wrapped(o, "day", path)?;
    if year.is_null() && month.is_null() && day.is_null() {
        return Ok(None);
    }
    Ok(Some(json!({ "year": year, "month": month, "day": day })))
}

/// A list where ORCID expects one: `null` is empty, a single object is a list of one.
fn list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single) => vec![single],
    }
}

fn external_ids(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    let entries = match v {
        Value::Array(_) => list(Some(v)),
        Value::Object(o) => list(o.get("external-id")),
        other => return Err(shape_error(path, "an object {\"external-id\": […]}", other)),
    };
    let mut ids = Vec::with_capacity(entries.len());
    for entry in entries {
        let id_path = format!("{path}.external-id");
        let o = object(entry, &id_path, "an object")?;
        let relationship = match o.get("external-id-relationship") {
            None => Value::Null,
            Some(r) => relationship(r, &id_path)?.unwrap_or(Value::Null),
        };
        ids.push(json!({
            "external-id-type": opt_text(o, "external-id-type", &id_path)?,
            "external-id-value": opt_text(o, "external-id-value", &id_path)?,
            "external-id-url": opt_wrapped(o, "external-id-url", &id_path)?,
            "external-id-relationship": relationship,
        }));
    }
    Ok(Some(json!({ "external-id": ids })))
}

fn title(v: &Value, path: &str, work: bool) -> Result<Option<Value>, RecordError> {
    let (main, subtitle, translated) = match v {
        Value::String(_) | Value::Number(_) => (
            wrapped(v, path)?.unwrap_or(Value::Null),
            Value::Null,
            Value::Null,
        ),
        Value::Object(o) => {
            let translated = match o.get("translated-title") {
                None | Some(Value::Null) => Value::Null,
                Some(Value::Object(t)) => {
                    let value = opt_text(t, "value", path)?;
                    let language = opt_text(t, "language-code", path)?;
                    if value.is_null() && language.is_null() {
                        Value::Null
                    } else {
                        json!({ "value": value, "language-code": language })
                    }
                }
                Some(other) => json!({
                    "value": text(other, path)?,
                    "language-code": null,
                }),
            };
            (
                opt_wrapped(o, "title", path)?,
                opt_wrapped(o, "subtitle", path)?,
                translated,
            )
        }
        other => return Err(shape_error(path, "an object {title, …}", other)),
    };
    Ok(Some(if work {
        json!({ "title": main, "subtitle": subtitle, "translated-title": translated })
    } else {
        json!({ "title": main, "translated-title": translated })
    }))
}

fn citation(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    let o = object(v, path, "an object {citation-type, citation-value}")?;
    let citation_type = match opt_text(o, "citation-type", path)? {
        Value::String(s) => Value::String(s.trim().to_ascii_lowercase().replace('_', "-")),
        other => other,
    };
    Ok(Some(json!({
        "citation-type": citation_type,
        "citation-value": opt_text(o, "citation-value", path)?,
    })))
}

fn contributors(v: &Value, path: &str, work: bool) -> Result<Option<Value>, RecordError> {
    let entries = match v {
        Value::Array(_) => list(Some(v)),
        Value::Object(o) => list(o.get("contributor")),
        other => return Err(shape_error(path, "an object {\"contributor\": […]}", other)),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let c_path = format!("{path}.contributor");
        let o = object(entry, &c_path, "an object")?;
        let orcid = match o.get("contributor-orcid") {
            None | Some(Value::Null) => Value::Null,
            Some(Value::Object(id)) => json!({
                "uri": opt_text(id, "uri", &c_path)?,
                "path": opt_text(id, "path", &c_path)?,
                "host": opt_text(id, "host", &c_path)?,
            }),
            Some(other) => {
                let raw = text(other, &c_path)?.unwrap_or_default();
                json!({ "uri": null, "path": raw, "host": null })
            }
        };
        let attributes = match o.get("contributor-attributes") {
            None | Some(Value::Null) => Value::Null,
            Some(a) => {
                let a = object(a, &c_path, "an object")?;
                let role = opt_text(a, "contributor-role", &c_path)?;
                if work {
                    json!({
                        "contributor-sequence": opt_text(a, "contributor-sequence", &c_path)?,
                        "contributor-role": role,
                    })
                } else {
                    json!({ "contributor-role": role })
                }
            }
        };
        out.push(json!({
            "contributor-orcid": orcid,
            "credit-name": opt_wrapped(o, "credit-name", &c_path)?,
            "contributor-email": opt_wrapped(o, "contributor-email", &c_path)?,
            "contributor-attributes": attributes,
        }));
    }
    Ok(Some(json!({ "contributor": out })))
}

fn organization(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    let o = object(
        v,
        path,
        "an object {name, address, disambiguated-organization}",
    )?;
    let address = match o.get("address") {
        None | Some(Value::Null) => Value::Null,
        Some(a) => {
            let a = object(
                a,
                &format!("{path}.address"),
                "an object {city, region, country}",
            )?;
            json!({
                "city": opt_text(a, "city", path)?,
                "region": opt_text(a, "region", path)?,
                "country": opt_text(a, "country", path)?,
            })
        }
    };
    let disambiguated = match o.get("disambiguated-organization") {
        None | Some(Value::Null) => Value::Null,
        Some(d) => {
            let d_path = format!("{path}.disambiguated-organization");
            let d = object(d, &d_path, "an object")?;
            json!({
                "disambiguated-organization-identifier": opt_text(d, "disambiguated-organization-identifier", &d_path)?,
                "disambiguation-source": opt_text(d, "disambiguation-source", &d_path)?,
            })
        }
    };
    Ok(Some(json!({
        "name": opt_text(o, "name", path)?,
        "address": address,
        "disambiguated-organization": disambiguated,
    })))
}

fn amount(v: &Value, path: &str) -> Result<Option<Value>, RecordError> {
    match v {
        Value::Object(o) => Ok(Some(json!({
            "value": opt_text(o, "value", path)?,
            "currency-code": opt_text(o, "currency-code", path)?,
        }))),
        other => Ok(text(other, path)?.map(|s| json!({ "value": s, "currency-code": null }))),
    }
}

/// The text at `pointer` in `content` (a JSON pointer), if it is a non-empty string.
pub fn string_at<'a>(content: &'a Value, pointer: &str) -> Option<&'a str> {
    content
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The `external-id` entries of canonical content.
pub fn external_id_entries(content: &Map<String, Value>) -> &[Value] {
    content
        .get("external-ids")
        .and_then(|ids| ids.get("external-id"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Normalises an external-id value the way ORCID's `PIDNormalizationService` does, in the
/// cases that matter for equality (DOIs, PubMed, ISBN/ISSN, arXiv, handles); `None` when the
/// value cannot be normalised (e.g. a DOI without `10.`).
pub fn normalize_id(id_type: &str, value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let lower = value.to_lowercase();
    match id_type {
        "doi" => {
            let start = lower.match_indices("10.").map(|(i, _)| i).find(|&i| {
                let rest = &lower[i + 3..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && rest[digits..].starts_with('/') && rest.len() > digits + 1
            })?;
            Some(lower[start..].trim().to_owned())
        }
        "pmid" => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            (!digits.is_empty()).then_some(digits)
        }
        "pmc" => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            (!digits.is_empty()).then(|| format!("PMC{digits}"))
        }
        "isbn" => {
            let kept: String = value
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'x' || *c == 'X')
                .map(|c| c.to_ascii_uppercase())
                .collect();
            matches!(kept.len(), 10 | 13).then_some(kept)
        }
        "issn" => {
            let kept: String = value
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'x' || *c == 'X')
                .map(|c| c.to_ascii_uppercase())
                .collect();
            (kept.len() == 8).then(|| format!("{}-{}", &kept[..4], &kept[4..]))
        }
        "arxiv" => {
            let stripped = ["https://arxiv.org/abs/", "http://arxiv.org/abs/", "arxiv:"]
                .iter()
                .find_map(|p| lower.strip_prefix(p))
                .unwrap_or(&lower);
            Some(stripped.trim().to_owned())
        }
        "handle" => {
            let stripped = ["https://hdl.handle.net/", "http://hdl.handle.net/", "hdl:"]
                .iter()
                .find_map(|p| lower.strip_prefix(p))
                .unwrap_or(&lower);
            Some(stripped.trim().to_owned())
        }
        "uri" => Some(value.to_owned()),
        _ => Some(lower),
    }
}

/// The key two external ids are compared by (§3.6): type, and the normalised value (the raw
/// one when it cannot be normalised, or when `normalise` is false, as for fundings).
pub fn id_key(entry: &Value, normalise: bool) -> Option<IdKey> {
    let id_type = string_at(entry, "/external-id-type")?;
    let value = string_at(entry, "/external-id-value")?;
    let value = if normalise {
        normalize_id(id_type, value).unwrap_or_else(|| value.to_owned())
    } else {
        value.to_owned()
    };
    Some(IdKey {
        id_type: id_type.to_owned(),
        value,
    })
}

/// Applies an RFC 7396 JSON merge patch: objects merge key by key, `null` removes, anything
/// else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doi_normalisation() {
        assert_eq!(
            normalize_id("doi", "https://doi.org/10.1/ABC").as_deref(),
            Some("10.1/abc")
        );
        assert_eq!(
            normalize_id("doi", "doi:10.1087/20120404").as_deref(),
            Some("10.1087/20120404")
        );
        assert_eq!(normalize_id("doi", "work:doi"), None);
        assert_eq!(
            normalize_id("isbn", "978-3-16-148410-0").as_deref(),
            Some("9783161484100")
        );
        assert_eq!(
            normalize_id("issn", "1741-4857").as_deref(),
            Some("1741-4857")
        );
        assert_eq!(normalize_id("pmid", "PMID:123").as_deref(), Some("123"));
        assert_eq!(
            normalize_id("grant_number", " AB-1 ").as_deref(),
            Some("ab-1")
        );
    }

    #[test]
    fn lenient_shapes_become_canonical() {
        let body = json!({
            "put-code": "123",
            "title": {"title": "T", "subtitle": null, "unknown": 1},
            "type": "journal-article",
            "journal-title": "J",
            "publication-date": {"year": 2020, "month": {"value": "01"}},
            "external-ids": {"external-id": {"external-id-type": "doi", "external-id-value": "10.1/x",
                              "external-id-url": "https://doi.org/10.1/x", "external-id-relationship": "SELF"}},
            "bogus": true,
        });
        let incoming = incoming(Section::Work, &body).unwrap();
        assert_eq!(incoming.put_code, Some(Ok(123)));
        let c = Value::Object(incoming.content);
        assert_eq!(
            c["title"],
            json!({"title": {"value": "T"}, "subtitle": null, "translated-title": null})
        );
        assert_eq!(c["journal-title"], json!({"value": "J"}));
        assert_eq!(
            c["publication-date"],
            json!({"year": {"value": "2020"}, "month": {"value": "01"}, "day": null})
        );
        assert_eq!(
            c["external-ids"]["external-id"][0]["external-id-url"],
            json!({"value": "https://doi.org/10.1/x"})
        );
        assert_eq!(
            c["external-ids"]["external-id"][0]["external-id-relationship"],
            json!("self")
        );
        assert!(c.get("bogus").is_none());
        assert_eq!(c["url"], Value::Null);
    }

    #[test]
    fn wrong_shapes_are_9047() {
        let err = incoming(Section::Work, &json!({"external-ids": "x"})).unwrap_err();
        assert_eq!(err.code(), 9047);
        let err = incoming(Section::Work, &json!([1])).unwrap_err();
        assert_eq!(err.code(), 9047);
        let err = incoming(Section::Work, &json!({"visibility": "secret"})).unwrap_err();
        assert_eq!(err.code(), 9051);
    }

    #[test]
    fn merge_patch_rfc7396() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut target, &json!({"a": null, "b": {"c": 5}, "e": "x"}));
        assert_eq!(target, json!({"b": {"c": 5, "d": 3}, "e": "x"}));
    }
}
