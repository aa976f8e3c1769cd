//! OAuth scopes (reference §1.1): the ones ORCID defines, plus any other string as sent.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One ORCID OAuth scope.
///
/// ```
/// use orcid::client::Scope;
///
/// assert_eq!("/activities/update".parse::<Scope>(), Ok(Scope::ActivitiesUpdate));
/// assert_eq!(Scope::OpenId.as_str(), "openid");
/// assert_eq!("/x".parse::<Scope>(), Ok(Scope::Other("/x".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `/authenticate`: the user's iD and public data.
    Authenticate,
    /// `openid`: as `/authenticate`, plus an `id_token`.
    OpenId,
    /// `/read-limited`: read items shared with trusted organizations.
    ReadLimited,
    /// `/activities/update`: add, update and delete works, fundings, affiliations, ….
    ActivitiesUpdate,
    /// `/person/update`: add, update and delete other names, keywords, URLs, ….
    PersonUpdate,
    /// `/read-public` (client credentials): read public data of any record.
    ReadPublic,
    /// `/webhook` (client credentials): register and unregister webhooks.
    Webhook,
    /// `/premium-notification` (client credentials): permission notifications.
    PremiumNotification,
    /// `/group-id-record/read` (client credentials).
    GroupIdRecordRead,
    /// `/group-id-record/update` (client credentials).
    GroupIdRecordUpdate,
    /// Any other scope string, kept as sent (legacy scopes such as `/orcid-works/create`).
    Other(String),
}

impl Scope {
    /// Reads one scope string. Never fails: unknown strings become [`Scope::Other`].
    pub fn parse(s: &str) -> Scope {
        match s {
            "/authenticate" => Scope::Authenticate,
            "openid" => Scope::OpenId,
            "/read-limited" => Scope::ReadLimited,
            "/activities/update" => Scope::ActivitiesUpdate,
            "/person/update" => Scope::PersonUpdate,
            "/read-public" => Scope::ReadPublic,
            "/webhook" => Scope::Webhook,
            "/premium-notification" => Scope::PremiumNotification,
            "/group-id-record/read" => Scope::GroupIdRecordRead,
            "/group-id-record/update" => Scope::GroupIdRecordUpdate,
            other => Scope::Other(other.to_owned()),
        }
    }

    /// The scope as ORCID spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Scope::Authenticate => "/authenticate",
            Scope::OpenId => "openid",
            Scope::ReadLimited => "/read-limited",
            Scope::ActivitiesUpdate => "/activities/update",
            Scope::PersonUpdate => "/person/update",
            Scope::ReadPublic => "/read-public",
            Scope::Webhook => "/webhook",
            Scope::PremiumNotification => "/premium-notification",
            Scope::GroupIdRecordRead => "/group-id-record/read",
            Scope::GroupIdRecordUpdate => "/group-id-record/update",
            Scope::Other(s) => s,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Scope::parse(s))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Scope::parse(&s))
    }
}

/// A set of scopes, as ORCID writes them: space-separated, in no guaranteed order.
///
/// It is a set: order and duplicates do not matter, so `"/a /b"` equals `"/b /a"` (and
/// hashes the same). It is written in one fixed order — ORCID's scopes in the order of
/// [`Scope`]'s variants, then other scopes alphabetically — so equal sets always print the
/// same text.
///
/// ```
/// use orcid::client::{Scope, Scopes};
///
/// let s = Scopes::parse("/activities/update  /read-limited /read-limited");
/// assert!(s.contains(&Scope::ActivitiesUpdate));
/// assert_eq!(s.len(), 2);
/// assert_eq!(s, Scopes::parse("/read-limited /activities/update"));
/// assert_eq!(s.to_string(), "/read-limited /activities/update");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Reads a space-separated list (extra whitespace and duplicates ignored).
    pub fn parse(s: &str) -> Scopes {
        s.split_whitespace().map(Scope::parse).collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `other` is in this set.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.0.is_subset(&self.0)
    }

    /// The scopes, in the fixed order [`Display`](fmt::Display) uses.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// How many scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[Scope; N]> for Scopes {
    fn from(scopes: [Scope; N]) -> Self {
        scopes.into_iter().collect()
    }
}

impl From<Scope> for Scopes {
    fn from(scope: Scope) -> Self {
        Scopes(BTreeSet::from([scope]))
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::collections::btree_set::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Scopes {
    type Item = Scope;
    type IntoIter = std::collections::btree_set::IntoIter<Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Scopes::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};

    use super::*;

    fn hash_of(s: &Scopes) -> u64 {
        let mut h = DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let ab = Scopes::parse("/a /b");
        let ba = Scopes::parse("/b /a");
        assert_eq!(ab, ba);
        assert_eq!(hash_of(&ab), hash_of(&ba));
        assert_eq!(ab.to_string(), ba.to_string());
        assert_eq!(Scopes::parse("/b /a /b"), ab);
        assert_ne!(Scopes::parse("/a"), ab);

        let granted = Scopes::parse("/activities/update /read-limited");
        let asked = Scopes::from([Scope::ReadLimited, Scope::ActivitiesUpdate]);
        assert_eq!(granted, asked);
        assert_eq!(granted.to_string(), "/read-limited /activities/update");
        assert!(granted.contains_all(&Scopes::from(Scope::ReadLimited)));
        assert!(!Scopes::from(Scope::ReadLimited).contains_all(&granted));
    }
}
