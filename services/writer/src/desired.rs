//! What an HR event means for ORCID: the checked event, the affiliation body the item should
//! have, its hash, and the `self` external id that makes the item ours.
//!
//! Parse, don't validate: [`CheckedHrEvent::check`] turns an [`HrEvent`] into ORCID types
//! once (section, dates, organization), or says which field is wrong; everything after it
//! works on the checked form.

use bus::events::{AffiliationSection, HrEvent, HrEventType, Section};
use orcid::OrcidId;
use orcid::model::{
    Affiliation, AffiliationType, ContributorAttributes, ContributorRole, Contributors,
    DisambiguationSource, ExternalId, ExternalIds, FuzzyDate, OrcidIdentifier, Organization,
    PartialDate, PutCode, Relationship, Work, WorkSummary, WorkTitle, WorkType,
};

/// The external-id type of the writer's `self` id on affiliations (one of the identifier
/// types ORCID accepts on activities).
pub const SELF_ID_TYPE: &str = "other-id";
/// The external-id type of the writer's `self` id on works ("a non-standard id from the
/// work's data source").
pub const WORK_SELF_ID_TYPE: &str = "source-work-id";
/// Prefix of the writer's `self` id values.
pub const SELF_ID_PREFIX: &str = "idbridge-";

/// Why an HR event cannot be applied. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// A required text is empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A date ORCID would not accept.
    #[error("{field} {value:?} is not a real date: {reason}")]
    Date {
        /// `position.start_date` or `position.end_date`.
        field: &'static str,
        /// As sent.
        value: String,
        /// Why.
        reason: String,
    },
    /// The end is before the start.
    #[error("position.end_date {end} is before position.start_date {start}")]
    EndBeforeStart {
        /// Start.
        start: String,
        /// End.
        end: String,
    },
    /// An end date without a start date (ORCID error 9050).
    #[error("position.end_date {end} has no start date (neither in the event nor on the item)")]
    EndWithoutStart {
        /// End.
        end: String,
    },
    /// A work type ORCID does not know.
    #[error("work.type {0:?} is not an ORCID work type (journal-article, book, dataset, …)")]
    WorkType(String),
    /// `leave` without `position.end_date`.
    #[error("a leave event needs position.end_date")]
    LeaveWithoutEnd,
    /// The organization override is unusable.
    #[error("position.organization: {0}")]
    Organization(String),
    /// An external id is unusable.
    #[error("{field}[{index}]: {problem}")]
    ExternalId {
        /// `position.external_ids` or `work.external_ids`.
        field: &'static str,
        /// Which one (0-based).
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// An HR event whose fields are ORCID types.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedHrEvent {
    /// The ORCID section.
    pub kind: AffiliationType,
    /// Department, when the event gives one.
    pub department: Option<String>,
    /// Role title, when the event gives one.
    pub role_title: Option<String>,
    /// Start, when given.
    pub start: Option<PartialDate>,
    /// End, when given.
    pub end: Option<PartialDate>,
    /// An organization other than the institution, when given.
    pub organization: Option<Organization>,
    /// A page about the position, when given.
    pub url: Option<String>,
    /// The position's own identifiers (e.g. a grant number), when given; they replace the
    /// item's.
    pub external_ids: Vec<ExternalId>,
}

