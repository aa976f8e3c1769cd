//! Every refusal of the records side, each with ORCID's HTTP status, error code and message
//! (reference §4.1, §4.3).
//!
//! ORCID builds a developer message as "{status} {reason}: {template}", then
//! " Full validation error: {detail}" where the exception carries one. The templates below
//! follow ORCID's `api_en.properties` where it has one; where it does not, the text says the
//! same thing in ORCID's style.

use orcid::OrcidId;
use serde_json::{Value, json};

use crate::errors::MORE_INFO;

/// A request the records side refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// 400 9001: the body is not JSON.
    #[error("unparseable JSON: {0}")]
    Unparseable(String),
    /// 400 9047: JSON of the wrong shape.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// 400 9006: a bad request, e.g. a non-numeric put code in a bulk read.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 400 9006: more than 100 works in one bulk POST.
    #[error("bulk too large: {max}")]
    BulkTooLarge {
        /// The limit (100).
        max: usize,
    },
    /// 400 9019: put code in the body differs from the URL.
    #[error("put code mismatch")]
    PutCodeMismatch {
        /// From the URL.
        url: u64,
        /// From the body (`None` when absent).
        body: Option<String>,
    },
    /// 400 9020: an invalid incoming message (ORCID's catch-all validation error).
    #[error("invalid message: {0}")]
    Validation(String),
    /// 400 9022: missing title.
    #[error("title required")]
    TitleRequired,
    /// 400 9023: external identifiers missing or invalid.
    #[error("external id: {0}")]
    ExternalId(String),
    /// 400 9024: a put code on POST.
    #[error("put code on create")]
    PutCodeOnCreate,
    /// 400 9034: a put code that names nothing (bulk read entries).
    #[error("invalid put code {0}")]
    InvalidPutCode(String),
    /// 400 9037: a value outside its vocabulary.
    #[error("invalid {what}")]
    InvalidType {
        /// What was invalid, e.g. "work type".
        what: String,
        /// The valid values, comma separated.
        values: String,
    },
    /// 400 9042: more than 100 put codes in a bulk read.
    #[error("too many put codes")]
    TooManyPutCodes,
    /// 400 9045: disambiguated organization missing, empty or unknown.
    #[error("disambiguated organization: {0}")]
    DisambiguatedOrg(String),
    /// 400 9046: organization missing or invalid.
    #[error("organization: {0}")]
    Org(String),
    /// 400 9049: a date that does not exist.
    #[error("invalid date {0}")]
    InvalidDate(String),
    /// 400 9050: end date without start date.
    #[error("end date without start date")]
    MissingStartDate,
    /// 400 9051: an enum value that does not exist.
    #[error("invalid enum value {0}")]
    InvalidEnum(String),
    /// 400 9054: a funding amount that is not a number.
    #[error("invalid amount")]
    InvalidAmount,
    /// 400 9055: start date after end date.
    #[error("start date after end date")]
    StartAfterEnd,
    /// 400 9058: unknown contributor role.
    #[error("invalid contributor role {0}")]
    InvalidContributorRole(String),
    /// 400 9060: employment/education without city and country.
    #[error("org address: city and country required")]
    OrgAddress,
    /// 400 9061: city or region without country.
    #[error("org address: country required")]
    CountryRequired,
    /// 400 9062: a professional activity with neither a disambiguated org nor an external id.
    #[error("professional activity without org id or external id")]
    ProfessionalActivityIds,
    /// 403 9010: not the item's source.
    #[error("not the source of the {activity}")]
    NotSource {
        /// "work", "employment", …
        activity: &'static str,
    },
    /// 403 9013: a private item, and the caller is not its source.
    #[error("private item")]
    Private,
    /// 403 9035: PUT tried to change the visibility.
    #[error("visibility change")]
    VisibilityChange,
    /// 403 9039: not public, and the caller may only read public data.
    #[error("not public")]
    NotPublic,
    /// 404 9016: no such item (or no such record).
    #[error("not found")]
    NotFound,
    /// 404 9041: the record has no biography.
    #[error("no biography")]
    NoBiography,
    /// 301 (GET) or 409 (writes) 9007: the record was merged into `primary`.
    #[error("deprecated")]
    Deprecated {
        /// This record.
        orcid: OrcidId,
        /// Where it went.
        primary: OrcidId,
        /// URI of the primary record, `{public_url}/{primary}`.
        primary_uri: String,
        /// Whether the request was a read (301) or a write (409).
        read: bool,
    },
    /// 409 9021: a duplicate of the item `put_code` from the same source.
    #[error("duplicate of {put_code}")]
    Duplicate {
        /// The existing item.
        put_code: u64,
    },
    /// 409 9030: a duplicate person element.
    #[error("duplicate element")]
    DuplicateElement {
        /// The duplicated value.
        value: String,
        /// Its type (section name).
        element: &'static str,
    },
    /// 409 9044: the record is deactivated.
    #[error("deactivated")]
    Deactivated {
        /// This record.
        orcid: OrcidId,
    },
    /// 409 9048: the record already holds the maximum number of works.
    #[error("too many works")]
    TooManyWorks {
        /// The limit.
        max: usize,
    },
}

