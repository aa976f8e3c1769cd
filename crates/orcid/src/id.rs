//! ORCID iDs: parsing, the ISO 7064 MOD 11-2 check digit, display forms.
//!
//! [`OrcidId`] is the proof that a string is a well-formed iD with a correct check digit: once
//! you hold one, nothing downstream needs to check again. It is what idbridge stores and what
//! it writes.
//!
//! Documents read from ORCID carry iDs too (`orcid-identifier`, `source-orcid`,
//! `contributor-orcid`). ORCID's own official samples use placeholders such as
//! `8888-8888-8888-8888` whose check digit is wrong, and contributor iDs are typed by people.
//! Reading a document must never fail because of them, so the model keeps read-side iDs as
//! [`UncheckedOrcidId`]: the text as ORCID sent it, with [`UncheckedOrcidId::verify`] to turn it
//! into an [`OrcidId`] when it matters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which ORCID registry an iD belongs to. The same iD syntax is used by both, but the
/// registries are separate: a sandbox iD means nothing in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    /// `https://orcid.org`.
    #[default]
    Production,
    /// `https://sandbox.orcid.org`.
    Sandbox,
}

impl Registry {
    /// The registry's public web origin, without a trailing slash.
    pub fn origin(self) -> &'static str {
        match self {
            Registry::Production => "https://orcid.org",
            Registry::Sandbox => "https://sandbox.orcid.org",
        }
    }

    /// The registry's host name (the `host` field of ORCID's `{uri, path, host}` blocks).
    pub fn host(self) -> &'static str {
        match self {
            Registry::Production => "orcid.org",
            Registry::Sandbox => "sandbox.orcid.org",
        }
    }
}

/// Why a string is not an ORCID iD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrcidIdError {
    /// Not 16 digits (the last may be `X`), hyphenated as `dddd-dddd-dddd-dddC` or bare,
    /// optionally behind an `https://orcid.org/` or `https://sandbox.orcid.org/` prefix.
    #[error(
        "`{0}` is not an ORCID iD: expected 16 digits (the last may be X) as \
         0000-0000-0000-0000, bare, or as an https://orcid.org/ URI"
    )]
    Format(String),
    /// The shape is right but the ISO 7064 MOD 11-2 check digit does not match.
    #[error("`{id}` is not an ORCID iD: its check digit is {found} but should be {expected}")]
    CheckDigit {
        /// The iD as given, normalised to the hyphenated form.
        id: String,
        /// The check character the first 15 digits call for.
        expected: char,
        /// The check character that was given.
        found: char,
    },
}

/// A valid ORCID iD: 16 characters whose last is the ISO 7064 MOD 11-2 check digit of the
/// first 15.
///
/// ```
/// use orcid::OrcidId;
///
/// let id: OrcidId = "https://orcid.org/0000-0002-1825-0097".parse()?;
/// assert_eq!(id.to_string(), "0000-0002-1825-0097");
/// assert_eq!(id.uri(orcid::Registry::Sandbox), "https://sandbox.orcid.org/0000-0002-1825-0097");
/// assert!(OrcidId::parse("0000-0002-1825-0098").is_err());
/// # Ok::<(), orcid::OrcidIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrcidId([u8; 16]);

