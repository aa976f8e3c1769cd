//! ORCID's partial ("fuzzy") dates: a year, optionally a month, optionally a day.

use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::common::UnknownFields;
use super::serde_util::{self, Scalar};

/// Why year/month/day do not make a date ORCID accepts (ORCID answers 400, code 9049).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The year is not four digits.
    #[error("year {0} is not four digits (1000-9999)")]
    Year(u16),
    /// The month is not 1-12.
    #[error("month {0} is not between 1 and 12")]
    Month(u8),
    /// The day does not exist in that month.
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    Day {
        /// The year.
        year: u16,
        /// The month.
        month: u8,
        /// The day that does not exist.
        day: u8,
    },
    /// A day was given without a month.
    #[error("a day needs a month")]
    DayWithoutMonth,
    /// No year was given.
    #[error("a date needs a year")]
    MissingYear,
    /// A part is not written as ORCID writes it (`"2021"`, `"01"`, `"31"`).
    #[error("`{0}` is not a date part as ORCID writes them (YYYY, MM, DD)")]
    Format(String),
}

/// A real calendar date with optional month and day: the proof that the parts are valid.
///
/// - the year has four digits (1000-9999; ORCID's XSD further limits XML to 1900-2100),
/// - the month is 1-12,
/// - the day exists in that month (29 February only in leap years),
/// - a day needs a month.
///
/// Build one with [`PartialDate::new`] (or parse `"2021"`, `"2021-01"`, `"2021-01-31"`).
/// In documents it appears as a [`FuzzyDate`], which also holds dates ORCID sent that are
/// not real. It serializes as ORCID's zero-padded `{"year": {"value": "2021"}, …}` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartialDate {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

impl PartialDate {
    /// Checks the parts.
    ///
    /// ```
    /// use orcid::model::PartialDate;
    /// assert!(PartialDate::new(2021, Some(1), Some(31)).is_ok());
    /// assert!(PartialDate::new(2021, Some(2), Some(29)).is_err());
    /// assert!(PartialDate::new(2021, None, Some(3)).is_err());
    /// ```
    pub fn new(year: u16, month: Option<u8>, day: Option<u8>) -> Result<Self, DateError> {
        if !(1000..=9999).contains(&year) {
            return Err(DateError::Year(year));
        }
        if let Some(m) = month
            && !(1..=12).contains(&m)
        {
            return Err(DateError::Month(m));
        }
        match (month, day) {
            (None, Some(_)) => return Err(DateError::DayWithoutMonth),
            (Some(m), Some(d)) if d == 0 || d > days_in_month(year, m) => {
                return Err(DateError::Day {
                    year,
                    month: m,
                    day: d,
                });
            }
            _ => {}
        }
        Ok(PartialDate { year, month, day })
    }

    /// Just a year.
    pub fn year_only(year: u16) -> Result<Self, DateError> {
        PartialDate::new(year, None, None)
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month (1-12), if known.
    pub fn month(&self) -> Option<u8> {
        self.month
    }

    /// The day of the month, if known.
    pub fn day(&self) -> Option<u8> {
        self.day
    }

    /// Reads parts as ORCID writes them: `"2021"`, `"01"`, `"31"` (exactly 4, 2 and 2
    /// digits). A missing year is an error.
    pub fn from_parts(
        year: Option<&str>,
        month: Option<&str>,
        day: Option<&str>,
    ) -> Result<Self, DateError> {
        let year = year.ok_or(DateError::MissingYear)?;
        let y = digits(year, 4)?;
        let m = month.map(two_digits).transpose()?;
        let d = day.map(two_digits).transpose()?;
        PartialDate::new(y, m, d)
    }

    fn parts(&self) -> RawDate {
        RawDate {
            year: Some(format!("{:04}", self.year)),
            month: self.month.map(|m| format!("{m:02}")),
            day: self.day.map(|d| format!("{d:02}")),
        }
    }
}

fn digits(s: &str, len: usize) -> Result<u16, DateError> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().map_err(|_| DateError::Format(s.to_owned()))
    } else {
        Err(DateError::Format(s.to_owned()))
    }
}

