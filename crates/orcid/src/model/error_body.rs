//! ORCID's v3 error body (§4.1 of the reference).

use serde::{Deserialize, Serialize};

use super::common::UnknownFields;
use super::serde_util::plain;

/// The body ORCID's v3 API sends with an error status, and the `error` entries of a bulk
/// work response:
///
/// ```json
/// {"response-code": 409, "developer-message": "409 Conflict: …", "user-message": "…",
///  "error-code": 9021, "more-info": "https://members.orcid.org/api/resources/troubleshooting"}
/// ```
///
/// The codes are read from numbers or strings holding numbers. Authentication-layer errors
/// (`{"error": "invalid_token", …}`, §4.2) are OAuth-style and not this shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub response_code: Option<u16>,
    /// What went wrong, for the developer. ORCID always sends it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub developer_message: Option<String>,
    /// What to tell the user.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub user_message: Option<String>,
    /// ORCID's error code, e.g. 9021 (duplicate) or 9010 (not the source); see §4.3.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub error_code: Option<u32>,
    /// A link to ORCID's troubleshooting page.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub more_info: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl ErrorBody {
    /// The developer message, or the user message, or an empty string.
    pub fn message(&self) -> &str {
        self.developer_message
            .as_deref()
            .or(self.user_message.as_deref())
            .unwrap_or("")
    }
}