impl CheckedHrEvent {
    /// Checks everything an event can be checked for on its own.
    ///
    /// # Errors
    /// [`InvalidEvent`] naming the field.
    pub fn check(event: &HrEvent) -> Result<Self, InvalidEvent> {
        if event.event_id.trim().is_empty() {
            return Err(InvalidEvent::Empty("event_id"));
        }
        if event.person.person_id.trim().is_empty() {
            return Err(InvalidEvent::Empty("person.person_id"));
        }
        let position = &event.position;
        if position.position_id.trim().is_empty() {
            return Err(InvalidEvent::Empty("position.position_id"));
        }
        let date = |field: &'static str, value: Option<&bus::events::PartialDate>| {
            value
                .map(|v| {
                    v.as_str()
                        .parse::<PartialDate>()
                        .map_err(|e| InvalidEvent::Date {
                            field,
                            value: v.as_str().to_owned(),
                            reason: e.to_string(),
                        })
                })
                .transpose()
        };
        let start = date("position.start_date", position.start_date.as_ref())?;
        let end = date("position.end_date", position.end_date.as_ref())?;
        if let (Some(start), Some(end)) = (start, end)
            && ends_before(end, start)
        {
            return Err(InvalidEvent::EndBeforeStart {
                start: start.to_string(),
                end: end.to_string(),
            });
        }
        if event.event_type == HrEventType::Leave && end.is_none() {
            return Err(InvalidEvent::LeaveWithoutEnd);
        }
        let organization = position
            .organization
            .as_ref()
            .map(organization_from_event)
            .transpose()?;
        let external_ids = position
            .external_ids
            .iter()
            .enumerate()
            .map(|(index, id)| external_id_from_event("position.external_ids", index, id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            kind: affiliation_type(position.section),
            department: non_empty(position.department.as_deref()),
            role_title: non_empty(position.role_title.as_deref()),
            start,
            end,
            organization,
            url: non_empty(position.url.as_deref()),
            external_ids,
        })
    }
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn external_id_from_event(
    field: &'static str,
    index: usize,
    id: &bus::events::ExternalId,
) -> Result<ExternalId, InvalidEvent> {
    let problem = |problem| InvalidEvent::ExternalId {
        field,
        index,
        problem,
    };
    let id_type = id.id_type.trim();
    let value = id.value.trim();
    if id_type.is_empty() {
        return Err(problem("type is empty"));
    }
    if value.is_empty() {
        return Err(problem("value is empty"));
    }
    if is_ours(id_type, value) {
        return Err(problem(
            "values starting with idbridge- are reserved for the writer's own id",
        ));
    }
    let relationship = match id.relationship {
        bus::events::Relationship::SelfId => Relationship::SelfId,
        bus::events::Relationship::PartOf => Relationship::PartOf,
        bus::events::Relationship::VersionOf => Relationship::VersionOf,
        bus::events::Relationship::FundedBy => Relationship::FundedBy,
    };
    let external = ExternalId::new(id_type, value, relationship);
    Ok(match non_empty(id.url.as_deref()) {
        Some(url) => external.with_url(url),
        None => external,
    })
}

/// Whether an external id is one of the writer's own `self` ids.
pub fn is_ours(id_type: &str, value: &str) -> bool {
    (id_type == SELF_ID_TYPE || id_type == WORK_SELF_ID_TYPE) && value.starts_with(SELF_ID_PREFIX)
}

fn organization_from_event(org: &bus::events::Organization) -> Result<Organization, InvalidEvent> {
    if org.name.trim().is_empty() {
        return Err(InvalidEvent::Organization("name is empty".into()));
    }
    if org.city.trim().is_empty() {
        return Err(InvalidEvent::Organization("city is empty".into()));
    }
    let country = org.country.trim();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(InvalidEvent::Organization(
            "country must be an ISO 3166-1 alpha-2 code such as US".into(),
        ));
    }
    let region = non_empty(org.region.as_deref());
    match (&org.disambiguated_id, &org.disambiguation_source) {
        (Some(id), Some(source)) if !id.trim().is_empty() => {
            let source = DisambiguationSource::parse(source.trim());
            if !source.is_known() {
                return Err(InvalidEvent::Organization(
                    "disambiguation_source must be ROR, RINGGOLD, GRID, FUNDREF or LEI".into(),
                ));
            }
            Ok(Organization::new(
                org.name.trim(),
                org.city.trim(),
                region,
                country,
                source,
                id.trim(),
            ))
        }
        (None, None) => {
            let mut organization = Organization::new(
                org.name.trim(),
                org.city.trim(),
                region,
                country,
                DisambiguationSource::Ror,
                "",
            );
            organization.disambiguated_organization = None;
            Ok(organization)
        }
        _ => Err(InvalidEvent::Organization(
            "disambiguated_id and disambiguation_source go together".into(),
        )),
    }
}