impl OrcidId {
    /// Parses the hyphenated form (`0000-0002-1825-0097`), the bare 16 characters
    /// (`0000000218250097`) or a URI on orcid.org or sandbox.orcid.org
    /// (`https://orcid.org/0000-0002-1825-0097`, with or without a trailing slash; `http`
    /// and a missing scheme are tolerated, and scheme and host are matched in any case, as
    /// in `HTTPS://ORCID.ORG/…`). A lowercase `x` check digit is accepted and normalised to
    /// `X`. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Self, OrcidIdError> {
        let trimmed = input.trim();
        let body = strip_uri_prefix(trimmed).trim_end_matches('/');
        let mut digits = [0u8; 16];
        let mut n = 0;
        let bytes = body.as_bytes();
        let hyphenated = bytes.len() == 19;
        if !(hyphenated || bytes.len() == 16) {
            return Err(OrcidIdError::Format(input.to_owned()));
        }
        for (i, &b) in bytes.iter().enumerate() {
            if hyphenated && (i == 4 || i == 9 || i == 14) {
                if b != b'-' {
                    return Err(OrcidIdError::Format(input.to_owned()));
                }
                continue;
            }
            let c = match b {
                b'0'..=b'9' => b,
                b'X' | b'x' if n == 15 => b'X',
                _ => return Err(OrcidIdError::Format(input.to_owned())),
            };
            digits[n] = c;
            n += 1;
        }
        // The loop above let only ASCII digits into the first 15 places, so this is `Some`.
        let Some(expected) = digits.first_chunk::<15>().and_then(check_digit) else {
            return Err(OrcidIdError::Format(input.to_owned()));
        };
        let found = char::from(digits[15]);
        if expected != found {
            return Err(OrcidIdError::CheckDigit {
                id: hyphenate(&digits),
                expected,
                found,
            });
        }
        Ok(OrcidId(digits))
    }

    /// Builds the iD whose first 15 digits are `base` (0 ≤ base < 10^15), computing the
    /// check digit. ORCID issues new iDs from base 900000000000 (`0009-0000-0000-000x`).
    ///
    /// Returns `None` when `base` has more than 15 digits.
    pub fn from_base(base: u64) -> Option<Self> {
        if base >= 1_000_000_000_000_000 {
            return None;
        }
        let mut digits = [0u8; 16];
        let mut rest = base;
        for slot in digits[..15].iter_mut().rev() {
            // `rest % 10` is below 10, so the narrowing cannot lose anything.
            *slot = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        let check = digits.first_chunk::<15>().and_then(check_digit)?;
        digits[15] = u8::try_from(check).ok()?;
        Some(OrcidId(digits))
    }

    /// The hyphenated form, `0000-0002-1825-0097`: the `path` ORCID uses in API URLs and in
    /// `{uri, path, host}` blocks.
    pub fn path(&self) -> String {
        hyphenate(&self.0)
    }

    /// The full display URI on a registry, e.g. `https://orcid.org/0000-0002-1825-0097`.
    /// ORCID's display guidelines ask for this form, linked, next to the iD icon.
    pub fn uri(&self, registry: Registry) -> String {
        format!("{}/{}", registry.origin(), self)
    }

    /// The URI under an arbitrary origin (for a simulator or a test registry).
    /// A trailing slash on `origin` is ignored.
    pub fn uri_on(&self, origin: &str) -> String {
        format!("{}/{}", origin.trim_end_matches('/'), self)
    }
}

impl fmt::Display for OrcidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hyphenate(&self.0))
    }
}

impl fmt::Debug for OrcidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrcidId({self})")
    }
}

