//! ORCID's API-side validation of one item (reference §3.3–§3.5, §3.7; ORCID-Source
//! `ActivityValidator`, `ExternalIDValidator`, `OrgManagerImpl`), in ORCID's order so that the
//! first failure a client meets is the one ORCID would report.
//!
//! Put-code (9019/9024), visibility (9035), source (9010) and duplicate (9021/9030) checks
//! depend on the stored state and live in the store.

use serde_json::{Map, Value};

use super::error::RecordError;
use super::model::Section;
use super::normalize::{external_id_entries, string_at};
use super::orgs::{self, KnownOrgs};
use super::vocab;

/// What validation needs besides the item.
pub struct Context<'a> {
    /// Organizations ORCID's database holds.
    pub orgs: &'a KnownOrgs,
    /// The simulator's origin: contributor iD URIs under it are accepted as if on orcid.org.
    pub public_url: &'a str,
}

/// Validates canonical `content` for `section`, rewriting accepted aliases (work types) to
/// their stored form.
pub fn validate(
    section: Section,
    content: &mut Map<String, Value>,
    ctx: &Context<'_>,
) -> Result<(), RecordError> {
    match section {
        Section::Work => work(content, ctx),
        Section::Funding => funding(content, ctx),
        Section::OtherName | Section::Keyword => {
            required_text(content, "content", section.activity_name())
        }
        Section::ResearcherUrl => {
            if string_at(&Value::Object(content.clone()), "/url/value").is_none() {
                return Err(RecordError::Validation(
                    "Researcher url: url is required".into(),
                ));
            }
            Ok(())
        }
        Section::Address => {
            let Some(country) = content
                .get("country")
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str)
            else {
                return Err(RecordError::Validation(
                    "Address: country is required".into(),
                ));
            };
            check_country(country)
        }
        Section::ExternalIdentifier => person_external_id(content),
        _ => affiliation(section, content, ctx),
    }
}

fn required_text(content: &Map<String, Value>, key: &str, what: &str) -> Result<(), RecordError> {
    match content.get(key).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(()),
        _ => Err(RecordError::Validation(format!(
            "The {what} {key} cannot be empty"
        ))),
    }
}

fn as_value(content: &Map<String, Value>) -> Value {
    Value::Object(content.clone())
}

fn invalid_type(what: &str, values: &[&str]) -> RecordError {
    RecordError::InvalidType {
        what: what.to_owned(),
        values: values.join(", "),
    }
}

fn check_country(country: &str) -> Result<(), RecordError> {
    if vocab::is_country(country) {
        Ok(())
    } else {
        Err(RecordError::InvalidType {
            what: "country".to_owned(),
            values: vocab::COUNTRIES.replace(' ', ", "),
        })
    }
}

fn check_language(code: &str, what: &str) -> Result<(), RecordError> {
    if vocab::is_language(code) {
        Ok(())
    } else {
        Err(RecordError::InvalidType {
            what: what.to_owned(),
            values: vocab::LANGUAGES.replace(' ', ", "),
        })
    }
}