/// Whether `end` is before `start`, comparing only the parts both have (`2024` does not end
/// before `2024-05`).
pub fn ends_before(end: PartialDate, start: PartialDate) -> bool {
    if end.year() != start.year() {
        return end.year() < start.year();
    }
    match (end.month(), start.month()) {
        (Some(em), Some(sm)) if em != sm => em < sm,
        (Some(_), Some(_)) => matches!((end.day(), start.day()), (Some(ed), Some(sd)) if ed < sd),
        _ => false,
    }
}

/// The ORCID affiliation type of an HR section.
pub fn affiliation_type(section: AffiliationSection) -> AffiliationType {
    match section {
        AffiliationSection::Employment => AffiliationType::Employment,
        AffiliationSection::Education => AffiliationType::Education,
        AffiliationSection::Qualification => AffiliationType::Qualification,
        AffiliationSection::InvitedPosition => AffiliationType::InvitedPosition,
        AffiliationSection::Distinction => AffiliationType::Distinction,
        AffiliationSection::Membership => AffiliationType::Membership,
        AffiliationSection::Service => AffiliationType::Service,
    }
}

/// The event contracts' section of an affiliation type.
pub fn event_section(kind: AffiliationType) -> Section {
    match kind {
        AffiliationType::Employment => Section::Employment,
        AffiliationType::Education => Section::Education,
        AffiliationType::Qualification => Section::Qualification,
        AffiliationType::InvitedPosition => Section::InvitedPosition,
        AffiliationType::Distinction => Section::Distinction,
        AffiliationType::Membership => Section::Membership,
        AffiliationType::Service => Section::Service,
    }
}

/// The writer's `self` external id for one appointment: opaque (the institution's person
/// and position ids do not appear on the public record), stable, and different for each
/// rehire, so ORCID's own duplicate check (409, 9021) refuses a second item for the same
/// appointment and names the first.
pub fn self_external_id(person_id: &str, item_key: &str, generation: i32) -> ExternalId {
    let digest =
        sha256_hex(format!("affiliation\n{person_id}\n{item_key}\n{generation}").as_bytes());
    ExternalId::self_id(SELF_ID_TYPE, format!("{SELF_ID_PREFIX}{}", &digest[..32]))
}

/// The writer's `self` external id for a work of the repository (stable per person and
/// `work_id`; opaque like [`self_external_id`]).
pub fn work_self_id(person_id: &str, work_id: &str) -> ExternalId {
    let digest = sha256_hex(format!("work\n{person_id}\n{work_id}").as_bytes());
    ExternalId::self_id(
        WORK_SELF_ID_TYPE,
        format!("{SELF_ID_PREFIX}{}", &digest[..32]),
    )
}

/// Whether `ids` carry `id` as a `self` id.
pub fn has_self_id(ids: Option<&ExternalIds>, id: &ExternalId) -> bool {
    ids.is_some_and(|ids| {
        ids.self_ids()
            .any(|x| x.id_type == id.id_type && x.comparable_value() == id.value)
    })
}

/// Whether `ids` carry any of the writer's own `self` ids (for some item).
pub fn has_any_of_ours(ids: Option<&ExternalIds>) -> bool {
    ids.is_some_and(|ids| ids.iter().any(|id| is_ours(&id.id_type, &id.value)))
}

/// Builds the desired body: the previous desired content (if any) with the event's fields
/// over it; a new item starts from the institution's organization.
///
/// # Errors
/// [`InvalidEvent`] when the merged dates do not make sense.
pub fn merge(
    previous: Option<&Affiliation>,
    event: &CheckedHrEvent,
    institution: &Organization,
    self_id: ExternalId,
) -> Result<Affiliation, InvalidEvent> {
    let mut body = match previous {
        Some(previous) => previous.clone(),
        None => Affiliation::new(institution.clone()),
    };
    if let Some(department) = &event.department {
        body.department_name = Some(department.clone());
    }
    if let Some(role) = &event.role_title {
        body.role_title = Some(role.clone());
    }
    if let Some(start) = event.start {
        body.start_date = Some(start.into());
    }
    if let Some(end) = event.end {
        body.end_date = Some(end.into());
    }
    if let Some(organization) = &event.organization {
        body.organization = Some(organization.clone());
    }
    if let Some(url) = &event.url {
        body.url = Some(url.clone());
    }
    // Our self id first, then the position's own ids: the event's when it gives some, else
    // the item's.
    let theirs: Vec<ExternalId> = if event.external_ids.is_empty() {
        body.external_ids
            .iter()
            .flat_map(|ids| ids.iter())
            .filter(|id| !is_ours(&id.id_type, &id.value))
            .cloned()
            .collect()
    } else {
        event.external_ids.clone()
    };
    body.external_ids = Some(std::iter::once(self_id).chain(theirs).collect());
    body.put_code = None;
    let body = body.into_write_body();
    let start = body.start_date.as_ref().and_then(FuzzyDate::valid);
    let end = body.end_date.as_ref().and_then(FuzzyDate::valid);
    match (start, end) {
        (None, Some(end)) => Err(InvalidEvent::EndWithoutStart {
            end: end.to_string(),
        }),
        (Some(start), Some(end)) if ends_before(end, start) => Err(InvalidEvent::EndBeforeStart {
            start: start.to_string(),
            end: end.to_string(),
        }),
        _ => Ok(body),
    }
}

