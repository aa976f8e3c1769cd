//! The stand-in for ORCID's disambiguated-organization database (reference §3.3): ORCID refuses
//! an affiliation or funding whose `disambiguated-organization-identifier` it does not hold for
//! the given `disambiguation-source` (400, 9045).
//!
//! Known here: a built-in table ([`BUILT_IN`]), every id a test adds through
//! `POST /_sim/records/orgs`, and — so tests can use realistic ids without registering them —
//! any ROR id of ROR's shape, `https://ror.org/0` followed by six lowercase letters or digits and
//! two digits (e.g. `https://ror.org/00jmfr291`).

use std::collections::HashSet;

/// `(disambiguation-source, disambiguated-organization-identifier, name)` ORCID holds.
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    ("ROR", "https://ror.org/05qwgg493", "Boston University"),
    ("ROR", "https://ror.org/04fa4r544", "ORCID"),
    ("ROR", "https://ror.org/00jmfr291", "University of Michigan"),
    ("ROR", "https://ror.org/052gg0110", "University of Oxford"),
    ("ROR", "https://ror.org/03dbr7087", "University of Toronto"),
    ("ROR", "https://ror.org/05dc6w374", "Research Data Alliance"),
    (
        "ROR",
        "https://ror.org/027ka1x80",
        "National Aeronautics and Space Administration",
    ),
    ("RINGGOLD", "385488", "ORCID"),
    ("RINGGOLD", "1846", "Boston University"),
    (
        "GRID",
        "grid.238252.c",
        "National Aeronautics and Space Administration",
    ),
    ("GRID", "grid.189504.1", "Boston University"),
    (
        "FUNDREF",
        "http://dx.doi.org/10.13039/100000001",
        "National Science Foundation",
    ),
    ("FUNDREF", "http://dx.doi.org/10.13039/100011942", "ORCID"),
    (
        "FUNDREF",
        "http://dx.doi.org/10.13039/100004440",
        "Wellcome Trust",
    ),
    ("LEI", "5493001KJTIIGC8Y1R12", "Example LEI Organization"),
];

/// The disambiguation sources ORCID knows (`OrgDisambiguatedSourceType`).
pub const SOURCES: &[&str] = &["RINGGOLD", "GRID", "FUNDREF", "ROR", "LEI"];

/// Organizations ORCID's database holds, as far as the simulator knows.
#[derive(Debug, Clone, Default)]
pub struct KnownOrgs {
    added: HashSet<(String, String)>,
}

impl KnownOrgs {
    /// Registers `(source, id)` as known.
    pub fn add(&mut self, source: &str, id: &str) {
        self.added.insert((source.to_owned(), id.to_owned()));
    }

    /// Whether ORCID would find `id` under `source`.
    pub fn contains(&self, source: &str, id: &str) -> bool {
        BUILT_IN.iter().any(|(s, i, _)| *s == source && *i == id)
            || self.added.contains(&(source.to_owned(), id.to_owned()))
            || (source == "ROR" && is_ror_shaped(id))
    }
}

/// `https://ror.org/0` + six of `[a-z0-9]` + two digits.
pub fn is_ror_shaped(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("https://ror.org/") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() == 9
        && bytes[0] == b'0'
        && bytes[1..7]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes[7..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ror_shape_rule() {
        assert!(is_ror_shaped("https://ror.org/00jmfr291"));
        assert!(!is_ror_shaped("https://ror.org/10jmfr291"));
        assert!(!is_ror_shaped("https://ror.org/00jmfr2x1"));
        assert!(!is_ror_shaped("ror.org/00jmfr291"));
        assert!(!is_ror_shaped("https://ror.org/00JMFR291"));
    }

    #[test]
    fn table_and_added() {
        let mut orgs = KnownOrgs::default();
        assert!(orgs.contains("RINGGOLD", "385488"));
        assert!(orgs.contains("GRID", "grid.238252.c"));
        assert!(!orgs.contains("RINGGOLD", "1"));
        assert!(!orgs.contains("ror", "https://ror.org/05qwgg493"));
        orgs.add("RINGGOLD", "1");
        assert!(orgs.contains("RINGGOLD", "1"));
    }
}