fn work(content: &mut Map<String, Value>, ctx: &Context<'_>) -> Result<(), RecordError> {
    let doc = as_value(content);
    if string_at(&doc, "/title/title/value").is_none() {
        return Err(RecordError::TitleRequired);
    }
    for (pointer, max) in [
        ("/title/title/value", 1000),
        ("/title/subtitle/value", 1000),
        ("/title/translated-title/value", 1000),
        ("/journal-title/value", 1000),
        ("/short-description", 5000),
    ] {
        if doc
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_some_and(|s| s.chars().count() > max)
        {
            return Err(RecordError::Validation(format!(
                "{} is longer than {max} characters",
                pointer.trim_start_matches('/').replace('/', " -> ")
            )));
        }
    }
    if let Some(country) = doc.pointer("/country/value").and_then(Value::as_str) {
        check_country(country)?;
    }
    translated_title(&doc)?;
    let Some(work_type) = doc.get("type").and_then(Value::as_str) else {
        return Err(invalid_type("work type", vocab::WORK_TYPES));
    };
    let work_type = work_type.trim().to_ascii_lowercase().replace('_', "-");
    let stored = if vocab::WORK_TYPES.contains(&work_type.as_str()) {
        work_type
    } else if let Some((_, canonical)) = vocab::WORK_TYPE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == work_type)
    {
        (*canonical).to_owned()
    } else {
        return Err(invalid_type("work type", vocab::WORK_TYPES));
    };
    content.insert("type".to_owned(), Value::String(stored));
    if let Some(language) = string_at(&doc, "/language-code") {
        check_language(language, "language code")?;
    }
    if let Some(date) = doc.get("publication-date").filter(|d| !d.is_null()) {
        fuzzy_date(date)?;
    }
    if let Some(citation) = doc.get("citation").filter(|c| !c.is_null()) {
        match citation.get("citation-type").and_then(Value::as_str) {
            Some(t) if vocab::CITATION_TYPES.contains(&t) => {}
            _ => return Err(invalid_type("citation type", vocab::CITATION_TYPES)),
        }
        if string_at(citation, "/citation-value").is_none() {
            return Err(RecordError::Validation(
                "Please specify a citation or remove the parent tag".into(),
            ));
        }
    }
    if external_id_entries(content).is_empty() {
        return Err(RecordError::ExternalId(
            "Invalid external-id  At least one identifier with 'self' relationship is required"
                .into(),
        ));
    }
    contributors(&doc, true, ctx)?;
    external_ids(content, true)
}

fn translated_title(doc: &Value) -> Result<(), RecordError> {
    let Some(translated) = doc
        .pointer("/title/translated-title")
        .filter(|t| !t.is_null())
    else {
        return Ok(());
    };
    let text = string_at(translated, "/value");
    let language = string_at(translated, "/language-code");
    match (text, language) {
        (None, Some(_)) => Err(RecordError::Validation(
            "Please specify a translated title or remove the language code".into(),
        )),
        (Some(_), None) => Err(invalid_type(
            "translated title -> language code",
            &vocab::LANGUAGES.split(' ').collect::<Vec<_>>(),
        )),
        (Some(_), Some(code)) => check_language(code, "translated title -> language code"),
        (None, None) => Ok(()),
    }
}

fn contributors(doc: &Value, work: bool, ctx: &Context<'_>) -> Result<(), RecordError> {
    let Some(list) = doc
        .pointer("/contributors/contributor")
        .and_then(Value::as_array)
    else {
        return Ok(());
    };
    for contributor in list {
        if let Some(id) = contributor
            .get("contributor-orcid")
            .filter(|v| !v.is_null())
        {
            if let Some(uri) = string_at(id, "/uri")
                && !is_valid_contributor_uri(uri, ctx.public_url)
            {
                return Err(RecordError::Validation("Invalid contributor URI".into()));
            }
            if let Some(path) = string_at(id, "/path")
                && (path.len() != 19 || orcid::OrcidId::parse(path).is_err())
            {
                return Err(RecordError::Validation("Invalid contributor ORCID".into()));
            }
        }
        if contributor.get("credit-name").is_some_and(|c| !c.is_null())
            && string_at(contributor, "/credit-name/value").is_none()
        {
            return Err(RecordError::Validation(
                "Please specify a contributor credit name or remove the empty tag".into(),
            ));
        }
        if contributor
            .get("contributor-email")
            .is_some_and(|c| !c.is_null())
            && string_at(contributor, "/contributor-email/value").is_none()
        {
            return Err(RecordError::Validation(
                "Please specify a contributor email or remove the empty tag".into(),
            ));
        }
        if let Some(role) = string_at(contributor, "/contributor-attributes/contributor-role") {
            let roles = if work {
                vocab::WORK_CONTRIBUTOR_ROLES
            } else {
                vocab::FUNDING_CONTRIBUTOR_ROLES
            };
            if !roles.contains(&role) && !vocab::is_credit_role(role) {
                return Err(RecordError::InvalidContributorRole(role.to_owned()));
            }
        }
        if let Some(sequence) =
            string_at(contributor, "/contributor-attributes/contributor-sequence")
            && !vocab::CONTRIBUTOR_SEQUENCES.contains(&sequence)
        {
            return Err(RecordError::InvalidEnum(format!(
                "'{sequence}' is not a contributor sequence; valid values are: first, additional"
            )));
        }
    }
    Ok(())
}

