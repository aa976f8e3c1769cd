//! Types shared by several events.

use serde::{Deserialize, Serialize};

/// An ORCID "fuzzy" date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartialDate(String);

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (month 1–12, day 1–31).
    ///
    /// # Errors
    /// A message saying which form is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let in_range = |s: &str, max: u32| s.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v));
        let ok = match parts.as_slice() {
            [y] => digits(y, 4),
            [y, m] => digits(y, 4) && digits(m, 2) && in_range(m, 12),
            [y, m, d] => {
                digits(y, 4) && digits(m, 2) && in_range(m, 12) && digits(d, 2) && in_range(d, 31)
            }
            _ => false,
        };
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD"
            ))
        }
    }

    /// The date as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PartialDate {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PartialDate> for String {
    fn from(value: PartialDate) -> Self {
        value.0
    }
}

/// Declares [`AffiliationSection`] and [`Section`] (its variants plus works and fundings)
/// from one list, so the two cannot drift apart.
macro_rules! sections {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// ORCID affiliation sections an HR position can become (`employment` by default).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum AffiliationSection {
            $($(#[$doc])* $variant,)*
        }

        /// Any ORCID record section idbridge writes items to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Section {
            $($(#[$doc])* $variant,)*
            /// `work`.
            Work,
            /// `funding`.
            Funding,
        }

        impl From<AffiliationSection> for Section {
            fn from(value: AffiliationSection) -> Self {
                match value {
                    $(AffiliationSection::$variant => Self::$variant,)*
                }
            }
        }

        impl Section {
            /// The affiliation section this is, if it is one.
            #[must_use]
            pub fn affiliation(self) -> Option<AffiliationSection> {
                match self {
                    $(Self::$variant => Some(AffiliationSection::$variant),)*
                    Self::Work | Self::Funding => None,
                }
            }
        }
    };
}

sections! {
    /// `employment`.
    Employment,
    /// `education`.
    Education,
    /// `qualification`.
    Qualification,
    /// `invited-position`.
    InvitedPosition,
    /// `distinction`.
    Distinction,
    /// `membership`.
    Membership,
    /// `service`.
    Service,
}

impl Default for AffiliationSection {
    /// `employment`.
    fn default() -> Self {
        Self::Employment
    }
}

/// How an identifier relates to the item (ORCID's `external-id-relationship`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relationship {
    /// Identifies this item.
    #[serde(rename = "self")]
    SelfId,
    /// Identifies something this item is part of (an ISSN).
    PartOf,
    /// Identifies another version of this item (a preprint).
    VersionOf,
    /// Identifies a funding that funded this item.
    FundedBy,
}

/// An identifier of (or related to) a work or a position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalId {
    /// ORCID identifier type (`doi`, `handle`, `isbn`, `issn`, `grant_number`, …).
    #[serde(rename = "type")]
    pub id_type: String,
    /// The identifier.
    pub value: String,
    /// Resolvable URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Relationship to the item.
    pub relationship: Relationship,
}

/// An organisation, when a position is not at the institution itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Name.
    pub name: String,
    /// City.
    pub city: String,
    /// Region or state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Identifier in `disambiguation_source` (e.g. a ROR URL or Ringgold number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disambiguated_id: Option<String>,
    /// `ROR`, `RINGGOLD`, `GRID`, `FUNDREF` or `LEI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disambiguation_source: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_agree() {
        for section in [
            AffiliationSection::Employment,
            AffiliationSection::InvitedPosition,
            AffiliationSection::Service,
        ] {
            let wide = Section::from(section);
            assert_eq!(
                serde_json::to_value(section).unwrap(),
                serde_json::to_value(wide).unwrap()
            );
            assert_eq!(wide.affiliation(), Some(section));
        }
        assert_eq!(Section::Work.affiliation(), None);
        assert_eq!(
            AffiliationSection::default(),
            AffiliationSection::Employment
        );
    }

    #[test]
    fn partial_dates() {
        for ok in ["2024", "2024-02", "2024-02-29"] {
            assert!(PartialDate::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["24", "2024-13", "2024-1", "2024-02-32", "2024-02-03-04", ""] {
            assert!(PartialDate::parse(bad).is_err(), "{bad}");
        }
    }
}