/// The canonical JSON of a desired body, as stored in the ledger.
///
/// # Errors
/// Only if the model cannot serialize (it always can).
pub fn to_json(body: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    serde_json::to_string(body)
}

/// SHA-256 of the canonical JSON, hex: the ledger's `desired_hash`.
pub fn content_hash(json: &str) -> String {
    sha256_hex(json.as_bytes())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The parts of an affiliation that say "this is the same appointment" (the brief's
/// adoption rule): organization, role, department, start date.
fn identity(a: &Affiliation) -> impl PartialEq + '_ {
    let org = a.organization.as_ref();
    (
        org.and_then(|o| o.name.as_deref().map(str::trim)),
        org.and_then(|o| o.disambiguated_organization.as_ref())
            .map(|d| {
                (
                    d.identifier.as_deref(),
                    d.source.as_ref().map(|s| s.as_str()),
                )
            }),
        a.role_title.as_deref().map(str::trim),
        a.department_name.as_deref().map(str::trim),
        a.start_date.as_ref().and_then(FuzzyDate::valid),
    )
}

/// Whether an item found on the record is the same appointment as `desired` (used when it
/// carries no `self` id of ours).
pub fn same_appointment(found: &Affiliation, desired: &Affiliation) -> bool {
    identity(found) == identity(desired)
}

/// Whether an item found on the record already has every field `desired` sets, so no PUT is
/// needed.
pub fn same_content(found: &Affiliation, desired: &Affiliation) -> bool {
    let address = |a: &Affiliation| {
        a.organization
            .as_ref()
            .and_then(|o| o.address.as_ref())
            .map(|ad| (ad.city.clone(), ad.region.clone(), ad.country.clone()))
    };
    let ids = |a: &Affiliation| {
        let mut ids: Vec<(String, String, Option<String>, Option<String>)> = a
            .external_ids
            .iter()
            .flat_map(|ids| ids.iter())
            .map(|id| {
                (
                    id.id_type.clone(),
                    id.comparable_value().to_owned(),
                    id.relationship.as_ref().map(|r| r.as_str().to_owned()),
                    id.url.clone(),
                )
            })
            .collect();
        ids.sort();
        ids
    };
    same_appointment(found, desired)
        && found.end_date.as_ref().and_then(FuzzyDate::valid)
            == desired.end_date.as_ref().and_then(FuzzyDate::valid)
        && address(found) == address(desired)
        && found.url == desired.url
        && ids(found) == ids(desired)
}

/// A work event's work as ORCID's write body: our `self` id first, then the repository's
/// ids. `contributor_origin` is the registry's web origin (`https://orcid.org`), for the
/// contributors' iD URIs.
///
/// # Errors
/// [`InvalidEvent`] naming the field.
pub fn work_body(
    event: &bus::events::WorkEvent,
    contributor_origin: &str,
) -> Result<Work, InvalidEvent> {
    if event.event_id.trim().is_empty() {
        return Err(InvalidEvent::Empty("event_id"));
    }
    if event.person_id.trim().is_empty() {
        return Err(InvalidEvent::Empty("person_id"));
    }
    let work = &event.work;
    if work.work_id.trim().is_empty() {
        return Err(InvalidEvent::Empty("work.work_id"));
    }
    let Some(title) = non_empty(Some(&work.title)) else {
        return Err(InvalidEvent::Empty("work.title"));
    };
    let work_type = WorkType::parse(work.work_type.trim());
    if !work_type.is_known() {
        return Err(InvalidEvent::WorkType(work.work_type.clone()));
    }
    let publication_date = work
        .publication_date
        .as_ref()
        .map(|d| {
            d.as_str()
                .parse::<PartialDate>()
                .map_err(|e| InvalidEvent::Date {
                    field: "work.publication_date",
                    value: d.as_str().to_owned(),
                    reason: e.to_string(),
                })
        })
        .transpose()?;
    let mut ids = vec![work_self_id(&event.person_id, &work.work_id)];
    for (index, id) in work.external_ids.iter().enumerate() {
        ids.push(external_id_from_event("work.external_ids", index, id)?);
    }
    let origin = contributor_origin.trim_end_matches('/');
    let host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .to_owned();
    let contributors: Vec<orcid::model::Contributor> = work
        .contributors
        .iter()
        .map(|c| orcid::model::Contributor {
            contributor_orcid: c.orcid.map(|id: OrcidId| OrcidIdentifier {
                uri: Some(format!("{origin}/{id}")),
                path: Some(id.into()),
                host: Some(host.clone()),
                ..OrcidIdentifier::default()
            }),
            credit_name: non_empty(Some(&c.name)),
            contributor_attributes: non_empty(c.role.as_deref()).map(|role| {
                ContributorAttributes {
                    contributor_role: Some(ContributorRole::parse(&role)),
                    ..ContributorAttributes::default()
                }
            }),
            ..orcid::model::Contributor::default()
        })
        .collect();
    Ok(Work {
        title: Some(WorkTitle {
            subtitle: non_empty(work.subtitle.as_deref()),
            ..WorkTitle::new(title)
        }),
        work_type: Some(work_type),
        publication_date: publication_date.map(FuzzyDate::from),
        journal_title: non_empty(work.journal_title.as_deref()),
        external_ids: Some(ExternalIds::new(ids)),
        url: non_empty(work.url.as_deref()),
        contributors: (!contributors.is_empty()).then(|| Contributors {
            contributor: contributors,
            ..Contributors::default()
        }),
        ..Work::default()
    })
}

/// Whether a work found on the record is the same output as `desired` without carrying our
/// `self` id: it shares one of the repository's `self` ids (a DOI, a handle).
pub fn same_work(found: &WorkSummary, desired: &Work) -> bool {
    desired
        .external_ids
        .iter()
        .flat_map(|ids| ids.self_ids())
        .filter(|id| !is_ours(&id.id_type, &id.value))
        .any(|id| has_self_id(found.external_ids.as_ref(), id))
}

/// A put code as the ledger stores it (ORCID's are far below `i64::MAX`).
pub fn put_code_to_db(put_code: PutCode) -> Option<i64> {
    i64::try_from(put_code.get()).ok()
}

/// A stored put code.
pub fn put_code_from_db(value: i64) -> Option<PutCode> {
    u64::try_from(value).ok().map(PutCode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> PartialDate {
        s.parse().unwrap()
    }

    #[test]
    fn end_before_start_compares_common_parts() {
        assert!(ends_before(date("2023"), date("2024-05")));
        assert!(ends_before(date("2024-04"), date("2024-05")));
        assert!(ends_before(date("2024-05-01"), date("2024-05-02")));
        assert!(!ends_before(date("2024"), date("2024-05")));
        assert!(!ends_before(date("2024-05"), date("2024-05-31")));
        assert!(!ends_before(date("2024-05-02"), date("2024-05-02")));
    }

    #[test]
    fn self_ids_differ_per_generation_and_hide_the_ids() {
        let a = self_external_id("P-1", "POS-1", 1);
        let b = self_external_id("P-1", "POS-1", 2);
        assert_ne!(a.value, b.value);
        assert!(!a.value.contains("POS-1"));
        assert_eq!(a, self_external_id("P-1", "POS-1", 1));
    }

    #[test]
    fn content_hash_is_hex_sha256() {
        assert_eq!(
            content_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