/// ORCID's `https://([^/]*orcid\.org|localhost.*/orcid-web)/(\d{4}-){3,}\d{3}[\dX]`, plus the
/// simulator's own origin.
fn is_valid_contributor_uri(uri: &str, public_url: &str) -> bool {
    let path = if let Some(rest) = uri
        .strip_prefix(public_url.trim_end_matches('/'))
        .and_then(|r| r.strip_prefix('/'))
    {
        rest
    } else {
        let Some(rest) = uri.strip_prefix("https://") else {
            return false;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return false;
        };
        if !host.ends_with("orcid.org") {
            return false;
        }
        path
    };
    path.len() == 19 && orcid::OrcidId::parse(path).is_ok()
}

/// Checks every external id (type known, value present) and, for works, that one is `self`.
fn external_ids(content: &Map<String, Value>, require_self: bool) -> Result<(), RecordError> {
    let mut errors: Vec<String> = Vec::new();
    let mut has_self = false;
    for entry in external_id_entries(content) {
        match string_at(entry, "/external-id-type") {
            Some(t) if vocab::EXTERNAL_ID_TYPES.contains(&t) => {}
            other => errors.push(other.unwrap_or("null").to_owned()),
        }
        if string_at(entry, "/external-id-value").is_none() {
            errors.push("value".to_owned());
        }
        if entry
            .get("external-id-relationship")
            .and_then(Value::as_str)
            == Some("self")
        {
            has_self = true;
        }
    }
    if require_self && !has_self {
        errors.push("At least one identifier with 'self' relationship is required".to_owned());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RecordError::ExternalId(format!(
            "Invalid external-id {}",
            errors.iter().map(|e| format!(" {e}")).collect::<String>()
        )))
    }
}