impl FromStr for OrcidId {
    type Err = OrcidIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for OrcidId {
    type Error = OrcidIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for OrcidId {
    type Error = OrcidIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl Serialize for OrcidId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OrcidId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        OrcidId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An iD as it appears in a document read from ORCID, kept exactly as sent and not checked.
///
/// See the [module documentation](self) for why read-side iDs are not [`OrcidId`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UncheckedOrcidId(pub String);

impl UncheckedOrcidId {
    /// The text as ORCID sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the text and its check digit.
    pub fn verify(&self) -> Result<OrcidId, OrcidIdError> {
        OrcidId::parse(&self.0)
    }
}

impl From<OrcidId> for UncheckedOrcidId {
    fn from(id: OrcidId) -> Self {
        UncheckedOrcidId(id.path())
    }
}

impl fmt::Display for UncheckedOrcidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ISO/IEC 7064 MOD 11-2 check character of the first 15 digits of an iD, as ORCID
/// computes it: `'0'`–`'9'` or `'X'`.
///
/// Returns `None` when a byte of `base` is not an ASCII digit.
///
/// ```
/// assert_eq!(orcid::id::check_digit(b"000000021825009"), Some('7'));
/// assert_eq!(orcid::id::check_digit(b"000000021694233"), Some('X'));
/// assert_eq!(orcid::id::check_digit(b"00000002169423/"), None);
/// ```
pub fn check_digit(base: &[u8; 15]) -> Option<char> {
    let mut total: u32 = 0;
    for &byte in base {
        if !byte.is_ascii_digit() {
            return None;
        }
        // Reducing at every step keeps `total` below 22: no overflow whatever the input.
        total = ((total + u32::from(byte - b'0')) * 2) % 11;
    }
    let result = (12 - total) % 11;
    if result == 10 {
        Some('X')
    } else {
        char::from_digit(result, 10)
    }
}

/// `s` without an `http(s)://` scheme and an ORCID host, both matched case-insensitively
/// (URI schemes and host names are case-insensitive); `s` itself when there is no ORCID host.
fn strip_uri_prefix(s: &str) -> &str {
    let without_scheme = ["https://", "http://"]
        .into_iter()
        .find_map(|scheme| strip_prefix_ignore_case(s, scheme))
        .unwrap_or(s);
    ["orcid.org/", "sandbox.orcid.org/", "www.orcid.org/"]
        .into_iter()
        .find_map(|host| strip_prefix_ignore_case(without_scheme, host))
        .unwrap_or(s)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn hyphenate(d: &[u8; 16]) -> String {
    let mut s = String::with_capacity(19);
    for (i, &b) in d.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        s.push(char::from(b));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN_GOOD: &[&str] = &[
        "0000-0002-1825-0097",
        "0000-0002-1694-233X",
        "0000-0001-5109-3700",
        "0000-0003-1419-2405",
        "0009-0003-7578-3214",
        "0000-0002-7319-2192",
    ];

    #[test]
    fn known_good_ids_parse_in_every_form() {
        for &id in KNOWN_GOOD {
            let parsed = OrcidId::parse(id).unwrap();
            assert_eq!(parsed.to_string(), id);
            assert_eq!(OrcidId::parse(&id.replace('-', "")).unwrap(), parsed);
            assert_eq!(
                OrcidId::parse(&format!("https://orcid.org/{id}")).unwrap(),
                parsed
            );
            assert_eq!(
                OrcidId::parse(&format!("https://sandbox.orcid.org/{id}/")).unwrap(),
                parsed
            );
            assert_eq!(
                OrcidId::parse(&format!("  http://orcid.org/{id}\n")).unwrap(),
                parsed
            );
        }
    }

    #[test]
    fn every_single_digit_change_fails_the_check_digit() {
        for &id in KNOWN_GOOD {
            for (i, original) in id.char_indices() {
                if original == '-' {
                    continue;
                }
                let replacements: &[char] = if i == id.len() - 1 {
                    &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X']
                } else {
                    &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
                };
                for &r in replacements {
                    if r == original {
                        continue;
                    }
                    let mut changed = id.to_owned();
                    changed.replace_range(i..i + 1, &r.to_string());
                    assert!(
                        matches!(
                            OrcidId::parse(&changed),
                            Err(OrcidIdError::CheckDigit { .. })
                        ),
                        "{changed} should fail the check digit"
                    );
                }
            }
        }
    }

    #[test]
    fn scheme_and_host_are_case_insensitive() {
        let id = OrcidId::parse("0000-0002-1825-0097").unwrap();
        for uri in [
            "HTTPS://ORCID.ORG/0000-0002-1825-0097",
            "Https://Sandbox.Orcid.Org/0000-0002-1825-0097/",
            "http://WWW.orcid.org/0000-0002-1825-0097",
            "ORCID.org/0000-0002-1825-0097",
        ] {
            assert_eq!(OrcidId::parse(uri).unwrap(), id, "{uri}");
        }
        // Multi-byte text where a prefix would end must not panic.
        assert!(OrcidId::parse("https://orcid.orgé/0000-0002-1825-0097").is_err());
        assert!(OrcidId::parse("é").is_err());
    }

    #[test]
    fn check_digit_refuses_non_digits_instead_of_panicking() {
        // Bytes below `0` used to underflow, and long inputs could overflow a u32.
        for bad in [
            *b"00000002182500/",
            *b"000000021825 09",
            *b"X00000021825009",
        ] {
            assert_eq!(check_digit(&bad), None, "{bad:?}");
        }
        assert_eq!(check_digit(&[0xff; 15]), None);
        assert_eq!(
            check_digit(b"999999999999999"),
            Some(reference_check(b"999999999999999"))
        );
    }

    /// The textbook MOD 11-2 in u64 without intermediate reductions (15 digits fit).
    fn reference_check(base: &[u8; 15]) -> char {
        let total = base
            .iter()
            .fold(0u64, |t, &d| (t + u64::from(d - b'0')) * 2);
        match (12 - total % 11) % 11 {
            10 => 'X',
            r => char::from_digit(u32::try_from(r).unwrap(), 10).unwrap(),
        }
    }

    #[test]
    fn check_digit_matches_the_unreduced_formula() {
        let mut base = *b"000000000000000";
        // A spread of bases: every digit position takes every value.
        for position in 0..15 {
            for digit in b'0'..=b'9' {
                base[position] = digit;
                assert_eq!(check_digit(&base), Some(reference_check(&base)), "{base:?}");
            }
        }
    }

    #[test]
    fn lowercase_x_is_normalised() {
        let id = OrcidId::parse("0000-0002-1694-233x").unwrap();
        assert_eq!(id.to_string(), "0000-0002-1694-233X");
    }

    #[test]
    fn malformed_input_is_a_format_error() {
        for bad in [
            "",
            "0000-0002-1825-009",
            "0000-0002-1825-00977",
            "0000_0002_1825_0097",
            "X000-0002-1825-0097",
            "https://example.org/0000-0002-1825-0097",
            "0000-0002-1825-0097-",
            "00000002-1825-0097",
        ] {
            assert!(
                matches!(OrcidId::parse(bad), Err(OrcidIdError::Format(_))),
                "{bad:?} should be a format error"
            );
        }
    }

    #[test]
    fn placeholder_ids_from_orcid_samples_fail_but_stay_readable_unchecked() {
        let err = OrcidId::parse("8888-8888-8888-8888").unwrap_err();
        assert!(matches!(err, OrcidIdError::CheckDigit { expected, .. } if expected == '0'));
        let unchecked: UncheckedOrcidId = serde_json::from_str("\"8888-8888-8888-8888\"").unwrap();
        assert_eq!(unchecked.as_str(), "8888-8888-8888-8888");
        assert!(unchecked.verify().is_err());
    }

    #[test]
    fn display_forms() {
        let id = OrcidId::parse("0000000218250097").unwrap();
        assert_eq!(id.path(), "0000-0002-1825-0097");
        assert_eq!(
            id.uri(Registry::Production),
            "https://orcid.org/0000-0002-1825-0097"
        );
        assert_eq!(
            id.uri(Registry::Sandbox),
            "https://sandbox.orcid.org/0000-0002-1825-0097"
        );
        assert_eq!(
            id.uri_on("http://127.0.0.1:8090/"),
            "http://127.0.0.1:8090/0000-0002-1825-0097"
        );
    }

    #[test]
    fn serde_uses_the_hyphenated_form_and_checks_on_read() {
        let id = OrcidId::parse("0000-0002-1694-233X").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"0000-0002-1694-233X\""
        );
        let back: OrcidId =
            serde_json::from_str("\"https://orcid.org/0000-0002-1694-233X\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<OrcidId>("\"0000-0002-1694-2330\"").is_err());
    }

    #[test]
    fn from_base_computes_the_check_digit() {
        assert_eq!(
            OrcidId::from_base(21825009).unwrap().to_string(),
            "0000-0002-1825-0097"
        );
        assert_eq!(
            OrcidId::from_base(21694233).unwrap().to_string(),
            "0000-0002-1694-233X"
        );
        assert!(OrcidId::from_base(1_000_000_000_000_000).is_none());
    }
}