fn two_digits(s: &str) -> Result<u8, DateError> {
    digits(s, 2).and_then(|n| u8::try_from(n).map_err(|_| DateError::Format(s.to_owned())))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2021`, `2021-01` or `2021-01-31`.
impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

impl FromStr for PartialDate {
    type Err = DateError;
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split('-');
        let year = parts.next();
        let month = parts.next();
        let day = parts.next();
        if parts.next().is_some() {
            return Err(DateError::Format(s.to_owned()));
        }
        PartialDate::from_parts(year, month, day)
    }
}

impl Serialize for PartialDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.parts().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    /// Strict: the date must be real. Documents use [`FuzzyDate`], which is lenient.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match FuzzyDate::deserialize(d)? {
            FuzzyDate::Valid(date) => Ok(date),
            FuzzyDate::Invalid(raw) => Err(serde::de::Error::custom(format!(
                "not a valid date: {raw:?}"
            ))),
        }
    }
}

/// The parts of a date exactly as ORCID sent them, for dates that are not real.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RawDate {
    /// The year text.
    pub year: Option<String>,
    /// The month text.
    pub month: Option<String>,
    /// The day text.
    pub day: Option<String>,
}

impl Serialize for RawDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let parts = [
            ("year", &self.year),
            ("month", &self.month),
            ("day", &self.day),
        ];
        let mut m = s.serialize_map(Some(parts.iter().filter(|(_, v)| v.is_some()).count()))?;
        for (key, value) in parts {
            if let Some(v) = value {
                m.serialize_entry(key, &Wrapped(v))?;
            }
        }
        m.end()
    }
}

struct Wrapped<'a>(&'a str);

impl Serialize for Wrapped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("value", self.0)?;
        m.end()
    }
}

/// A date part as read: text kept verbatim, numbers zero-padded to two digits (a number
/// carries no padding, so `1` is taken to mean `"01"`).
struct PartText(String);

impl Scalar for PartText {
    const EXPECTING: &'static str = "a date part such as \"2021\" or \"01\"";
    fn from_text(s: &str) -> Result<Self, String> {
        Ok(PartText(s.to_owned()))
    }
    fn from_u64(n: u64) -> Result<Self, String> {
        Ok(PartText(format!("{n:02}")))
    }
}

fn de_part<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    serde_util::de_opt::<D, PartText>(d).map(|p| p.map(|p| p.0))
}

#[derive(Deserialize)]
struct RawDateWire {
    #[serde(default, deserialize_with = "de_part")]
    year: Option<String>,
    #[serde(default, deserialize_with = "de_part")]
    month: Option<String>,
    #[serde(default, deserialize_with = "de_part")]
    day: Option<String>,
    /// Read so that [`UnknownFields::observe`] reports them; not kept.
    #[serde(flatten)]
    _unknown: UnknownFields,
}

/// A date field of a document (`start-date`, `publication-date`, …) as ORCID sent it.
///
/// Reading is lenient: parts may be bare or wrapped, strings or numbers, and a date that is
/// not real (`"2021"-"02"-"30"`, a 2-digit year, a day without a month) still reads, as
/// [`FuzzyDate::Invalid`] with its parts kept verbatim so that writing it back changes
/// nothing. Parse-don't-validate happens here, once: a [`FuzzyDate::Valid`] holds a
/// [`PartialDate`]. Unknown keys inside a date object are dropped (and reported to
/// [`UnknownFields::observe`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FuzzyDate {
    /// A real date.
    Valid(PartialDate),
    /// Parts that do not make a real date, kept as sent.
    Invalid(RawDate),
}

impl FuzzyDate {
    /// The date, if it is real.
    pub fn valid(&self) -> Option<PartialDate> {
        match self {
            FuzzyDate::Valid(d) => Some(*d),
            FuzzyDate::Invalid(_) => None,
        }
    }
}

impl From<PartialDate> for FuzzyDate {
    fn from(d: PartialDate) -> Self {
        FuzzyDate::Valid(d)
    }
}

impl Serialize for FuzzyDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FuzzyDate::Valid(d) => d.serialize(s),
            FuzzyDate::Invalid(raw) => raw.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for FuzzyDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = RawDateWire::deserialize(d)?;
        Ok(
            match PartialDate::from_parts(
                wire.year.as_deref(),
                wire.month.as_deref(),
                wire.day.as_deref(),
            ) {
                Ok(date) => FuzzyDate::Valid(date),
                Err(_) => FuzzyDate::Invalid(RawDate {
                    year: wire.year,
                    month: wire.month,
                    day: wire.day,
                }),
            },
        )
    }
}