fn funding(content: &mut Map<String, Value>, ctx: &Context<'_>) -> Result<(), RecordError> {
    let doc = as_value(content);
    if string_at(&doc, "/title/title/value").is_none() {
        return Err(RecordError::TitleRequired);
    }
    if let Some(translated) = doc
        .pointer("/title/translated-title")
        .filter(|t| !t.is_null())
        && string_at(translated, "/value").is_some()
    {
        let code = string_at(translated, "/language-code").unwrap_or("");
        check_language(code, "translated title -> language code")?;
    }
    match doc.get("type").and_then(Value::as_str) {
        Some(t) if vocab::FUNDING_TYPES.contains(&t) => {}
        _ => return Err(invalid_type("funding type", vocab::FUNDING_TYPES)),
    }
    if external_id_entries(content).is_empty() {
        return Err(RecordError::ExternalId(
            "Invalid external-id  an external identifier is required".into(),
        ));
    }
    if let Some(amount) = doc.get("amount").filter(|a| !a.is_null()) {
        let value = string_at(amount, "/value");
        let currency = string_at(amount, "/currency-code");
        match (value, currency) {
            (Some(_), None) => {
                return Err(RecordError::Validation(
                    "Please specify a currency code".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(RecordError::Validation(
                    "Please specify an amount or remove the amount tag".into(),
                ));
            }
            (Some(v), Some(_)) if v.trim().parse::<f64>().is_err() => {
                return Err(RecordError::InvalidAmount);
            }
            _ => {}
        }
    }
    disambiguated_org(&doc, ctx, true)?;
    dates(&doc)?;
    if let Some(country) = string_at(&doc, "/organization/address/country") {
        check_country(country)?;
    }
    contributors(&doc, false, ctx)?;
    external_ids(content, false)
}

/// Organization required (9046), disambiguated id required and known (9045).
fn disambiguated_org(doc: &Value, ctx: &Context<'_>, required: bool) -> Result<(), RecordError> {
    let Some(org) = doc.get("organization").filter(|o| !o.is_null()) else {
        return Err(RecordError::Org("organization is required".into()));
    };
    let id = string_at(
        org,
        "/disambiguated-organization/disambiguated-organization-identifier",
    );
    let Some(id) = id else {
        return if required {
            Err(RecordError::DisambiguatedOrg("disambiguated-organization with a disambiguated-organization-identifier is required".into()))
        } else {
            Ok(())
        };
    };
    let source = string_at(org, "/disambiguated-organization/disambiguation-source").unwrap_or("");
    if !orgs::SOURCES.contains(&source) {
        return Err(RecordError::DisambiguatedOrg(format!(
            "'{source}' is not a disambiguation source; valid values are: {}",
            orgs::SOURCES.join(", ")
        )));
    }
    if !ctx.orgs.contains(source, id) {
        return Err(RecordError::DisambiguatedOrg(format!(
            "No disambiguated organization {id} from source {source}"
        )));
    }
    Ok(())
}

fn affiliation(
    section: Section,
    content: &mut Map<String, Value>,
    ctx: &Context<'_>,
) -> Result<(), RecordError> {
    let doc = as_value(content);
    let org = doc.get("organization").filter(|o| !o.is_null());
    let city = org.and_then(|o| string_at(o, "/address/city"));
    let region = org.and_then(|o| string_at(o, "/address/region"));
    let country = org.and_then(|o| string_at(o, "/address/country"));
    if matches!(section, Section::Employment | Section::Education) {
        disambiguated_org(&doc, ctx, true)?;
        if city.is_none() || country.is_none() {
            return Err(RecordError::OrgAddress);
        }
    } else {
        let has_org_id = org
            .and_then(|o| {
                string_at(
                    o,
                    "/disambiguated-organization/disambiguated-organization-identifier",
                )
            })
            .is_some();
        if !has_org_id && external_id_entries(content).is_empty() {
            return Err(RecordError::ProfessionalActivityIds);
        }
        let Some(org) = org else {
            return Err(RecordError::Org("organization is required".into()));
        };
        if !has_org_id && string_at(org, "/name").is_none() {
            return Err(RecordError::Org(
                "an organization name or a disambiguated organization is required".into(),
            ));
        }
        disambiguated_org(&doc, ctx, false)?;
        if (city.is_some() || region.is_some()) && country.is_none() {
            return Err(RecordError::CountryRequired);
        }
    }
    if let Some(country) = country {
        check_country(country)?;
    }
    dates(&doc)?;
    if !external_id_entries(content).is_empty() {
        external_ids(content, false)?;
    }
    Ok(())
}

fn person_external_id(content: &Map<String, Value>) -> Result<(), RecordError> {
    let doc = as_value(content);
    for (pointer, name) in [
        ("/external-id-type", "type"),
        ("/external-id-value", "value"),
        ("/external-id-url/value", "url"),
    ] {
        if string_at(&doc, pointer).is_none() {
            return Err(RecordError::Validation(format!(
                "External identifier: {name} is required"
            )));
        }
    }
    match doc.get("external-id-relationship").and_then(Value::as_str) {
        Some("self") => Ok(()),
        _ => Err(RecordError::Validation(
            "External identifier: relationship must be self".into(),
        )),
    }
}

/// `end-date` needs `start-date` (9050); both must exist (9049); start not after end (9055).
fn dates(doc: &Value) -> Result<(), RecordError> {
    let start = doc.get("start-date").filter(|d| !d.is_null());
    let end = doc.get("end-date").filter(|d| !d.is_null());
    let end_parts = end.map(fuzzy_date).transpose()?;
    if end.is_some() && start.is_none() {
        return Err(RecordError::MissingStartDate);
    }
    let start_parts = start.map(fuzzy_date).transpose()?;
    if let (Some(s), Some(e)) = (start_parts, end_parts)
        && starts_after(s, e)
    {
        return Err(RecordError::StartAfterEnd);
    }
    Ok(())
}

/// Year, month and day of a fuzzy date (`None` for absent parts).
type DateParts = (i32, Option<u32>, Option<u32>);

fn starts_after(start: DateParts, end: DateParts) -> bool {
    if start.0 != end.0 {
        return start.0 > end.0;
    }
    match (start.1, end.1) {
        (Some(sm), Some(em)) if sm != em => sm > em,
        (Some(_), Some(_)) => matches!((start.2, end.2), (Some(sd), Some(ed)) if sd > ed),
        _ => false,
    }
}

/// ORCID's `validateFuzzyDate`: `yyyy`, `yyyy-MM` or `yyyy-MM-dd`, and the date must exist.
pub fn fuzzy_date(date: &Value) -> Result<DateParts, RecordError> {
    let part = |name: &str| {
        date.get(name)
            .and_then(|p| p.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (year, month, day) = (part("year"), part("month"), part("day"));
    let shown = |p: &Option<String>| p.clone().unwrap_or_else(|| "null".to_owned());
    let date_string = match (&month, &day) {
        (_, Some(_)) => format!("{}-{}-{}", shown(&year), shown(&month), shown(&day)),
        (Some(_), None) => format!("{}-{}", shown(&year), shown(&month)),
        (None, None) => shown(&year),
    };
    let invalid = || RecordError::InvalidDate(date_string.clone());
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    let year = year
        .as_deref()
        .filter(|y| digits(y, 4))
        .ok_or_else(invalid)?;
    let year: i32 = year.parse().map_err(|_| invalid())?;
    let month = match &month {
        None => None,
        Some(m) if digits(m, 2) => Some(m.parse::<u32>().map_err(|_| invalid())?),
        Some(_) => return Err(invalid()),
    };
    let day = match (&day, month) {
        (None, _) => None,
        (Some(d), Some(_)) if digits(d, 2) => Some(d.parse::<u32>().map_err(|_| invalid())?),
        _ => return Err(invalid()),
    };
    if let Some(m) = month {
        if !(1..=12).contains(&m) {
            return Err(invalid());
        }
        if let Some(d) = day
            && chrono::NaiveDate::from_ymd_opt(year, m, d).is_none()
        {
            return Err(invalid());
        }
    }
    Ok((year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn date(y: &str, m: Option<&str>, d: Option<&str>) -> Value {
        json!({"year": {"value": y}, "month": m.map(|m| json!({"value": m})), "day": d.map(|d| json!({"value": d}))})
    }

    #[test]
    fn fuzzy_dates() {
        assert_eq!(
            fuzzy_date(&date("2021", Some("02"), Some("28"))).unwrap(),
            (2021, Some(2), Some(28))
        );
        assert_eq!(
            fuzzy_date(&date("2020", Some("02"), Some("29"))).unwrap(),
            (2020, Some(2), Some(29))
        );
        assert_eq!(
            fuzzy_date(&date("2021", Some("02"), Some("29")))
                .unwrap_err()
                .code(),
            9049
        );
        assert_eq!(
            fuzzy_date(&date("2021", Some("13"), None))
                .unwrap_err()
                .code(),
            9049
        );
        assert_eq!(
            fuzzy_date(&date("2021", Some("1"), None))
                .unwrap_err()
                .code(),
            9049
        );
        assert_eq!(
            fuzzy_date(&date("2021", None, Some("01")))
                .unwrap_err()
                .code(),
            9049
        );
        assert_eq!(
            fuzzy_date(&date("21", None, None)).unwrap_err().code(),
            9049
        );
    }

    #[test]
    fn start_after_end_compares_common_precision() {
        assert!(starts_after((2021, None, None), (2020, Some(1), None)));
        assert!(!starts_after((2020, Some(5), None), (2020, None, None)));
        assert!(starts_after(
            (2020, Some(5), Some(2)),
            (2020, Some(5), Some(1))
        ));
        assert!(!starts_after(
            (2020, Some(5), Some(1)),
            (2020, Some(5), Some(1))
        ));
    }

    #[test]
    fn contributor_uris() {
        assert!(is_valid_contributor_uri(
            "https://orcid.org/0000-0002-1825-0097",
            "http://127.0.0.1:1"
        ));
        assert!(is_valid_contributor_uri(
            "https://sandbox.orcid.org/0000-0002-1825-0097",
            "http://127.0.0.1:1"
        ));
        assert!(is_valid_contributor_uri(
            "http://127.0.0.1:1/0000-0002-1825-0097",
            "http://127.0.0.1:1"
        ));
        assert!(!is_valid_contributor_uri(
            "http://orcid.org/0000-0002-1825-0097",
            "http://127.0.0.1:1"
        ));
        assert!(!is_valid_contributor_uri(
            "https://example.org/0000-0002-1825-0097",
            "http://127.0.0.1:1"
        ));
    }
}