impl RecordError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            RecordError::Deprecated { read: true, .. } => 301,
            RecordError::NotSource { .. }
            | RecordError::Private
            | RecordError::VisibilityChange
            | RecordError::NotPublic => 403,
            RecordError::NotFound | RecordError::NoBiography => 404,
            RecordError::Deprecated { read: false, .. }
            | RecordError::Duplicate { .. }
            | RecordError::DuplicateElement { .. }
            | RecordError::Deactivated { .. }
            | RecordError::TooManyWorks { .. } => 409,
            _ => 400,
        }
    }

    /// ORCID's error code.
    pub fn code(&self) -> u32 {
        match self {
            RecordError::Unparseable(_) => 9001,
            RecordError::InvalidJson(_) => 9047,
            RecordError::BadRequest(_) | RecordError::BulkTooLarge { .. } => 9006,
            RecordError::PutCodeMismatch { .. } => 9019,
            RecordError::Validation(_) => 9020,
            RecordError::TitleRequired => 9022,
            RecordError::ExternalId(_) => 9023,
            RecordError::PutCodeOnCreate => 9024,
            RecordError::InvalidPutCode(_) => 9034,
            RecordError::InvalidType { .. } => 9037,
            RecordError::TooManyPutCodes => 9042,
            RecordError::DisambiguatedOrg(_) => 9045,
            RecordError::Org(_) => 9046,
            RecordError::InvalidDate(_) => 9049,
            RecordError::MissingStartDate => 9050,
            RecordError::InvalidEnum(_) => 9051,
            RecordError::InvalidAmount => 9054,
            RecordError::StartAfterEnd => 9055,
            RecordError::InvalidContributorRole(_) => 9058,
            RecordError::OrgAddress => 9060,
            RecordError::CountryRequired => 9061,
            RecordError::ProfessionalActivityIds => 9062,
            RecordError::NotSource { .. } => 9010,
            RecordError::Private => 9013,
            RecordError::VisibilityChange => 9035,
            RecordError::NotPublic => 9039,
            RecordError::NotFound => 9016,
            RecordError::NoBiography => 9041,
            RecordError::Deprecated { .. } => 9007,
            RecordError::Duplicate { .. } => 9021,
            RecordError::DuplicateElement { .. } => 9030,
            RecordError::Deactivated { .. } => 9044,
            RecordError::TooManyWorks { .. } => 9048,
        }
    }

    fn status_line(&self) -> &'static str {
        match self.status() {
            301 => "301 Moved Permanently",
            403 => "403 Forbidden",
            404 => "404 Not Found",
            409 => "409 Conflict",
            _ => "400 Bad Request",
        }
    }

    /// ORCID's `developer-message`.
    pub fn developer_message(&self) -> String {
        let head = self.status_line();
        match self {
            RecordError::Unparseable(detail) => format!(
                "{head}: There is an issue with your data or the API endpoint. 405 Method Not Allowed: Endpoint and method mismatch. 415 Unsupported Media Type: data must be in XML or JSON format. Full validation error: {detail}"
            ),
            RecordError::InvalidJson(detail) => {
                format!("{head}: Invalid JSON. Full validation error: {detail}")
            }
            RecordError::BadRequest(detail) => format!(
                "The client application sent a bad request to ORCID. Full validation error: {detail}"
            ),
            RecordError::BulkTooLarge { max } => format!(
                "The client application sent a bad request to ORCID. Full validation error: You are allowed to add up to {max} elements per request."
            ),
            RecordError::PutCodeMismatch { url, body } => format!(
                "{head}: The put code in the URL was {url} whereas the one in the body was {}.",
                body.as_deref().unwrap_or("null")
            ),
            RecordError::Validation(detail) => format!(
                "{head}: Invalid incoming message. Full validation error: {detail}"
            ),
            RecordError::TitleRequired => {
                format!("{head}: Invalid activity: A title is required.")
            }
            RecordError::ExternalId(detail) => format!(
                "{head}: Invalid activity: an external identifier is required. Full validation error: {detail}"
            ),
            RecordError::PutCodeOnCreate => format!(
                "{head}: Put-code is included when not expected. When posting new activities, the put code should be omitted."
            ),
            RecordError::InvalidPutCode(pc) => format!(
                "{head}: The put code provided is not valid. Full validation error: '{pc}' is not a valid put code"
            ),
            RecordError::InvalidType { what, values } => {
                format!("{head}: Invalid {what}, valid values are: {values}.")
            }
            RecordError::TooManyPutCodes => "org.orcid.core.exception.ExceedMaxNumberOfPutCodesException Full validation error: Too many put codes specified: maximum is 100".to_owned(),
            RecordError::DisambiguatedOrg(detail) => format!(
                "{head}: Invalid disambiguated organization. Full validation error: {detail}"
            ),
            RecordError::Org(detail) => {
                format!("{head}: Invalid organization. Full validation error: {detail}")
            }
            RecordError::InvalidDate(date) => format!(
                "{head}: Invalid date. Full validation error: Invalid date: {date}"
            ),
            RecordError::MissingStartDate => {
                format!("{head}: An end date was given without a start date.")
            }
            RecordError::InvalidEnum(detail) => format!(
                "{head}: Invalid enum value. Full validation error: {detail}"
            ),
            RecordError::InvalidAmount => format!(
                "{head}: Invalid amount. Full validation error: the amount must be a number"
            ),
            RecordError::StartAfterEnd => {
                format!("{head}: The start date is after the end date.")
            }
            RecordError::InvalidContributorRole(role) => format!(
                "{head}: Invalid contributor role. Full validation error: '{role}' is not a valid contributor role"
            ),
            RecordError::OrgAddress => format!(
                "{head}: Invalid organization address: city and country are required for employment and education."
            ),
            RecordError::CountryRequired => format!(
                "{head}: Invalid organization address: a city or region was given without a country."
            ),
            RecordError::ProfessionalActivityIds => format!(
                "{head}: A professional activity needs an organization with a disambiguated identifier or at least one external identifier."
            ),
            RecordError::NotSource { activity } => format!(
                "{head}: You are not the source of the {activity}, so you are not allowed to update it."
            ),
            RecordError::Private => {
                format!("{head}: The activity is private and you are not the source.")
            }
            RecordError::VisibilityChange => format!(
                "{head}: You can't change the visibility of an item, please remove the visibility or set it to the current value"
            ),
            RecordError::NotPublic => format!(
                "{head}: The item is not public and cannot be accessed with the Public API."
            ),
            RecordError::NotFound => format!("{head}: The resource was not found."),
            RecordError::NoBiography => {
                format!("{head}: Biography for the given record is null.")
            }
            RecordError::Deprecated {
                orcid, primary_uri, ..
            } => format!(
                "{head}: This account is deprecated. Please refer to account: {primary_uri}. ORCID {orcid}"
            ),
            RecordError::Duplicate { put_code } => format!(
                "{head}: You have already added this activity (matched by external identifiers), please see element with put-code {put_code}. If you are trying to edit the item, please use PUT instead of POST."
            ),
            RecordError::DuplicateElement { value, element } => {
                format!("{head}: The element '{value}' of type '{element}' is duplicated.")
            }
            RecordError::Deactivated { orcid } => format!(
                "{head}: The ORCID record is deactivated and cannot be edited. Full validation error: {orcid} is deactivated"
            ),
            RecordError::TooManyWorks { max } => format!(
                "{head}: This record has reached the maximum of {max} works. Full validation error: ExceedMaxNumberOfElementsException"
            ),
        }
    }

    /// ORCID's `user-message`; `client_name` fills `${clientName}` where ORCID has it.
    pub fn user_message(&self, client_name: Option<&str>) -> String {
        let client = client_name.unwrap_or("${clientName}");
        match self {
            RecordError::Unparseable(_) | RecordError::InvalidJson(_) => {
                "ORCID could not process the data, because they were invalid.".to_owned()
            }
            RecordError::BadRequest(_) | RecordError::BulkTooLarge { .. } => {
                "The client application sent a bad request to ORCID.".to_owned()
            }
            RecordError::PutCodeMismatch { .. } => {
                "The put code in the URL did not match that in the body of the message.".to_owned()
            }
            RecordError::TitleRequired => "Invalid activity:  A title is required.".to_owned(),
            RecordError::ExternalId(_) => {
                "Invalid activity: an external identifier is required.".to_owned()
            }
            RecordError::PutCodeOnCreate => format!(
                "There was an error when adding the activity. Please try again. If the error persists, please contact {client} for assistance."
            ),
            RecordError::TooManyPutCodes => "Too many put codes supplied".to_owned(),
            RecordError::NotSource { .. } => {
                "The client application is not the source of the resource it is trying to access."
                    .to_owned()
            }
            RecordError::Private | RecordError::NotPublic => {
                "The client application is forbidden to perform the action.".to_owned()
            }
            RecordError::VisibilityChange => "You can't change the visibility of an item, please remove the visibility or set it to the current value".to_owned(),
            RecordError::NotFound => "The resource was not found.".to_owned(),
            RecordError::NoBiography => "There is no biography for the given record.".to_owned(),
            RecordError::Deprecated { primary_uri, .. } => {
                format!("This account is deprecated. Please refer to account: {primary_uri}.")
            }
            RecordError::Duplicate { .. } => format!(
                "There was an error when adding or updating the activity. Please try again. If the error persists, please contact {client} for assistance."
            ),
            RecordError::DuplicateElement { value, element } => {
                format!("The element '{value}' of type '{element}' is duplicated.")
            }
            RecordError::Deactivated { .. } => "The ORCID record is deactivated.".to_owned(),
            _ => format!(
                "There was an error when updating the record. Please try again. If the error persists, please contact {client} for assistance."
            ),
        }
    }

    /// The v3 error body: `response-code, developer-message, user-message, error-code, more-info`.
    pub fn body(&self, client_name: Option<&str>) -> Value {
        json!({
            "response-code": self.status(),
            "developer-message": self.developer_message(),
            "user-message": self.user_message(client_name),
            "error-code": self.code(),
            "more-info": MORE_INFO,
        })
    }
}
